//! Carbon-intensity forecasts in the Carbon Aware SDK's shape, made from a
//! trace: the future with seeded, horizon-growing error, a daily-persistence
//! forecast that only reads the past, and the live replay a provider sends.
//!
//! The error model is the one of Wiesner et al., "Let's Wait Awhile"
//! (Middleware '21): a forecast is the true value times `1 + e`, with `e`
//! normal and its spread growing linearly with the lead time; 5 % mean
//! error by default ([`DEFAULT_MEAN_ERROR`]), growing with the horizon.

use super::civil::{self, DAY_MS};
use super::rng::{self, SplitMix64};
use super::trace::Trace;
use serde::{Deserialize, Serialize};

/// Mean absolute relative error over the horizon, as in Wiesner et al.
pub const DEFAULT_MEAN_ERROR: f32 = 0.05;

/// One forecast interval. Serialized as the Carbon Aware SDK does:
/// `{"timestamp": "2020-03-01T12:00:00Z", "duration": 30, "value": 212.5}`
/// (RFC 3339 UTC start, minutes, gCO2/kWh).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct ForecastPoint {
    /// Start of the interval, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Length of the interval, minutes.
    pub duration_min: u32,
    /// Forecast average carbon intensity over the interval, gCO2/kWh.
    pub value: f32,
}

/// The JSON form of a [`ForecastPoint`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    timestamp: String,
    duration: u32,
    value: f32,
}

impl From<ForecastPoint> for Wire {
    fn from(p: ForecastPoint) -> Self {
        Wire {
            timestamp: civil::format_rfc3339(p.timestamp_ms),
            duration: p.duration_min,
            value: p.value,
        }
    }
}

impl TryFrom<Wire> for ForecastPoint {
    type Error = String;
    fn try_from(w: Wire) -> Result<Self, String> {
        Ok(ForecastPoint {
            timestamp_ms: civil::parse_utc(&w.timestamp).map_err(|e| format!("timestamp: {e}"))?,
            duration_min: w.duration,
            value: w.value,
        })
    }
}

impl ForecastPoint {
    /// End of the interval (exclusive), ms.
    pub fn end_ms(&self) -> u64 {
        self.timestamp_ms
            .saturating_add(u64::from(self.duration_min) * 60_000)
    }
}

fn point(trace: &Trace, timestamp_ms: u64, value: f64) -> ForecastPoint {
    ForecastPoint {
        timestamp_ms,
        duration_min: u32::try_from(trace.step_ms / 60_000).unwrap_or(u32::MAX),
        value: value as f32,
    }
}

/// Standard deviation of the relative error `e` at lead time `lead_ms` of a
/// `horizon_ms` forecast whose mean absolute error over the horizon is
/// `mean_error`: E|e| = mean_error · 2h/H, so σ(h) = mean_error · (2h/H) · √(π/2).
pub fn sigma(mean_error: f32, lead_ms: u64, horizon_ms: u64) -> f64 {
    if horizon_ms == 0 || !mean_error.is_finite() || mean_error <= 0.0 {
        return 0.0;
    }
    f64::from(mean_error)
        * (2.0 * lead_ms as f64 / horizon_ms as f64)
        * (std::f64::consts::PI / 2.0).sqrt()
}

/// The trace's own future at its step starts in `(now_ms, now_ms + horizon_ms]`,
/// each value multiplied by `1 + e`, `e ~ Normal(0, σ(h))` with `h` the lead
/// time (see [`sigma`]); so the mean absolute relative error over the horizon
/// is `mean_error` (0.05: [`DEFAULT_MEAN_ERROR`]), smallest for the next step
/// and twice that at the horizon. Values are kept non-negative.
///
/// Deterministic: the noise of a point is a fixed function of `(seed,
/// now_ms, point time)`. A `mean_error` that is not a positive number gives
/// the trace itself (a perfect forecast). Steps past the trace's end are
/// left out.
pub fn with_error(
    trace: &Trace,
    now_ms: u64,
    horizon_ms: u64,
    mean_error: f32,
    seed: u64,
) -> Vec<ForecastPoint> {
    trace
        .steps_in(now_ms, now_ms.saturating_add(horizon_ms))
        .map(|(i, t)| {
            let s = sigma(mean_error, t - now_ms, horizon_ms);
            let e = if s > 0.0 {
                s * SplitMix64::new(rng::hash(&[seed, now_ms, t])).normal()
            } else {
                0.0
            };
            point(trace, t, (f64::from(trace.values[i]) * (1.0 + e)).max(0.0))
        })
        .collect()
}

/// Daily persistence, knowing only the past: for each step start `t` in
/// `(now_ms, now_ms + horizon_ms]` (on the trace's grid, also past its end),
/// the value observed at the same time of day on the most recent day whose
/// step had ended by `now_ms`: `t − d·24 h` with `d = ⌈h/24 h⌉`, or one
/// more day when that step was still running at `now_ms`. Never reads a
/// value of a step that ends after `now_ms`; points without such history
/// (near the trace's start) are left out.
pub fn from_history(trace: &Trace, now_ms: u64, horizon_ms: u64) -> Vec<ForecastPoint> {
    let mut out = Vec::new();
    if trace.step_ms == 0 {
        return out;
    }
    let until = now_ms.saturating_add(horizon_ms);
    // The first grid point after `now_ms`.
    let mut t = if now_ms < trace.start_ms {
        trace.start_ms
    } else {
        let k = (now_ms - trace.start_ms) / trace.step_ms + 1;
        trace
            .start_ms
            .saturating_add(k.saturating_mul(trace.step_ms))
    };
    while t <= until && t > now_ms {
        let lead = t - now_ms;
        let mut days = lead.div_ceil(DAY_MS).max(1);
        while let Some(i) = Trace::days_before(t, days).and_then(|x| trace.index(x)) {
            if trace.step_start(i) + trace.step_ms <= now_ms {
                out.push(point(trace, t, f64::from(trace.values[i])));
                break;
            }
            days += 1;
        }
        t = match t.checked_add(trace.step_ms) {
            Some(next) => next,
            None => break,
        };
    }
    out
}

/// What a node replaying `trace` live reports at real time `now_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// The trace at [`Trace::replay_time`]`(now_ms)`, gCO2/kWh.
    pub intensity: f32,
    /// The trace from the step containing the replayed instant to
    /// `horizon_ms` after it, re-timed onto the real clock (timestamps =
    /// `now_ms` + offset from the replayed instant).
    pub forecast: Vec<ForecastPoint>,
}

/// The replayed intensity and the next `horizon_ms` of the trace (a perfect
/// forecast), shifted to the real clock; `None` for an empty trace.
pub fn replayed(trace: &Trace, now_ms: u64, horizon_ms: u64) -> Option<Replayed> {
    let r = trace.replay_time(now_ms);
    let current = trace.index(r)?;
    let shift = |t: u64| -> u64 {
        let shifted = i128::from(t) + i128::from(now_ms) - i128::from(r);
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    };
    let forecast = std::iter::once((current, trace.step_start(current)))
        .chain(trace.steps_in(r, r.saturating_add(horizon_ms)))
        .map(|(i, t)| point(trace, shift(t), f64::from(trace.values[i])))
        .collect();
    Some(Replayed {
        intensity: trace.values[current],
        forecast,
    })
}

/// Time-weighted mean of a forecast over `[from_ms, to_ms)`, each point
/// holding over `[timestamp, timestamp + duration)`; `None` unless the
/// points (taken as non-overlapping) cover the whole interval. An empty
/// interval gives the value of the point containing it.
pub fn mean(points: &[ForecastPoint], from_ms: u64, to_ms: u64) -> Option<f32> {
    if from_ms == to_ms {
        return points
            .iter()
            .find(|p| p.timestamp_ms <= from_ms && from_ms < p.end_ms())
            .map(|p| p.value);
    }
    if from_ms > to_ms {
        return None;
    }
    let (mut sum, mut covered) = (0.0f64, 0u64);
    for p in points {
        let a = p.timestamp_ms.max(from_ms);
        let b = p.end_ms().min(to_ms);
        if a < b {
            sum += f64::from(p.value) * (b - a) as f64;
            covered += b - a;
        }
    }
    (covered == to_ms - from_ms).then(|| (sum / covered as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const H: u64 = 3_600_000;

    fn gb() -> Trace {
        Trace::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/carbon/gb_ci_2020.csv"))
            .unwrap()
    }

    /// Mean |forecast/actual − 1| by quarter of the horizon, and overall.
    fn realised_error(trace: &Trace, mean_error: f32, seed: u64) -> ([f64; 4], f64) {
        let horizon = 24 * H;
        let (mut sums, mut counts) = ([0.0f64; 4], [0usize; 4]);
        let mut now = trace.start_ms + 3 * H + 17 * 60_000;
        while now + horizon < trace.end_ms() {
            for p in with_error(trace, now, horizon, mean_error, seed) {
                let actual = f64::from(trace.at(p.timestamp_ms).unwrap());
                let q = (((p.timestamp_ms - now - 1) * 4) / horizon) as usize;
                sums[q] += (f64::from(p.value) / actual - 1.0).abs();
                counts[q] += 1;
            }
            now += 7 * H;
        }
        let overall = sums.iter().sum::<f64>() / counts.iter().sum::<usize>() as f64;
        let by_quarter = std::array::from_fn(|q| sums[q] / counts[q] as f64);
        (by_quarter, overall)
    }

    #[test]
    fn error_averages_the_mean_error_and_grows_with_lead_time() {
        let trace = gb();
        let (quarters, overall) = realised_error(&trace, DEFAULT_MEAN_ERROR, 1);
        assert!((overall - 0.05).abs() < 0.0025, "{overall}");
        // Expected 0.25, 0.75, 1.25, 1.75 × 5 %.
        for (q, want) in quarters.iter().zip([0.0125, 0.0375, 0.0625, 0.0875]) {
            assert!((q - want).abs() < 0.1 * want, "{quarters:?}");
        }
        let (_, ten) = realised_error(&trace, 0.10, 2);
        assert!((ten - 0.10).abs() < 0.005, "{ten}");
    }

    #[test]
    fn noisy_forecasts_are_seeded_and_on_the_trace_grid() {
        let trace = gb();
        let now = trace.start_ms + 100 * H + 5 * 60_000;
        let a = with_error(&trace, now, 24 * H, 0.05, 9);
        assert_eq!(a, with_error(&trace, now, 24 * H, 0.05, 9));
        assert_ne!(a, with_error(&trace, now, 24 * H, 0.05, 10));
        assert_eq!(a.len(), 48);
        assert_eq!(a[0].timestamp_ms, trace.start_ms + 100 * H + 30 * 60_000);
        assert!(a.iter().all(|p| p.duration_min == 30));
        let perfect = with_error(&trace, now, 24 * H, f32::NAN, 9);
        assert!(perfect
            .iter()
            .all(|p| Some(p.value) == trace.at(p.timestamp_ms)));
        assert!(with_error(&trace, now, 0, 0.05, 9).is_empty());
        assert!(with_error(&trace, trace.end_ms(), 24 * H, 0.05, 9).is_empty());
    }

    #[test]
    fn history_forecasts_never_look_past_now() {
        let trace = gb();
        for now in [
            trace.start_ms + 200 * 24 * H,          // on a step boundary
            trace.start_ms + 200 * 24 * H + 61_000, // inside a step
        ] {
            let mut poisoned = trace.clone();
            // Every step not finished by `now` becomes NaN.
            let running = trace.index(now).unwrap();
            for v in &mut poisoned.values[running..] {
                *v = f32::NAN;
            }
            let clean = from_history(&trace, now, 48 * H);
            let seen = from_history(&poisoned, now, 48 * H);
            assert_eq!(seen.len(), 96);
            assert!(seen.iter().all(|p| p.value.is_finite()));
            assert_eq!(clean, seen);
            // Same time of day, one or two days back.
            let p = seen[10];
            let back = [1, 2].map(|d| trace.at(p.timestamp_ms - d * 24 * H).unwrap());
            assert!(back.contains(&p.value));
        }
        // A day past the trace's end it still forecasts (from the past).
        let late = from_history(&trace, trace.end_ms() + 3 * H, 12 * H);
        assert_eq!(late.len(), 24);
        // No history yet: nothing.
        assert!(from_history(&trace, trace.start_ms, 6 * H).is_empty());
    }

    #[test]
    fn daily_persistence_error_on_the_real_traces() {
        // Measured (24 h horizon, a forecast every 5 h over the year):
        // GB 23.9 %, DE 23.7 %: yesterday is a rough guide.
        let de = Trace::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/carbon/ger_ci_2020.csv"),
        )
        .unwrap();
        for (trace, want) in [(gb(), 0.239), (de, 0.237)] {
            let (mut sum, mut n) = (0.0, 0);
            let mut now = trace.start_ms + 2 * 24 * H;
            while now + 24 * H < trace.end_ms() {
                for p in from_history(&trace, now, 24 * H) {
                    let actual = f64::from(trace.at(p.timestamp_ms).unwrap());
                    sum += (f64::from(p.value) / actual - 1.0).abs();
                    n += 1;
                }
                now += 5 * H;
            }
            let mare = sum / n as f64;
            assert!((mare - want).abs() < 0.01, "{}: {mare}", trace.region);
        }
    }

    #[test]
    fn serializes_in_the_carbon_aware_sdk_shape() {
        let p = ForecastPoint {
            timestamp_ms: civil::parse_utc("2020-03-01 12:00:00").unwrap(),
            duration_min: 30,
            value: 212.5,
        };
        let v = serde_json::to_value(p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"timestamp": "2020-03-01T12:00:00Z", "duration": 30, "value": 212.5})
        );
        let back: ForecastPoint = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        let err = serde_json::from_str::<ForecastPoint>(
            r#"{"timestamp": "yesterday", "duration": 30, "value": 1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("timestamp"), "{err}");
    }

    #[test]
    fn replay_retimes_the_next_day_onto_the_real_clock() {
        let trace = gb();
        let now = civil::parse_utc("2026-03-15 12:07:00").unwrap();
        let r = replayed(&trace, now, 24 * H).unwrap();
        let then = civil::parse_utc("2020-03-15 12:07:00").unwrap();
        assert_eq!(Some(r.intensity), trace.at(then));
        assert_eq!(r.forecast.len(), 49);
        assert_eq!(
            civil::format_rfc3339(r.forecast[0].timestamp_ms),
            "2026-03-15T12:00:00Z"
        );
        assert_eq!(
            civil::format_rfc3339(r.forecast[48].timestamp_ms),
            "2026-03-16T12:00:00Z"
        );
        assert_eq!(Some(r.forecast[1].value), trace.at(then + 23 * 60_000));
        // The forecast covers [now, now + 24 h) and averages like the trace.
        let m = mean(&r.forecast, now, now + 24 * H).unwrap();
        assert!((m - trace.mean(then, then + 24 * H).unwrap()).abs() < 1e-3);
        assert_eq!(mean(&r.forecast, now, now + 25 * H), None);
        assert_eq!(mean(&r.forecast, now, now), Some(r.intensity));
        let empty = Trace {
            values: vec![],
            ..trace
        };
        assert_eq!(replayed(&empty, now, H), None);
    }
}
