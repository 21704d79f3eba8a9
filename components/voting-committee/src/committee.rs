//! Committee voting: only the users listed in the Spin variable
//! `voting_committee` (comma-separated user ids) may vote, one vote each.
//!
//! Ballots of anyone else (cast under another implementation before the
//! network switched to this one) weigh 0.

use voting_core::StoredBallot;

/// The scheme's name.
pub const SCHEME: &str = "committee";

/// The Spin variable listing the members.
pub const VARIABLE: &str = "voting_committee";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committee {
    members: Vec<String>,
}

impl Committee {
    /// The committee written as `list`: user ids separated by commas,
    /// whitespace around each trimmed, empty entries ignored.
    pub fn parse(list: &str) -> Self {
        Committee {
            members: list
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    pub fn members(&self) -> &[String] {
        &self.members
    }

    pub fn is_member(&self, voter: &str) -> bool {
        self.members.iter().any(|m| m == voter)
    }

    /// Whether `voter` may cast a ballot; the reason when not.
    pub fn admit(&self, voter: &str) -> Result<(), String> {
        if self.members.is_empty() {
            Err("no voting committee is configured".into())
        } else if self.is_member(voter) {
            Ok(())
        } else {
            Err(format!("{voter} is not on the voting committee"))
        }
    }

    /// 1 for a member's ballot, 0 for anyone else's.
    pub fn weight(&self, ballot: &StoredBallot) -> f64 {
        if self.is_member(&ballot.voter) {
            1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voting_core::{DecidedBy, Level, Standing, Weighting};

    #[test]
    fn parse_trims_and_drops_empty_entries() {
        let c = Committee::parse(" alice, bob ,,carol ,");
        assert_eq!(c.members(), ["alice", "bob", "carol"]);
        assert!(Committee::parse("").members().is_empty());
        assert!(Committee::parse(" , ").members().is_empty());
    }

    #[test]
    fn only_members_are_admitted() {
        let c = Committee::parse("alice,bob");
        assert_eq!(c.admit("alice"), Ok(()));
        assert_eq!(
            c.admit("mallory"),
            Err("mallory is not on the voting committee".into())
        );
        assert_eq!(
            Committee::default().admit("alice"),
            Err("no voting committee is configured".into())
        );
    }

    #[test]
    fn members_weigh_one_and_outsiders_nothing() {
        let c = Committee::parse("alice,bob");
        let ballot = |voter: &str, level| StoredBallot {
            voter: voter.into(),
            level,
            standing: Standing {
                donations: 1000.0,
                ..Standing::default()
            },
            credits: 100,
        };
        let ballots = [
            ballot("alice", Level::High),
            ballot("bob", Level::High),
            ballot("mallory", Level::Low),
            ballot("trudy", Level::Low),
            ballot("eve", Level::Low),
        ];
        let weight = |b: &StoredBallot| c.weight(b);
        let t = Weighting::new(SCHEME, &weight).tally(&ballots);
        assert_eq!(t.importance, Some(Level::High));
        assert_eq!(t.decided_by, DecidedBy::Consensus);
        assert_eq!(t.confidence, 1.0);
        assert_eq!(t.total_weight, 2.0);
        assert_eq!(t.ballots, 5);
    }
}
