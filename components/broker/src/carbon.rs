//! Carbon accounting for every run, the public ledger (`GET
//! /api/v1/ledger`) and a user's impact (`GET /api/v1/users/{id}/impact`).
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

use crate::api::{json_response, ApiError, ApiResult};
use crate::auth::User;
use crate::db::{int, text, Db};
use serde_json::{json, Value};
use spin_sdk::sqlite::Value as Sql;

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
        "INSERT INTO broker_task_baseline (task_id, intensity, source) VALUES (?, ?, ?)",
        &[text(task_id), intensity, text(source)],
    )
}

/// Opens the carbon record of a lease: where and at what intensity it runs,
/// and whether it is a delegation (someone else's node).
pub fn on_lease(
    db: &Db,
    lease_id: &str,
    task_id: &str,
    owner: &str,
    chosen: &crate::dispatch::Candidate,
) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    // f32 readings carry noise past ~7 digits (0.8 is 0.800000011…).
    let round = |x: f32| (x as f64 * 1e4).round() / 1e4;
    db.exec(
        "INSERT INTO broker_carbon (lease_id, task_id, user_id, node_id, delegated, intensity, clean_share,
             baseline_intensity, baseline_source, leased_at, deferral_ms, status)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, b.intensity, b.source, ?8, ?8 - t.created_at, 'running'
         FROM broker_tasks t LEFT JOIN broker_task_baseline b ON b.task_id = t.id WHERE t.id = ?2",
        &[
            text(lease_id),
            text(task_id),
            text(owner),
            text(chosen.node_id.clone()),
            int((chosen.owner != owner) as u64),
            Sql::Real(round(chosen.intensity)),
            Sql::Real(round(chosen.clean_share)),
            int(now),
        ],
    )
}

/// Closes a lease's carbon record from its receipt; returns grams saved.
pub fn on_receipt(
    db: &Db,
    lease_id: &str,
    energy_wh: f64,
    succeeded: bool,
) -> Result<Option<f64>, ApiError> {
    let rows = db.query(
        "SELECT intensity, clean_share, baseline_intensity FROM broker_carbon WHERE lease_id = ?",
        &[text(lease_id)],
    )?;
    let Some(r) = rows.rows.first() else {
        return Ok(None);
    };
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
    let saved = r
        .get::<f64>(2)
        .map(|b| micro(grams(energy_wh, b) - emitted));
    let clean_wh = micro(energy_wh * clean_share);
    db.exec(
        "UPDATE broker_carbon SET energy_wh = ?, emitted_g = ?, saved_g = ?, clean_wh = ?, dirty_wh = ?,
             executed_at = ?, status = ? WHERE lease_id = ?",
        &[
            Sql::Real(energy_wh),
            Sql::Real(emitted),
            saved.map(Sql::Real).unwrap_or(Sql::Null),
            Sql::Real(clean_wh),
            Sql::Real(micro(energy_wh - clean_wh)),
            int(crate::util::now_ms()),
            text(if succeeded { "completed" } else { "failed" }),
            text(lease_id),
        ],
    )?;
    Ok(saved)
}

/// Drops the carbon record of a lease that never ran to a receipt.
pub fn forget(db: &Db, lease_id: &str) -> Result<(), ApiError> {
    db.exec(
        "DELETE FROM broker_carbon WHERE lease_id = ? AND executed_at IS NULL",
        &[text(lease_id)],
    )
}

/// `GET /api/v1/ledger[?limit=N][&before=MS][&delegated=true]`: completed
/// runs (or only delegations: runs on someone else's node), newest first,
/// with the network's totals.
pub fn ledger(db: &Db, query: &str) -> ApiResult {
    let limit = match crate::api::query_param(query, "limit") {
        None => 100,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be between 1 and 1000"))?,
    };
    let before = match crate::api::query_param(query, "before") {
        None => u64::MAX >> 1,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::invalid("before", "before must be milliseconds since the epoch")
        })?,
    };
    let delegated_only = match crate::api::query_param(query, "delegated") {
        None | Some("false") => 0,
        Some("true") => 1,
        Some(_) => {
            return Err(ApiError::invalid(
                "delegated",
                "delegated must be true or false",
            ))
        }
    };
    let rows = db.query(
        "SELECT c.task_id, c.user_id, c.node_id, c.energy_wh, c.intensity, c.baseline_intensity, c.emitted_g,
                c.saved_g, c.deferral_ms, c.executed_at, c.lease_id, c.delegated
         FROM broker_carbon c WHERE c.status = 'completed' AND c.executed_at < ? AND (? = 0 OR c.delegated = 1)
         ORDER BY c.executed_at DESC LIMIT ?",
        &[int(before), int(delegated_only), int(limit)],
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
                "energy_wh": r.get::<f64>(3),
                "intensity_g_per_kwh": r.get::<f64>(4),
                "baseline_g_per_kwh": r.get::<f64>(5),
                "emitted_g": r.get::<f64>(6),
                "saved_g": r.get::<f64>(7),
                "deferral_ms": r.get::<i64>(8),
                "executed_at": r.get::<i64>(9),
                "delegated": r.get::<i64>(11) == Some(1),
            })
        })
        .collect();
    let totals = db.query(
        "SELECT COUNT(*), TOTAL(energy_wh), TOTAL(emitted_g), TOTAL(saved_g), TOTAL(delegated) FROM broker_carbon
         WHERE status = 'completed'",
        &[],
    )?;
    let t = totals.rows.first();
    Ok(json_response(
        200,
        &json!({
            "signal": SIGNAL,
            "entries": entries,
            "totals": {
                "runs": t.and_then(|r| r.get::<i64>(0)).unwrap_or(0),
                "delegations": t.and_then(|r| r.get::<f64>(4)).unwrap_or(0.0) as i64,
                "energy_wh": t.and_then(|r| r.get::<f64>(1)).unwrap_or(0.0),
                "emitted_g": t.and_then(|r| r.get::<f64>(2)).unwrap_or(0.0),
                "saved_g": t.and_then(|r| r.get::<f64>(3)).unwrap_or(0.0),
            },
        }),
    ))
}

/// Start of the current UTC month, ms.
fn month_start(now_ms: u64) -> u64 {
    let iso = crate::util::iso8601(now_ms);
    crate::util::parse_rfc3339(&format!("{}-01T00:00:00Z", &iso[..7])).unwrap_or(0)
}

fn impact_of(db: &Db, user_id: &str, since: u64) -> Result<Value, ApiError> {
    let rows = db.query(
        "SELECT COUNT(*), TOTAL(saved_g), TOTAL(clean_wh), TOTAL(dirty_wh), TOTAL(emitted_g),
                AVG(deferral_ms), TOTAL(CASE WHEN deferral_ms >= 60000 THEN 1 ELSE 0 END)
         FROM broker_carbon WHERE user_id = ? AND status = 'completed' AND executed_at >= ?",
        &[text(user_id), int(since)],
    )?;
    let r = rows.rows.first();
    let f = |i: usize| r.and_then(|r| r.get::<f64>(i)).unwrap_or(0.0);
    let (clean, dirty) = (f(2), f(3));
    Ok(json!({
        "tasks_executed": r.and_then(|r| r.get::<i64>(0)).unwrap_or(0),
        "carbon_saved_g": f(1),
        "carbon_emitted_g": f(4),
        "energy_clean_wh": clean,
        "energy_dirty_wh": dirty,
        "renewable_share": if clean + dirty > 0.0 { clean / (clean + dirty) } else { 0.0 },
        "average_deferral_h": f(5) / 3_600_000.0,
        "tasks_deferred": f(6) as i64,
    }))
}

/// `GET /api/v1/users/{id}/impact` (`me` for the caller): their tasks'
/// energy, emissions and savings, overall and this (UTC) month.
pub fn impact(db: &Db, caller: &User, user_id: &str) -> ApiResult {
    let user_id = if user_id == "me" {
        caller.id.as_str()
    } else {
        user_id
    };
    if user_id != caller.id {
        return Err(ApiError::forbidden("a user can only read their own impact"));
    }
    let now = crate::util::now_ms();
    let mut all = impact_of(db, user_id, 0)?;
    all["this_month"] = impact_of(db, user_id, month_start(now))?;
    all["user_id"] = json!(user_id);
    all["signal"] = json!(SIGNAL);
    Ok(json_response(200, &all))
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

    #[test]
    fn month_start_is_the_first_at_midnight_utc() {
        // 2026-03-08T07:00:00Z -> 2026-03-01T00:00:00Z
        assert_eq!(month_start(1_772_953_200_000), 1_772_323_200_000);
    }
}
