//! Energy-aware service levels (seed 001): when a task may start, and how
//! much clean energy weighs in choosing where.
//!
//! | SLA | start | energy | delegable | interruptible |
//! |---|---|---|---|---|
//! | urgent | within 30 min: at once | any | yes | no |
//! | high | within 24 h | waits for the cleanest forecast slot | yes | no |
//! | normal | within 48 h | waits for the cleanest forecast slot | yes | yes |
//! | eco | when a node is clean (clean share ≥ `eco_min_clean_share`) | renewable only | yes | yes |
//! | solar_only / wind_only | while the owner's node has that generation | own | no | yes |
//!
//! A patient task (high, normal) starts now when no node's forecast offers
//! a slot before its deadline that is cleaner than the cleanest node now by
//! at least [`MIN_GAIN`]; otherwise it waits, and is decided again at every
//! dispatch tick (heartbeats and polls). A slot is only considered if it
//! starts at least one tick (`dispatch_tick_ms`) before the deadline, so a
//! task re-decided every tick always starts in time. The policy sees only
//! the nodes' current intensity and their forecasts: never the future.

use crate::greenmesh::marketplace::types::{EnergyState, ForecastPoint};
use crate::model::Sla;

/// Relative improvement a later slot must promise before a task waits for
/// it: forecasts are uncertain, and a small gain is not worth the risk.
pub const MIN_GAIN: f32 = 0.03;

/// How often queued tasks are decided again, unless the `dispatch_tick_ms`
/// Spin variable says otherwise (nodes heartbeat every few seconds).
pub const DISPATCH_TICK_MS: u64 = 60_000;

/// Share of a source a node's mix needs for solar_only / wind_only tasks.
pub const OWN_SOURCE_SHARE: f32 = 0.5;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

pub fn dispatch_tick_ms() -> u64 {
    spin_sdk::variables::get("dispatch_tick_ms")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(DISPATCH_TICK_MS)
}

/// How long a task that waits for clean energy (eco, solar_only,
/// wind_only: seed 001's "could be days") may stay queued, unless the
/// `patient_deadline_ms` Spin variable says otherwise.
pub const PATIENT_DEADLINE_MS: u64 = 7 * 24 * HOUR;

/// Time from submission by which a task must start, if the SLA promises one.
pub fn start_window_ms(sla: Sla) -> Option<u64> {
    match sla {
        Sla::Urgent => Some(30 * MINUTE),
        Sla::High => Some(24 * HOUR),
        Sla::Normal => Some(48 * HOUR),
        Sla::Eco | Sla::SolarOnly | Sla::WindOnly => None,
    }
}

/// How long after submission a task may stay queued before it fails
/// unstarted: its start window, or for the SLAs without one
/// `patient_deadline_ms`.
pub fn queue_deadline_ms(sla: Sla) -> u64 {
    start_window_ms(sla).unwrap_or_else(|| {
        spin_sdk::variables::get("patient_deadline_ms")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or(PATIENT_DEADLINE_MS)
    })
}

/// Whether a task under `sla` may wait for a cleaner forecast slot.
pub fn may_wait(sla: Sla) -> bool {
    matches!(sla, Sla::High | Sla::Normal)
}

/// Whether a running task may be stopped and re-queued when energy worsens.
pub fn interruptible(sla: Sla) -> bool {
    matches!(sla, Sla::Normal | Sla::Eco | Sla::SolarOnly | Sla::WindOnly)
}

/// Whether the SLA waits for (and weighs) clean energy.
pub fn prefers_clean(sla: Sla) -> bool {
    sla != Sla::Urgent
}

/// The generation a solar_only / wind_only task needs on its node.
pub fn own_source(sla: Sla) -> Option<&'static str> {
    match sla {
        Sla::SolarOnly => Some("solar"),
        Sla::WindOnly => Some("wind"),
        _ => None,
    }
}

/// Whether `energy` has enough of `source` right now.
pub fn has_source(energy: &EnergyState, source: &str) -> bool {
    energy
        .sources
        .iter()
        .any(|(s, share)| s == source && *share >= OWN_SOURCE_SHARE)
}

/// A node's intensity over time as a step function: its current value
/// until its forecast begins, then each forecast point's value until the
/// next point starts (a gap holds the last value, and so does the end).
/// Built once per decision, so each slot costs a binary search.
pub struct Series {
    /// Segment starts (the first is 0: "now and before"), ascending.
    starts: Vec<u64>,
    values: Vec<f64>,
    /// ∫ intensity dt from `starts[0]` to `starts[i]`.
    prefix: Vec<f64>,
}

impl Series {
    pub fn new(energy: &EnergyState) -> Self {
        let mut points: Vec<&ForecastPoint> = energy.forecast.iter().collect();
        points.sort_by_key(|p| p.timestamp);
        let mut starts = vec![0u64];
        let mut values = vec![energy.carbon_intensity as f64];
        for p in points {
            if p.timestamp == *starts.last().unwrap_or(&0) {
                *values.last_mut().expect("non-empty") = p.value as f64;
            } else {
                starts.push(p.timestamp);
                values.push(p.value as f64);
            }
        }
        let mut prefix = vec![0.0];
        for i in 1..starts.len() {
            let width = (starts[i] - starts[i - 1]) as f64;
            prefix.push(prefix[i - 1] + values[i - 1] * width);
        }
        Self {
            starts,
            values,
            prefix,
        }
    }

    /// ∫ intensity dt from `starts[0]` to `t`.
    fn integral(&self, t: u64) -> f64 {
        let k = self.starts.partition_point(|&s| s <= t).saturating_sub(1);
        self.prefix[k] + self.values[k] * (t - self.starts[k]) as f64
    }

    /// The mean intensity of a run of `duration_ms` from `start_ms`.
    pub fn mean(&self, start_ms: u64, duration_ms: u64) -> f32 {
        let d = duration_ms.max(1);
        ((self.integral(start_ms + d) - self.integral(start_ms)) / d as f64) as f32
    }
}

/// The expected intensity of running for `duration_ms` from `start_ms` on a
/// node (see [`Series`]).
#[cfg(test)]
pub fn expected_intensity(energy: &EnergyState, start_ms: u64, duration_ms: u64) -> f32 {
    Series::new(energy).mean(start_ms, duration_ms)
}

/// A node a task could run on, with its energy.
pub struct NodeEnergy<'a> {
    pub node_id: &'a str,
    pub energy: &'a EnergyState,
}

/// Start now, or wait (with why).
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    Now,
    Wait(String),
}

/// When a patient task should start, given the nodes that could run it.
pub fn timing(
    sla: Sla,
    created_at: u64,
    now: u64,
    expected_ms: u64,
    tick_ms: u64,
    nodes: &[NodeEnergy],
) -> Timing {
    let Some(window) = start_window_ms(sla).filter(|_| may_wait(sla)) else {
        return Timing::Now;
    };
    if nodes.is_empty() {
        return Timing::Now;
    }
    let deadline = created_at + window;
    let series: Vec<Series> = nodes.iter().map(|n| Series::new(n.energy)).collect();
    let now_best = series
        .iter()
        .map(|s| s.mean(now, expected_ms))
        .fold(f32::INFINITY, f32::min);
    let last_start = deadline.saturating_sub(tick_ms);
    let mut best: Option<(f32, u64, &str)> = None;
    for (n, s) in nodes.iter().zip(&series) {
        for p in &n.energy.forecast {
            let start = p.timestamp;
            if start <= now || start > last_start {
                continue;
            }
            let v = s.mean(start, expected_ms);
            if best.is_none_or(|(b, _, _)| v < b) {
                best = Some((v, start, n.node_id));
            }
        }
    }
    match best {
        Some((v, at, node)) if v < now_best * (1.0 - MIN_GAIN) => Timing::Wait(format!(
            "waiting for cleaner energy ({sla}): {now_best:.0} gCO2/kWh now, {v:.0} forecast at {} on {node}; \
             starts by {}",
            crate::util::iso8601(at),
            crate::util::iso8601(deadline)
        )),
        _ => Timing::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn energy(now: f32, forecast: &[(u64, f32)]) -> EnergyState {
        EnergyState {
            sources: vec![("grid".into(), 1.0)],
            clean_share: 0.2,
            carbon_intensity: now,
            forecast: forecast
                .iter()
                .map(|&(t, v)| ForecastPoint {
                    timestamp: t,
                    duration_min: 30,
                    value: v,
                })
                .collect(),
        }
    }

    const T0: u64 = 1_600_000_000_000;
    const HALF: u64 = 30 * MINUTE;

    fn halfhours(values: &[f32]) -> Vec<(u64, f32)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (T0 + (i as u64 + 1) * HALF, *v))
            .collect()
    }

    #[test]
    fn expected_intensity_follows_now_then_the_forecast() {
        let e = energy(300.0, &halfhours(&[100.0, 200.0]));
        assert_eq!(expected_intensity(&e, T0, HALF), 300.0);
        assert_eq!(expected_intensity(&e, T0 + HALF, HOUR), 150.0);
        assert_eq!(expected_intensity(&e, T0, 2 * HALF), 200.0);
        // Beyond the forecast the last value holds.
        assert_eq!(expected_intensity(&e, T0 + 10 * HOUR, HOUR), 200.0);
        assert_eq!(expected_intensity(&energy(80.0, &[]), T0, HOUR), 80.0);
    }

    #[test]
    fn a_patient_task_waits_for_a_clearly_cleaner_slot_before_its_deadline() {
        let e = energy(300.0, &halfhours(&[290.0, 280.0, 100.0, 250.0]));
        let nodes = [NodeEnergy {
            node_id: "n",
            energy: &e,
        }];
        let t = timing(Sla::High, T0, T0, HALF, MINUTE, &nodes);
        assert!(
            matches!(&t, Timing::Wait(why) if why.contains("100 forecast")),
            "{t:?}"
        );
        // Urgent and eco-less SLAs never wait on forecasts.
        assert_eq!(
            timing(Sla::Urgent, T0, T0, HALF, MINUTE, &nodes),
            Timing::Now
        );
        // A gain under MIN_GAIN is not worth waiting for.
        let flat = energy(300.0, &halfhours(&[295.0, 299.0]));
        let nodes = [NodeEnergy {
            node_id: "n",
            energy: &flat,
        }];
        assert_eq!(
            timing(Sla::Normal, T0, T0, HALF, MINUTE, &nodes),
            Timing::Now
        );
    }

    #[test]
    fn the_deadline_wins_over_a_cleaner_slot_after_it() {
        let e = energy(300.0, &halfhours(&[300.0, 300.0, 50.0]));
        let nodes = [NodeEnergy {
            node_id: "n",
            energy: &e,
        }];
        // Submitted 23 h 10 min ago under `high`: the 50 g slot at +1.5 h is
        // after the 24 h deadline, so it starts now.
        let created = T0 - 23 * HOUR - 10 * MINUTE;
        assert_eq!(
            timing(Sla::High, created, T0, HALF, MINUTE, &nodes),
            Timing::Now
        );
        // Under `normal` (48 h) the same slot is worth the wait.
        assert!(matches!(
            timing(Sla::Normal, created, T0, HALF, MINUTE, &nodes),
            Timing::Wait(_)
        ));
        // A slot within one tick of the deadline is not relied on.
        let created = T0 + 2 * HALF + 10 * MINUTE - 24 * HOUR; // deadline 10 min after the 50 g slot starts
        assert_eq!(
            timing(Sla::High, created, T0, HALF, 15 * MINUTE, &nodes),
            Timing::Now
        );
    }

    #[test]
    fn a_cleaner_node_now_is_better_than_waiting_on_a_dirty_one() {
        let dirty = energy(400.0, &halfhours(&[200.0]));
        let clean = energy(150.0, &halfhours(&[150.0]));
        let nodes = [
            NodeEnergy {
                node_id: "de",
                energy: &dirty,
            },
            NodeEnergy {
                node_id: "gb",
                energy: &clean,
            },
        ];
        assert_eq!(timing(Sla::High, T0, T0, HALF, MINUTE, &nodes), Timing::Now);
    }

    #[test]
    fn solar_only_needs_solar_in_the_mix() {
        let mut e = energy(100.0, &[]);
        assert!(!has_source(&e, "solar"));
        e.sources = vec![("solar".into(), 0.6), ("grid".into(), 0.4)];
        assert!(has_source(&e, "solar") && !has_source(&e, "wind"));
        assert_eq!(own_source(Sla::WindOnly), Some("wind"));
        assert!(
            interruptible(Sla::Normal) && !interruptible(Sla::High) && !interruptible(Sla::Urgent)
        );
    }
}
