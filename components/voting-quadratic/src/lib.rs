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
use voting_core::{clock, store, Weighting};

/// Runs `f` with the quadratic weighting, mapping its error.
fn weighed<T>(f: impl FnOnce(&Weighting) -> Result<T, voting_core::Error>) -> Result<T, Error> {
    f(&Weighting::new(credits::SCHEME, &credits::weight)).map_err(error)
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

struct QuadraticVoting;

impl Guest for QuadraticVoting {
    fn open(task_id: String, window_ms: u64) -> Result<Poll, Error> {
        weighed(|w| store::open(&task_id, window_ms, w)).map(poll)
    }

    fn cast(task_id: String, ballot: Ballot) -> Result<CastReceipt, Error> {
        credits::check(ballot.credits).map_err(Error::Invalid)?;
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
            eprintln!("voting-quadratic: votes of {voter:?} unavailable ({e}); answering 0");
            0
        })
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
