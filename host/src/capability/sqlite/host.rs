//! `fermyon:spin/sqlite` host functions, with per-component grants.

use super::Connection;
use crate::bindings::sqlite::{Error, Host, HostConnection, QueryResult, Value};
use crate::state::InstanceState;
use wasmtime::component::Resource;

impl Host for InstanceState {}

impl HostConnection for InstanceState {
    fn open(&mut self, database: String) -> Result<Resource<Connection>, Error> {
        let caps = &self.capabilities;
        if !caps.sqlite_grants.contains(&database) {
            tracing::debug!(component = %caps.component_id, %database, "sqlite label not granted");
            return Err(Error::AccessDenied);
        }
        let db = caps
            .resources
            .sqlite
            .get(&database)
            .cloned()
            .ok_or(Error::NoSuchDatabase)?;
        self.table
            .push(Connection { db })
            .map_err(|e| Error::Io(e.to_string()))
    }

    fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let conn = self.table.get(&conn).map_err(|_| Error::InvalidConnection)?;
        conn.db.execute(&statement, &parameters)
    }

    fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
