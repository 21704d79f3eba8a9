//! Host functions for both spin sqlite interfaces: `fermyon:spin/sqlite@2.0.0`
//! and `spin:sqlite/sqlite@3.0.0` (which adds `last-insert-rowid` and
//! `changes`). Their generated types are distinct but identical in shape, so
//! one macro writes both impls over the shared [`super::Database`].

use super::{Connection, OpenError, SqlError, SqlValue};
use crate::state::InstanceState;
use wasmtime::component::Resource;

macro_rules! impl_sqlite_host {
    ($version:ident { $($extra:item)* }) => {
        mod $version {
            use super::*;
            use crate::capability::bindings::$version::{Error, Host, HostConnection, QueryResult, RowResult, Value};

            impl Host for InstanceState {}

            impl HostConnection for InstanceState {
                fn open(&mut self, database: String) -> Result<Resource<Connection>, Error> {
                    let db = self.open_sqlite(&database).map_err(|e| match e {
                        OpenError::AccessDenied => Error::AccessDenied,
                        OpenError::NoSuchDatabase => Error::NoSuchDatabase,
                    })?;
                    self.table
                        .push(Connection { db, last_insert_rowid: 0, changes: 0 })
                        .map_err(|e| Error::Io(e.to_string()))
                }

                fn execute(
                    &mut self,
                    conn: Resource<Connection>,
                    statement: String,
                    parameters: Vec<Value>,
                ) -> Result<QueryResult, Error> {
                    let conn = self.table.get_mut(&conn).map_err(|_| Error::InvalidConnection)?;
                    let params: Vec<SqlValue> = parameters
                        .into_iter()
                        .map(|v| match v {
                            Value::Integer(i) => SqlValue::Integer(i),
                            Value::Real(f) => SqlValue::Real(f),
                            Value::Text(s) => SqlValue::Text(s),
                            Value::Blob(b) => SqlValue::Blob(b),
                            Value::Null => SqlValue::Null,
                        })
                        .collect();
                    let rows = conn.db.execute(&statement, &params).map_err(|e| match e {
                        SqlError::DatabaseFull => Error::DatabaseFull,
                        SqlError::Io(m) => Error::Io(m),
                    })?;
                    conn.last_insert_rowid = rows.last_insert_rowid;
                    conn.changes = rows.changes;
                    let value = |v| match v {
                        SqlValue::Integer(i) => Value::Integer(i),
                        SqlValue::Real(f) => Value::Real(f),
                        SqlValue::Text(s) => Value::Text(s),
                        SqlValue::Blob(b) => Value::Blob(b),
                        SqlValue::Null => Value::Null,
                    };
                    Ok(QueryResult {
                        columns: rows.columns,
                        rows: rows
                            .rows
                            .into_iter()
                            .map(|r| RowResult { values: r.into_iter().map(value).collect() })
                            .collect(),
                    })
                }

                $($extra)*

                fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
                    self.table.delete(conn)?;
                    Ok(())
                }
            }
        }
    };
}

impl_sqlite_host!(sqlite {});

impl_sqlite_host!(sqlite3 {
    fn last_insert_rowid(&mut self, conn: Resource<Connection>) -> i64 {
        self.table.get(&conn).map(|c| c.last_insert_rowid).unwrap_or(0)
    }

    fn changes(&mut self, conn: Resource<Connection>) -> u64 {
        self.table.get(&conn).map(|c| c.changes).unwrap_or(0)
    }
});
