//! The committee voting component: exports `greenmesh:voting/ballots@0.1.0`
//! with the single scheme `committee` ([`committee`]): only the users listed
//! in the Spin variable `voting_committee` may vote, one vote each. A
//! drop-in for `components/voting` (same `voting_*` tables, see
//! `voting-core`).
//!
//! This file only maps the WIT types to `voting-core` and checks the voter
//! against the committee before a ballot is cast.

pub mod committee;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:voting/voting@0.1.0",
});

use committee::Committee;
use exports::greenmesh::voting::ballots::Guest;
use greenmesh::voting::types::{
    Ballot, CastReceipt, DecidedBy, Error, Level, Outcome, Poll, Standing,
};
use voting_core::{config, StoredBallot, Weighting};

/// The committee as configured now (empty when the variable is unset).
fn current() -> Committee {
    Committee::parse(&config::variable(committee::VARIABLE).unwrap_or_default())
}

/// Runs `f` with the committee weighting, mapping its error.
fn weighed<T>(f: impl FnOnce(&Weighting) -> Result<T, voting_core::Error>) -> Result<T, Error> {
    let members = current();
    let weight = |b: &StoredBallot| members.weight(b);
    f(&Weighting::new(committee::SCHEME, &weight)).map_err(error)
}

voting_core::wit_mapping!();

struct CommitteeVoting;

impl Guest for CommitteeVoting {
    fn configure(settings: Vec<(String, String)>) {
        voting_core::config::configure(settings);
    }

    fn open(task_id: String, window_ms: u64) -> Result<Poll, Error> {
        open_poll(&task_id, window_ms)
    }

    fn cast(task_id: String, ballot: Ballot) -> Result<CastReceipt, Error> {
        current().admit(&ballot.voter).map_err(Error::NotAllowed)?;
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
        committee::SCHEME.to_string()
    }

    fn schemes() -> Vec<String> {
        vec![committee::SCHEME.to_string()]
    }

    /// Only `committee` is offered; choosing it changes nothing (and leaves
    /// the `scheme` setting, which `components/voting` reads, alone).
    fn set_scheme(scheme: String) -> Result<(), Error> {
        if scheme.trim().eq_ignore_ascii_case(committee::SCHEME) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "unknown scheme {scheme:?}; this component offers only {}",
                committee::SCHEME
            )))
        }
    }
}

export!(CommitteeVoting);
