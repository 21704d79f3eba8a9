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
use voting_core::{clock, config, store, StoredBallot, Weighting};

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

fn error(e: voting_core::Error) -> Error {
    match e {
        voting_core::Error::NotFound(m) => Error::NotFound(m),
        voting_core::Error::Closed(m) => Error::Closed(m),
        voting_core::Error::NotAllowed(m) => Error::NotAllowed(m),
        voting_core::Error::Invalid(m) => Error::Invalid(m),
        voting_core::Error::Storage(m) => Error::Storage(m),
    }
}

fn level(l: voting_core::Level) -> Level {
    match l {
        voting_core::Level::Critical => Level::Critical,
        voting_core::Level::High => Level::High,
        voting_core::Level::Normal => Level::Normal,
        voting_core::Level::Low => Level::Low,
        voting_core::Level::NonCritical => Level::NonCritical,
    }
}

fn core_level(l: Level) -> voting_core::Level {
    match l {
        Level::Critical => voting_core::Level::Critical,
        Level::High => voting_core::Level::High,
        Level::Normal => voting_core::Level::Normal,
        Level::Low => voting_core::Level::Low,
        Level::NonCritical => voting_core::Level::NonCritical,
    }
}

fn core_ballot(b: Ballot) -> voting_core::Ballot {
    let Standing {
        reputation,
        donations,
        months_active,
        tasks_completed,
    } = b.standing;
    voting_core::Ballot {
        voter: b.voter,
        level: core_level(b.level),
        standing: voting_core::Standing {
            reputation,
            donations,
            months_active,
            tasks_completed,
        },
        credits: b.credits,
    }
}

fn outcome(o: voting_core::Outcome) -> Outcome {
    let t = o.tally;
    Outcome {
        task_id: o.task_id,
        importance: t.importance.map(level),
        decided_by: match t.decided_by {
            voting_core::DecidedBy::Consensus => DecidedBy::Consensus,
            voting_core::DecidedBy::Unanimous => DecidedBy::Unanimous,
            voting_core::DecidedBy::NoConsensus => DecidedBy::NoConsensus,
            voting_core::DecidedBy::NoVotes => DecidedBy::NoVotes,
        },
        confidence: t.confidence,
        weights: t.weights.into_iter().map(|(l, w)| (level(l), w)).collect(),
        total_weight: t.total_weight,
        ballots: t.ballots,
        scheme: o.scheme,
        closed: o.closed,
    }
}

fn poll(p: voting_core::Poll) -> Poll {
    Poll {
        task_id: p.task_id,
        opened_at: p.opened_at,
        closes_at: p.closes_at,
        outcome: outcome(p.outcome),
    }
}

struct Voting;

impl Guest for Voting {
    fn open(task_id: String, window_ms: u64) -> Result<Poll, Error> {
        weighed(|w| store::open(&task_id, window_ms, w)).map(poll)
    }

    fn cast(task_id: String, ballot: Ballot) -> Result<CastReceipt, Error> {
        let replaced = store::cast(&task_id, &core_ballot(ballot)).map_err(error)?;
        let poll = weighed(|w| store::get(&task_id, w)).map(poll)?;
        Ok(CastReceipt { replaced, poll })
    }

    fn get(task_id: String) -> Result<Poll, Error> {
        weighed(|w| store::get(&task_id, w)).map(poll)
    }

    fn list_open(limit: u32) -> Result<Vec<Poll>, Error> {
        weighed(|w| store::list_open(limit, w)).map(|polls| polls.into_iter().map(poll).collect())
    }

    fn close_due(limit: u32) -> Result<Vec<Outcome>, Error> {
        weighed(|w| store::close_due(clock::now_ms(), limit, w))
            .map(|closed| closed.into_iter().map(outcome).collect())
    }

    fn votes_cast(voter: String) -> u64 {
        store::votes_cast(&voter).unwrap_or_else(|e| {
            eprintln!("voting: votes of {voter:?} unavailable ({e}); answering 0");
            0
        })
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
