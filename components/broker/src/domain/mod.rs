//! The broker's rules, under the HTTP handlers and over the tables.
//!
//! | module | owns |
//! |---|---|
//! | [`tasks`] | task rows: validation, views, status changes as compare-and-set |
//! | [`queue`] | admission, the fair queue (ready / waiting / parked), dispatch passes, waking |
//! | [`matching`] | one decision: marketplace search, quotes, reputations, timing, explanation |
//! | [`scoring`], [`schedule`] | pure rules: how offers are weighed; when a patient task starts |
//! | [`lifecycle`] | the only writer of `broker_leases`; every lease end and its effects, and how members' ends move their group |
//! | [`federated`] | federated training plans: the DP budget's noise, each round's member inputs, FedAvg |
//! | [`rosters`] | secure aggregation: each federated round attempt's signed roster and decoded outcome |
//! | [`spot_checks`] | adaptive replication: which results are rerun unannounced, node records, a task's verification |
//! | [`groups`], [`proofs`] | task groups (shards, replicas) and their members (the quorum rule is the `greenmesh-quorum` crate's); proof bundles |
//! | [`interrupt`] | when a node's energy report revokes a lease |
//! | [`nodes`] | node registration and heartbeats through the marketplace, and what they wake |
//! | [`energy_claims`] | nodes' energy reports held to their region's public signal, declared power |
//! | [`carbon`] | each run's carbon record, the ledger, a user's impact |
//! | [`faults`] | whose fault a failed run was: requester faults weigh on the requester and throttle it |
//! | [`policy`], [`public_health`], [`votes`], [`quota`], [`standing`], [`grants`] | governance |
//! | [`identity`] | what an account costs (registration per address or by invite) and when its ballot weighs |
//! | [`settings`] | the settings each dependency is passed (they inherit no variables) |
//! | [`zk`] | `zk_proof` tasks: the statement, and the proof verified before a receipt is accepted |
//! | [`users`], [`keys`], [`blobs`], [`events`] | accounts, the signing key, blobs, the event log |
//!
//! Imports run one way inside too: `queue` → `matching`/`lifecycle` →
//! `tasks` and the effect modules (`carbon`, `quota`, `events`, …).

pub mod blobs;
pub mod carbon;
pub mod delegations;
pub mod energy_claims;
pub mod events;
pub mod faults;
pub mod federated;
pub mod grants;
pub mod groups;
pub mod identity;
pub mod interrupt;
pub mod keys;
pub mod lifecycle;
pub mod matching;
pub mod nodes;
pub mod policy;
pub mod proofs;
pub mod public_health;
pub mod queue;
pub mod quota;
pub mod rosters;
pub mod schedule;
pub mod scoring;
pub mod settings;
pub mod spot_checks;
pub mod standing;
pub mod tasks;
pub mod users;
pub mod votes;
pub mod zk;

use crate::db::Db;
use crate::error::ApiError;

/// Keeps the queue moving, once per request that calls it: settles what a
/// crash or a race left unsettled, expires overdue leases, fails tasks
/// past their deadline, then runs a dispatch pass.
pub fn housekeeping(db: &Db) -> Result<(), ApiError> {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if DONE.with(|d| d.replace(true)) {
        return Ok(());
    }
    lifecycle::repair(db)?;
    lifecycle::expire(db)?;
    lifecycle::fail_overdue(db)?;
    blobs::sweep(db)?;
    queue::dispatch_pass(db, queue::PASS_BUDGET)
}
