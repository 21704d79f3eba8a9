//! `fermyon:spin/sqlite@2.0.0` host functions.

use super::{Connection, OpenError, SqlError, SqlValue};
use crate::bindings::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value};
use crate::state::InstanceState;
use wasmtime::component::Resource;

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    fn open(&mut self, database: String) -> Result<Resource<Connection>, Error> {
        let db = self.open_sqlite(&database).map_err(|e| match e {
            OpenError::AccessDenied => Error::AccessDenied,
            OpenError::NoSuchDatabase => Error::NoSuchDatabase,
        })?;
        self.table
            .push(Connection {
                db,
                last_insert_rowid: 0,
                changes: 0,
            })
            .map_err(|e| Error::Io(e.to_string()))
    }

    fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let conn = self
            .table
            .get(&conn)
            .map_err(|_| Error::InvalidConnection)?;
        let params: Vec<SqlValue> = parameters.into_iter().map(into_sql).collect();
        let rows = conn.db.execute(&statement, &params).map_err(|e| match e {
            SqlError::DatabaseFull => Error::DatabaseFull,
            SqlError::Io(m) => Error::Io(m),
        })?;
        Ok(QueryResult {
            columns: rows.columns,
            rows: rows
                .rows
                .into_iter()
                .map(|r| RowResult {
                    values: r.into_iter().map(from_sql).collect(),
                })
                .collect(),
        })
    }

    fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

fn into_sql(v: Value) -> SqlValue {
    match v {
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

fn from_sql(v: SqlValue) -> Value {
    match v {
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(f) => Value::Real(f),
        SqlValue::Text(s) => Value::Text(s),
        SqlValue::Blob(b) => Value::Blob(b),
        SqlValue::Null => Value::Null,
    }
}
