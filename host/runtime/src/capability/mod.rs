//! Capabilities the host serves to components, and what each component is granted.
//!
//! Linking happens once per app ([`add_to_linker`]); grants are checked per
//! call against the instance's [`ComponentCapabilities`].

mod bindings;
pub mod deny;
pub mod key_value;
pub mod outbound_http;
pub mod postgres;
pub mod sqlite;
pub mod variables;

use crate::state::InstanceState;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// Backends shared by every component of an app, opened at startup.
#[derive(Debug, Default)]
pub struct SharedResources {
    /// SQLite databases by label.
    pub sqlite: HashMap<String, sqlite::Database>,
    /// Postgres client pools by address (`spin:postgres`).
    pub postgres: postgres::Pools,
    /// Key-value stores by label.
    pub key_value: HashMap<String, key_value::KvStore>,
    /// Application variable values.
    pub variable_values: variables::VariableValues,
    /// The wall clock components see: real time unless the embedder moves it.
    pub clock: crate::clock::VirtualClock,
}

/// What one component may use.
#[derive(Debug)]
pub struct ComponentCapabilities {
    pub component_id: Arc<str>,
    /// `sqlite_databases` labels.
    pub sqlite_grants: HashSet<String>,
    /// `key_value_stores` labels.
    pub key_value_grants: HashSet<String>,
    /// Component variable templates.
    pub variables: variables::ComponentVariables,
    /// `allowed_outbound_hosts`.
    pub allowed_hosts: Arc<outbound_http::AllowedHosts>,
    /// `environment`, visible through `wasi:cli/environment`.
    pub environment: Vec<(String, String)>,
    pub resources: Arc<SharedResources>,
}

/// Links WASI, wasi-http and the Spin capabilities into `linker`.
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::capability::bindings::sqlite::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::capability::bindings::sqlite3::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::capability::bindings::pg4::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::capability::bindings::key_value::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    crate::capability::bindings::variables::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}
