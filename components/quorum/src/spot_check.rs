//! The adaptive spot-check rate: BOINC's adaptive replication, with exact
//! comparison. A deterministic task that does not ask for proof runs once;
//! with probability [`rate`] the broker reruns it on a node of another
//! owner without telling the first, and compares the outputs by hash.
//!
//! The probability falls with the node's record of verified agreement and
//! rises again after any mismatch: a node with no record (new, or just
//! caught disagreeing) is checked at the ceiling; after `n` agreeing checks
//! since its last mismatch, at `rate × RECORD_SCALE / n`, within the floor
//! and the ceiling. So every new identity starts on probation (a cheater
//! gains nothing from fresh node keys), and a node with a long clean record
//! costs the network little more than one execution per task.

/// Agreeing checks at which a node is checked at the base rate (fewer: more
/// often, up to the ceiling; more: less often, down to the floor).
pub const RECORD_SCALE: u64 = 20;

/// The knobs (the Spin variables `spot_check_rate`, `spot_check_floor`
/// and `spot_check_ceiling`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Probability of a check at [`RECORD_SCALE`] agreeing checks.
    pub rate: f64,
    /// Never checked less often than this.
    pub floor: f64,
    /// Never more often than this (and this often with no record).
    pub ceiling: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            // Tuned with `greenmesh bench verify` (docs/benchmarks.md): the
            // highest base rate keeping a network with a record under 1.2
            // executions per task.
            rate: 0.3,
            floor: 0.05,
            ceiling: 1.0,
        }
    }
}

impl Rates {
    /// The same knobs made consistent: each in [0, 1], floor ≤ ceiling.
    pub fn sane(self) -> Self {
        let unit = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let ceiling = unit(self.ceiling);
        Self {
            rate: unit(self.rate),
            floor: unit(self.floor).min(ceiling),
            ceiling,
        }
    }
}

/// How likely a result of a node with `agreed` agreeing checks since its
/// last mismatch is to be checked.
pub fn rate(agreed: u64, rates: &Rates) -> f64 {
    let r = rates.sane();
    if agreed == 0 {
        return r.ceiling;
    }
    (r.rate * RECORD_SCALE as f64 / agreed as f64).clamp(r.floor, r.ceiling)
}

/// A uniform draw in [0, 1) from 8 bytes (the broker derives them from
/// the lease, so deciding twice decides the same).
pub fn draw(bytes: [u8; 8]) -> f64 {
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_a_record_is_always_checked_and_a_long_record_rarely() {
        let r = Rates::default();
        assert_eq!(rate(0, &r), 1.0);
        assert_eq!(rate(5, &r), 1.0, "still on probation");
        assert!((rate(RECORD_SCALE, &r) - r.rate).abs() < 1e-12);
        assert!((rate(4 * RECORD_SCALE, &r) - r.rate / 4.0).abs() < 1e-12);
        assert_eq!(rate(100_000, &r), 0.05, "never below the floor");
        // Monotone: more agreement, fewer checks.
        let rates: Vec<f64> = (0..500).map(|n| rate(n, &r)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn knobs_out_of_range_are_made_consistent() {
        let r = Rates {
            rate: 7.0,
            floor: 0.9,
            ceiling: 0.4,
        };
        assert_eq!(rate(0, &r), 0.4);
        assert_eq!(
            rate(1_000_000, &r),
            0.4,
            "the floor is capped by the ceiling"
        );
        let off = Rates {
            rate: 0.0,
            floor: 0.0,
            ceiling: 0.0,
        };
        assert_eq!(rate(0, &off), 0.0, "a ceiling of 0 turns checks off");
        assert_eq!(
            rate(
                3,
                &Rates {
                    rate: f64::NAN,
                    ..Rates::default()
                }
            ),
            0.05
        );
    }

    #[test]
    fn draws_are_uniform_in_the_unit_interval() {
        assert_eq!(draw([0; 8]), 0.0);
        assert!(draw([0xff; 8]) < 1.0);
        let mean: f64 = (0u64..10_000)
            .map(|i| draw((i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes()))
            .sum::<f64>()
            / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
