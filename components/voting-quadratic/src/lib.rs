//! The quadratic voting component: exports `greenmesh:voting/ballots@0.1.0`
//! with the single scheme `quadratic` ([`credits`]), a drop-in for
//! `components/voting` (same `voting_*` tables, see `voting-core`).
//!
//! This file only maps the WIT types to `voting-core` and checks a ballot's
//! credits before it is cast.

pub mod credits;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:voting/voting@0.1.0",
});

use exports::greenmesh::voting::ballots::Guest;
use greenmesh::voting::types::{
    Ballot, CastReceipt, DecidedBy, Error, Level, Outcome, Poll, Standing,
};
use voting_core::Weighting;

/// Runs `f` with the quadratic weighting, mapping its error.
fn weighed<T>(f: impl FnOnce(&Weighting) -> Result<T, voting_core::Error>) -> Result<T, Error> {
    f(&Weighting::new(credits::SCHEME, &credits::weight)).map_err(error)
}

voting_core::wit_mapping!();

struct QuadraticVoting;

impl Guest for QuadraticVoting {
    fn configure(settings: Vec<(String, String)>) {
        voting_core::config::configure(settings);
    }

    fn open(task_id: String, window_ms: u64) -> Result<Poll, Error> {
        open_poll(&task_id, window_ms)
    }

    fn cast(task_id: String, ballot: Ballot) -> Result<CastReceipt, Error> {
        credits::check(ballot.credits).map_err(Error::Invalid)?;
        cast_ballot(&task_id, ballot)
    }

    fn get(task_id: String) -> Result<Poll, Error> {
        get_poll(&task_id)
    }

    fn list_open(limit: u32) -> Result<Vec<Poll>, Error> {
        open_polls(limit)
    }

    fn close_due(limit: u32) -> Result<Vec<Outcome>, Error> {
        close_due_polls(limit)
    }

    fn votes_cast(voter: String) -> u64 {
        count_votes(&voter)
    }

    fn scheme() -> String {
        credits::SCHEME.to_string()
    }

    fn schemes() -> Vec<String> {
        vec![credits::SCHEME.to_string()]
    }

    /// Only `quadratic` is offered; choosing it changes nothing (and leaves
    /// the `scheme` setting, which `components/voting` reads, alone).
    fn set_scheme(scheme: String) -> Result<(), Error> {
        if scheme.trim().eq_ignore_ascii_case(credits::SCHEME) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "unknown scheme {scheme:?}; this component offers only {}",
                credits::SCHEME
            )))
        }
    }
}

export!(QuadraticVoting);
