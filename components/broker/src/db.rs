//! The broker's own tables (`broker_*`), their migrations, and small query
//! helpers. Every multi-step change is made safe without transactions
//! (Spin's SQLite API shares one connection between concurrent requests):
//! a compare-and-set statement is the commit point and a `settled` flag on
//! the row says its follow-up effects are still to apply (ADR 0015).

use crate::error::{database, ApiError};
use greenmesh_storage::{Connection, QueryResult, Value};

/// Version 1: the tables as first shipped.
const V1: &[&str] = &[
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
    // Governance: a task's importance and service level (domain/policy.rs).
    "CREATE TABLE IF NOT EXISTS broker_task_policy (
        task_id TEXT PRIMARY KEY, importance TEXT, source TEXT NOT NULL, confidence REAL,
        keyword TEXT, requested_sla TEXT NOT NULL, sla TEXT NOT NULL,
        owner_only INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL)",
    // What a user has contributed (domain/standing.rs), for votes and promotions.
    "CREATE TABLE IF NOT EXISTS broker_user_standing (
        user_id TEXT PRIMARY KEY, donations REAL NOT NULL DEFAULT 0,
        tasks_completed INTEGER NOT NULL DEFAULT 0, tasks_executed INTEGER NOT NULL DEFAULT 0)",
    // Signed permission grants (domain/grants.rs).
    "CREATE TABLE IF NOT EXISTS broker_grants (
        id TEXT PRIMARY KEY, node_id TEXT NOT NULL, user_id TEXT NOT NULL, task_pattern TEXT NOT NULL,
        expires_at INTEGER, issued_at INTEGER NOT NULL, granted_by TEXT NOT NULL,
        signature TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS broker_grants_by_user ON broker_grants (user_id)",
    "CREATE INDEX IF NOT EXISTS broker_grants_by_granter ON broker_grants (granted_by)",
    // Carbon accounting (domain/carbon.rs): the baseline at submission, one row per lease.
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

/// Version 2: one lease lifecycle (leases carry what settling them needs),
/// the fair queue (ready, parked, waiting; fair keys; deadlines) and
/// exactly-once side effects (event keys, completions).
const V2: &[&str] = &[
    // A task in the queue is ready (to be decided), waiting (until
    // `wake_at`) or parked (until the market changes for its capability).
    "ALTER TABLE broker_tasks ADD COLUMN ready INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE broker_tasks ADD COLUMN wake_at INTEGER",
    "ALTER TABLE broker_tasks ADD COLUMN fair_key INTEGER NOT NULL DEFAULT 0",
    // How many times the broker decided the task without leasing it.
    "ALTER TABLE broker_tasks ADD COLUMN decisions INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE broker_tasks ADD COLUMN deadline_at INTEGER",
    // 0 while a broker-made end (cancel, deadline, giving up) still has
    // effects to apply.
    "ALTER TABLE broker_tasks ADD COLUMN settled INTEGER NOT NULL DEFAULT 1",
    "UPDATE broker_tasks SET deadline_at = created_at + 172800000 WHERE deadline_at IS NULL",
    // Every queued-task query has an index of its own, led by the status
    // and readiness it filters on (so the planner prefers it without
    // statistics); the old (status, created_at) would scan every queued task.
    // (The parked index also counts a capability's queue, replacing
    // (status, capability); waiting tasks are few, so only they are indexed
    // by wake time.)
    "DROP INDEX IF EXISTS broker_tasks_by_status",
    "DROP INDEX IF EXISTS broker_tasks_by_capability",
    "CREATE INDEX IF NOT EXISTS broker_tasks_ready ON broker_tasks (status, ready, fair_key)",
    "CREATE INDEX IF NOT EXISTS broker_tasks_waiting ON broker_tasks (status, ready, wake_at) WHERE wake_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS broker_tasks_parked ON broker_tasks (status, ready, capability)",
    "CREATE INDEX IF NOT EXISTS broker_tasks_deadline ON broker_tasks (status, deadline_at)",
    "CREATE INDEX IF NOT EXISTS broker_tasks_owner_queue ON broker_tasks (owner, ready, fair_key) WHERE status = 'queued'",
    // What wakes a parked task: `market` (a node offering its capability
    // registers, changes offers, comes online or frees capacity) or
    // `energy` (also a change in such a node's energy report).
    "ALTER TABLE broker_tasks ADD COLUMN wake_on TEXT",
    "CREATE INDEX IF NOT EXISTS broker_tasks_unsettled ON broker_tasks (updated_at) WHERE settled = 0",
    "CREATE TABLE IF NOT EXISTS broker_queue (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    // Leases: who they are for, where they ran, how they ended.
    "ALTER TABLE broker_leases ADD COLUMN owner TEXT",
    "ALTER TABLE broker_leases ADD COLUMN node_owner TEXT",
    "ALTER TABLE broker_leases ADD COLUMN intensity REAL",
    "ALTER TABLE broker_leases ADD COLUMN clean_share REAL",
    "ALTER TABLE broker_leases ADD COLUMN delivered_at INTEGER",
    "ALTER TABLE broker_leases ADD COLUMN ended_at INTEGER",
    "ALTER TABLE broker_leases ADD COLUMN end_reason TEXT",
    "ALTER TABLE broker_leases ADD COLUMN result TEXT",
    "ALTER TABLE broker_leases ADD COLUMN energy_wh REAL",
    "ALTER TABLE broker_leases ADD COLUMN stop_reported_at INTEGER",
    // What settling the lease still owes: 0 everything (a new lease), 2 the
    // effects of its latest change (its opening is done), 1 nothing; `rev`
    // counts its changes, so a settle only marks the state it applied.
    "ALTER TABLE broker_leases ADD COLUMN settled INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE broker_leases ADD COLUMN rev INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE broker_leases ADD COLUMN sla TEXT",
    "UPDATE broker_leases SET owner = (SELECT t.owner FROM broker_tasks t WHERE t.id = broker_leases.task_id)
     WHERE owner IS NULL",
    "UPDATE broker_leases SET delivered_at = created_at WHERE delivered_at IS NULL AND status != 'offered'",
    "CREATE INDEX IF NOT EXISTS broker_leases_unsettled ON broker_leases (created_at) WHERE settled != 1",
    // One event per effect key: a repeated settle logs nothing twice.
    "ALTER TABLE broker_events ADD COLUMN dedupe TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS broker_events_dedupe ON broker_events (dedupe) WHERE dedupe IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS broker_events_by_task ON broker_events (task_id, id)",
    // A completed lease counts once towards both users' standing: the
    // insert is the effect, the trigger keeps the counters beside it.
    "CREATE TABLE IF NOT EXISTS broker_completions (
        lease_id TEXT PRIMARY KEY, owner TEXT NOT NULL, node_owner TEXT NOT NULL, at INTEGER NOT NULL)",
    "/* sqlite */ CREATE TRIGGER IF NOT EXISTS broker_completions_count AFTER INSERT ON broker_completions BEGIN
        INSERT INTO broker_user_standing (user_id, tasks_completed) VALUES (NEW.owner, 1)
            ON CONFLICT (user_id) DO UPDATE SET tasks_completed = tasks_completed + 1;
        INSERT INTO broker_user_standing (user_id, tasks_executed)
            SELECT NEW.node_owner, 1 WHERE NEW.node_owner != NEW.owner
            ON CONFLICT (user_id) DO UPDATE SET tasks_executed = tasks_executed + 1;
     END",
    "/* postgres */ CREATE OR REPLACE FUNCTION broker_completions_count() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
        INSERT INTO broker_user_standing (user_id, tasks_completed) VALUES (NEW.owner, 1)
            ON CONFLICT (user_id) DO UPDATE SET tasks_completed = broker_user_standing.tasks_completed + 1;
        IF NEW.node_owner IS NOT NULL AND NEW.node_owner != NEW.owner THEN
            INSERT INTO broker_user_standing (user_id, tasks_executed) VALUES (NEW.node_owner, 1)
                ON CONFLICT (user_id) DO UPDATE SET tasks_executed = broker_user_standing.tasks_executed + 1;
        END IF;
        RETURN NEW;
     END $$",
    "/* postgres */ CREATE OR REPLACE TRIGGER broker_completions_count AFTER INSERT ON broker_completions
     FOR EACH ROW EXECUTE FUNCTION broker_completions_count()",
];

/// Version 3: what kernel a task must run.
const V3: &[&str] = &[
    // SHA-256 of a `wasm_execution` task's submitted module: its receipts
    // must carry this kernel hash (NULL for named kernels, whose hash is
    // the one their node advertised).
    "ALTER TABLE broker_tasks ADD COLUMN kernel_sha256 TEXT",
];

/// Version 4: task groups (`min_nodes`, shards, `require_proof`) and the
/// proof bundles of their agreed results.
const V4: &[&str] = &[
    // A group task's members are tasks of their own (each with the usual
    // lease lifecycle) pointing at the group: which shard they compute,
    // and the owner of the node they are leased to (replicas of one shard
    // run on nodes of distinct owners, checked by the leasing statement).
    "ALTER TABLE broker_tasks ADD COLUMN group_id TEXT",
    "ALTER TABLE broker_tasks ADD COLUMN shard INTEGER",
    "ALTER TABLE broker_tasks ADD COLUMN node_owner TEXT",
    "CREATE INDEX IF NOT EXISTS broker_tasks_members ON broker_tasks (group_id, shard) WHERE group_id IS NOT NULL",
    // The group's shape: shards, replicas per shard (and the most a
    // disagreement may grow them to), whether a proof bundle is owed.
    "CREATE TABLE IF NOT EXISTS broker_groups (
        task_id TEXT PRIMARY KEY, shards INTEGER NOT NULL, replicas INTEGER NOT NULL,
        max_replicas INTEGER NOT NULL, proof INTEGER NOT NULL, capability TEXT NOT NULL)",
    // A settled `require_proof` group's bundle, signed by the broker.
    "CREATE TABLE IF NOT EXISTS broker_proofs (
        id TEXT PRIMARY KEY, task_id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL, body TEXT NOT NULL,
        created_at INTEGER NOT NULL)",
];

/// Version 5: spot checks (adaptive replication of deterministic tasks).
const V5: &[&str] = &[
    // A spot check is a task of its own rerunning `check_of` on a node of
    // another owner; the checked task shows how it went (`verification`,
    // JSON).
    "ALTER TABLE broker_tasks ADD COLUMN check_of TEXT",
    "ALTER TABLE broker_tasks ADD COLUMN verification TEXT",
    "CREATE INDEX IF NOT EXISTS broker_tasks_checks ON broker_tasks (check_of) WHERE check_of IS NOT NULL",
    // Each node's record of checked results: agreeing checks since its
    // last mismatch set how often it is checked.
    "CREATE TABLE IF NOT EXISTS broker_node_record (
        node_id TEXT PRIMARY KEY, agreed INTEGER NOT NULL DEFAULT 0,
        mismatched INTEGER NOT NULL DEFAULT 0, checked INTEGER NOT NULL DEFAULT 0)",
    // One row per judged run: the insert is the effect, the trigger keeps
    // the record (once per run, however often a judge repeats).
    "CREATE TABLE IF NOT EXISTS broker_check_outcomes (
        lease_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, agreed INTEGER NOT NULL, at INTEGER NOT NULL)",
    "/* sqlite */ CREATE TRIGGER IF NOT EXISTS broker_check_outcomes_count AFTER INSERT ON broker_check_outcomes BEGIN
        INSERT INTO broker_node_record (node_id, agreed, mismatched, checked)
            VALUES (NEW.node_id, NEW.agreed, 1 - NEW.agreed, 1)
            ON CONFLICT (node_id) DO UPDATE SET
                agreed = CASE WHEN NEW.agreed = 1 THEN agreed + 1 ELSE 0 END,
                mismatched = mismatched + 1 - NEW.agreed, checked = checked + 1;
     END",
    "/* postgres */ CREATE OR REPLACE FUNCTION broker_check_outcomes_count() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
        INSERT INTO broker_node_record (node_id, agreed, mismatched, checked)
            VALUES (NEW.node_id, NEW.agreed, 1 - NEW.agreed, 1)
            ON CONFLICT (node_id) DO UPDATE SET
                agreed = CASE WHEN NEW.agreed = 1 THEN broker_node_record.agreed + 1 ELSE 0 END,
                mismatched = broker_node_record.mismatched + 1 - NEW.agreed,
                checked = broker_node_record.checked + 1;
        RETURN NEW;
     END $$",
    "/* postgres */ CREATE OR REPLACE TRIGGER broker_check_outcomes_count AFTER INSERT ON broker_check_outcomes
     FOR EACH ROW EXECUTE FUNCTION broker_check_outcomes_count()",
];

/// Version 6: federated groups (round r is shard r; its members train on
/// their own rows and are averaged, not compared).
const V6: &[&str] = &["ALTER TABLE broker_groups ADD COLUMN kind TEXT NOT NULL DEFAULT 'replicas'"];

/// Secure aggregation's rosters: one per attempt at a federated round,
/// fixed once (the first insert wins), signed by the broker; `outcome` is
/// the round's decoded totals once its masked sum is taken.
const V7: &[&str] = &["CREATE TABLE broker_rosters (
        group_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        body TEXT NOT NULL,
        outcome TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (group_id, round, attempt)
    )"];

/// Node request signatures seen within the clock-skew window: a second use
/// is a replay (`401`). Rows are dropped once their window has passed.
const V8: &[&str] = &[
    "CREATE TABLE broker_seen_signatures (signature TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
    "CREATE INDEX broker_seen_signatures_expiry ON broker_seen_signatures (expires_at)",
];

/// A requester's recent faults, counted at each submission (`faults`).
const V9: &[&str] =
    &["CREATE INDEX broker_events_by_user ON broker_events (user_id, event_type, at)"];

/// Who may read a blob: each user who uploaded those bytes (blobs are
/// stored once by content). Nodes read a blob while they hold a lease of a
/// task that names it.
const V10: &[&str] = &[
    "CREATE TABLE broker_blob_access (sha256 TEXT NOT NULL, user_id TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (sha256, user_id))",
    "CREATE INDEX broker_blob_access_by_user ON broker_blob_access (user_id)",
    "INSERT OR IGNORE INTO broker_blob_access (sha256, user_id, created_at) SELECT sha256, owner, created_at FROM broker_blobs",
];

/// Identity (ADR 0021): registrations counted per client address (rows
/// older than a day are dropped), and single-use invites (stored as their
/// SHA-256) for networks that register by invite.
const V11: &[&str] = &[
    "CREATE TABLE broker_registrations (address TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX broker_registrations_by_address ON broker_registrations (address, at)",
    "CREATE TABLE broker_invites (code_hash TEXT PRIMARY KEY, note TEXT, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, used_at INTEGER)",
];

/// Energy claims (ADR 0021): regions' grid-intensity signals by calendar
/// half hour, and what each node declared about its power, with its latest
/// implausible-claim flag.
const V12: &[&str] = &[
    "CREATE TABLE broker_region_signals (region TEXT NOT NULL, slot INTEGER NOT NULL, intensity REAL NOT NULL,
        PRIMARY KEY (region, slot))",
    "CREATE TABLE broker_node_power (node_id TEXT PRIMARY KEY, max_watts REAL, own_generation_watts REAL,
        flag TEXT, flagged_at INTEGER)",
];

/// A node's runs, newest first: what its operator's page lists (issue 22).
const V13: &[&str] =
    &["CREATE INDEX broker_carbon_by_node ON broker_carbon (node_id, executed_at)"];

/// Until when a dispatch pass has a queued task to itself, so concurrent
/// passes (on one replica or several) take different tasks rather than
/// all building leases for the same first ones (issue 23).
const V14: &[&str] = &["ALTER TABLE broker_tasks ADD COLUMN claim_until INTEGER"];

/// The coordinator database, schema in place.
pub struct Db {
    conn: std::rc::Rc<Connection>,
}

impl Db {
    pub fn open() -> Result<Self, ApiError> {
        Ok(Self {
            conn: greenmesh_storage::migrated(
                "broker",
                &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14],
            )
            .map_err(database)?,
        })
    }

    /// Whether the tables are in Postgres (a few statements differ there).
    pub fn is_postgres(&self) -> bool {
        self.conn.is_postgres()
    }

    pub fn query(&self, sql: &str, params: &[Value]) -> Result<QueryResult, ApiError> {
        self.conn.execute(sql, params).map_err(database)
    }

    pub fn exec(&self, sql: &str, params: &[Value]) -> Result<(), ApiError> {
        self.query(sql, params).map(|_| ())
    }

    /// `check_and_write` one caller at a time per `scope` and `key`, across
    /// replicas (`greenmesh_storage::exclusive`): for a count read and a
    /// write that must stay within it.
    pub fn exclusive<T>(
        &self,
        scope: &str,
        key: &str,
        check_and_write: impl FnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        greenmesh_storage::exclusive(&self.conn, scope, key, || Ok(check_and_write()))
            .map_err(database)?
    }

    /// The first column of the first row as text, if there is one.
    pub fn text_of(&self, sql: &str, params: &[Value]) -> Result<Option<String>, ApiError> {
        let rows = self.query(sql, params)?;
        Ok(rows
            .rows
            .first()
            .and_then(|r| r.get::<&str>(0))
            .map(str::to_string))
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

/// Real parameter.
pub fn real(x: f64) -> Value {
    Value::Real(x)
}

/// Optional text parameter.
pub fn opt_text(s: Option<impl Into<String>>) -> Value {
    s.map(|s| Value::Text(s.into())).unwrap_or(Value::Null)
}
