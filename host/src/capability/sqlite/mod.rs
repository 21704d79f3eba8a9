//! The `fermyon:spin/sqlite@2.0.0` capability (what `spin_sdk::sqlite` imports).
//!
//! Labels are granted per component by `sqlite_databases`; a label the
//! component was not granted gets `access-denied`, an unknown one
//! `no-such-database`. Where each label lives comes from the runtime config
//! (`[sqlite_database.<label>]`); `default` lives in `.spin/sqlite_db.db`.

mod database;
mod host;

pub use database::Database;

/// The resource behind a guest's `connection` handle.
#[derive(Debug)]
pub struct Connection {
    pub(crate) db: Database,
}
