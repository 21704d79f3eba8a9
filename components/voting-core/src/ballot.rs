//! Ballots: what a voter sends ([`Ballot`]) and what the tally reads back
//! from `voting_ballots` ([`StoredBallot`]), with the voter's [`Standing`].

use crate::level::Level;
use serde::{Deserialize, Serialize};

/// What the broker knows about a voter when the ballot is cast (mirrors the
/// WIT `standing` record). Stored as JSON with the ballot, so switching the
/// weighting scheme re-weighs ballots already cast.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Standing {
    /// Requester reputation, 0..=1.
    pub reputation: f64,
    /// Credits donated, donated compute time included.
    pub donations: f64,
    /// Months since the voter registered.
    pub months_active: f64,
    /// Tasks the voter's nodes completed for the network.
    pub tasks_completed: u64,
}

/// `x` if it is a finite number above 0, else 0.
fn non_negative(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

impl Standing {
    /// The standing as stored: reputation clamped to 0..=1, and every number
    /// that is negative or not finite replaced by 0 (JSON cannot hold NaN or
    /// infinities, and no scheme should reward them).
    pub fn sanitized(self) -> Self {
        Standing {
            reputation: non_negative(self.reputation).min(1.0),
            donations: non_negative(self.donations),
            months_active: non_negative(self.months_active),
            tasks_completed: self.tasks_completed,
        }
    }
}

/// A ballot as cast.
#[derive(Clone, Debug, PartialEq)]
pub struct Ballot {
    pub voter: String,
    pub level: Level,
    pub standing: Standing,
    /// Voice credits (read by quadratic voting only; 0 means 1).
    pub credits: u32,
}

/// A ballot as read back for a tally: the same fields, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBallot {
    pub voter: String,
    pub level: Level,
    pub standing: Standing,
    pub credits: u32,
}

impl From<Ballot> for StoredBallot {
    fn from(b: Ballot) -> Self {
        StoredBallot {
            voter: b.voter,
            level: b.level,
            standing: b.standing.sanitized(),
            credits: b.credits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_standing_is_finite_and_in_range() {
        let s = Standing {
            reputation: 1.5,
            donations: f64::NAN,
            months_active: -3.0,
            tasks_completed: 7,
        }
        .sanitized();
        assert_eq!(
            s,
            Standing {
                reputation: 1.0,
                donations: 0.0,
                months_active: 0.0,
                tasks_completed: 7
            }
        );
        assert_eq!(
            Standing {
                donations: f64::INFINITY,
                ..Standing::default()
            }
            .sanitized()
            .donations,
            0.0
        );
    }

    #[test]
    fn standing_json_round_trips_and_tolerates_missing_fields() {
        let s = Standing {
            reputation: 0.75,
            donations: 12.5,
            months_active: 3.0,
            tasks_completed: 42,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Standing>(&json).unwrap(), s);
        let partial: Standing = serde_json::from_str(r#"{"donations": 2}"#).unwrap();
        assert_eq!(partial.donations, 2.0);
        assert_eq!(partial.tasks_completed, 0);
    }
}
