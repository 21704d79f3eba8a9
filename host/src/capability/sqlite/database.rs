//! SQLite databases on rusqlite: open files, run statements, convert values.

use crate::bindings::sqlite::{Error, QueryResult, RowResult, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One open database file, shared by every instance granted its label.
#[derive(Debug, Clone)]
pub struct Database {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl Database {
    /// Opens (creating if needed) a database file in WAL mode.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening sqlite database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// An in-memory database (tests and `type = "memory"` in runtime config).
    pub fn in_memory() -> anyhow::Result<Self> {
        Ok(Self {
            conn: Arc::new(Mutex::new(rusqlite::Connection::open_in_memory()?)),
        })
    }

    /// Runs one statement with positional parameters and collects all rows.
    pub fn execute(&self, statement: &str, parameters: &[Value]) -> Result<QueryResult, Error> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::Io("database lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(statement).map_err(to_error)?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let params = rusqlite::params_from_iter(parameters.iter().map(SqlValue));
        let mut rows = stmt.query(params).map_err(to_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(to_error)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(from_sql(row.get_ref(i).map_err(to_error)?));
            }
            out.push(RowResult { values });
        }
        Ok(QueryResult { columns, rows: out })
    }
}

/// Adapts a WIT value to a rusqlite parameter.
struct SqlValue<'a>(&'a Value);

impl rusqlite::ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn to_error(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Error::DatabaseFull,
        _ => Error::Io(e.to_string()),
    }
}
