//! A poll on one task's importance, as a component answers it.

use crate::outcome::Outcome;

#[derive(Clone, Debug, PartialEq)]
pub struct Poll {
    pub task_id: String,
    /// Milliseconds since the Unix epoch.
    pub opened_at: u64,
    /// Ballots are accepted while the clock is before this instant.
    pub closes_at: u64,
    /// The tally so far (final once `outcome.closed`).
    pub outcome: Outcome,
}
