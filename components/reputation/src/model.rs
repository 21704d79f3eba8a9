//! Beta reputation with exponential decay, as pure functions (see
//! `docs/reputation.md`).
//!
//! Per (subject, role) we keep decayed event counts `s, f, t, b, w`
//! (successes, failures, timeouts, bad signatures, wrong results). On each
//! event every count is first decayed by `0.5^(Δt / half_life)` and then
//! the event's count grows by 1. The score is the mean of a
//! Beta(1 + s, 1 + f + t + 5·b + 5·w) posterior:
//!
//! ```text
//! value = (s + 1) / (s + f + t + 5·b + 5·w + 2)
//! ```
//!
//! so a subject with no history scores 0.5, and a bad signature or a wrong
//! result (both caught cheating, not merely failing) weighs as much as five
//! failures.

/// Counts halve every seven days.
pub const HALF_LIFE_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// A bad signature counts as this many failures.
pub const BAD_SIGNATURE_WEIGHT: f64 = 5.0;
/// A wrong result counts as much as a bad signature.
pub const WRONG_RESULT_WEIGHT: f64 = BAD_SIGNATURE_WEIGHT;

/// What happened, from the subject's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Success,
    Failure,
    Timeout,
    BadSignature,
    WrongResult,
}

/// Decayed event counts, as of some instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub successes: f64,
    pub failures: f64,
    pub timeouts: f64,
    pub bad_signatures: f64,
    pub wrong_results: f64,
}

/// The factor counts are multiplied by after `elapsed_ms`: 1 at 0, ½ after
/// one half-life, tending to 0.
pub fn decay_factor(elapsed_ms: u64) -> f64 {
    0.5f64.powf(elapsed_ms as f64 / HALF_LIFE_MS as f64)
}

/// A count read from storage made safe: negative or not finite → 0.
fn count(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

impl Counts {
    /// The counts one `event` adds.
    pub fn of(event: Event) -> Self {
        let mut c = Self::default();
        match event {
            Event::Success => c.successes = 1.0,
            Event::Failure => c.failures = 1.0,
            Event::Timeout => c.timeouts = 1.0,
            Event::BadSignature => c.bad_signatures = 1.0,
            Event::WrongResult => c.wrong_results = 1.0,
        }
        c
    }

    /// Every count made finite and non-negative.
    pub fn sanitized(self) -> Self {
        Self {
            successes: count(self.successes),
            failures: count(self.failures),
            timeouts: count(self.timeouts),
            bad_signatures: count(self.bad_signatures),
            wrong_results: count(self.wrong_results),
        }
    }

    /// The counts `elapsed_ms` later, with no event in between.
    pub fn decayed(self, elapsed_ms: u64) -> Self {
        let d = decay_factor(elapsed_ms);
        let c = self.sanitized();
        Self {
            successes: c.successes * d,
            failures: c.failures * d,
            timeouts: c.timeouts * d,
            bad_signatures: c.bad_signatures * d,
            wrong_results: c.wrong_results * d,
        }
    }

    /// The counts after `event` happens `elapsed_ms` after these were current:
    /// decay, then count the event. The component applies the same linear
    /// update (`count × decay + increment`) in SQL.
    pub fn after(self, elapsed_ms: u64, event: Event) -> Self {
        let c = self.decayed(elapsed_ms);
        let e = Self::of(event);
        Self {
            successes: c.successes + e.successes,
            failures: c.failures + e.failures,
            timeouts: c.timeouts + e.timeouts,
            bad_signatures: c.bad_signatures + e.bad_signatures,
            wrong_results: c.wrong_results + e.wrong_results,
        }
    }

    /// The reputation, in (0, 1): `(s + 1) / (s + f + t + 5·b + 5·w + 2)`.
    pub fn value(&self) -> f64 {
        let c = self.sanitized();
        let v = (c.successes + 1.0)
            / (c.successes
                + c.failures
                + c.timeouts
                + BAD_SIGNATURE_WEIGHT * c.bad_signatures
                + WRONG_RESULT_WEIGHT * c.wrong_results
                + 2.0);
        if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.5
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn no_history_is_neutral() {
        assert_eq!(Counts::default().value(), 0.5);
    }

    #[test]
    fn each_event_moves_the_value_the_right_way() {
        let none = Counts::default();
        assert!(close(none.after(0, Event::Success).value(), 2.0 / 3.0));
        assert!(close(none.after(0, Event::Failure).value(), 1.0 / 3.0));
        assert!(close(none.after(0, Event::Timeout).value(), 1.0 / 3.0));
        assert!(close(none.after(0, Event::BadSignature).value(), 1.0 / 7.0));
        assert!(close(none.after(0, Event::WrongResult).value(), 1.0 / 7.0));
    }

    #[test]
    fn a_bad_signature_weighs_five_failures() {
        let mut failures = Counts::default();
        for _ in 0..5 {
            failures = failures.after(0, Event::Failure);
        }
        let bad = Counts::default().after(0, Event::BadSignature);
        assert!(close(failures.value(), bad.value()));
    }

    #[test]
    fn counts_halve_every_half_life() {
        assert_eq!(decay_factor(0), 1.0);
        assert!(close(decay_factor(HALF_LIFE_MS), 0.5));
        assert!(close(decay_factor(3 * HALF_LIFE_MS), 0.125));
        assert!(decay_factor(u64::MAX) >= 0.0);
        let c = Counts {
            successes: 8.0,
            failures: 4.0,
            timeouts: 2.0,
            bad_signatures: 1.0,
            wrong_results: 6.0,
        };
        let d = c.decayed(HALF_LIFE_MS);
        assert_eq!(
            d,
            Counts {
                successes: 4.0,
                failures: 2.0,
                timeouts: 1.0,
                bad_signatures: 0.5,
                wrong_results: 3.0,
            }
        );
    }

    #[test]
    fn old_history_fades_back_toward_neutral() {
        let mut c = Counts::default();
        for _ in 0..20 {
            c = c.after(60_000, Event::Failure);
        }
        assert!(c.value() < 0.1);
        let year_later = c.decayed(52 * HALF_LIFE_MS);
        assert!((year_later.value() - 0.5).abs() < 1e-9);
        // Recent successes outweigh older failures of the same number.
        let mut c = Counts::default();
        for _ in 0..10 {
            c = c.after(0, Event::Failure);
        }
        for _ in 0..10 {
            c = c.after(HALF_LIFE_MS / 10, Event::Success);
        }
        assert!(c.value() > 0.5, "{c:?}");
    }

    #[test]
    fn garbage_counts_are_treated_as_zero() {
        let c = Counts {
            successes: f64::NAN,
            failures: -3.0,
            timeouts: f64::INFINITY,
            bad_signatures: f64::NEG_INFINITY,
            wrong_results: f64::NAN,
        };
        assert_eq!(c.sanitized(), Counts::default());
        assert_eq!(c.value(), 0.5);
        assert!(close(c.after(0, Event::Success).value(), 2.0 / 3.0));
    }

    #[test]
    fn value_is_always_in_the_unit_interval() {
        let huge = Counts {
            successes: f64::MAX,
            failures: f64::MAX,
            timeouts: f64::MAX,
            bad_signatures: f64::MAX,
            wrong_results: f64::MAX,
        };
        let v = huge.value();
        assert!((0.0..=1.0).contains(&v), "{v}");
        let only_successes = Counts {
            successes: 1e12,
            ..Counts::default()
        };
        assert!(only_successes.value() < 1.0 && only_successes.value() > 0.99);
    }
}
