//! Interruptible SLAs (normal, eco, solar_only, wind_only): when a node's
//! energy gets worse while it holds such a lease, the lease is revoked
//! (`lifecycle::end` with `Interrupted`) and the task re-queued, to start
//! again from scratch on a cleaner slot or node (no kernel has
//! checkpoints). The attempt is given back, the node is told to stop (if it
//! had fetched the lease) and reports the energy it used, and it is not
//! given that task again unless it belongs to the task's owner.
//!
//! "Worse" means: the grid intensity rose by more than [`WORSE_BY`] over
//! what it was when the lease was made (normal); the clean share fell under
//! the eco threshold (eco); the source fell under half the mix
//! (solar_only / wind_only).

use crate::db::{text, Db};
use crate::domain::lifecycle::{self, End};
use crate::error::ApiError;
use crate::greenmesh::marketplace::types::Node;
use crate::model::Sla;

/// Relative rise in intensity that interrupts a normal-SLA task.
pub const WORSE_BY: f32 = 0.25;

/// Why a lease held under `sla`, made at `leased_intensity`, should stop
/// given the node's energy now; `None` to keep running.
pub fn reason(
    sla: Sla,
    leased_intensity: f32,
    eco_min_clean_share: f32,
    node: &Node,
) -> Option<String> {
    if !crate::domain::schedule::interruptible(sla) {
        return None;
    }
    let e = &node.energy;
    match sla {
        Sla::Normal if e.carbon_intensity > leased_intensity * (1.0 + WORSE_BY) => Some(format!(
            "grid intensity rose from {leased_intensity:.0} to {:.0} gCO2/kWh",
            e.carbon_intensity
        )),
        Sla::Eco if e.clean_share < eco_min_clean_share => Some(format!(
            "clean share fell to {:.0} %",
            e.clean_share * 100.0
        )),
        Sla::SolarOnly | Sla::WindOnly => {
            let source = crate::domain::schedule::own_source(sla)?;
            (!crate::domain::schedule::has_source(e, source))
                .then(|| format!("{source} fell under half of the mix"))
        }
        _ => None,
    }
}

/// Revokes `node`'s interruptible leases whose energy got worse.
pub fn check(db: &Db, node: &Node) -> Result<(), ApiError> {
    let rows = db.query(
        "SELECT l.id, p.sla, l.intensity FROM broker_leases l
         JOIN broker_task_policy p ON p.task_id = l.task_id
         WHERE l.node_id = ? AND l.status IN ('offered', 'delivered')
           AND p.sla IN ('normal', 'eco', 'solar_only', 'wind_only')",
        &[text(node.id.clone())],
    )?;
    let eco = crate::domain::policy::eco_min_clean_share();
    for r in &rows.rows {
        let lease_id = r.get::<&str>(0).unwrap_or_default();
        let Some(sla) = r.get::<&str>(1).and_then(Sla::parse) else {
            continue;
        };
        let leased = r.get::<f64>(2).unwrap_or(f64::MAX) as f32;
        if let Some(why) = reason(sla, leased, eco, node) {
            lifecycle::end(db, lease_id, End::Interrupted, &why)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::greenmesh::marketplace::types::{Capacity, EnergyState, NodeStatus};

    fn node(intensity: f32, clean_share: f32, sources: &[(&str, f32)]) -> Node {
        Node {
            id: "node-1".into(),
            owner: "user-1".into(),
            name: "n".into(),
            region: "GB".into(),
            public_key: String::new(),
            capabilities: Vec::new(),
            capacity: Capacity {
                cpu_cores: 1,
                memory_mb: 1024,
                gpu: None,
            },
            energy: EnergyState {
                sources: sources.iter().map(|(s, v)| (s.to_string(), *v)).collect(),
                clean_share,
                carbon_intensity: intensity,
                forecast: Vec::new(),
            },
            allowed_tasks: Vec::new(),
            datasets: Vec::new(),
            load: 0.0,
            running_tasks: 0,
            latency_ms: 0.0,
            status: NodeStatus::Online,
            registered_at: 0,
            last_seen: 0,
        }
    }

    #[test]
    fn normal_stops_past_a_quarter_more_carbon_and_high_never_does() {
        let dirtier = node(126.0, 0.5, &[]);
        assert!(reason(Sla::Normal, 100.0, 0.8, &dirtier).is_some());
        assert_eq!(
            reason(Sla::Normal, 100.0, 0.8, &node(125.0, 0.5, &[])),
            None
        );
        assert_eq!(reason(Sla::High, 100.0, 0.8, &node(900.0, 0.0, &[])), None);
        assert_eq!(
            reason(Sla::Urgent, 100.0, 0.8, &node(900.0, 0.0, &[])),
            None
        );
    }

    #[test]
    fn eco_stops_under_the_clean_share_and_solar_only_without_sun() {
        let why = reason(Sla::Eco, 50.0, 0.8, &node(50.0, 0.5, &[])).unwrap();
        assert!(why.contains("50 %"), "{why}");
        assert_eq!(reason(Sla::Eco, 50.0, 0.8, &node(50.0, 0.9, &[])), None);
        let cloudy = node(50.0, 0.9, &[("wind", 0.9)]);
        assert!(reason(Sla::SolarOnly, 50.0, 0.8, &cloudy)
            .unwrap()
            .contains("solar"));
        assert_eq!(reason(Sla::WindOnly, 50.0, 0.8, &cloudy), None);
    }
}
