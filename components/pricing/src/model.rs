//! The `online-v1` pricing model as pure functions: no I/O, no clock.
//!
//! A quote is the provider's base price times five bounded factors:
//!
//! ```text
//! price = base × demand × load × latency × complexity × learned
//! ```
//!
//! | factor | formula | range |
//! |---|---|---|
//! | demand | `1 + ½·ln(1 + queued / (free + 1))` | [1, 3] |
//! | load | `1 + ½·load²`, load clamped to [0, 1] | [1, 1.5] |
//! | latency | `1 + min(latency_ms, 500) / 1000` | [1, 1.5] |
//! | complexity | `1 + 0.05·MiB + ¼·excess(time / 30 s) + ¼·excess(memory / 128 MiB)` | [1, 4] |
//! | learned | per capability, updated online from outcomes | [0.25, 4] |
//!
//! where `excess(r) = max(0, r − 1)`. Every factor except `learned` is ≥ 1:
//! they are premiums over the provider's ask; only the learned multiplier can
//! take a quote below it, and only when requesters keep refusing the price.
//!
//! The learned multiplier moves in log space toward a target acceptance rate
//! (a Robbins–Monro step with a constant rate, so it keeps tracking a market
//! that drifts):
//!
//! ```text
//! accepted and succeeded: m ← m·exp(+η·(1 − target))
//! accepted but failed:    m ← m·exp(+η·(1 − target) − penalty)
//! not accepted:           m ← m·exp(−η·target)
//! m clamped to [0.25, 4]; η = 0.1, target = 0.8, penalty = η·(1 − target)
//! ```
//!
//! At equilibrium `p·(1 − target) = (1 − p)·target`, so the acceptance rate
//! `p` settles at `target`. The failure penalty cancels the acceptance's
//! raise: a price only rises on work that was both accepted and delivered,
//! while a failure does not by itself lower the capability's price (a
//! failing provider is the reputation component's business, not the
//! market's).

/// The name reported in `quote.model`.
pub const MODEL: &str = "online-v1";

/// Upper bound of the demand factor.
pub const DEMAND_MAX: f64 = 3.0;
/// Weight of `ln(1 + queued / (free + 1))` in the demand factor.
pub const DEMAND_WEIGHT: f64 = 0.5;
/// Weight of `load²` in the load factor.
pub const LOAD_WEIGHT: f64 = 0.5;
/// Latency beyond this adds nothing more (the factor is capped at 1.5).
pub const LATENCY_CAP_MS: f64 = 500.0;
/// Complexity added per MiB of input.
pub const COMPLEXITY_PER_MIB: f64 = 0.05;
/// A "small" task's time limit; each further multiple adds [`COMPLEXITY_PER_EXCESS`].
pub const REFERENCE_TIME_SEC: f64 = 30.0;
/// A "small" task's memory limit; each further multiple adds [`COMPLEXITY_PER_EXCESS`].
pub const REFERENCE_MEMORY_MB: f64 = 128.0;
/// Complexity added per multiple of the reference time or memory beyond the first.
pub const COMPLEXITY_PER_EXCESS: f64 = 0.25;
/// Upper bound of the complexity factor.
pub const COMPLEXITY_MAX: f64 = 4.0;

/// Bounds of the learned multiplier.
pub const LEARNED_MIN: f64 = 0.25;
pub const LEARNED_MAX: f64 = 4.0;
/// Acceptance rate the learned multiplier steers toward.
pub const TARGET_ACCEPTANCE: f64 = 0.8;
/// Step size η of the update, in log space.
pub const LEARNING_RATE: f64 = 0.1;
/// Log-space step down when an accepted task then failed: exactly the
/// acceptance's raise, so such an outcome leaves the multiplier unchanged.
pub const FAILURE_PENALTY: f64 = LEARNING_RATE * (1.0 - TARGET_ACCEPTANCE);

/// What a quote is computed from (the WIT `quote-request` without the capability).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    pub base_price: f64,
    pub input_bytes: u64,
    pub max_execution_time_sec: u32,
    pub max_memory_mb: u64,
    pub queued_tasks: u32,
    pub free_nodes: u32,
    pub provider_load: f64,
    pub latency_ms: f64,
}

/// A priced request: `price = base × Π factors`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    pub price: f64,
    pub factors: Vec<(&'static str, f64)>,
}

/// `x` if it is a finite number, else `fallback`.
fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
}

/// Queue pressure: 1 with nothing queued, growing logarithmically with
/// queued tasks per free node, at most [`DEMAND_MAX`].
pub fn demand(queued_tasks: u32, free_nodes: u32) -> f64 {
    let pressure = f64::from(queued_tasks) / (f64::from(free_nodes) + 1.0);
    (1.0 + DEMAND_WEIGHT * pressure.ln_1p()).clamp(1.0, DEMAND_MAX)
}

/// Provider load premium: flat while the provider is idle, +50% when fully
/// loaded (quadratic, so moderate load costs little).
pub fn load(provider_load: f64) -> f64 {
    let l = finite_or(provider_load, 0.0).clamp(0.0, 1.0);
    1.0 + LOAD_WEIGHT * l * l
}

/// Network premium: +0.1% per ms of estimated latency, capped at +50%.
pub fn latency(latency_ms: f64) -> f64 {
    1.0 + finite_or(latency_ms, 0.0).clamp(0.0, LATENCY_CAP_MS) / 1000.0
}

/// Task size premium from input bytes and the requested time and memory
/// beyond a small task's, capped at [`COMPLEXITY_MAX`].
pub fn complexity(input_bytes: u64, max_execution_time_sec: u32, max_memory_mb: u64) -> f64 {
    let mib = input_bytes as f64 / (1024.0 * 1024.0);
    let excess = |requested: f64, reference: f64| (requested / reference - 1.0).max(0.0);
    let c = 1.0
        + COMPLEXITY_PER_MIB * mib
        + COMPLEXITY_PER_EXCESS * excess(f64::from(max_execution_time_sec), REFERENCE_TIME_SEC)
        + COMPLEXITY_PER_EXCESS * excess(max_memory_mb as f64, REFERENCE_MEMORY_MB);
    finite_or(c, COMPLEXITY_MAX).clamp(1.0, COMPLEXITY_MAX)
}

/// A stored multiplier made safe to use: non-finite or non-positive → 1,
/// otherwise clamped to [[`LEARNED_MIN`], [`LEARNED_MAX`]].
pub fn learned(stored: f64) -> f64 {
    if stored.is_finite() && stored > 0.0 {
        stored.clamp(LEARNED_MIN, LEARNED_MAX)
    } else {
        1.0
    }
}

/// The quote for `request` given the capability's learned multiplier.
/// Never NaN, never negative, never infinite; a base price that is not a
/// positive finite number prices at 0.
pub fn quote(request: &Request, learned_multiplier: f64) -> Quote {
    let factors = vec![
        ("demand", demand(request.queued_tasks, request.free_nodes)),
        ("load", load(request.provider_load)),
        ("latency", latency(request.latency_ms)),
        (
            "complexity",
            complexity(
                request.input_bytes,
                request.max_execution_time_sec,
                request.max_memory_mb,
            ),
        ),
        ("learned", learned(learned_multiplier)),
    ];
    let base = if request.base_price.is_finite() && request.base_price > 0.0 {
        request.base_price
    } else {
        0.0
    };
    let price = factors.iter().fold(base, |p, (_, f)| p * f);
    let price = if price.is_finite() { price } else { f64::MAX };
    Quote { price, factors }
}

/// The multiplicative step one outcome applies to the learned multiplier
/// (before clamping): `exp(Δ)` with the log-space Δ described in the module docs.
pub fn outcome_factor(accepted: bool, succeeded: bool) -> f64 {
    let step = if accepted {
        let penalty = if succeeded { 0.0 } else { FAILURE_PENALTY };
        LEARNING_RATE * (1.0 - TARGET_ACCEPTANCE) - penalty
    } else {
        // A quote that was not accepted never ran: `succeeded` carries no signal.
        -LEARNING_RATE * TARGET_ACCEPTANCE
    };
    step.exp()
}

/// `multiplier × factor`, clamped to the learned bounds. The component's SQL
/// upsert computes exactly this in the database
/// (`min(max(multiplier * factor, LEARNED_MIN), LEARNED_MAX)`), so that
/// concurrent outcomes do not overwrite each other.
pub fn apply(multiplier: f64, factor: f64) -> f64 {
    (learned(multiplier) * factor).clamp(LEARNED_MIN, LEARNED_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            base_price: 10.0,
            input_bytes: 0,
            max_execution_time_sec: 30,
            max_memory_mb: 128,
            queued_tasks: 0,
            free_nodes: 3,
            provider_load: 0.0,
            latency_ms: 0.0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn factor(q: &Quote, name: &str) -> f64 {
        q.factors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap()
    }

    #[test]
    fn an_idle_market_quotes_the_base_price() {
        let q = quote(&request(), 1.0);
        assert!(close(q.price, 10.0), "{q:?}");
        let names: Vec<_> = q.factors.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["demand", "load", "latency", "complexity", "learned"]
        );
        assert!(q.factors.iter().all(|(_, v)| close(*v, 1.0)));
    }

    #[test]
    fn price_is_base_times_the_product_of_factors() {
        let r = Request {
            input_bytes: 3 << 20,
            max_execution_time_sec: 90,
            max_memory_mb: 512,
            queued_tasks: 7,
            free_nodes: 1,
            provider_load: 0.6,
            latency_ms: 120.0,
            ..request()
        };
        let q = quote(&r, 1.3);
        let product: f64 = q.factors.iter().map(|(_, v)| v).product();
        assert!(close(q.price, 10.0 * product));
        assert!(close(factor(&q, "demand"), 1.0 + 0.5 * (1.0f64 + 3.5).ln()));
        assert!(close(factor(&q, "load"), 1.18));
        assert!(close(factor(&q, "latency"), 1.12));
        assert!(close(factor(&q, "complexity"), 1.0 + 0.15 + 0.5 + 0.75));
        assert!(close(factor(&q, "learned"), 1.3));
    }

    #[test]
    fn demand_grows_with_queue_per_free_node_and_is_bounded() {
        assert!(close(demand(0, 0), 1.0));
        assert!(close(demand(0, 100), 1.0));
        assert!(demand(4, 0) > demand(4, 3));
        assert!(demand(10, 0) > demand(2, 0));
        assert!(close(demand(u32::MAX, 0), DEMAND_MAX));
    }

    #[test]
    fn load_and_latency_are_bounded_and_sanitized() {
        assert!(close(load(0.0), 1.0));
        assert!(close(load(0.5), 1.125));
        assert!(close(load(1.0), 1.5));
        assert!(close(load(7.0), 1.5));
        assert!(close(load(-1.0), 1.0));
        assert!(close(load(f64::NAN), 1.0));
        assert!(close(latency(250.0), 1.25));
        assert!(close(latency(1e9), 1.5));
        assert!(close(latency(f64::INFINITY), 1.0));
        assert!(close(latency(-5.0), 1.0));
    }

    #[test]
    fn complexity_counts_only_what_exceeds_a_small_task() {
        assert!(close(complexity(0, 0, 0), 1.0));
        assert!(close(complexity(0, 10, 64), 1.0));
        assert!(close(complexity(1 << 20, 30, 128), 1.05));
        assert!(close(complexity(0, 60, 128), 1.25));
        assert!(close(complexity(0, 30, 256), 1.25));
        assert!(close(
            complexity(u64::MAX, u32::MAX, u64::MAX),
            COMPLEXITY_MAX
        ));
    }

    #[test]
    fn bad_base_prices_quote_zero_and_nothing_is_ever_nan_or_negative() {
        for base in [0.0, -3.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let q = quote(
                &Request {
                    base_price: base,
                    ..request()
                },
                1.0,
            );
            assert_eq!(q.price, 0.0, "base {base}");
        }
        let wild = Request {
            base_price: f64::MAX,
            input_bytes: u64::MAX,
            max_execution_time_sec: u32::MAX,
            max_memory_mb: u64::MAX,
            queued_tasks: u32::MAX,
            free_nodes: 0,
            provider_load: f64::NAN,
            latency_ms: f64::NAN,
        };
        for m in [f64::NAN, -1.0, 0.0, 1e300, f64::INFINITY] {
            let q = quote(&wild, m);
            assert!(q.price.is_finite() && q.price >= 0.0, "{q:?}");
            assert!(
                q.factors.iter().all(|(_, v)| v.is_finite() && *v > 0.0),
                "{q:?}"
            );
        }
    }

    #[test]
    fn learned_multiplier_is_sanitized_and_clamped() {
        assert_eq!(learned(f64::NAN), 1.0);
        assert_eq!(learned(0.0), 1.0);
        assert_eq!(learned(-2.0), 1.0);
        assert_eq!(learned(0.01), LEARNED_MIN);
        assert_eq!(learned(100.0), LEARNED_MAX);
        assert_eq!(learned(1.7), 1.7);
    }

    #[test]
    fn acceptance_raises_and_refusal_lowers_the_multiplier() {
        let up = outcome_factor(true, true);
        let down = outcome_factor(false, false);
        assert!(close(up.ln(), 0.02));
        assert!(close(down.ln(), -0.08));
        assert_eq!(
            outcome_factor(true, false),
            1.0,
            "an accepted task that failed is neutral"
        );
        // `succeeded` carries no signal for a refused quote.
        assert_eq!(outcome_factor(false, true), down);
    }

    #[test]
    fn the_multiplier_stays_within_bounds() {
        let mut m = 1.0;
        for _ in 0..1000 {
            m = apply(m, outcome_factor(false, false));
        }
        assert_eq!(m, LEARNED_MIN);
        for _ in 0..1000 {
            m = apply(m, outcome_factor(true, true));
        }
        assert_eq!(m, LEARNED_MAX);
    }

    #[test]
    fn the_multiplier_settles_where_acceptance_meets_the_target() {
        // Four acceptances per refusal (80%) is the fixed point.
        let mut m = 1.0;
        for _ in 0..100 {
            for _ in 0..4 {
                m = apply(m, outcome_factor(true, true));
            }
            m = apply(m, outcome_factor(false, false));
        }
        assert!(close(m, 1.0), "{m}");
        // A simulated market: requesters accept when the price is at most 1.5×;
        // the multiplier ends up within one step of 1.5.
        let mut m = 1.0;
        for _ in 0..2000 {
            m = apply(m, outcome_factor(m <= 1.5, true));
        }
        assert!(
            (1.5 * (-0.08f64).exp()..=1.5 * 0.02f64.exp()).contains(&m),
            "{m}"
        );
    }
}
