//! The public-health override (seed 001): a task whose name or description
//! mentions one of these words is critical and urgent whatever the votes.
//!
//! A keyword matches as a whole word, case-insensitively: the characters on
//! either side must not be letters or digits. So "firewall-update" does not
//! match "fire", "water-treatment-safety-check" matches "water", and
//! "power-grid-failover" matches "power-grid". The broker applies this before
//! any voting component sees the task, so no plugin can switch it off.

/// Seed 001's `HEALTH_KEYWORDS`, in its order.
pub const KEYWORDS: &[&str] = &[
    "health",
    "medical",
    "hospital",
    "emergency",
    "ambulance",
    "drug",
    "vaccine",
    "oxygen",
    "security",
    "police",
    "fire",
    "rescue",
    "hazmat",
    "nuclear",
    "power-grid",
    "water",
    "sewage",
    "pandemic",
    "disaster",
];

/// The first keyword found as a whole word in any of `texts`.
pub fn matched_keyword<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let texts: Vec<String> = texts.into_iter().map(str::to_ascii_lowercase).collect();
    KEYWORDS
        .iter()
        .copied()
        .find(|k| texts.iter().any(|t| contains_word(t, k)))
}

/// Whether `word` occurs in `text` with no letter or digit touching it.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(name: &str) -> Option<&'static str> {
        matched_keyword([name])
    }

    #[test]
    fn seed_examples_match_and_routine_tasks_do_not() {
        assert_eq!(hit("hospital-backup-power-test"), Some("hospital"));
        assert_eq!(hit("water-treatment-safety-check"), Some("water"));
        assert_eq!(hit("emergency-shelter-heating"), Some("emergency"));
        assert_eq!(hit("routine-database-cleanup"), None);
    }

    #[test]
    fn a_keyword_inside_a_longer_word_does_not_match() {
        assert_eq!(hit("firewall-update"), None);
        assert_eq!(hit("healthcheck-endpoint"), None);
        assert_eq!(hit("waterfall-chart"), None);
        assert_eq!(hit("drugstore-inventory"), None);
        assert_eq!(hit("refire"), None);
    }

    #[test]
    fn whole_words_match_at_any_boundary_and_in_any_case() {
        assert_eq!(hit("fire"), Some("fire"));
        assert_eq!(hit("Forest FIRE map"), Some("fire"));
        assert_eq!(hit("report_fire_risk"), Some("fire"));
        assert_eq!(hit("power-grid-failover"), Some("power-grid"));
        assert_eq!(hit("power grid"), None, "the keyword is hyphenated");
        assert_eq!(hit("x.vaccine.y"), Some("vaccine"));
    }

    #[test]
    fn the_description_counts_as_well_as_the_name() {
        assert_eq!(
            matched_keyword(["nightly-batch", "recompute sewage flow models"]),
            Some("sewage")
        );
        assert_eq!(matched_keyword(["nightly-batch", "firewalls"]), None);
    }
}
