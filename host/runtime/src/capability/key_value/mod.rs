//! The `fermyon:spin/key-value@2.0.0` capability (what `spin_sdk::key_value`
//! imports), backed by SQLite like Spin's default store.
//!
//! Labels are granted by `key_value_stores`; `default` lives in
//! `.spin/sqlite_key_value.db`, others where `[key_value_store.<label>]` says.

mod host;
mod sqlite_store;

pub use sqlite_store::KvStore;

/// The resource behind a guest's `store` handle.
#[derive(Debug)]
pub struct StoreHandle {
    pub(crate) store: KvStore,
}
