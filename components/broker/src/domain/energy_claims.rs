//! Energy claims checked against public signals (issue 21; seed 001's
//! "energy data manipulated"). An admin loads a region's grid-intensity
//! trace (`PUT /api/v1/admin/regions/{region}/signal`, the `data/carbon/`
//! CSV format); a node in that region is then held to it:
//!
//! - a grid intensity more than `energy_tolerance` (25 %) below the
//!   region's signal at that time of year is implausible;
//! - a clean share beyond what the grid itself can supply (estimated from
//!   the signal, see [`grid_clean_share`]) plus the tolerance needs declared
//!   own generation (`power.own_generation_watts` at registration), and
//!   only as much as that generation covers of the node's draw at its
//!   declared maximum power ([`plausible_clean_share`]).
//!
//! An implausible report is not stored as given: the node is recorded at
//! its region's signal, with the grid's clean share and no forecast, so
//! it earns no carbon preference and no "saved" grams from the claim. The
//! finding is flagged on the node (`energy_check` in its view, an
//! `implausible_energy_claim` event at most once an hour).
//!
//! Traces are replayed on the calendar like the nodes' own
//! (`MESH_CARBON_TRACE`): the value at the same month, day and half hour.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use crate::greenmesh::marketplace::types as mt;
use chrono::{Datelike, Timelike};
use greenmesh_storage::Value as Sql;
use serde_json::{json, Value};

/// Relative shortfall below the signal (and excess clean share) tolerated,
/// unless `energy_tolerance` says otherwise.
pub const TOLERANCE: f32 = 0.25;
/// The intensity of an all-fossil grid, gCO2/kWh, for estimating a grid's
/// clean share from its intensity (a gas/coal mix; ADR 0021).
pub const FOSSIL_G_PER_KWH: f32 = 800.0;
/// Power counted for a receipt of a node that declared none, W.
pub const DEFAULT_MAX_WATTS: f64 = 1_500.0;
/// Most power a node may declare, W.
pub const MAX_DECLARED_WATTS: f64 = 100_000.0;
/// Rows inserted per statement when a trace is loaded.
const BATCH: usize = 400;

fn tolerance() -> f32 {
    spin_sdk::variables::get("energy_tolerance")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|t: &f32| t.is_finite() && *t >= 0.0)
        .unwrap_or(TOLERANCE)
}

/// A half hour of the calendar year: month, day, half hour.
fn slot(month: u32, day: u32, half_hour: u32) -> i64 {
    i64::from(((month - 1) * 31 + (day - 1)) * 48 + half_hour)
}

/// The calendar slot of `ms` (UTC).
pub fn slot_of(ms: u64) -> i64 {
    let t = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or_default();
    slot(t.month(), t.day(), t.hour() * 2 + t.minute() / 30)
}

/// The calendar slot of a trace line's `YYYY-MM-DD HH:MM[:SS]`.
fn slot_of_text(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once([' ', 'T'])?;
    let mut d = date.split('-').skip(1).map(|p| p.parse::<u32>().ok());
    let (month, day) = (d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<u32>().ok());
    let (hour, minute) = (t.next()??, t.next()??);
    ((1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60)
        .then(|| slot(month, day, hour * 2 + minute / 30))
}

/// Parses a `Time,Carbon Intensity` CSV into slots and values (the last
/// value of a slot wins); answers the rows and how many lines were skipped.
pub fn parse_trace(csv: &str) -> (Vec<(i64, f32)>, usize) {
    let mut rows = std::collections::BTreeMap::new();
    let mut skipped = 0;
    for line in csv.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line.split_once(',').and_then(|(time, value)| {
            let v: f32 = value.trim().parse().ok()?;
            (v.is_finite() && v >= 0.0).then_some(())?;
            Some((slot_of_text(time)?, v))
        });
        match parsed {
            Some((slot, v)) => {
                rows.insert(slot, v);
            }
            None => skipped += 1,
        }
    }
    (rows.into_iter().collect(), skipped)
}

/// Replaces `region`'s signal with the trace in `csv`.
pub fn load(db: &Db, region: &str, csv: &str) -> Result<Value, ApiError> {
    let (rows, skipped) = parse_trace(csv);
    if rows.is_empty() {
        return Err(ApiError::bad_request(format!(
            "no `YYYY-MM-DD HH:MM:SS,gCO2/kWh` lines in the body ({skipped} lines skipped); \
             send a trace in the data/carbon CSV format"
        )));
    }
    db.exec(
        "DELETE FROM broker_region_signals WHERE region = ?",
        &[text(region)],
    )?;
    for chunk in rows.chunks(BATCH) {
        let values = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let mut params = Vec::with_capacity(chunk.len() * 3);
        for (slot, v) in chunk {
            params.extend([text(region), Sql::Integer(*slot), Sql::Real(f64::from(*v))]);
        }
        db.exec(
            &format!("INSERT INTO broker_region_signals (region, slot, intensity) VALUES {values}"),
            &params,
        )?;
    }
    let mean = rows.iter().map(|(_, v)| f64::from(*v)).sum::<f64>() / rows.len() as f64;
    crate::domain::events::record(
        db,
        "region_signal_loaded",
        None,
        None,
        None,
        json!({ "region": region, "rows": rows.len(), "skipped": skipped }),
    )?;
    Ok(json!({ "region": region, "rows": rows.len(), "skipped": skipped, "mean_g_per_kwh": mean }))
}

/// `region`'s signal at `now_ms` (the nearest slot the trace has), if the
/// coordinator holds one for it.
pub fn signal(db: &Db, region: &str, now_ms: u64) -> Result<Option<f32>, ApiError> {
    let rows = db.query(
        "SELECT intensity FROM broker_region_signals WHERE region = ?
         ORDER BY ABS(slot - ?) LIMIT 1",
        &[text(region), Sql::Integer(slot_of(now_ms))],
    )?;
    Ok(rows
        .rows
        .first()
        .and_then(|r| r.get::<f64>(0))
        .map(|v| v as f32))
}

/// The clean share a grid at `intensity` can supply: what is not fossil.
pub fn grid_clean_share(intensity: f32) -> f32 {
    (1.0 - intensity / FOSSIL_G_PER_KWH).clamp(0.0, 1.0)
}

/// The most clean share a node on a grid supplying `grid_clean` can have:
/// the grid's, and what its own generation covers of its draw at its
/// declared maximum power (a task runs a device near its maximum; a node
/// that declared none is counted at [`DEFAULT_MAX_WATTS`]).
pub fn plausible_clean_share(grid_clean: f32, power: Power) -> f32 {
    let own = power.own_generation_watts.unwrap_or(0.0).max(0.0);
    let draw = power.max_watts.unwrap_or(DEFAULT_MAX_WATTS).max(1.0);
    let covered = (own / draw).min(1.0) as f32;
    grid_clean + (1.0 - grid_clean) * covered
}

/// What a node declared about its power.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Power {
    /// Most power it draws, W (receipts' energy is bounded by it).
    pub max_watts: Option<f64>,
    /// Its own generation (panels, turbine, battery), W.
    pub own_generation_watts: Option<f64>,
}

impl Power {
    /// Checks declared figures are positive, finite and at most 100 kW.
    pub fn validate(&self) -> Result<(), ApiError> {
        for (field, v) in [
            ("power.max_watts", self.max_watts),
            ("power.own_generation_watts", self.own_generation_watts),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && (0.0..=MAX_DECLARED_WATTS).contains(&v)) {
                    return Err(ApiError::invalid(
                        field,
                        format!("{field} must be 0 to {MAX_DECLARED_WATTS} W"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Keeps `node_id`'s declared power (a re-registration replaces it).
pub fn declare(db: &Db, node_id: &str, power: Power) -> Result<(), ApiError> {
    let opt = |v: Option<f64>| v.map(Sql::Real).unwrap_or(Sql::Null);
    db.exec(
        "INSERT INTO broker_node_power (node_id, max_watts, own_generation_watts) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE SET max_watts = ?2, own_generation_watts = ?3",
        &[text(node_id), opt(power.max_watts), opt(power.own_generation_watts)],
    )
}

/// What `node_id` declared (nothing for a node that never did).
pub fn declared(db: &Db, node_id: &str) -> Result<Power, ApiError> {
    let rows = db.query(
        "SELECT max_watts, own_generation_watts FROM broker_node_power WHERE node_id = ?",
        &[text(node_id)],
    )?;
    Ok(rows
        .rows
        .first()
        .map(|r| Power {
            max_watts: r.get::<f64>(0),
            own_generation_watts: r.get::<f64>(1),
        })
        .unwrap_or_default())
}

/// The most power a receipt of `node_id` may count, W.
pub fn max_watts(db: &Db, node_id: &str) -> Result<f64, ApiError> {
    Ok(declared(db, node_id)?
        .max_watts
        .unwrap_or(DEFAULT_MAX_WATTS))
}

/// Why a report is implausible against `signal`, if it is.
pub fn finding(
    energy: &mt::EnergyState,
    signal: f32,
    power: Power,
    tolerance: f32,
) -> Option<Value> {
    let grid_clean = grid_clean_share(signal);
    let plausible_clean = plausible_clean_share(grid_clean, power);
    if energy.carbon_intensity < signal * (1.0 - tolerance) {
        return Some(json!({
            "reason": "grid intensity below the region's signal",
            "reported_g_per_kwh": energy.carbon_intensity, "signal_g_per_kwh": signal,
            "tolerance": tolerance,
        }));
    }
    if energy.clean_share > plausible_clean + tolerance {
        return Some(json!({
            "reason": "clean share beyond the grid's and the node's declared own generation",
            "reported_clean_share": energy.clean_share, "grid_clean_share": grid_clean,
            "plausible_clean_share": plausible_clean,
            "own_generation_watts": power.own_generation_watts,
            "signal_g_per_kwh": signal, "tolerance": tolerance,
        }));
    }
    None
}

/// Checks a node's report in `region` against the region's signal: an
/// implausible one is replaced by the signal (see the module docs).
/// Answers the finding, if any; [`record`] keeps it on the node. Nothing is
/// checked where the coordinator has no signal for the region.
pub fn check(
    db: &Db,
    region: &str,
    power: Power,
    energy: &mut mt::EnergyState,
) -> Result<Option<Value>, ApiError> {
    let Some(signal) = signal(db, region, crate::util::now_ms())? else {
        return Ok(None);
    };
    let Some(finding) = finding(energy, signal, power, tolerance()) else {
        return Ok(None);
    };
    let grid_clean = grid_clean_share(signal);
    *energy = mt::EnergyState {
        sources: vec![("grid".to_string(), 1.0)],
        clean_share: grid_clean.min(energy.clean_share),
        carbon_intensity: signal.max(energy.carbon_intensity),
        forecast: Vec::new(),
    };
    Ok(Some(finding))
}

/// Keeps the outcome of a node's latest check: a finding flags it, a
/// plausible report clears the flag.
pub fn record(db: &Db, node_id: &str, finding: Option<&Value>) -> Result<(), ApiError> {
    match finding {
        Some(f) => flag(db, node_id, f, crate::util::now_ms()),
        None => db.exec(
            "UPDATE broker_node_power SET flag = NULL, flagged_at = NULL WHERE node_id = ? AND flag IS NOT NULL",
            &[text(node_id)],
        ),
    }
}

/// Records the finding on the node: its view shows the latest, the event
/// log at most one an hour.
pub fn flag(db: &Db, node_id: &str, finding: &Value, now: u64) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO broker_node_power (node_id, flag, flagged_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (node_id) DO UPDATE SET flag = ?2, flagged_at = ?3",
        &[text(node_id), text(finding.to_string()), int(now)],
    )?;
    crate::domain::events::record_once(
        db,
        &format!("{node_id}:implausible-claim:{}", now / 3_600_000),
        "implausible_energy_claim",
        Some(node_id),
        None,
        None,
        finding.clone(),
    )
}

/// The node's latest energy check, for its view.
pub fn view(db: &Db, node_id: &str) -> Result<Value, ApiError> {
    let rows = db.query(
        "SELECT max_watts, own_generation_watts, flag, flagged_at FROM broker_node_power WHERE node_id = ?",
        &[text(node_id)],
    )?;
    let Some(r) = rows.rows.first() else {
        return Ok(json!({ "declared": {}, "flagged": false }));
    };
    let flag = r
        .get::<&str>(2)
        .and_then(|f| serde_json::from_str::<Value>(f).ok());
    Ok(json!({
        "declared": { "max_watts": r.get::<f64>(0), "own_generation_watts": r.get::<f64>(1) },
        "flagged": flag.is_some(),
        "finding": flag,
        "flagged_at": r.get::<i64>(3),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn energy(intensity: f32, clean: f32) -> mt::EnergyState {
        mt::EnergyState {
            sources: vec![],
            clean_share: clean,
            carbon_intensity: intensity,
            forecast: vec![],
        }
    }

    #[test]
    fn traces_replay_on_the_calendar_by_half_hour() {
        let (rows, skipped) = parse_trace(
            "Time,Carbon Intensity\n2020-03-10 12:00:00,210.5\n2020-03-10 12:30:00,190\nbad,line\n",
        );
        assert_eq!(skipped, 2, "the header and the bad line");
        assert_eq!(rows.len(), 2);
        // 2026-03-10T12:10Z falls in the 12:00 half hour of 10 March.
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-10T12:10:00Z")
            .unwrap()
            .timestamp_millis() as u64;
        assert_eq!(rows[0].0, slot_of(at));
    }

    #[test]
    fn claims_below_the_grid_or_cleaner_than_it_are_implausible() {
        let none = Power::default();
        // 400 g/kWh grid: at most half clean.
        assert!((grid_clean_share(400.0) - 0.5).abs() < 1e-6);
        assert!(finding(&energy(390.0, 0.5), 400.0, none, 0.25).is_none());
        assert!(finding(&energy(310.0, 0.5), 400.0, none, 0.25).is_none());
        assert!(finding(&energy(5.0, 0.5), 400.0, none, 0.25).is_some());
        assert!(finding(&energy(400.0, 1.0), 400.0, none, 0.25).is_some());
        // 400 W of panels on a 100 W device: all of its draw.
        let panels = Power {
            own_generation_watts: Some(400.0),
            max_watts: Some(100.0),
        };
        assert!(finding(&energy(400.0, 1.0), 400.0, panels, 0.25).is_none());
        // Own generation does not make the grid itself cleaner.
        assert!(finding(&energy(5.0, 1.0), 400.0, panels, 0.25).is_some());
        // A 30 W panel on a 100 W device covers 30 % of its draw: on a half
        // clean grid, 65 % clean at most (plus the tolerance).
        let small_panel = Power {
            own_generation_watts: Some(30.0),
            max_watts: Some(100.0),
        };
        assert!((plausible_clean_share(0.5, small_panel) - 0.65).abs() < 1e-6);
        assert!(finding(&energy(400.0, 0.85), 400.0, small_panel, 0.25).is_none());
        assert!(finding(&energy(400.0, 1.0), 400.0, small_panel, 0.0).is_some());
        assert!(finding(&energy(400.0, 0.7), 400.0, small_panel, 0.0).is_some());
        // Any panel at all used to allow any clean share: a token 1 W panel
        // on a default 1.5 kW device allows almost nothing beyond the grid.
        let token_panel = Power {
            own_generation_watts: Some(1.0),
            ..Power::default()
        };
        assert!(finding(&energy(400.0, 1.0), 400.0, token_panel, 0.25).is_some());
    }
}
