//! The voting component: exports `greenmesh:voting/ballots@0.1.0` with four
//! weighting schemes an admin can switch between ([`schemes`]).
//!
//! This file only maps the WIT types to `voting-core` (the consensus rules
//! and the `voting_*` tables) and picks the scheme in force: the
//! `voting_settings` row `scheme` (written by `set-scheme`), else the Spin
//! variable `voting_scheme`, else `one-per-user`.

pub mod schemes;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:voting/voting@0.1.0",
});

use exports::greenmesh::voting::ballots::Guest;
use greenmesh::voting::types::{
    Ballot, CastReceipt, DecidedBy, Error, Level, Outcome, Poll, Standing,
};
use schemes::Scheme;
use voting_core::{config, store, StoredBallot, Weighting};

/// The `voting_settings` row holding the scheme set by `set-scheme`.
const SETTING: &str = "scheme";

/// The scheme in force (a database failure reading the setting is logged
/// and the variable or default used).
fn current() -> Scheme {
    let setting = store::setting(SETTING).unwrap_or_else(|e| {
        eprintln!("voting: scheme setting unavailable ({e}); using the default");
        None
    });
    schemes::resolve(
        setting.as_deref(),
        config::variable("voting_scheme").as_deref(),
    )
}

/// Runs `f` with the scheme in force, mapping its error.
fn weighed<T>(f: impl FnOnce(&Weighting) -> Result<T, voting_core::Error>) -> Result<T, Error> {
    let scheme = current();
    let weight = move |b: &StoredBallot| scheme.weight(b);
    f(&Weighting::new(scheme.name(), &weight)).map_err(error)
}

voting_core::wit_mapping!();

struct Voting;

impl Guest for Voting {
    fn configure(settings: Vec<(String, String)>) {
        voting_core::config::configure(settings);
    }

    fn open(task_id: String, window_ms: u64) -> Result<Poll, Error> {
        open_poll(&task_id, window_ms)
    }

    fn cast(task_id: String, ballot: Ballot) -> Result<CastReceipt, Error> {
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
        current().name().to_string()
    }

    fn schemes() -> Vec<String> {
        Scheme::ALL.map(|s| s.name().to_string()).to_vec()
    }

    fn set_scheme(scheme: String) -> Result<(), Error> {
        let chosen = Scheme::parse(&scheme).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown scheme {scheme:?}; known schemes: {}",
                schemes::known()
            ))
        })?;
        store::set_setting(SETTING, chosen.name()).map_err(error)
    }
}

export!(Voting);
