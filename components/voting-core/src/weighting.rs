//! A weighting scheme as the ballot box sees it: a name and a function
//! giving each stored ballot its weight.
//!
//! The components own their schemes (`voting` has four, the alternatives
//! one each); this crate only applies them. The weight is computed at tally
//! time from what was stored with the ballot, so a scheme switch re-weighs
//! every open poll.

use crate::ballot::StoredBallot;
use crate::tally::{tally, Tally};

/// The scheme in force for one call.
#[derive(Clone, Copy)]
pub struct Weighting<'a> {
    /// Reported in each outcome's `scheme`.
    pub scheme: &'a str,
    /// The weight of one ballot (NaN or negative counts 0).
    pub weight: &'a dyn Fn(&StoredBallot) -> f64,
}

impl<'a> Weighting<'a> {
    pub fn new(scheme: &'a str, weight: &'a dyn Fn(&StoredBallot) -> f64) -> Self {
        Weighting { scheme, weight }
    }

    /// Weighs `ballots` and counts them.
    pub fn tally(&self, ballots: &[StoredBallot]) -> Tally {
        let weighted: Vec<_> = ballots
            .iter()
            .map(|b| (b.level, (self.weight)(b)))
            .collect();
        tally(&weighted)
    }
}

impl std::fmt::Debug for Weighting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weighting")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::Standing;
    use crate::level::Level;
    use crate::tally::DecidedBy;

    fn ballot(voter: &str, level: Level, donations: f64) -> StoredBallot {
        StoredBallot {
            voter: voter.into(),
            level,
            standing: Standing {
                donations,
                ..Standing::default()
            },
            credits: 0,
        }
    }

    #[test]
    fn switching_the_scheme_reweighs_the_same_ballots() {
        // Two small donors want `low`, one big donor wants `critical`.
        let ballots = [
            ballot("ann", Level::Low, 1.0),
            ballot("bob", Level::Low, 1.0),
            ballot("cat", Level::Critical, 50.0),
        ];
        let one_per_user = Weighting::new("one-per-user", &|_| 1.0);
        let stake = Weighting::new("stake", &|b| b.standing.donations);

        let by_head = one_per_user.tally(&ballots);
        assert_eq!(by_head.importance, Some(Level::Low));
        assert_eq!(by_head.decided_by, DecidedBy::Consensus);
        assert!((by_head.confidence - 2.0 / 3.0).abs() < 1e-12);

        let by_stake = stake.tally(&ballots);
        assert_eq!(by_stake.importance, Some(Level::Critical));
        assert_eq!(by_stake.decided_by, DecidedBy::Consensus);
        assert!((by_stake.confidence - 50.0 / 52.0).abs() < 1e-12);
        assert_eq!(by_stake.total_weight, 52.0);
        assert_eq!(by_stake.ballots, 3);
    }

    #[test]
    fn a_weight_function_returning_garbage_counts_zero() {
        let ballots = [
            ballot("ann", Level::High, 0.0),
            ballot("bob", Level::Low, 0.0),
        ];
        let broken = Weighting::new("broken", &|b| {
            if b.voter == "ann" {
                f64::NAN
            } else {
                -1.0
            }
        });
        let t = broken.tally(&ballots);
        assert_eq!(t.total_weight, 0.0);
        assert_eq!(t.importance, Some(Level::Normal));
        assert_eq!(t.decided_by, DecidedBy::NoConsensus);
    }
}
