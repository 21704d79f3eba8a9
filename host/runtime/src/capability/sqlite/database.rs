//! SQLite databases on rusqlite: open files, run statements, convert values.
//!
//! Independent of the WIT versions: `host.rs` (v2) and `host_v3.rs` convert
//! to and from their generated types.

use rusqlite::types::{ToSqlOutput, ValueRef};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A column value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    /// Read under the same lock as the statement, so other instances'
    /// writes cannot interleave.
    pub last_insert_rowid: i64,
    pub changes: u64,
}

/// Why a statement failed (mapped to each WIT version's `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlError {
    DatabaseFull,
    Io(String),
}

/// One open database file, shared by every instance granted its label.
#[derive(Debug, Clone)]
pub struct Database {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 512;

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
        // FULL: a commit is on disk before the request that made it is
        // answered (NORMAL could lose acknowledged work on power loss);
        // measured in `docs/benchmarks.md` (issue 21).
        conn.pragma_update(None, "synchronous", "FULL")?;
        // One connection serves every instance: give it a real page cache
        // (64 MiB) and let reads come straight from the mapped file.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
        // Every component's statements share this connection; rusqlite's
        // default cache (16) thrashed and re-parsed SQL on each call.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// An in-memory database (a runtime-config entry without `path`).
    pub fn in_memory() -> anyhow::Result<Self> {
        Ok(Self {
            conn: Arc::new(Mutex::new({
                let conn = rusqlite::Connection::open_in_memory()?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                conn
            })),
        })
    }

    /// Runs one statement with positional parameters and collects all rows.
    pub fn execute(&self, statement: &str, parameters: &[SqlValue]) -> Result<Rows, SqlError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| SqlError::Io("database lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(statement).map_err(to_error)?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(parameters.iter()))
            .map_err(to_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(to_error)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(from_sql(row.get_ref(i).map_err(to_error)?));
            }
            out.push(values);
        }
        drop(rows);
        drop(stmt);
        Ok(Rows {
            columns,
            rows: out,
            last_insert_rowid: conn.last_insert_rowid(),
            changes: conn.changes(),
        })
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Integer(i) => ValueRef::Integer(*i),
            SqlValue::Real(f) => ValueRef::Real(*f),
            SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
            SqlValue::Blob(b) => ValueRef::Blob(b),
            SqlValue::Null => ValueRef::Null,
        }))
    }
}

fn from_sql(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

fn to_error(e: rusqlite::Error) -> SqlError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => SqlError::DatabaseFull,
        _ => SqlError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_writes_survive_power_loss_synchronous_is_full() {
        let dir = std::env::temp_dir().join(format!("greenmesh-sync-{}", std::process::id()));
        let db = Database::open(&dir.join("db.sqlite")).unwrap();
        let rows = db.execute("PRAGMA synchronous", &[]).unwrap();
        // 2 = FULL: WAL commits are synced before the statement returns.
        assert!(
            matches!(rows.rows[0][0], SqlValue::Integer(2)),
            "{:?}",
            rows.rows
        );
        let mode = db.execute("PRAGMA journal_mode", &[]).unwrap();
        assert!(matches!(&mode.rows[0][0], SqlValue::Text(m) if m == "wal"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
