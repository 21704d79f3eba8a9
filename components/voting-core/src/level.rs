//! The importance levels a ballot can name, most important first (seed 001).

use serde::{Deserialize, Serialize};

/// How important a task is. The derived order is the WIT order: `Critical`
/// sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Critical,
    High,
    Normal,
    Low,
    NonCritical,
}

impl Level {
    /// Every level, most important first.
    pub const ALL: [Level; 5] = [
        Level::Critical,
        Level::High,
        Level::Normal,
        Level::Low,
        Level::NonCritical,
    ];

    /// The name stored in `voting_ballots.level` (and in outcome JSON).
    pub fn name(self) -> &'static str {
        match self {
            Level::Critical => "critical",
            Level::High => "high",
            Level::Normal => "normal",
            Level::Low => "low",
            Level::NonCritical => "non_critical",
        }
    }

    /// The level named `name` (as [`Level::name`] writes it; surrounding
    /// whitespace, letter case and `-` for `_` are tolerated).
    pub fn parse(name: &str) -> Option<Level> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Level::ALL.into_iter().find(|level| level.name() == name)
    }

    /// Position in [`Level::ALL`] (0 for `Critical`).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.name()), Some(level));
            assert_eq!(Level::ALL[level.index()], level);
        }
        assert_eq!(Level::NonCritical.name(), "non_critical");
    }

    #[test]
    fn parse_is_forgiving_but_not_guessing() {
        assert_eq!(Level::parse(" High "), Some(Level::High));
        assert_eq!(Level::parse("non-critical"), Some(Level::NonCritical));
        assert_eq!(Level::parse("urgent"), None);
        assert_eq!(Level::parse(""), None);
    }

    #[test]
    fn serde_uses_the_names() {
        let json = serde_json::to_string(&Level::NonCritical).unwrap();
        assert_eq!(json, "\"non_critical\"");
        assert_eq!(
            serde_json::from_str::<Level>("\"critical\"").unwrap(),
            Level::Critical
        );
    }
}
