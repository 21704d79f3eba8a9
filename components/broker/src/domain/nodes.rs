//! Nodes in the marketplace, from the broker's side: registering and
//! heartbeating through the marketplace component, what each changes for
//! the queue (a change that could serve parked tasks wakes them), and the
//! node views the API shows.

use crate::db::{int, text, Db};
use crate::domain::energy_claims;
use crate::domain::queue::{self, Change};
use crate::error::ApiError;
use crate::greenmesh::marketplace::registry;
use crate::greenmesh::marketplace::types as mt;
use crate::model::User;
use serde_json::{json, Value};

/// Maps a marketplace error to an HTTP error.
pub fn market_error(e: mt::Error) -> ApiError {
    match e {
        mt::Error::NotFound(m) => ApiError::not_found(m),
        mt::Error::Invalid(m) => ApiError::bad_request(m),
        mt::Error::Conflict(m) => ApiError::conflict(m),
        mt::Error::Storage(m) => ApiError::internal(m),
    }
}

/// A node as the API shows it.
pub fn node_json(n: &mt::Node) -> Value {
    json!({
        "id": n.id,
        "owner": n.owner,
        "name": n.name,
        "region": n.region,
        "public_key": n.public_key,
        "status": match n.status { mt::NodeStatus::Online => "online", mt::NodeStatus::Offline => "offline", mt::NodeStatus::Withdrawn => "withdrawn" },
        "capabilities": n.capabilities.iter().map(|c| json!({
            "name": c.name, "input_types": c.input_types, "output_types": c.output_types,
            "max_input_bytes": c.max_input_bytes, "price": c.price, "sha256": c.sha256,
        })).collect::<Vec<_>>(),
        "capacity": { "cpu_cores": n.capacity.cpu_cores, "memory_mb": n.capacity.memory_mb, "gpu": n.capacity.gpu },
        "energy": {
            "sources": n.energy.sources, "clean_share": n.energy.clean_share, "carbon_intensity": n.energy.carbon_intensity,
            "forecast": n.energy.forecast.iter().map(|p| json!({
                "timestamp": crate::util::iso8601(p.timestamp), "duration": p.duration_min, "value": p.value,
            })).collect::<Vec<_>>(),
        },
        "allowed_tasks": n.allowed_tasks,
        "datasets": n.datasets.iter().map(|d| json!({
            "name": d.name, "features": d.features, "classes": d.classes, "rows": d.rows,
        })).collect::<Vec<_>>(),
        "load": n.load,
        "running_tasks": n.running_tasks,
        "latency_ms": n.latency_ms,
        "registered_at": n.registered_at,
        "last_seen": n.last_seen,
    })
}

/// A reputation score as the API shows it.
pub fn reputation_json(s: &crate::greenmesh::reputation::scores::Score) -> Value {
    json!({
        "value": s.value, "successes": s.successes, "failures": s.failures,
        "timeouts": s.timeouts, "bad_signatures": s.bad_signatures,
        "wrong_results": s.wrong_results,
    })
}

/// Registers (or updates) a node of `user`; the tasks its capabilities
/// could serve are decided again.
pub fn register(
    db: &Db,
    user: &User,
    registration: &mt::Registration,
    power: energy_claims::Power,
) -> Result<mt::Node, ApiError> {
    power.validate()?;
    let mut registration = registration.clone();
    let finding = energy_claims::check(db, &registration.region, power, &mut registration.energy)?;
    let node = registry::register(&user.id, &registration).map_err(market_error)?;
    energy_claims::declare(db, &node.id, power)?;
    energy_claims::record(db, &node.id, finding.as_ref())?;
    crate::domain::events::record(
        db,
        "peer_online",
        Some(&node.id),
        None,
        Some(&user.id),
        json!({ "device_name": node.name, "region": node.region }),
    )?;
    queue::wake(db, &capabilities(&node), Change::Market)?;
    crate::domain::housekeeping(db)?;
    Ok(node)
}

fn capabilities(node: &mt::Node) -> Vec<String> {
    node.capabilities.iter().map(|c| c.name.clone()).collect()
}

/// What a heartbeat changed that could serve parked tasks: the node came
/// back online or freed capacity (`Market`), or its energy report moved
/// (`Energy`).
pub fn change(before: &mt::Node, after: &mt::Node, reported_energy: bool) -> Option<Change> {
    let back = before.status != mt::NodeStatus::Online && after.status == mt::NodeStatus::Online;
    let freed = before.load >= 1.0 && after.load < 1.0;
    if back || freed {
        return Some(Change::Market);
    }
    (reported_energy && energy_changed(&before.energy, &after.energy)).then_some(Change::Energy)
}

fn energy_changed(a: &mt::EnergyState, b: &mt::EnergyState) -> bool {
    a.carbon_intensity != b.carbon_intensity
        || a.clean_share != b.clean_share
        || a.sources != b.sources
        || a.forecast.len() != b.forecast.len()
        || a.forecast.iter().zip(&b.forecast).any(|(x, y)| {
            (x.timestamp, x.duration_min, x.value) != (y.timestamp, y.duration_min, y.value)
        })
}

/// Records a heartbeat of `before` (the node as it was): revokes its
/// interruptible leases whose energy got worse, wakes tasks its change
/// could serve, and runs the queue's housekeeping. Answers the node now.
pub fn heartbeat(db: &Db, before: &mt::Node, beat: &mt::Beat) -> Result<mt::Node, ApiError> {
    let mut beat = beat.clone();
    if let Some(energy) = beat.energy.as_mut() {
        let power = energy_claims::declared(db, &before.id)?;
        let finding = energy_claims::check(db, &before.region, power, energy)?;
        energy_claims::record(db, &before.id, finding.as_ref())?;
    }
    let beat = &beat;
    let node = registry::heartbeat(&before.id, beat).map_err(market_error)?;
    if beat.energy.is_some() {
        crate::domain::interrupt::check(db, &node)?;
    }
    if let Some(change) = change(before, &node, beat.energy.is_some()) {
        queue::wake(db, &capabilities(&node), change)?;
    }
    crate::domain::housekeeping(db)?;
    Ok(node)
}

/// Every node.
pub fn list() -> Result<Vec<Value>, ApiError> {
    use crate::greenmesh::reputation::scores;
    let nodes = registry::list_nodes().map_err(market_error)?;
    // One lookup for all of them: this list is public, so its cost must
    // not grow by a query per registered node.
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let reputations = scores::get_many(&ids, scores::Role::Provider);
    Ok(nodes
        .iter()
        .zip(reputations)
        .map(|(n, score)| {
            let mut v = node_json(n);
            v["reputation"] = reputation_json(&score);
            v
        })
        .collect())
}

/// Runs listed per node on its operator's page.
const RECENT_RUNS: i64 = 20;

/// `owner`'s nodes, each with the runs it served (completed, failed,
/// interrupted), their energy and grams, and the credits earned (the
/// price of each completed run), plus its latest runs; with totals.
pub fn of_owner(db: &Db, owner: &str) -> Result<Value, ApiError> {
    use crate::greenmesh::reputation::scores;
    const RUNS: &str = "c.node_id = ? AND c.status IN ('completed', 'failed', 'interrupted')";
    // A completed run earns the price of the lease that completed the task.
    const EARNED: &str =
        "CASE WHEN c.status = 'completed' AND t.lease_id = c.lease_id THEN t.price END";
    let mut nodes = Vec::new();
    let (mut runs, mut energy, mut earned) = (0i64, 0.0, 0.0);
    for n in registry::list_nodes()
        .map_err(market_error)?
        .iter()
        .filter(|n| n.owner == owner)
    {
        let sums = db.query(
            &format!(
                "SELECT TOTAL(c.status = 'completed'), TOTAL(c.status = 'failed'), TOTAL(c.status = 'interrupted'),
                        TOTAL(c.energy_wh), TOTAL(c.emitted_g), TOTAL({EARNED})
                 FROM broker_carbon c LEFT JOIN broker_tasks t ON t.id = c.task_id WHERE {RUNS}"
            ),
            &[text(&n.id)],
        )?;
        let r = sums.rows.first();
        let f = |i: usize| r.and_then(|r| r.get::<f64>(i)).unwrap_or(0.0);
        let recent = db.query(
            &format!(
                "SELECT c.task_id, c.status, c.energy_wh, c.emitted_g, c.intensity, c.executed_at, {EARNED}
                 FROM broker_carbon c LEFT JOIN broker_tasks t ON t.id = c.task_id WHERE {RUNS}
                 ORDER BY c.executed_at DESC LIMIT ?"
            ),
            &[text(&n.id), int(RECENT_RUNS as u64)],
        )?;
        let mut v = node_json(n);
        v["reputation"] = reputation_json(&scores::get(&n.id, scores::Role::Provider));
        v["served"] = json!({
            "runs": f(0) as i64, "failed_runs": f(1) as i64, "interrupted_runs": f(2) as i64,
            "energy_wh": f(3), "emitted_g": f(4), "credits_earned": f(5),
        });
        v["recent_runs"] = json!(recent
            .rows
            .iter()
            .map(|r| json!({
                "task_id": r.get::<&str>(0), "run": r.get::<&str>(1), "energy_wh": r.get::<f64>(2),
                "emitted_g": r.get::<f64>(3), "intensity_g_per_kwh": r.get::<f64>(4),
                "executed_at": r.get::<i64>(5), "credits": r.get::<f64>(6),
            }))
            .collect::<Vec<_>>());
        runs += f(0) as i64;
        energy += f(3);
        earned += f(5);
        nodes.push(v);
    }
    Ok(json!({
        "nodes": nodes,
        "totals": { "nodes": nodes.len(), "runs": runs, "energy_wh": energy, "credits_earned": earned },
    }))
}

/// A node, with its provider reputation.
pub fn get(db: &Db, node_id: &str) -> Result<Value, ApiError> {
    use crate::greenmesh::reputation::scores;
    let node = registry::get(node_id).map_err(market_error)?;
    let mut v = node_json(&node);
    v["reputation"] = reputation_json(&scores::get(node_id, scores::Role::Provider));
    v["energy_check"] = energy_claims::view(db, node_id)?;
    Ok(v)
}

/// The owner withdraws one capability's offer, or the whole node.
pub fn withdraw(
    db: &Db,
    user: &User,
    node_id: &str,
    capability: Option<&str>,
) -> Result<Value, ApiError> {
    let node = registry::get(node_id).map_err(market_error)?;
    if node.owner != user.id {
        return Err(ApiError::not_found(format!("no node {node_id}")));
    }
    let node = registry::withdraw(node_id, capability).map_err(market_error)?;
    crate::domain::events::record(
        db,
        "offer_withdrawn",
        Some(node_id),
        None,
        Some(&user.id),
        json!({ "capability": capability }),
    )?;
    Ok(node_json(&node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(status: mt::NodeStatus, load: f32, intensity: f32) -> mt::Node {
        mt::Node {
            id: "node-1".into(),
            owner: "u".into(),
            name: "n".into(),
            region: "GB".into(),
            public_key: String::new(),
            capabilities: Vec::new(),
            capacity: mt::Capacity {
                cpu_cores: 1,
                memory_mb: 1,
                gpu: None,
            },
            energy: mt::EnergyState {
                sources: vec![("grid".into(), 1.0)],
                clean_share: 0.0,
                carbon_intensity: intensity,
                forecast: Vec::new(),
            },
            allowed_tasks: Vec::new(),
            datasets: Vec::new(),
            load,
            running_tasks: 0,
            latency_ms: 0.0,
            status,
            registered_at: 0,
            last_seen: 0,
        }
    }

    #[test]
    fn only_changes_that_could_serve_a_parked_task_wake_it() {
        use mt::NodeStatus::{Offline, Online};
        let same = node(Online, 0.5, 100.0);
        assert_eq!(change(&same, &node(Online, 0.2, 100.0), true), None);
        assert_eq!(
            change(&node(Offline, 0.5, 100.0), &same, false),
            Some(Change::Market)
        );
        assert_eq!(
            change(&node(Online, 1.0, 100.0), &same, false),
            Some(Change::Market)
        );
        assert_eq!(
            change(&same, &node(Online, 0.5, 90.0), true),
            Some(Change::Energy)
        );
        // A heartbeat without an energy report changes no energy.
        assert_eq!(change(&same, &node(Online, 0.5, 90.0), false), None);
    }
}

/// Records a node request's signature (valid from `timestamp_ms` within
/// the clock skew either side); answers whether it was its first use. A
/// replayed signature (a captured poll, say) is refused. Expired entries
/// are swept now and then as signatures arrive.
pub fn first_use_of_signature(
    db: &Db,
    signature: &str,
    timestamp_ms: u64,
) -> Result<bool, ApiError> {
    let now = crate::util::now_ms();
    if signature.starts_with('0') {
        db.exec(
            "DELETE FROM broker_seen_signatures WHERE expires_at < ?",
            &[crate::db::int(now)],
        )?;
    }
    let expires_at = timestamp_ms.max(now) + greenmesh_protocol::REQUEST_MAX_SKEW_MS;
    // Hex is case-insensitive to the verifier: one signature, one key.
    let rows = db.query(
        "INSERT OR IGNORE INTO broker_seen_signatures (signature, expires_at) VALUES (?, ?) RETURNING signature",
        &[crate::db::text(signature.to_ascii_lowercase()), crate::db::int(expires_at)],
    )?;
    Ok(!rows.rows.is_empty())
}
