//! The `marketplace_*` tables: nodes (one row each, capabilities as JSON)
//! and an offers index (node × capability, with the fields search filters
//! and sorts on) so a search touches only the rows it returns.

use crate::greenmesh::marketplace::types::{
    Beat, Error, Node, NodeStatus, Registration, Requirements,
};
use greenmesh_storage::{Connection, Value};

/// A node silent for this long is offline, unless the broker's
/// `liveness_window_ms` (passed through `registry.configure`) says otherwise.
pub const LIVENESS_WINDOW_MS: u64 = 60_000;

thread_local! {
    /// The liveness window the broker configured for this instance.
    static CONFIGURED_WINDOW: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Keeps the settings the broker passed (`liveness_window_ms`; others are
/// ignored) for this instance's life (one request).
pub fn configure(settings: &[(String, String)]) {
    greenmesh_storage::configure(settings);
    for (name, value) in settings {
        if name == "liveness_window_ms" {
            if let Ok(ms) = value.trim().parse() {
                CONFIGURED_WINDOW.with(|w| w.set(Some(ms)));
            }
        }
    }
}

/// Ineligible nodes described in a search result.
pub const DECLINED_SAMPLE: u32 = 20;

/// Eligible offers are counted up to this many.
pub const ELIGIBLE_COUNT_CAP: u32 = 256;

/// Offer rows examined for that sample (offline ones first): bounds the
/// cost of explaining a decision however many nodes exist.
pub const DECLINED_WINDOW: u32 = 200;

fn liveness_window_ms() -> u64 {
    CONFIGURED_WINDOW
        .with(|w| w.get())
        .or_else(|| {
            // A manifest that still lets dependencies inherit variables.
            spin_sdk::variables::get("liveness_window_ms")
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(LIVENESS_WINDOW_MS)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS marketplace_nodes (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS marketplace_nodes_by_liveness ON marketplace_nodes (status, last_seen);
CREATE INDEX IF NOT EXISTS marketplace_nodes_by_owner ON marketplace_nodes (owner, last_seen);
DROP TABLE IF EXISTS marketplace_offers;
CREATE TABLE IF NOT EXISTS marketplace_offers_v2 (
    node_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    clean_share REAL NOT NULL,
    carbon_intensity REAL NOT NULL,
    capability TEXT NOT NULL,
    price REAL NOT NULL,
    status TEXT NOT NULL,
    load REAL NOT NULL,
    gpu INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    max_input_bytes INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    PRIMARY KEY (node_id, capability)
);
CREATE INDEX IF NOT EXISTS marketplace_offers_v2_ranked ON marketplace_offers_v2 (capability, status, price, load, node_id);
CREATE TABLE IF NOT EXISTS marketplace_datasets (
    node_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (node_id, name)
);
CREATE INDEX IF NOT EXISTS marketplace_datasets_by_name ON marketplace_datasets (name, node_id);
";

/// The conditions under which an offer row can serve a search, over the
/// numbered parameters of [`Store::filter_params`]: ?1 capability,
/// ?2 require_gpu, ?3 max_memory_mb, ?4 input_bytes, ?5 granted nodes (a JSON
/// array), ?6 owner ('' for any), ?7 min_clean_share, ?8 dataset ('' for
/// none).
const ELIGIBLE: &str = "o.status = 'online'
    AND (o.allowed = 1 OR o.node_id IN (SELECT value FROM json_each(?5)))
    AND (?2 = 0 OR o.gpu = 1) AND o.memory_mb >= ?3 AND o.max_input_bytes >= ?4 AND o.load < 1.0
    AND (?6 = '' OR o.owner = ?6) AND o.clean_share >= ?7
    AND (?8 = '' OR EXISTS (SELECT 1 FROM marketplace_datasets d WHERE d.name = ?8 AND d.node_id = o.node_id))";

/// Milliseconds since the Unix epoch, from the WASI wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn storage(e: impl std::fmt::Debug) -> Error {
    Error::Storage(format!("{e:?}"))
}

fn status_name(s: NodeStatus) -> &'static str {
    match s {
        NodeStatus::Online => "online",
        NodeStatus::Offline => "offline",
        NodeStatus::Withdrawn => "withdrawn",
    }
}

fn int(i: u64) -> Value {
    Value::Integer(i as i64)
}

/// A connection to the coordinator database with the schema in place.
pub struct Store {
    db: std::rc::Rc<Connection>,
}

impl Store {
    pub fn open() -> Result<Self, Error> {
        let schema: Vec<&str> = SCHEMA
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Self {
            db: greenmesh_storage::connection(&schema).map_err(storage)?,
        })
    }

    fn save(&self, node: &Node) -> Result<(), Error> {
        let body = serde_json::to_string(node).map_err(storage)?;
        self.db
            .execute(
                "INSERT INTO marketplace_nodes (id, owner, public_key, status, last_seen, body)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                     last_seen = excluded.last_seen, body = excluded.body",
                &[
                    Value::Text(node.id.clone()),
                    Value::Text(node.owner.clone()),
                    Value::Text(node.public_key.clone()),
                    Value::Text(status_name(node.status).into()),
                    int(node.last_seen),
                    Value::Text(body),
                ],
            )
            .map_err(storage)?;
        // Each offer is an upsert and only capabilities the node no longer
        // lists are deleted: two saves of one node may run at once (a
        // heartbeat and a re-registration), and neither may fail on the
        // other's rows or leave the node without its offers.
        for c in &node.capabilities {
            let allowed = node.allowed_tasks.iter().any(|t| t == "*" || *t == c.name);
            self.db
                .execute(
                    "INSERT INTO marketplace_offers_v2 (node_id, owner, clean_share, carbon_intensity, capability,
                         price, status, load, gpu, memory_mb, max_input_bytes, allowed)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (node_id, capability) DO UPDATE SET owner = excluded.owner,
                         clean_share = excluded.clean_share, carbon_intensity = excluded.carbon_intensity,
                         price = excluded.price, status = excluded.status, load = excluded.load,
                         gpu = excluded.gpu, memory_mb = excluded.memory_mb,
                         max_input_bytes = excluded.max_input_bytes, allowed = excluded.allowed",
                    &[
                        Value::Text(node.id.clone()),
                        Value::Text(node.owner.clone()),
                        Value::Real(node.energy.clean_share as f64),
                        Value::Real(node.energy.carbon_intensity as f64),
                        Value::Text(c.name.clone()),
                        Value::Real(c.price),
                        Value::Text(status_name(node.status).into()),
                        Value::Real(node.load as f64),
                        int(node.capacity.gpu.is_some() as u64),
                        int(node.capacity.memory_mb),
                        int(c.max_input_bytes),
                        int(allowed as u64),
                    ],
                )
                .map_err(storage)?;
        }
        // The datasets it holds, for search (upserts and a delete of the
        // rest, like the offers).
        for d in &node.datasets {
            self.db
                .execute(
                    "INSERT OR IGNORE INTO marketplace_datasets (node_id, name) VALUES (?, ?)",
                    &[Value::Text(node.id.clone()), Value::Text(d.name.clone())],
                )
                .map_err(storage)?;
        }
        let held: Vec<&str> = node.datasets.iter().map(|d| d.name.as_str()).collect();
        self.db
            .execute(
                "DELETE FROM marketplace_datasets WHERE node_id = ?
                   AND name NOT IN (SELECT value FROM json_each(?))",
                &[
                    Value::Text(node.id.clone()),
                    Value::Text(serde_json::to_string(&held).map_err(storage)?),
                ],
            )
            .map_err(storage)?;
        let names: Vec<&str> = node.capabilities.iter().map(|c| c.name.as_str()).collect();
        self.db
            .execute(
                "DELETE FROM marketplace_offers_v2 WHERE node_id = ?
                   AND capability NOT IN (SELECT value FROM json_each(?))",
                &[
                    Value::Text(node.id.clone()),
                    Value::Text(serde_json::to_string(&names).map_err(storage)?),
                ],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn load(&self, sql: &str, params: &[Value]) -> Result<Vec<Node>, Error> {
        let rows = self.db.execute(sql, params).map_err(storage)?;
        rows.rows
            .iter()
            .map(|row| {
                let body: &str = row
                    .get(0)
                    .ok_or_else(|| Error::Storage("missing body".into()))?;
                let status: &str = row.get(1).unwrap_or("offline");
                let mut value: serde_json::Value = serde_json::from_str(body).map_err(storage)?;
                // Nodes stored before datasets existed hold none.
                if value.get("datasets").is_none() {
                    value["datasets"] = serde_json::json!([]);
                }
                let mut node: Node = serde_json::from_value(value).map_err(storage)?;
                node.status = match status {
                    "online" => NodeStatus::Online,
                    "withdrawn" => NodeStatus::Withdrawn,
                    _ => NodeStatus::Offline,
                };
                Ok(node)
            })
            .collect()
    }

    /// Registers a node, or re-registers the same key for the same owner.
    pub fn register(&self, owner: &str, r: Registration, now: u64) -> Result<Node, Error> {
        let id = format!("node-{}", &r.public_key[..16].to_ascii_lowercase());
        let existing = self.load(
            "SELECT body, status FROM marketplace_nodes WHERE public_key = ? OR id = ?",
            &[Value::Text(r.public_key.clone()), Value::Text(id.clone())],
        )?;
        let registered_at = match existing.first() {
            Some(n) if n.owner != owner => {
                return Err(Error::Conflict(format!(
                    "public key already registered by another user as {}",
                    n.id
                )))
            }
            Some(n) => n.registered_at,
            None => now,
        };
        let node = Node {
            id,
            owner: owner.to_string(),
            name: r.name,
            region: r.region,
            public_key: r.public_key.to_ascii_lowercase(),
            capabilities: r.capabilities,
            capacity: r.capacity,
            energy: r.energy,
            allowed_tasks: r.allowed_tasks,
            datasets: r.datasets,
            load: 0.0,
            running_tasks: 0,
            latency_ms: 0.0,
            status: NodeStatus::Online,
            registered_at,
            last_seen: now,
        };
        self.save(&node)?;
        Ok(node)
    }

    pub fn get(&self, id: &str) -> Result<Node, Error> {
        self.load(
            "SELECT body, status FROM marketplace_nodes WHERE id = ?",
            &[Value::Text(id.into())],
        )?
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(format!("no node {id}")))
    }

    /// Records a heartbeat: liveness, load and (if reported) energy, each
    /// written in place by one statement, so a heartbeat racing another, or
    /// a re-registration, neither fails nor undoes the other's change.
    pub fn heartbeat(&self, id: &str, beat: Beat, now: u64) -> Result<Node, Error> {
        let energy = match &beat.energy {
            Some(e) => Value::Text(serde_json::to_string(e).map_err(storage)?),
            None => Value::Null,
        };
        let updated = self
            .db
            .execute(
                "UPDATE marketplace_nodes SET status = 'online', last_seen = ?1,
                     body = json_set(body, '$.last_seen', ?7, '$.load', ?2, '$.running_tasks', ?3,
                         '$.latency_ms', COALESCE(?4, json_extract(body, '$.latency_ms')),
                         '$.energy', COALESCE(json(?5), json_extract(body, '$.energy')))
                 WHERE id = ?6 AND status != 'withdrawn' RETURNING id",
                &[
                    int(now),
                    Value::Real(beat.load as f64),
                    int(beat.running_tasks as u64),
                    beat.latency_ms
                        .map(|l| Value::Real(l as f64))
                        .unwrap_or(Value::Null),
                    energy,
                    Value::Text(id.to_string()),
                    // `now` again: a column and a JSON value are two
                    // types to Postgres, so two parameters.
                    int(now),
                ],
            )
            .map_err(storage)?;
        if updated.rows.is_empty() {
            let node = self.get(id)?;
            return Err(Error::Conflict(format!(
                "node {} was withdrawn; register again",
                node.id
            )));
        }
        let node = self.get(id)?;
        self.db
            .execute(
                "UPDATE marketplace_offers_v2 SET status = 'online', load = ?, clean_share = ?, carbon_intensity = ?
                 WHERE node_id = ?",
                &[
                    Value::Real(node.load as f64),
                    Value::Real(node.energy.clean_share as f64),
                    Value::Real(node.energy.carbon_intensity as f64),
                    Value::Text(id.to_string()),
                ],
            )
            .map_err(storage)?;
        Ok(node)
    }

    pub fn withdraw(&self, id: &str, capability: Option<&str>) -> Result<Node, Error> {
        let mut node = self.get(id)?;
        match capability {
            Some(name) => {
                let before = node.capabilities.len();
                node.capabilities.retain(|c| c.name != name);
                if node.capabilities.len() == before {
                    return Err(Error::NotFound(format!("node {id} does not offer {name}")));
                }
            }
            None => node.status = NodeStatus::Withdrawn,
        }
        self.save(&node)?;
        Ok(node)
    }

    pub fn list(&self) -> Result<Vec<Node>, Error> {
        self.load(
            "SELECT body, status FROM marketplace_nodes ORDER BY last_seen DESC",
            &[],
        )
    }

    fn filter_params(req: &Requirements) -> Vec<Value> {
        vec![
            Value::Text(req.capability.clone()),
            int(req.require_gpu as u64),
            int(req.max_memory_mb),
            int(req.input_bytes),
            Value::Text(serde_json::to_string(&req.granted_nodes).unwrap_or_else(|_| "[]".into())),
            Value::Text(req.owner.clone().unwrap_or_default()),
            Value::Real(req.min_clean_share as f64),
            Value::Text(req.dataset.clone().unwrap_or_default()),
        ]
    }

    /// The cheapest, least-loaded eligible nodes for `req` (at most `req.limit`).
    pub fn eligible(&self, req: &Requirements) -> Result<Vec<Node>, Error> {
        let mut params = Self::filter_params(req);
        params.push(int(req.limit.max(1) as u64));
        self.load(
            &format!(
                "SELECT n.body, n.status FROM marketplace_offers_v2 o JOIN marketplace_nodes n ON n.id = o.node_id
                 WHERE o.capability = ?1 AND {ELIGIBLE} ORDER BY o.price, o.load, o.node_id LIMIT ?9"
            ),
            &params,
        )
    }

    /// How many nodes could serve `req`, counted up to [`ELIGIBLE_COUNT_CAP`].
    pub fn eligible_count(&self, req: &Requirements) -> Result<u32, Error> {
        let mut params = Self::filter_params(req);
        params.push(int(ELIGIBLE_COUNT_CAP as u64));
        let rows = self
            .db
            .execute(
                &format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM marketplace_offers_v2 o
                     WHERE o.capability = ?1 AND {ELIGIBLE} LIMIT ?9)"
                ),
                &params,
            )
            .map_err(storage)?;
        Ok(rows.rows.first().and_then(|r| r.get::<i64>(0)).unwrap_or(0) as u32)
    }

    /// A sample of nodes listing the capability that cannot serve `req`,
    /// found among the first [`DECLINED_WINDOW`] offer rows (offline first),
    /// and how many more ineligible ones that window held.
    pub fn ineligible(&self, req: &Requirements) -> Result<(Vec<Node>, u32), Error> {
        let mut params = Self::filter_params(req);
        params.push(int(DECLINED_WINDOW as u64));
        // Two index range scans, each bounded: nodes not online, then the
        // cheapest online ones (whose other limits may still rule them out).
        let rows = self.load(
            &format!(
                "SELECT n.body, n.status FROM (
                     SELECT * FROM (SELECT * FROM marketplace_offers_v2
                                    WHERE capability = ?1 AND status IN ('offline', 'withdrawn') LIMIT ?9)
                     UNION ALL
                     SELECT * FROM (SELECT * FROM marketplace_offers_v2
                                    WHERE capability = ?1 AND status = 'online' ORDER BY price LIMIT ?9)
                 ) o JOIN marketplace_nodes n ON n.id = o.node_id
                 WHERE NOT ({ELIGIBLE})"
            ),
            &params,
        )?;
        let total = rows.len() as u32;
        let sample = rows.into_iter().take(DECLINED_SAMPLE as usize).collect();
        Ok((sample, total))
    }

    /// Where `owner`'s tasks would run at home: their most recently seen
    /// online node's intensity, else the mean over up to 1,000 recently
    /// seen online nodes (one intensity per node).
    pub fn home_intensity(&self, owner: &str) -> Result<(f32, String), Error> {
        let own = self.load(
            "SELECT body, status FROM marketplace_nodes WHERE owner = ? AND status = 'online'
             ORDER BY last_seen DESC LIMIT 1",
            &[Value::Text(owner.to_string())],
        )?;
        if let Some(node) = own.first() {
            return Ok((
                node.energy.carbon_intensity,
                format!("own node {}", node.id),
            ));
        }
        let rows = self
            .db
            .execute(
                "SELECT AVG(i), COUNT(*) FROM (SELECT MAX(o.carbon_intensity) AS i FROM
                     (SELECT id FROM marketplace_nodes WHERE status = 'online' ORDER BY last_seen DESC LIMIT 1000) n
                     JOIN marketplace_offers_v2 o ON o.node_id = n.id GROUP BY n.id)",
                &[],
            )
            .map_err(storage)?;
        let row = rows.rows.first();
        let count = row.and_then(|r| r.get::<i64>(1)).unwrap_or(0);
        let mean = row.and_then(|r| r.get::<f64>(0)).unwrap_or(0.0) as f32;
        if count == 0 {
            return Err(Error::NotFound("no online node reports its grid".into()));
        }
        Ok((mean, format!("network average of {count} online nodes")))
    }

    /// [`Store::expire_silent`], at most once per instance (one request may
    /// search many times; liveness is measured in seconds).
    pub fn expire_silent_once(&self, now: u64) -> Result<(), Error> {
        thread_local! {
            static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if DONE.with(|d| d.replace(true)) {
            return Ok(());
        }
        self.expire_silent(now)
    }

    /// Marks nodes silent for longer than the liveness window offline.
    pub fn expire_silent(&self, now: u64) -> Result<(), Error> {
        let cutoff = int(now.saturating_sub(liveness_window_ms()));
        if self.db.is_postgres() {
            // One round trip, both tables in one statement (it runs on
            // every request, and almost always finds no one).
            self.db
                .execute(
                    "WITH gone AS (UPDATE marketplace_nodes SET status = 'offline'
                                   WHERE status = 'online' AND last_seen < ? RETURNING id)
                     UPDATE marketplace_offers_v2 SET status = 'offline' WHERE node_id IN (SELECT id FROM gone)",
                    &[cutoff],
                )
                .map_err(storage)?;
            return Ok(());
        }
        self.db
            .execute(
                "UPDATE marketplace_offers_v2 SET status = 'offline' WHERE node_id IN
                 (SELECT id FROM marketplace_nodes WHERE status = 'online' AND last_seen < ?)",
                std::slice::from_ref(&cutoff),
            )
            .map_err(storage)?;
        self.db
            .execute(
                "UPDATE marketplace_nodes SET status = 'offline' WHERE status = 'online' AND last_seen < ?",
                &[cutoff],
            )
            .map_err(storage)?;
        Ok(())
    }
}
