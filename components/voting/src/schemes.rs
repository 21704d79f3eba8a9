//! The four weighting schemes of the `voting` component, and which one is
//! in force, as pure functions.
//!
//! | scheme         | weight of a ballot                                          |
//! |----------------|-------------------------------------------------------------|
//! | `one-per-user` | 1                                                           |
//! | `reputation`   | reputation × 100 (the seed's 0–100 scale)                   |
//! | `stake`        | donations                                                   |
//! | `hybrid`       | months active × 0.5 + tasks completed × 0.3 + donations × 0.2 |

use voting_core::StoredBallot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    OnePerUser,
    Reputation,
    Stake,
    Hybrid,
}

/// The scheme when neither the `scheme` setting nor `voting_scheme` names one.
pub const DEFAULT: Scheme = Scheme::OnePerUser;

impl Scheme {
    pub const ALL: [Scheme; 4] = [
        Scheme::OnePerUser,
        Scheme::Reputation,
        Scheme::Stake,
        Scheme::Hybrid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scheme::OnePerUser => "one-per-user",
            Scheme::Reputation => "reputation",
            Scheme::Stake => "stake",
            Scheme::Hybrid => "hybrid",
        }
    }

    /// The scheme called `name` (surrounding whitespace and letter case
    /// ignored).
    pub fn parse(name: &str) -> Option<Scheme> {
        let name = name.trim().to_ascii_lowercase();
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The weight of `ballot` under this scheme (the standing is sanitized
    /// when stored: finite and not negative, reputation at most 1).
    pub fn weight(self, ballot: &StoredBallot) -> f64 {
        let s = &ballot.standing;
        match self {
            Scheme::OnePerUser => 1.0,
            Scheme::Reputation => s.reputation * 100.0,
            Scheme::Stake => s.donations,
            Scheme::Hybrid => {
                s.months_active * 0.5 + s.tasks_completed as f64 * 0.3 + s.donations * 0.2
            }
        }
    }
}

/// Every scheme's name, comma-separated (for error messages).
pub fn known() -> String {
    Scheme::ALL.map(Scheme::name).join(", ")
}

/// The scheme in force: the stored `scheme` setting if it names one of
/// ours, else the `voting_scheme` variable if it does, else [`DEFAULT`]. (A
/// setting another implementation left behind is thus ignored.)
pub fn resolve(setting: Option<&str>, variable: Option<&str>) -> Scheme {
    setting
        .and_then(Scheme::parse)
        .or_else(|| variable.and_then(Scheme::parse))
        .unwrap_or(DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use voting_core::{Level, Standing};

    fn ballot(standing: Standing) -> StoredBallot {
        StoredBallot {
            voter: "ann".into(),
            level: Level::High,
            standing,
            credits: 9,
        }
    }

    #[test]
    fn weights() {
        let b = ballot(Standing {
            reputation: 0.8,
            donations: 10.0,
            months_active: 4.0,
            tasks_completed: 20,
        });
        assert_eq!(Scheme::OnePerUser.weight(&b), 1.0);
        assert!((Scheme::Reputation.weight(&b) - 80.0).abs() < 1e-9);
        assert_eq!(Scheme::Stake.weight(&b), 10.0);
        // 4 × 0.5 + 20 × 0.3 + 10 × 0.2 = 2 + 6 + 2
        assert!((Scheme::Hybrid.weight(&b) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn newcomers_weigh_nothing_except_per_head() {
        let b = ballot(Standing::default());
        assert_eq!(Scheme::OnePerUser.weight(&b), 1.0);
        for scheme in [Scheme::Reputation, Scheme::Stake, Scheme::Hybrid] {
            assert_eq!(scheme.weight(&b), 0.0, "{scheme:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(Scheme::parse(scheme.name()), Some(scheme));
        }
        assert_eq!(Scheme::parse(" Stake "), Some(Scheme::Stake));
        assert_eq!(Scheme::parse("quadratic"), None);
        assert_eq!(known(), "one-per-user, reputation, stake, hybrid");
    }

    #[test]
    fn the_setting_wins_over_the_variable_then_the_default() {
        assert_eq!(resolve(Some("stake"), Some("hybrid")), Scheme::Stake);
        assert_eq!(resolve(None, Some("hybrid")), Scheme::Hybrid);
        assert_eq!(
            resolve(Some("quadratic"), Some("reputation")),
            Scheme::Reputation
        );
        assert_eq!(resolve(Some("quadratic"), Some("bogus")), DEFAULT);
        assert_eq!(resolve(None, None), Scheme::OnePerUser);
    }
}
