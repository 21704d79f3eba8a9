//! Carbon accounting for every run, the public ledger (`GET
//! /api/v1/ledger`) and a user's impact (`GET /api/v1/users/{id}/impact`).
//!
//! A lease's record opens when the lease is made and closes with the run's
//! energy: `completed`, `failed` (the kernel failed, the energy was still
//! burned) or `interrupted` (the lease was revoked or stopped mid-run; the
//! node's `stopped` receipt reports what it used). An interrupted run saved
//! nothing: the task runs again, so its whole emission counts against the
//! savings (`saved = −emitted`). A lease that never ran (refused, expired,
//! revoked before the node fetched it) leaves no record.
//!
//! - energy (Wh): the receipt's figure, which the node measures as the run's
//!   duration × its configured device power (or reports directly);
//! - emitted (g) = Wh × the executing node's grid intensity (gCO2/kWh) when
//!   the lease was made ÷ 1000;
//! - baseline (g) = Wh × the intensity of the requester's own grid at
//!   submission (their most recently seen node; the network average of online
//!   nodes when they have none) ÷ 1000;
//! - saved (g) = baseline − emitted (negative when the run was dirtier).
//!
//! Every intensity is an *average, location-based* grid intensity, as nodes
//! report it (`energy.carbon_intensity`). Seed 001's "45 kg saved for 200 Wh"
//! is wrong by about 500×: 200 Wh at 450 g/kWh is 90 g.
//! Clean and dirty Wh split the energy by the node's reported clean share.

use crate::db::{int, real, text, Db};
use crate::error::ApiError;
use greenmesh_storage::Value as Sql;
use serde_json::{json, Value};

/// Grams of CO2 for `wh` watt-hours at `g_per_kwh`.
pub fn grams(wh: f64, g_per_kwh: f64) -> f64 {
    wh * g_per_kwh / 1000.0
}

/// What the ledger says about its figures.
pub const SIGNAL: &str = "average, location-based grid intensity (gCO2/kWh) reported by the nodes; \
emitted at the executing node's intensity when leased, baseline at the requester's own grid at submission";

/// Records the baseline intensity of a freshly submitted task.
pub fn record_baseline(db: &Db, task_id: &str, owner: &str) -> Result<(), ApiError> {
    let (intensity, source) = match crate::greenmesh::marketplace::registry::home_intensity(owner) {
        Ok((i, s)) => (Sql::Real((i as f64 * 1e4).round() / 1e4), s),
        Err(_) => (
            Sql::Null,
            "unknown: no online node reports its grid".to_string(),
        ),
    };
    db.exec(
        "INSERT OR IGNORE INTO broker_task_baseline (task_id, intensity, source) VALUES (?, ?, ?)",
        &[text(task_id), intensity, text(source)],
    )
}

/// Opens the carbon record of a lease from what the lease row keeps
/// (where, at what intensity and clean share, whose node); a no-op when it
/// is open already.
pub fn open(db: &Db, lease_id: &str) -> Result<(), ApiError> {
    db.exec(
        "INSERT OR IGNORE INTO broker_carbon (lease_id, task_id, user_id, node_id, delegated, intensity, clean_share,
             baseline_intensity, baseline_source, leased_at, deferral_ms, status)
         SELECT l.id, l.task_id, l.owner, l.node_id, CASE WHEN l.node_owner = l.owner THEN 0 ELSE 1 END, l.intensity, l.clean_share,
                b.intensity, b.source, l.created_at, l.created_at - t.created_at, 'running'
         FROM broker_leases l JOIN broker_tasks t ON t.id = l.task_id
         LEFT JOIN broker_task_baseline b ON b.task_id = l.task_id
         WHERE l.id = ? AND l.intensity IS NOT NULL",
        &[text(lease_id)],
    )
}

/// How a run ended, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Completed,
    Failed,
    Interrupted,
}

impl RunEnd {
    fn as_str(self) -> &'static str {
        match self {
            RunEnd::Completed => "completed",
            RunEnd::Failed => "failed",
            RunEnd::Interrupted => "interrupted",
        }
    }
}

/// Closes a lease's record with the run's energy; answers the grams it
/// saved (negative when the run was dirtier; `None` without a baseline).
/// Once per lease: a second call changes nothing and answers the same.
pub fn close(
    db: &Db,
    lease_id: &str,
    energy_wh: f64,
    end: RunEnd,
) -> Result<Option<f64>, ApiError> {
    let rows = db.query(
        "SELECT intensity, clean_share, baseline_intensity, status, saved_g FROM broker_carbon WHERE lease_id = ?",
        &[text(lease_id)],
    )?;
    let Some(r) = rows.rows.first() else {
        return Ok(None);
    };
    if r.get::<&str>(3) != Some("running") {
        return Ok(r.get::<f64>(4));
    }
    let energy_wh = if energy_wh.is_finite() {
        energy_wh.max(0.0)
    } else {
        0.0
    };
    let intensity = r.get::<f64>(0).unwrap_or(0.0);
    let clean_share = r.get::<f64>(1).unwrap_or(0.0).clamp(0.0, 1.0);
    // Figures are kept to a microgram / microwatt-hour: enough, and free of
    // binary noise such as 200 × (1 − 0.8) = 39.99999999999999.
    let micro = |x: f64| (x * 1e6).round() / 1e6;
    let emitted = micro(grams(energy_wh, intensity));
    let saved = match end {
        RunEnd::Interrupted => Some(-emitted),
        _ => r
            .get::<f64>(2)
            .map(|b| micro(grams(energy_wh, b) - emitted)),
    };
    let clean_wh = micro(energy_wh * clean_share);
    db.exec(
        "UPDATE broker_carbon SET energy_wh = ?, emitted_g = ?, saved_g = ?, clean_wh = ?, dirty_wh = ?,
             executed_at = ?, status = ? WHERE lease_id = ? AND status = 'running'",
        &[
            real(energy_wh),
            real(emitted),
            saved.map(Sql::Real).unwrap_or(Sql::Null),
            real(clean_wh),
            real(micro(energy_wh - clean_wh)),
            int(crate::util::now_ms()),
            text(end.as_str()),
            text(lease_id),
        ],
    )?;
    Ok(saved)
}

/// Drops the record of a lease that never ran to a report.
pub fn forget(db: &Db, lease_id: &str) -> Result<(), ApiError> {
    db.exec(
        "DELETE FROM broker_carbon WHERE lease_id = ? AND status = 'running'",
        &[text(lease_id)],
    )
}

/// Which ledger entries to read.
pub struct LedgerFilter {
    pub limit: u64,
    /// Only runs executed before this time (ms).
    pub before: u64,
    /// Only delegations (runs on someone else's node).
    pub delegated_only: bool,
}

/// Runs (completed, failed and interrupted), newest first, with the
/// network's totals.
pub fn ledger(db: &Db, f: &LedgerFilter) -> Result<Value, ApiError> {
    let rows = db.query(
        "SELECT c.task_id, c.user_id, c.node_id, c.energy_wh, c.intensity, c.baseline_intensity, c.emitted_g,
                c.saved_g, c.deferral_ms, c.executed_at, c.lease_id, c.delegated, c.status,
                c.clean_wh, c.dirty_wh
         FROM broker_carbon c WHERE c.status IN ('completed', 'failed', 'interrupted') AND c.executed_at < ?
           AND (? = 0 OR c.delegated = 1)
         ORDER BY c.executed_at DESC LIMIT ?",
        &[int(f.before), int(f.delegated_only as u64), int(f.limit)],
    )?;
    let entries: Vec<Value> = rows
        .rows
        .iter()
        .map(|r| {
            json!({
                "task_id": r.get::<&str>(0),
                "from_user": r.get::<&str>(1),
                "to_node": r.get::<&str>(2),
                "delegation_id": r.get::<&str>(10),
                "run": r.get::<&str>(12),
                "energy_wh": r.get::<f64>(3),
                "intensity_g_per_kwh": r.get::<f64>(4),
                "baseline_g_per_kwh": r.get::<f64>(5),
                "emitted_g": r.get::<f64>(6),
                "saved_g": r.get::<f64>(7),
                "deferral_ms": r.get::<i64>(8),
                "executed_at": r.get::<i64>(9),
                "delegated": r.get::<i64>(11) == Some(1),
                "clean_wh": r.get::<f64>(13),
                "dirty_wh": r.get::<f64>(14),
            })
        })
        .collect();
    let totals = db.query(
        "SELECT TOTAL(status = 'completed'), TOTAL(energy_wh), TOTAL(emitted_g), TOTAL(saved_g),
                TOTAL(delegated = 1 AND status = 'completed'), TOTAL(status = 'failed'), TOTAL(status = 'interrupted')
         FROM broker_carbon WHERE status IN ('completed', 'failed', 'interrupted')",
        &[],
    )?;
    let t = totals.rows.first();
    let f = |i: usize| t.and_then(|r| r.get::<f64>(i)).unwrap_or(0.0);
    Ok(json!({
        "signal": SIGNAL,
        "entries": entries,
        "totals": {
            "runs": f(0) as i64,
            "failed_runs": f(5) as i64,
            "interrupted_runs": f(6) as i64,
            "delegations": f(4) as i64,
            "energy_wh": f(1),
            "emitted_g": f(2),
            "saved_g": f(3),
        },
    }))
}

fn impact_of(db: &Db, user_id: &str, since: u64) -> Result<Value, ApiError> {
    let rows = db.query(
        "SELECT TOTAL(status = 'completed'), TOTAL(saved_g), TOTAL(clean_wh), TOTAL(dirty_wh), TOTAL(emitted_g),
                AVG(CASE WHEN status = 'completed' THEN deferral_ms END),
                TOTAL(status = 'completed' AND deferral_ms >= 60000), TOTAL(status = 'interrupted')
         FROM broker_carbon WHERE user_id = ? AND status IN ('completed', 'failed', 'interrupted')
           AND executed_at >= ?",
        &[text(user_id), int(since)],
    )?;
    let r = rows.rows.first();
    let f = |i: usize| r.and_then(|r| r.get::<f64>(i)).unwrap_or(0.0);
    let (clean, dirty) = (f(2), f(3));
    Ok(json!({
        "tasks_executed": f(0) as i64,
        "runs_interrupted": f(7) as i64,
        "carbon_saved_g": f(1),
        "carbon_emitted_g": f(4),
        "energy_clean_wh": clean,
        "energy_dirty_wh": dirty,
        "renewable_share": if clean + dirty > 0.0 { clean / (clean + dirty) } else { 0.0 },
        "average_deferral_h": f(5) / 3_600_000.0,
        "tasks_deferred": f(6) as i64,
    }))
}

/// `user_id`'s tasks' energy, emissions and savings, overall and this
/// (UTC) month.
pub fn impact(db: &Db, user_id: &str) -> Result<Value, ApiError> {
    let now = crate::util::now_ms();
    let mut all = impact_of(db, user_id, 0)?;
    all["this_month"] = impact_of(db, user_id, crate::util::month_start(now))?;
    all["user_id"] = json!(user_id);
    all["signal"] = json!(SIGNAL);
    Ok(all)
}

/// Energy, grams emitted and grams saved by the runs of `task_ids` (the
/// members of a federated round): what the round cost the climate.
pub fn of_tasks(db: &Db, task_ids: &[String]) -> Result<Value, ApiError> {
    let ids = serde_json::to_string(task_ids).map_err(crate::error::storage)?;
    let rows = db.query(
        "SELECT TOTAL(energy_wh), TOTAL(emitted_g), TOTAL(saved_g) FROM broker_carbon
         WHERE task_id IN (SELECT value FROM json_each(?)) AND emitted_g IS NOT NULL",
        &[text(ids)],
    )?;
    let r = rows.rows.first();
    let f = |i: usize| r.and_then(|r| r.get::<f64>(i)).unwrap_or(0.0);
    Ok(json!({ "energy_wh": f(0), "emitted_g": f(1), "saved_g": f(2) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_are_watt_hours_times_intensity_over_a_thousand() {
        // Seed 001's example: 200 Wh on a 450 g/kWh grid is 90 g, not 45 kg.
        assert_eq!(grams(200.0, 450.0), 90.0);
        assert_eq!(grams(0.5, 218.0), 0.109);
        assert_eq!(grams(200.0, 0.0), 0.0);
    }
}
