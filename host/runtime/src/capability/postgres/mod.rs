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
//! TLS by the address's `sslmode`, as libpq reads it, up to `verify-full`
//! ([`tls`]): rustls, the public CAs plus a private CA the host names.

// The error type is the WIT's, handed to the guest as it is.
#![allow(clippy::result_large_err)]

mod tls;
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

/// Distinct addresses (pools) the whole app may open: each keeps its idle
/// clients, so a component cycling through new address strings would
/// otherwise leave a server connection behind for each.
pub const MAX_POOLS: usize = 8;

/// The host's settings for `spin:postgres`, read when the app loads from
/// its environment (`GREENMESH_POSTGRES_POOL_SIZE`,
/// `GREENMESH_POSTGRES_CA_CERT`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub pool_size: usize,
    /// A private CA's certificates, trusted beside the public roots.
    pub private_ca: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pool_size: POOL_SIZE,
            private_ca: Vec::new(),
        }
    }
}

impl Settings {
    /// From `env` (the process environment, or a test's map); a CA file
    /// that cannot be read, or holds no certificate, is an error.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let pool_size = match env("GREENMESH_POSTGRES_POOL_SIZE") {
            None => POOL_SIZE,
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "GREENMESH_POSTGRES_POOL_SIZE={v}: must be a whole number above 0"
                    )
                })?,
        };
        let private_ca = match env(tls::CA_CERT_VARIABLE) {
            Some(path) if !path.trim().is_empty() => {
                tls::read_private_ca(&path).map_err(anyhow::Error::msg)?
            }
            _ => Vec::new(),
        };
        Ok(Self {
            pool_size,
            private_ca,
        })
    }
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
pub struct Pools {
    pools: Mutex<HashMap<String, Pool>>,
    settings: Settings,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.pools.lock().map(|m| m.len()).unwrap_or(0);
        write!(f, "Pools({n} addresses)")
    }
}

impl Pools {
    /// No pools yet; each made as `settings` say.
    pub fn new(settings: Settings) -> Self {
        Self {
            pools: Mutex::default(),
            settings,
        }
    }

    /// The pool for `address` (parsed as `config`, its certificates checked
    /// as `verify` says), made on first use.
    fn pool(
        &self,
        address: &str,
        config: tokio_postgres::Config,
        verify: tls::Verify,
    ) -> Result<Pool, Error> {
        let mut pools = self.pools.lock().expect("postgres pools lock");
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        if pools.len() >= MAX_POOLS {
            return Err(Error::ConnectionFailed(format!(
                "the app already has pools for {MAX_POOLS} database addresses; use one of them"
            )));
        }
        let connector =
            tls::connector(verify, &self.settings.private_ca).map_err(Error::ConnectionFailed)?;
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                // A client comes back from a guest as that guest left it:
                // reset its session (settings, advisory locks, temporary
                // tables) before the next guest gets it.
                recycling_method: RecyclingMethod::Clean,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.settings.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        pools.insert(address.to_string(), pool.clone());
        Ok(pool)
    }
}

/// `address` parsed, with how its certificate is checked, and checked
/// against the component's grants.
fn checked_config(
    state: &InstanceState,
    address: &str,
) -> Result<(tokio_postgres::Config, tls::Verify), Error> {
    let private_ca = !state
        .capabilities
        .resources
        .postgres
        .settings
        .private_ca
        .is_empty();
    let (address, verify) = tls::sslmode(address, private_ca).map_err(Error::ConnectionFailed)?;
    let config = tokio_postgres::Config::from_str(&address)
        .map_err(|e| Error::ConnectionFailed(format!("not a Postgres address: {e}")))?;
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
    // A `hostaddr` is where the connection goes (the host name then only
    // names the server for TLS): each must be granted too, or a grant for
    // one name would reach any address.
    for (i, ip) in config.get_hostaddrs().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        if !caps.allowed_hosts.allows("postgres", &ip.to_string(), port) {
            tracing::warn!(component = %caps.component_id, destination = %format!("postgres://{ip}:{port}"),
                "postgres connection refused: hostaddr not in allowed_outbound_hosts");
            return Err(Error::ConnectionFailed(format!(
                "hostaddr {ip} (postgres://{ip}:{port}) is not in the component's allowed_outbound_hosts"
            )));
        }
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err(Error::ConnectionFailed("the address names no host".into()));
    }
    Ok((config, verify))
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

/// Why no client could be had, with the server's or TLS's reason (the
/// pool's own message only says that creating one failed).
fn connection_failed(e: deadpool_postgres::PoolError) -> Error {
    let text = match &e {
        deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => chain(e),
        },
        other => chain(other),
    };
    Error::ConnectionFailed(text)
}

/// `e` and its sources, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
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
        // tokio-postgres puts the reason (e.g. a parameter's type) in the
        // source chain.
        None => Error::QueryFailed(QueryError::Text(chain(&e))),
    }
}

impl crate::capability::bindings::pg4::Host for InstanceState {}

impl crate::capability::bindings::pg4::HostConnection for InstanceState {
    async fn open(&mut self, address: String) -> Result<Resource<Connection>, Error> {
        let (config, verify) = checked_config(self, &address)?;
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
                    .pool(&address, config, verify)?;
                let client = Arc::new(pool.get().await.map_err(connection_failed)?);
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
