//! The broker's own tables (`broker_*`) and small query helpers.

use crate::api::{storage, ApiError};
use spin_sdk::sqlite::{Connection, QueryResult, Value};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS broker_users (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
        public_key TEXT, created_at INTEGER NOT NULL,
        window_start INTEGER NOT NULL DEFAULT 0, window_count INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS broker_tasks (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, task_type TEXT NOT NULL, capability TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT, body TEXT NOT NULL, input_sha256 TEXT NOT NULL,
        input_bytes INTEGER NOT NULL, max_price REAL NOT NULL, node_id TEXT, lease_id TEXT,
        price REAL, decision TEXT, result TEXT, attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS broker_tasks_by_status ON broker_tasks (status, created_at)",
    "CREATE INDEX IF NOT EXISTS broker_tasks_by_owner ON broker_tasks (owner, created_at)",
    "CREATE INDEX IF NOT EXISTS broker_tasks_by_capability ON broker_tasks (status, capability)",
    "CREATE TABLE IF NOT EXISTS broker_leases (
        id TEXT PRIMARY KEY, task_id TEXT NOT NULL, node_id TEXT NOT NULL, status TEXT NOT NULL,
        body TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS broker_leases_by_node ON broker_leases (node_id, status)",
    "CREATE INDEX IF NOT EXISTS broker_leases_by_expiry ON broker_leases (status, expires_at)",
    "CREATE INDEX IF NOT EXISTS broker_leases_by_task ON broker_leases (task_id)",
    "CREATE TABLE IF NOT EXISTS broker_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, event_type TEXT NOT NULL, node_id TEXT,
        task_id TEXT, user_id TEXT, data TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS broker_keys (name TEXT PRIMARY KEY, seed_hex TEXT NOT NULL)",
    // Governance: a task's importance and service level (see policy.rs).
    "CREATE TABLE IF NOT EXISTS broker_task_policy (
        task_id TEXT PRIMARY KEY, importance TEXT, source TEXT NOT NULL, confidence REAL,
        keyword TEXT, requested_sla TEXT NOT NULL, sla TEXT NOT NULL,
        owner_only INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL)",
    // What a user has contributed (standing.rs), for votes and promotions.
    "CREATE TABLE IF NOT EXISTS broker_user_standing (
        user_id TEXT PRIMARY KEY, donations REAL NOT NULL DEFAULT 0,
        tasks_completed INTEGER NOT NULL DEFAULT 0, tasks_executed INTEGER NOT NULL DEFAULT 0)",
    // Signed permission grants (grants.rs).
    "CREATE TABLE IF NOT EXISTS broker_grants (
        id TEXT PRIMARY KEY, node_id TEXT NOT NULL, user_id TEXT NOT NULL, task_pattern TEXT NOT NULL,
        expires_at INTEGER, issued_at INTEGER NOT NULL, granted_by TEXT NOT NULL,
        signature TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS broker_grants_by_user ON broker_grants (user_id)",
    "CREATE INDEX IF NOT EXISTS broker_grants_by_granter ON broker_grants (granted_by)",
    // Carbon accounting (carbon.rs): the baseline at submission, one row per lease.
    "CREATE TABLE IF NOT EXISTS broker_task_baseline (
        task_id TEXT PRIMARY KEY, intensity REAL, source TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS broker_carbon (
        lease_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, user_id TEXT NOT NULL, node_id TEXT NOT NULL,
        delegated INTEGER NOT NULL, intensity REAL NOT NULL, clean_share REAL NOT NULL, baseline_intensity REAL, baseline_source TEXT,
        leased_at INTEGER NOT NULL, deferral_ms INTEGER NOT NULL, status TEXT NOT NULL,
        energy_wh REAL, emitted_g REAL, saved_g REAL, clean_wh REAL, dirty_wh REAL, executed_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS broker_carbon_by_time ON broker_carbon (status, executed_at)",
    "CREATE INDEX IF NOT EXISTS broker_carbon_by_user ON broker_carbon (user_id, status, executed_at)",
    "CREATE TABLE IF NOT EXISTS broker_blobs (
        sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, bytes BLOB NOT NULL,
        owner TEXT NOT NULL, created_at INTEGER NOT NULL)",
];

/// The coordinator database, schema in place.
pub struct Db {
    conn: std::rc::Rc<Connection>,
}

impl Db {
    pub fn open() -> Result<Self, ApiError> {
        Ok(Self {
            conn: greenmesh_storage::connection(SCHEMA).map_err(storage)?,
        })
    }

    pub fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, ApiError> {
        self.conn.execute(sql, params).map_err(storage)
    }

    pub fn exec(&self, sql: &str, params: &[Value]) -> Result<(), ApiError> {
        self.query(sql, params).map(|_| ())
    }
}

/// Text parameter.
pub fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// Integer parameter.
pub fn int(i: u64) -> Value {
    Value::Integer(i as i64)
}

/// Optional text parameter.
pub fn opt_text(s: Option<impl Into<String>>) -> Value {
    s.map(|s| Value::Text(s.into())).unwrap_or(Value::Null)
}
