//! The spin sqlite capability: `fermyon:spin/sqlite@2.0.0` (`spin_sdk::sqlite`)
//! and `spin:sqlite/sqlite@3.0.0` (`spin_sdk::sqlite3`), on one backend.
//!
//! Labels are granted per component by `sqlite_databases`; a label the
//! component was not granted gets `access-denied`, an unconfigured one
//! `no-such-database`. Where each label lives comes from the runtime config
//! (`[sqlite_database.<label>]`); `default` lives in `.spin/sqlite_db.db`.

mod database;
mod host;

pub use database::{Database, SqlError, SqlValue};

/// The resource behind a guest's `connection` handle (both versions).
#[derive(Debug)]
pub struct Connection {
    pub(crate) db: Database,
    /// Results of this connection's last statement (v3 `last-insert-rowid`, `changes`).
    pub(crate) last_insert_rowid: i64,
    pub(crate) changes: u64,
}

/// Why a label cannot be opened.
pub(crate) enum OpenError {
    AccessDenied,
    NoSuchDatabase,
}

impl crate::state::InstanceState {
    /// Checks the grant and finds the database for `label`.
    pub(crate) fn open_sqlite(&self, label: &str) -> Result<Database, OpenError> {
        let caps = &self.capabilities;
        if !caps.sqlite_grants.contains(label) {
            tracing::debug!(component = %caps.component_id, database = %label, "sqlite label not granted");
            return Err(OpenError::AccessDenied);
        }
        caps.resources
            .sqlite
            .get(label)
            .cloned()
            .ok_or(OpenError::NoSuchDatabase)
    }
}
