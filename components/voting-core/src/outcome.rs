//! A poll's outcome: its [`Tally`] labelled with the task, the scheme that
//! weighed it and whether it is final. A closed poll's outcome is stored as
//! this struct's JSON in `voting_polls.final_outcome`.

use crate::tally::Tally;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub task_id: String,
    #[serde(flatten)]
    pub tally: Tally,
    /// The scheme the weights were computed with.
    pub scheme: String,
    /// The window has closed and this outcome is final.
    pub closed: bool,
}

impl Outcome {
    pub fn new(task_id: &str, scheme: &str, tally: Tally, closed: bool) -> Self {
        Outcome {
            task_id: task_id.to_string(),
            tally,
            scheme: scheme.to_string(),
            closed,
        }
    }

    /// The JSON kept in `voting_polls.final_outcome`.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Level;
    use crate::tally::tally;

    #[test]
    fn json_round_trips() {
        let outcome = Outcome::new(
            "task-1",
            "stake",
            tally(&[(Level::High, 1.25), (Level::NonCritical, 1.0)]),
            true,
        );
        let json = outcome.to_json().unwrap();
        assert!(json.contains("\"decided_by\":\"no_consensus\""), "{json}");
        assert!(json.contains("\"non_critical\""), "{json}");
        assert_eq!(Outcome::from_json(&json).unwrap(), outcome);

        let none = Outcome::new("task-2", "one-per-user", tally(&[]), true);
        assert_eq!(Outcome::from_json(&none.to_json().unwrap()).unwrap(), none);
    }
}
