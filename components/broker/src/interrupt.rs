//! Interruptible SLAs (normal, eco, solar_only, wind_only): when a node's
//! energy gets worse while it holds such a lease, the lease is revoked and
//! the task re-queued, to start again from scratch on a cleaner slot or node
//! (no kernel has checkpoints). The attempt is given back; the node's
//! receipt for the revoked lease is refused with 410 `lease_interrupted`.
//!
//! "Worse" means: the grid intensity rose by more than [`WORSE_BY`] over
//! what it was when the lease was made (normal); the clean share fell under
//! the eco threshold (eco); the source fell under half the mix
//! (solar_only / wind_only).

use crate::api::ApiError;
use crate::db::{int, text, Db};
use crate::greenmesh::marketplace::types::Node;
use serde_json::json;

/// Relative rise in intensity that interrupts a normal-SLA task.
pub const WORSE_BY: f32 = 0.25;

/// Why a lease held under `sla`, made at `leased_intensity`, should stop
/// given the node's energy now; `None` to keep running.
pub fn reason(sla: &str, leased_intensity: f32, node: &Node) -> Option<String> {
    if !crate::schedule::interruptible(sla) {
        return None;
    }
    let e = &node.energy;
    match sla {
        "normal" if e.carbon_intensity > leased_intensity * (1.0 + WORSE_BY) => Some(format!(
            "grid intensity rose from {leased_intensity:.0} to {:.0} gCO2/kWh",
            e.carbon_intensity
        )),
        "eco" if e.clean_share < crate::policy::eco_min_clean_share() => Some(format!(
            "clean share fell to {:.0} %",
            e.clean_share * 100.0
        )),
        "solar_only" | "wind_only" => {
            let source = crate::schedule::own_source(sla)?;
            (!crate::schedule::has_source(e, source))
                .then(|| format!("{source} fell under half of the mix"))
        }
        _ => None,
    }
}

/// Revokes `node`'s interruptible leases whose energy got worse.
pub fn check(db: &Db, node: &Node) -> Result<(), ApiError> {
    let rows = db.query(
        "SELECT l.id, l.task_id, p.sla, c.intensity FROM broker_leases l
         JOIN broker_task_policy p ON p.task_id = l.task_id
         LEFT JOIN broker_carbon c ON c.lease_id = l.id
         WHERE l.node_id = ? AND l.status IN ('offered', 'delivered')
           AND p.sla IN ('normal', 'eco', 'solar_only', 'wind_only')",
        &[text(node.id.clone())],
    )?;
    for r in &rows.rows {
        let (lease_id, task_id, sla) = (
            r.get::<&str>(0).unwrap_or_default(),
            r.get::<&str>(1).unwrap_or_default(),
            r.get::<&str>(2).unwrap_or_default(),
        );
        let leased = r.get::<f64>(3).unwrap_or(f64::MAX) as f32;
        let Some(why) = reason(sla, leased, node) else {
            continue;
        };
        db.exec(
            "UPDATE broker_leases SET status = 'interrupted' WHERE id = ? AND status IN ('offered', 'delivered')",
            &[text(lease_id)],
        )?;
        db.exec(
            "UPDATE broker_tasks SET status = 'queued', node_id = NULL, lease_id = NULL,
                 attempts = MAX(attempts - 1, 0), reason = ?, updated_at = ? WHERE id = ? AND lease_id = ?",
            &[
                text(format!("interrupted on {} ({why}); re-queued to start again", node.id)),
                int(crate::util::now_ms()),
                text(task_id),
                text(lease_id),
            ],
        )?;
        crate::carbon::forget(db, lease_id)?;
        crate::events::record(
            db,
            "task_interrupted",
            Some(&node.id),
            Some(task_id),
            None,
            json!({ "lease_id": lease_id, "sla": sla, "why": why }),
        )?;
    }
    Ok(())
}
