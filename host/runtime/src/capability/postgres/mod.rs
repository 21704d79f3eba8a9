//! The spin postgres capability: `spin:postgres/postgres@4.0.0`
//! (`spin_sdk::pg4`), as Spin serves it, on pooled tokio-postgres clients.
//!
//! - A component opens an address (a `postgres://` URL or a `key=value`
//!   connection string); every host it names must be allowed by the
//!   component's `allowed_outbound_hosts` (`postgres://host[:port]`, 5432
//!   by default), as Spin checks them. Unix sockets are refused.
//! - Each address has one pool for the whole app ([`Pools`]). An instance
//!   (one request, every composed component in it) holds at most one
//!   pooled client per address ([`Sessions`]): all its `connection`s to
//!   that address share that session, and the client goes back to the
//!   pool when the last of them is dropped. So a request through the
//!   coordinator's six table-keeping components takes one client, not six;
//!   requests cannot deadlock the pool by each holding some clients while
//!   waiting for more; and a plugin opening connections in a loop holds
//!   nothing more. An instance may name at most [`MAX_ADDRESSES`]
//!   addresses. A client is reset (`DISCARD`-style: settings, advisory
//!   locks, temporary tables) before it serves another instance.
//! - Parameters are converted to the type the server inferred for each
//!   placeholder ([`values::Param`]): an `int64` may fill an `INTEGER`
//!   column, a `str` a `JSONB` one. Results are decoded by column type
//!   ([`values::decode`]); `NUMERIC` comes back as its decimal text. Where
//!   the server cannot infer a placeholder's type (`$1 + $2`), each is
//!   typed as the guest passed it.
//!
//! TLS: `sslmode=disable` or `prefer` connect in the clear (a database on a
//! private network or loopback); `require` is refused with a message saying
//! so (`docs/host.md`).

// The error type is the WIT's, handed to the guest as it is.
#![allow(clippy::result_large_err)]

mod values;

use crate::capability::bindings::pg4::{Column, Error, QueryError, RowSet};
use crate::state::InstanceState;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use wasmtime::component::Resource;

/// Clients per database address, shared by every instance of the app
/// (`GREENMESH_POSTGRES_POOL_SIZE` to change): the requests that can
/// touch the database at once; more wait for a client (30 s at most).
/// The database's `max_connections` must cover every replica's pool.
pub const POOL_SIZE: usize = 64;

/// Distinct addresses one instance may hold sessions on at once: a
/// component that keeps opening new ones (`?application_name=1`, `=2`, …)
/// could otherwise drain the pools of the whole app.
pub const MAX_ADDRESSES: usize = 4;

fn pool_size() -> usize {
    std::env::var("GREENMESH_POSTGRES_POOL_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(POOL_SIZE)
}

/// The resource behind a guest's `connection` handle: its instance's
/// session on the address it opened.
pub struct Connection {
    client: Arc<Object>,
}

/// The sessions one instance holds, by address: the pooled client stays
/// checked out while any connection to it is open.
#[derive(Default)]
pub struct Sessions(HashMap<String, Weak<Object>>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({} open)", self.open())
    }
}

impl Sessions {
    /// Addresses with an open connection.
    fn open(&self) -> usize {
        self.0.values().filter(|w| w.strong_count() > 0).count()
    }

    /// The session on `address` if a connection holds one.
    fn get(&self, address: &str) -> Option<Arc<Object>> {
        self.0.get(address).and_then(Weak::upgrade)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("postgres::Connection")
    }
}

impl Connection {
    /// `statement` prepared with the guest's `params` converted for it.
    async fn prepared(
        &self,
        statement: &str,
        params: Vec<crate::capability::bindings::pg4::ParameterValue>,
    ) -> Result<(tokio_postgres::Statement, Vec<values::Param>), Error> {
        let params = values::params(params)?;
        let stmt = prepare(&self.client, statement, &params).await?;
        Ok((stmt, params))
    }
}

/// One pool per address the app's components open.
#[derive(Default)]
pub struct Pools(Mutex<HashMap<String, Pool>>);

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Pools({n} addresses)")
    }
}

impl Pools {
    /// The pool for `address` (parsed as `config`), made on first use.
    fn pool(&self, address: &str, config: tokio_postgres::Config) -> Result<Pool, Error> {
        let mut pools = self.0.lock().expect("postgres pools lock");
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                // A client comes back from a guest as that guest left it:
                // reset its session (settings, advisory locks, temporary
                // tables) before the next guest gets it.
                recycling_method: RecyclingMethod::Clean,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size())
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        pools.insert(address.to_string(), pool.clone());
        Ok(pool)
    }
}

/// `address` parsed, and checked against the component's grants.
fn checked_config(state: &InstanceState, address: &str) -> Result<tokio_postgres::Config, Error> {
    let config = tokio_postgres::Config::from_str(address)
        .map_err(|e| Error::ConnectionFailed(format!("not a Postgres address: {e}")))?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(Error::ConnectionFailed(
            "sslmode=require: greenmesh up connects to Postgres without TLS (a database on loopback or a private network); use sslmode=disable there, or Spin for TLS".into(),
        ));
    }
    let caps = &state.capabilities;
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        let tokio_postgres::config::Host::Tcp(name) = host else {
            return Err(Error::ConnectionFailed(
                "Unix-socket addresses are not allowed: name a host and port".into(),
            ));
        };
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        if !caps.allowed_hosts.allows("postgres", name, port) {
            tracing::warn!(component = %caps.component_id, destination = %format!("postgres://{name}:{port}"),
                "postgres connection refused: not in allowed_outbound_hosts");
            return Err(Error::ConnectionFailed(format!(
                "postgres://{name}:{port} is not in the component's allowed_outbound_hosts"
            )));
        }
    }
    if config.get_hosts().is_empty() {
        return Err(Error::ConnectionFailed("the address names no host".into()));
    }
    Ok(config)
}

/// `statement` prepared on `client`: with the types the server infers, or,
/// where it cannot infer them (`$1 + $2`, one parameter used as two
/// types), with each parameter typed as the guest passed it.
async fn prepare(
    client: &Object,
    statement: &str,
    params: &[values::Param],
) -> Result<tokio_postgres::Statement, Error> {
    match client.prepare_cached(statement).await {
        Ok(stmt) => Ok(stmt),
        Err(e)
            if e.code()
                .is_some_and(|c| ["42725", "42P18", "42P08"].contains(&c.code())) =>
        {
            let types: Vec<_> = params.iter().map(values::Param::declared_type).collect();
            client
                .prepare_typed_cached(statement, &types)
                .await
                .map_err(query_failed)
        }
        Err(e) => Err(query_failed(e)),
    }
}

fn query_failed(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::QueryFailed(QueryError::DbError(
            crate::capability::bindings::pg4::DbError {
                as_text: e.to_string(),
                severity: db.severity().to_string(),
                code: db.code().code().to_string(),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                extras: Vec::new(),
            },
        )),
        None => {
            // tokio-postgres puts the reason (e.g. a parameter's type) in
            // the source chain.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            Error::QueryFailed(QueryError::Text(text))
        }
    }
}

impl crate::capability::bindings::pg4::Host for InstanceState {}

impl crate::capability::bindings::pg4::HostConnection for InstanceState {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, Error> {
        let config = checked_config(self, &address)?;
        let client = match self.postgres.get(&address) {
            Some(client) => client,
            None => {
                if self.postgres.open() >= MAX_ADDRESSES {
                    return Err(Error::ConnectionFailed(format!(
                        "this instance already holds sessions on {MAX_ADDRESSES} database addresses: close one first"
                    )));
                }
                let pool = self
                    .capabilities
                    .resources
                    .postgres
                    .pool(&address, config)?;
                let client = Arc::new(
                    pool.get()
                        .await
                        .map_err(|e| Error::ConnectionFailed(e.to_string()))?,
                );
                self.postgres.0.retain(|_, w| w.strong_count() > 0);
                self.postgres.0.insert(address, Arc::downgrade(&client));
                client
            }
        };
        self.table
            .push(Connection { client })
            .map_err(|e| Error::Other(e.to_string()))
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<crate::capability::bindings::pg4::ParameterValue>,
    ) -> Result<RowSet, Error> {
        let conn = self
            .table
            .get(&conn)
            .map_err(|e| Error::Other(e.to_string()))?;
        let (stmt, params) = conn.prepared(&statement, params).await?;
        let rows = conn
            .client
            .query(&stmt, &values::refs(&params))
            .await
            .map_err(query_failed)?;
        let columns = stmt
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                data_type: values::data_type(c.type_()),
            })
            .collect();
        let rows = rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| values::decode(row, i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RowSet { columns, rows })
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<crate::capability::bindings::pg4::ParameterValue>,
    ) -> Result<u64, Error> {
        let conn = self
            .table
            .get(&conn)
            .map_err(|e| Error::Other(e.to_string()))?;
        let (stmt, params) = conn.prepared(&statement, params).await?;
        conn.client
            .execute(&stmt, &values::refs(&params))
            .await
            .map_err(query_failed)
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        // The client goes back to its pool with the instance's last
        // connection to its address.
        self.table.delete(conn)?;
        Ok(())
    }
}
