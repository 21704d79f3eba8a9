//! The runtime's single `bindgen!`: the Spin capability interfaces (from
//! `wit/`) that the capabilities beside this module implement.
//!
//! WASI and `wasi:http` come from wasmtime-wasi(-http); this module binds
//! only what greenmesh implements itself (the `greenmesh:platform/capabilities`
//! world). Resource types map to the host structs that back them.

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "greenmesh:platform/capabilities",
        with: {
            "fermyon:spin/sqlite.connection": crate::capability::sqlite::Connection,
            "spin:sqlite/sqlite.connection": crate::capability::sqlite::Connection,
            "fermyon:spin/key-value.store": crate::capability::key_value::StoreHandle,
            "spin:postgres/postgres.connection": crate::capability::postgres::Connection,
        },
        // The database is across the network: its calls wait without
        // holding a thread.
        imports: { "spin:postgres/postgres": async },
    });
}

pub use generated::fermyon::spin::{key_value, sqlite, variables};
/// `spin:postgres/postgres@4.0.0` (`spin_sdk::pg4`).
pub use generated::spin::postgres::postgres as pg4;
/// `spin:sqlite/sqlite@3.0.0` (`spin_sdk::sqlite3`).
pub use generated::spin::sqlite::sqlite as sqlite3;
