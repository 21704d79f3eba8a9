//! The consensus rules of seed 001, as a pure function of weighted ballots.
//!
//! - No ballots: [`DecidedBy::NoVotes`], no importance (the task runs in eco
//!   mode), confidence 0.
//! - Ballots but no weight: [`DecidedBy::NoConsensus`], `normal`, confidence 0.
//! - Every ballot on one level: [`DecidedBy::Unanimous`], that level,
//!   confidence 1.
//! - Otherwise the leading level's share `s = w / total`: at least 60 %
//!   ([`CONSENSUS_SHARE`], compared with a tolerance of [`SHARE_TOLERANCE`]
//!   so that 3 of 5 equal ballots decide) is [`DecidedBy::Consensus`] on that
//!   level with confidence `s`; less is [`DecidedBy::NoConsensus`], `normal`,
//!   confidence `s` (the strongest agreement found).
//!
//! A weight that is NaN, negative or zero counts 0; an infinite one counts
//! `f64::MAX`. If the weights add up past `f64::MAX`, all of them are first
//! divided by the largest, which leaves every share unchanged and keeps the
//! reported weights finite.

use crate::level::Level;
use serde::{Deserialize, Serialize};

/// The share of the weight one level needs for consensus.
pub const CONSENSUS_SHARE: f64 = 0.6;
/// Rounding slack in the consensus comparison: a share this close below
/// [`CONSENSUS_SHARE`] still decides.
pub const SHARE_TOLERANCE: f64 = 1e-9;

/// How an outcome was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// At least 60 % of the weight on one level.
    Consensus,
    /// Every ballot on one level.
    Unanimous,
    /// No level reached 60 %: the task is `normal`.
    NoConsensus,
    /// Nobody voted.
    NoVotes,
}

impl DecidedBy {
    pub fn name(self) -> &'static str {
        match self {
            DecidedBy::Consensus => "consensus",
            DecidedBy::Unanimous => "unanimous",
            DecidedBy::NoConsensus => "no_consensus",
            DecidedBy::NoVotes => "no_votes",
        }
    }
}

/// The result of counting a poll's ballots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The decided importance; `None` when nobody voted.
    pub importance: Option<Level>,
    pub decided_by: DecidedBy,
    /// Share of the weight on the leading level, 0..=1.
    pub confidence: f64,
    /// Weight on each level that received a ballot, most important first.
    pub weights: Vec<(Level, f64)>,
    pub total_weight: f64,
    pub ballots: u32,
}

/// A weight as counted: NaN, negative or zero → 0, +∞ → `f64::MAX`.
pub fn clean_weight(weight: f64) -> f64 {
    if weight.is_nan() || weight <= 0.0 {
        0.0
    } else {
        weight.min(f64::MAX)
    }
}

/// Counts `ballots` (each a level and its weight) by the seed 001 rules.
pub fn tally(ballots: &[(Level, f64)]) -> Tally {
    let count = u32::try_from(ballots.len()).unwrap_or(u32::MAX);
    if ballots.is_empty() {
        return Tally {
            importance: None,
            decided_by: DecidedBy::NoVotes,
            confidence: 0.0,
            weights: Vec::new(),
            total_weight: 0.0,
            ballots: 0,
        };
    }

    let per_level = |scale: f64| {
        let mut sums: [Option<f64>; 5] = [None; 5];
        for &(level, weight) in ballots {
            let sum = sums[level.index()].get_or_insert(0.0);
            *sum += clean_weight(weight) / scale;
        }
        sums
    };
    let mut sums = per_level(1.0);
    let mut total: f64 = sums.iter().flatten().sum();
    if !total.is_finite() {
        let largest = ballots
            .iter()
            .map(|&(_, w)| clean_weight(w))
            .fold(0.0, f64::max);
        sums = per_level(largest);
        total = sums.iter().flatten().sum();
    }

    let weights: Vec<(Level, f64)> = Level::ALL
        .into_iter()
        .filter_map(|level| sums[level.index()].map(|w| (level, w)))
        .collect();

    let normal = |confidence: f64| Tally {
        importance: Some(Level::Normal),
        decided_by: DecidedBy::NoConsensus,
        confidence,
        weights: weights.clone(),
        total_weight: total,
        ballots: count,
    };
    if total <= 0.0 {
        return normal(0.0);
    }
    if let [(level, _)] = weights.as_slice() {
        return Tally {
            importance: Some(*level),
            decided_by: DecidedBy::Unanimous,
            confidence: 1.0,
            weights: weights.clone(),
            total_weight: total,
            ballots: count,
        };
    }

    // The leading level; on a tie the more important one (a tie can only
    // happen below the consensus share, where the level is not used).
    let (leader, lead) =
        weights
            .iter()
            .copied()
            .fold((Level::Normal, f64::NEG_INFINITY), |best, (level, w)| {
                if w > best.1 {
                    (level, w)
                } else {
                    best
                }
            });
    let share = (lead / total).clamp(0.0, 1.0);
    if share >= CONSENSUS_SHARE - SHARE_TOLERANCE {
        Tally {
            importance: Some(leader),
            decided_by: DecidedBy::Consensus,
            confidence: share,
            weights,
            total_weight: total,
            ballots: count,
        }
    } else {
        normal(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    fn one_each(levels: &[Level]) -> Vec<(Level, f64)> {
        levels.iter().map(|&l| (l, 1.0)).collect()
    }

    #[test]
    fn no_ballots_is_no_votes() {
        let t = tally(&[]);
        assert_eq!(t.importance, None);
        assert_eq!(t.decided_by, DecidedBy::NoVotes);
        assert_eq!(t.confidence, 0.0);
        assert_eq!(t.ballots, 0);
        assert!(t.weights.is_empty());
    }

    #[test]
    fn zero_total_weight_is_normal_without_confidence() {
        let t = tally(&[(High, 0.0), (Low, 0.0)]);
        assert_eq!(t.importance, Some(Normal));
        assert_eq!(t.decided_by, DecidedBy::NoConsensus);
        assert_eq!(t.confidence, 0.0);
        assert_eq!(t.ballots, 2);
        assert_eq!(t.weights, vec![(High, 0.0), (Low, 0.0)]);
        // Even a single ballot without weight decides nothing.
        let t = tally(&[(Critical, 0.0)]);
        assert_eq!(
            (t.importance, t.decided_by),
            (Some(Normal), DecidedBy::NoConsensus)
        );
    }

    #[test]
    fn unanimous_is_full_confidence() {
        let t = tally(&one_each(&[Low, Low, Low]));
        assert_eq!(t.importance, Some(Low));
        assert_eq!(t.decided_by, DecidedBy::Unanimous);
        assert_eq!(t.confidence, 1.0);
        assert_eq!(t.total_weight, 3.0);
        // Unequal weights on one level are still unanimous.
        let t = tally(&[(Critical, 5.0), (Critical, 0.0)]);
        assert_eq!(t.decided_by, DecidedBy::Unanimous);
        assert_eq!(t.importance, Some(Critical));
    }

    #[test]
    fn exactly_sixty_percent_decides() {
        // 3 of 5 one-per-user ballots.
        let t = tally(&one_each(&[High, Low, High, Low, High]));
        assert_eq!(t.importance, Some(High));
        assert_eq!(t.decided_by, DecidedBy::Consensus);
        assert!((t.confidence - 0.6).abs() < 1e-12);
        assert_eq!(t.weights, vec![(High, 3.0), (Low, 2.0)]);
        // 60 % reached through sums that do not round exactly.
        let t = tally(&[(Low, 0.1), (Low, 0.2), (Low, 0.3), (High, 0.4)]);
        assert_eq!(t.decided_by, DecidedBy::Consensus);
        assert_eq!(t.importance, Some(Low));
    }

    #[test]
    fn just_under_sixty_percent_does_not() {
        let t = tally(&[(Critical, 599.0), (Low, 401.0)]);
        assert_eq!(t.importance, Some(Normal));
        assert_eq!(t.decided_by, DecidedBy::NoConsensus);
        assert!((t.confidence - 0.599).abs() < 1e-12);
        let t = tally(&[(Critical, 0.5999), (Low, 0.4001)]);
        assert_eq!(t.decided_by, DecidedBy::NoConsensus);
    }

    #[test]
    fn the_seed_example() {
        // HIGH, NORMAL, HIGH → high with 2/3 confidence.
        let t = tally(&one_each(&[High, Normal, High]));
        assert_eq!(t.importance, Some(High));
        assert_eq!(t.decided_by, DecidedBy::Consensus);
        assert!((t.confidence - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.weights, vec![(High, 2.0), (Normal, 1.0)]);
        assert_eq!(t.total_weight, 3.0);
        assert_eq!(t.ballots, 3);
    }

    #[test]
    fn a_split_vote_is_normal_with_the_strongest_agreement() {
        let t = tally(&one_each(&[Critical, High, Low, Low]));
        assert_eq!(t.importance, Some(Normal));
        assert_eq!(t.decided_by, DecidedBy::NoConsensus);
        assert_eq!(t.confidence, 0.5);
        assert_eq!(t.weights, vec![(Critical, 1.0), (High, 1.0), (Low, 2.0)]);
    }

    #[test]
    fn bad_weights_count_zero() {
        let t = tally(&[(High, f64::NAN), (High, -5.0), (Low, 1.0)]);
        assert_eq!(t.total_weight, 1.0);
        assert_eq!(t.importance, Some(Low));
        assert_eq!(t.decided_by, DecidedBy::Consensus);
        assert_eq!(t.confidence, 1.0);
        assert_eq!(t.weights, vec![(High, 0.0), (Low, 1.0)]);
    }

    #[test]
    fn huge_weights_keep_shares_and_stay_finite() {
        let t = tally(&[(High, f64::MAX), (High, f64::MAX), (Low, f64::MAX)]);
        assert!(t.total_weight.is_finite());
        assert_eq!(t.importance, Some(High));
        assert!((t.confidence - 2.0 / 3.0).abs() < 1e-12);
        let t = tally(&[(High, f64::INFINITY), (Low, f64::INFINITY)]);
        assert!(t.total_weight.is_finite());
        assert_eq!(t.confidence, 0.5);
        assert_eq!(t.importance, Some(Normal));
    }
}
