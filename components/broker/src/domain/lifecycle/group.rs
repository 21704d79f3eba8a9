//! How members' ends move their group: after any member completes, fails
//! or gives up, the group is judged shard by shard (`quorum`) and either
//! waits, adds a replica where outputs disagree, fails, or completes with
//! its result, each member's reputation settled by whether it agreed.
//!
//! Like a lease, a group moves by compare-and-set statements and owes its
//! effects through its `settled` flag: a member's end marks the group
//! unsettled before its own lease is marked settled, the group's end is
//! one `running → completed | failed` statement that leaves it unsettled,
//! and every effect after it is idempotent (keyed reputation events and
//! log events, `INSERT OR IGNORE` completions and proofs). A crash at any
//! point leaves a flag [`super::repair`] finds.
//!
//! | group end | members still at work | reputations | quota | event |
//! |---|---|---|---|---|
//! | completed | — | agreeing: success; minority: wrong result; requester: success | kept | `task_completed`, `wrong_result` per minority member |
//! | failed | cancelled | minority of agreed shards: wrong result | back if no member reported | `task_failed` |
//! | cancelled | cancelled (their nodes told to stop) | requester: failure if a node had fetched one | back if no node fetched one | `task_cancelled` |

use crate::db::Db;
use crate::domain::groups::{self, Kind, Member, Spec};
use crate::domain::{events, tasks};
use crate::error::ApiError;
use crate::greenmesh::reputation::scores::{self, Event, Role};
use greenmesh_quorum::{self as quorum, Report, Verdict};
use serde_json::{json, Value};

/// Settles group `group_id` if it owes anything: judges a running group,
/// or applies the effects of its end.
pub fn settle_group(db: &Db, group_id: &str, state: &tasks::State) -> Result<(), ApiError> {
    let Some(spec) = groups::spec(db, group_id)? else {
        return tasks::mark_settled(db, group_id);
    };
    if state.status == "running" {
        // Cleared before reading: a member ending from here on marks the
        // group again, so its end is never missed.
        tasks::mark_settled(db, group_id)?;
        let members = groups::members(db, group_id)?;
        return match spec.kind {
            Kind::Federated => super::rounds::judge(db, group_id, &members),
            Kind::Replicas => judge(db, group_id, &spec, &members),
        };
    }
    let members = groups::members(db, group_id)?;
    ended(db, group_id, &spec, state, &members)?;
    tasks::mark_settled(db, group_id)
}

/// What a member reported, for the quorum.
fn report(m: &Member) -> Report {
    match m.status.as_str() {
        // Replicas agree on the output of the same kernel bytes.
        "completed" => Report::Output(format!(
            "{}:{}",
            m.result
                .as_ref()
                .map_or("", |r| r["receipt"]["kernel_sha256"]
                    .as_str()
                    .unwrap_or_default()),
            m.output_sha256().unwrap_or_default()
        )),
        "failed" if m.result.is_some() => Report::Failed(
            m.reason
                .clone()
                .unwrap_or_else(|| "the kernel failed".into()),
        ),
        "failed" | "cancelled" => Report::Lost(
            m.reason
                .clone()
                .unwrap_or_else(|| "it ended without a result".into()),
        ),
        _ => Report::Pending,
    }
}

/// The verdict on each shard, with its members.
fn verdicts<'m>(spec: &Spec, members: &'m [Member]) -> Vec<(u32, Vec<&'m Member>, Verdict)> {
    (0..spec.shards)
        .map(|shard| {
            let own: Vec<&Member> = members.iter().filter(|m| m.shard == shard).collect();
            let reports: Vec<Report> = own.iter().map(|m| report(m)).collect();
            let verdict = quorum::judge(&reports, spec.replicas, spec.max_replicas);
            (shard, own, verdict)
        })
        .collect()
}

/// Judges a running group: ends it when every shard agreed or one cannot,
/// else adds the replicas disagreements call for.
fn judge(db: &Db, group_id: &str, spec: &Spec, members: &[Member]) -> Result<(), ApiError> {
    let verdicts = verdicts(spec, members);
    let failed = verdicts.iter().find_map(|(shard, _, v)| match v {
        Verdict::Failed(why) => Some(format!("shard {shard} failed: {why}")),
        Verdict::Disputed(why) => Some(format!("shard {shard} is disputed: {why}")),
        _ => None,
    });
    let price: f64 = members
        .iter()
        .filter(|m| m.result.is_some())
        .filter_map(|m| m.price)
        .sum();
    if let Some(why) = failed {
        let result = json!({ "shards": shards_json(&verdicts) });
        if tasks::finish_group(db, group_id, "failed", Some(&why), &result, price)? {
            crate::util::fault_point("group_finished");
            return settle_ended(db, group_id);
        }
        return Ok(());
    }
    if verdicts
        .iter()
        .all(|(_, _, v)| matches!(v, Verdict::Agreed { .. }))
    {
        let mut result = json!({ "shards": shards_json(&verdicts) });
        let output = |members: &[&Member], v: &Verdict| match v {
            Verdict::Agreed { agreeing, .. } => members[agreeing[0]]
                .result
                .as_ref()
                .map(|r| r["output"].clone())
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
        if spec.shards == 1 && spec.replicas > 1 {
            let (_, own, v) = &verdicts[0];
            result["output"] = output(own, v);
        } else {
            result["outputs"] = verdicts.iter().map(|(_, own, v)| output(own, v)).collect();
        }
        if spec.proof {
            let owner = tasks::state(db, group_id)?
                .map(|s| s.owner)
                .unwrap_or_default();
            let agreed = agreed_shards(db, &verdicts)?;
            result["proof_id"] =
                json!(crate::domain::proofs::issue(db, group_id, &owner, &agreed)?);
        }
        if tasks::finish_group(db, group_id, "completed", None, &result, price)? {
            crate::util::fault_point("group_finished");
            return settle_ended(db, group_id);
        }
        return Ok(());
    }
    for (shard, own, v) in &verdicts {
        if *v == Verdict::MoreReplicas {
            let added = groups::add_replica(db, group_id, *shard, own.len() as u32)?;
            if added {
                events::record_once(
                    db,
                    &format!("{group_id}:s{shard}:r{}", own.len()),
                    "replica_added",
                    None,
                    Some(group_id),
                    None,
                    json!({ "shard": shard, "replicas": own.len() + 1,
                            "outputs": own.iter().map(|m| m.output_sha256()).collect::<Vec<_>>() }),
                )?;
            }
        }
    }
    Ok(())
}

/// The agreed shards with their runs' signed leases and receipts, as a
/// proof bundle is built from them.
fn agreed_shards(
    db: &Db,
    verdicts: &[(u32, Vec<&Member>, Verdict)],
) -> Result<Vec<crate::domain::proofs::AgreedShard>, ApiError> {
    let mut out = Vec::new();
    for (shard, own, v) in verdicts {
        let Verdict::Agreed { agreeing, .. } = v else {
            continue;
        };
        let mut runs = Vec::new();
        for &i in agreeing {
            let m = own[i];
            let (Some(lease_id), Some(result)) = (&m.lease_id, &m.result) else {
                continue;
            };
            let Some(row) = super::load(db, lease_id)? else {
                continue;
            };
            let receipt: greenmesh_protocol::Receipt =
                serde_json::from_value(result["receipt"].clone()).map_err(crate::error::storage)?;
            runs.push((row.lease, receipt, row.node_owner));
        }
        out.push(crate::domain::proofs::AgreedShard {
            shard: *shard,
            input_sha256: own
                .first()
                .map(|m| m.input_sha256.clone())
                .unwrap_or_default(),
            reported: own.iter().filter(|m| m.result.is_some()).count() as u32,
            runs,
        });
    }
    Ok(out)
}

/// Each shard's verdict, as the task's result shows it.
fn shards_json(verdicts: &[(u32, Vec<&Member>, Verdict)]) -> Value {
    let who = |m: &Member| json!({ "node_id": m.node_id, "lease_id": m.lease_id, "output_sha256": m.output_sha256() });
    verdicts
        .iter()
        .map(|(shard, own, v)| match v {
            Verdict::Agreed {
                agreeing, minority, ..
            } => json!({
                "shard": shard, "output_sha256": own[agreeing[0]].output_sha256(), "replicas": own.len(),
                "agreeing": agreeing.iter().map(|&i| who(own[i])).collect::<Vec<_>>(),
                "minority": minority.iter().map(|&i| who(own[i])).collect::<Vec<_>>(),
            }),
            Verdict::Failed(why) | Verdict::Disputed(why) => {
                json!({ "shard": shard, "replicas": own.len(), "error": why })
            }
            _ => json!({ "shard": shard, "replicas": own.len(), "pending": true }),
        })
        .collect()
}

/// Applies a just-ended group's effects.
pub(super) fn settle_ended(db: &Db, group_id: &str) -> Result<(), ApiError> {
    match tasks::state(db, group_id)? {
        Some(state) if !state.settled => settle_group(db, group_id, &state),
        _ => Ok(()),
    }
}

/// A member whose run counted: its node's success and both owners'
/// standing, once per lease.
fn served(db: &Db, m: &Member, owner: &str) -> Result<(), ApiError> {
    let (Some(lease_id), Some(node), Some(node_owner)) = (&m.lease_id, &m.node_id, &m.node_owner)
    else {
        return Ok(());
    };
    scores::record_event(
        &format!("{lease_id}:provider"),
        node,
        Role::Provider,
        Event::Success,
    );
    crate::domain::standing::record_completion(db, lease_id, owner, node_owner)
}

/// The effects of a group's end (see the table atop), each applied once.
fn ended(
    db: &Db,
    group_id: &str,
    spec: &Spec,
    state: &tasks::State,
    members: &[Member],
) -> Result<(), ApiError> {
    // Members still at work are not needed any more.
    let why = match state.status.as_str() {
        "cancelled" => "the requester cancelled the task",
        _ => "the task's other members settled it",
    };
    let mut fetched = false;
    for m in members {
        if matches!(m.status.as_str(), "queued" | "leased") {
            super::cancel_member(db, &m.id, why)?;
        }
    }
    for m in members {
        if let Some(lease_id) = &m.lease_id {
            fetched |= super::load(db, lease_id)?.is_some_and(|r| r.delivered_at.is_some());
        }
    }
    let reported = members.iter().any(|m| m.result.is_some());
    if spec.kind == Kind::Federated && state.status == "completed" {
        // Federated members are averaged, not compared: each that reported
        // a model was served.
        for m in members.iter().filter(|m| m.status == "completed") {
            served(db, m, &state.owner)?;
        }
    }
    let compared = match spec.kind {
        Kind::Replicas => verdicts(spec, members),
        Kind::Federated => Vec::new(),
    };
    // Each agreed shard settles its members' reputations.
    for (_, own, verdict) in compared {
        let Verdict::Agreed {
            agreeing, minority, ..
        } = verdict
        else {
            continue;
        };
        let agreed = own[agreeing[0]].output_sha256();
        for &i in &agreeing {
            let m = own[i];
            let (Some(lease_id), Some(node)) = (&m.lease_id, &m.node_id) else {
                continue;
            };
            // (An unreplicated shard was compared with nothing.)
            if spec.replicas > 1 {
                super::judged(
                    db,
                    (lease_id, node),
                    true,
                    group_id,
                    &state.owner,
                    Value::Null,
                )?;
            }
            if state.status == "completed" {
                served(db, m, &state.owner)?;
            }
        }
        for &i in &minority {
            let m = own[i];
            if let (Some(lease_id), Some(node)) = (&m.lease_id, &m.node_id) {
                let detail = json!({ "member": m.id, "shard": m.shard, "lease_id": lease_id,
                                     "output_sha256": m.output_sha256(), "agreed_output_sha256": agreed });
                super::judged(db, (lease_id, node), false, group_id, &state.owner, detail)?;
            }
        }
    }
    match state.status.as_str() {
        "completed" => {
            scores::record_event(
                &format!("{group_id}:requester"),
                &state.owner,
                Role::Requester,
                Event::Success,
            );
            events::record_once(
                db,
                &format!("{group_id}:ended"),
                "task_completed",
                None,
                Some(group_id),
                Some(&state.owner),
                json!({ "members": members.len(), "shards": spec.shards }),
            )
        }
        "failed" => {
            if !reported {
                crate::domain::quota::release(db, &state.owner, group_id)?;
            }
            events::record_once(
                db,
                &format!("{group_id}:ended"),
                "task_failed",
                None,
                Some(group_id),
                Some(&state.owner),
                json!({ "reason": state.reason, "members": members.len() }),
            )
        }
        _ => {
            if fetched {
                scores::record_event(
                    &format!("{group_id}:requester"),
                    &state.owner,
                    Role::Requester,
                    Event::Failure,
                );
            } else {
                crate::domain::quota::release(db, &state.owner, group_id)?;
            }
            events::record_once(
                db,
                &format!("{group_id}:cancelled"),
                "task_cancelled",
                None,
                Some(group_id),
                Some(&state.owner),
                json!({ "members": members.len(), "lease_fetched": fetched }),
            )
        }
    }
}
