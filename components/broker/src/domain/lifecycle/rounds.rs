//! How a federated group's rounds close, under secure aggregation
//! (ADR 0019). Round r's attempt a is the group's shard `shard_of(r, a)`.
//!
//! 1. A round opens with one member per planned node. Members that fail or
//!    expire before the roster is fixed are re-leased by the lease
//!    lifecycle to another holder of the dataset (a replacement).
//! 2. Its **roster** is fixed once every member still in the round holds a
//!    lease, or once a quorum does and the round has waited half a
//!    member's time limit (the others are then left out). A member asks
//!    for it after training (`GET /leases/{id}/roster`) and masks its
//!    update against exactly that list.
//! 3. Once every roster member reported, the broker sums the masked
//!    updates and decodes FedAvg's totals; the next round opens with the
//!    new global model, or the task completes.
//! 4. A roster member lost before it reported (failed, expired, revoked,
//!    or silent past the round's patience) leaves masks that never cancel:
//!    the attempt is abandoned and the round re-run without it, up to
//!    [`ATTEMPTS`] attempts. A round that cannot gather a quorum fails the
//!    task, naming the lost members.
//!
//! Opening inserts members with fixed ids (`INSERT OR IGNORE`), so racing
//! judges open a round once; completing is the group's `running →
//! completed` compare-and-set (`lifecycle::group`). `lifecycle::repair`
//! looks at running federated groups, so a round moves on even if no
//! member ends meanwhile.

use crate::db::{text, Db};
use crate::domain::federated::{self, attempt_of, round_of, shard_of, Aggregate, Plan, ATTEMPTS};
use crate::domain::groups::{self, Member};
use crate::domain::rosters::{self, Stored};
use crate::domain::{events, tasks};
use crate::error::ApiError;
use greenmesh_protocol::Roster;
use serde_json::{json, Value};

/// The members of one attempt at a round.
fn of_shard(members: &[Member], shard: u32) -> Vec<&Member> {
    members.iter().filter(|m| m.shard == shard).collect()
}

fn at_work(m: &Member) -> bool {
    matches!(m.status.as_str(), "queued" | "leased")
}

/// The latest shard (round and attempt) of the group.
fn latest(members: &[Member]) -> u32 {
    members.iter().map(|m| m.shard).max().unwrap_or(0)
}

/// What a member asking for its round's roster gets.
pub enum RosterAnswer {
    Ready(Roster),
    /// Not every member holds a lease yet.
    Waiting,
    /// The member is not in the round (left out, or the attempt is over).
    Closed(String),
}

/// The roster for the member run under lease `lease_id` of task `task_id`,
/// fixing it if the round is ready.
pub fn roster_for(db: &Db, task_id: &str, lease_id: &str) -> Result<RosterAnswer, ApiError> {
    let Some((group_id, shard)) = groups::of_member(db, task_id)? else {
        return Ok(RosterAnswer::Closed(format!(
            "{task_id} is not a round's member"
        )));
    };
    let members = groups::members(db, &group_id)?;
    let (round, attempt) = (round_of(shard), attempt_of(shard));
    let stored = match rosters::get(db, &group_id, round, attempt)? {
        Some(s) => Some(s),
        None => fix_if_ready(db, &group_id, &members, shard)?,
    };
    Ok(match stored {
        None => RosterAnswer::Waiting,
        Some(s) if s.roster.members.iter().any(|m| m.lease_id == lease_id) => {
            RosterAnswer::Ready(s.roster)
        }
        Some(_) => RosterAnswer::Closed(format!(
            "lease {lease_id} is not in the roster of round {} (attempt {})",
            round + 1,
            attempt + 1
        )),
    })
}

/// Fixes the roster of `shard` if every member still in it holds a lease,
/// or a quorum does and the round waited half a member's time limit
/// (leaving the rest out).
fn fix_if_ready(
    db: &Db,
    group_id: &str,
    members: &[Member],
    shard: u32,
) -> Result<Option<Stored>, ApiError> {
    let Some(request) = tasks::request_of(db, group_id)? else {
        return Ok(None);
    };
    let Ok(Some(plan)) = Plan::of(&request) else {
        return Ok(None);
    };
    let current = of_shard(members, shard);
    let leased: Vec<&Member> = current
        .iter()
        .copied()
        .filter(|m| m.status == "leased")
        .collect();
    let queued: Vec<&&Member> = current.iter().filter(|m| m.status == "queued").collect();
    // Wait for a quorum of leases, and for the round's opening to have
    // inserted every member.
    if (leased.len() as u32) < plan.quorum() || (current.len() as u32) < plan.members {
        return Ok(None);
    }
    if !queued.is_empty() {
        let opened = current.iter().map(|m| m.created_at).min().unwrap_or(0);
        let wait = request.requirements.max_execution_time_sec as u64 * 1000 / 2;
        if crate::util::now_ms().saturating_sub(opened) <= wait {
            return Ok(None);
        }
    }
    let stored = rosters::fix(db, group_id, (round_of(shard), attempt_of(shard)), &leased)?;
    leave_out_the_rest(db, group_id, shard, &stored)?;
    Ok(Some(stored))
}

/// Revokes the attempt's members still at work that are not on its fixed
/// roster (left out while queued, or leased after it was fixed), read
/// afresh so that a racing request's roster members are never touched.
fn leave_out_the_rest(
    db: &Db,
    group_id: &str,
    shard: u32,
    stored: &Stored,
) -> Result<(), ApiError> {
    for m in groups::members(db, group_id)?
        .iter()
        .filter(|m| m.shard == shard && at_work(m))
    {
        let on_roster = stored
            .roster
            .members
            .iter()
            .any(|r| Some(&r.lease_id) == m.lease_id.as_ref());
        if !on_roster {
            super::cancel_member(db, &m.id, "left out of its round: no node took it in time")?;
        }
    }
    Ok(())
}

/// The global model attempt `shard`'s members start from (`None`: the plan's start).
fn start_of(db: &Db, members: &[&Member]) -> Result<Option<Vec<f64>>, ApiError> {
    Ok(match members.first() {
        Some(m) => tasks::request_of(db, &m.id)?
            .and_then(|r| serde_json::from_value::<Vec<f64>>(r.inputs["global"].clone()).ok()),
        None => None,
    })
}

/// Judges the latest round of federated group `group_id`.
pub fn judge(db: &Db, group_id: &str, members: &[Member]) -> Result<(), ApiError> {
    let Some(request) = tasks::request_of(db, group_id)? else {
        return Ok(());
    };
    let plan = match Plan::of(&request) {
        Ok(Some(plan)) => plan,
        _ => return fail(db, group_id, "its plan no longer reads", members),
    };
    let shard = latest(members);
    let (round, attempt) = (round_of(shard), attempt_of(shard));
    let current = of_shard(members, shard);
    let stored = match rosters::get(db, group_id, round, attempt)? {
        Some(s) => s,
        None => {
            // An opening cut short (a crash between inserts): finish it
            // (inserts are idempotent).
            if (current.len() as u32) < plan.members {
                let global = start_of(db, &current)?;
                open(db, group_id, (&request, &plan), shard, global.as_deref())?;
            }
            // Before the roster (members fix it when they ask for it): a
            // round that can no longer gather a quorum fails. Counted from
            // the members lost, not those seen at work: a round being
            // opened by another request may not show all its members yet.
            let gone = current.iter().filter(|m| !at_work(m)).count() as u32;
            let alive = plan.members.saturating_sub(gone);
            if alive < plan.quorum() {
                let why = format!(
                    "round {} of {}: {} of {} members still at work (a round needs {}); lost: {}",
                    round + 1,
                    plan.rounds,
                    alive,
                    plan.members,
                    plan.quorum(),
                    lost(current.iter().copied().filter(|m| !at_work(m)))
                );
                return fail(db, group_id, &why, members);
            }
            return Ok(());
        }
    };
    // With the roster: every member on it must report against it; any
    // other member still at work is left out.
    leave_out_the_rest(db, group_id, shard, &stored)?;
    let overdue = crate::util::now_ms().saturating_sub(stored.created_at)
        > plan.patience_ms(
            request.requirements.max_execution_time_sec,
            super::lease_grace_ms(),
        );
    let mut reported = Vec::new();
    let mut missing = Vec::new();
    let mut waiting = false;
    for entry in &stored.roster.members {
        let member = current
            .iter()
            .find(|m| m.lease_id.as_deref() == Some(entry.lease_id.as_str()));
        match member {
            Some(m) if m.status == "completed" => reported.push(*m),
            Some(m) if m.status == "leased" && !overdue => waiting = true,
            Some(m) if m.status == "leased" => {
                missing.push(format!("{} (silent past the round's patience)", m.id))
            }
            Some(m) => missing.push(describe(m)),
            None => missing.push(format!(
                "lease {} on {} (ended without a result)",
                entry.lease_id, entry.node_id
            )),
        }
    }
    if !missing.is_empty() {
        return rerun(
            db,
            group_id,
            (&request, &plan),
            shard,
            &format!("lost after masking: {}", missing.join("; ")),
        );
    }
    if waiting {
        return Ok(());
    }
    let masked: Vec<_> = reported
        .iter()
        .map(|m| m.result.as_ref().and_then(federated::masked_of))
        .collect();
    let context = stored.roster.sha256();
    let agg = masked
        .iter()
        .all(|m| m.as_ref().is_some_and(|m| m.roster_sha256 == context))
        .then(|| masked.into_iter().flatten().collect::<Vec<_>>())
        .and_then(|m| greenmesh_protocol::secure_sum::sum(&m))
        .and_then(|sum| Some((Aggregate::of_sum(&sum)?, sum)));
    let Some((agg, sum)) = agg else {
        return rerun(
            db,
            group_id,
            (&request, &plan),
            shard,
            "the masked updates did not sum to a model (a member masked against another roster, or sent noise)",
        );
    };
    let bytes: Vec<u8> = sum.iter().flat_map(|w| w.to_le_bytes()).collect();
    let outcome = json!({ "round": round + 1, "attempt": attempt + 1, "members": reported.len(),
                          "samples": agg.samples, "loss": finite(agg.loss),
                          "holdout_accuracy": agg.holdout_accuracy,
                          "sum": greenmesh_protocol::to_hex(&bytes) });
    rosters::set_outcome(db, group_id, (round, attempt), &outcome)?;
    events::record_once(
        db,
        &format!("{group_id}:round:{round}"),
        "round_closed",
        None,
        Some(group_id),
        None,
        json!({ "round": round + 1, "attempt": attempt + 1, "members": reported.len(), "samples": agg.samples,
                "loss": finite(agg.loss), "holdout_accuracy": agg.holdout_accuracy }),
    )?;
    if round + 1 < plan.rounds {
        return open(
            db,
            group_id,
            (&request, &plan),
            shard_of(round + 1, 0),
            Some(&agg.global),
        );
    }
    let result = summary(db, group_id, &plan, members, &agg.global)?;
    if tasks::finish_group(db, group_id, "completed", None, &result, price(members))? {
        crate::util::fault_point("group_finished");
        return super::group::settle_ended(db, group_id);
    }
    Ok(())
}

/// A member that did not report, and why.
fn describe(m: &Member) -> String {
    format!("{} ({})", m.id, m.reason.as_deref().unwrap_or(&m.status))
}

fn lost<'a>(members: impl Iterator<Item = &'a Member>) -> String {
    members.map(describe).collect::<Vec<_>>().join("; ")
}

/// Abandons attempt `shard` of its round for `why` (its members still at
/// work are revoked) and opens the next attempt from the same global
/// model, or fails the task once the round used its attempts.
fn rerun(
    db: &Db,
    group_id: &str,
    (request, plan): (&crate::model::TaskRequest, &Plan),
    shard: u32,
    why: &str,
) -> Result<(), ApiError> {
    let (round, attempt) = (round_of(shard), attempt_of(shard));
    let members = groups::members(db, group_id)?;
    let current = of_shard(&members, shard);
    for m in current.iter().filter(|m| at_work(m)) {
        super::cancel_member(db, &m.id, &format!("round {} re-run: {why}", round + 1))?;
    }
    events::record_once(
        db,
        &format!("{group_id}:round:{round}:attempt:{attempt}"),
        "round_rerun",
        None,
        Some(group_id),
        None,
        json!({ "round": round + 1, "attempt": attempt + 1, "why": why }),
    )?;
    if attempt + 1 >= ATTEMPTS {
        return fail(
            db,
            group_id,
            &format!(
                "round {} of {}: {ATTEMPTS} attempts each lost a member after masking; last: {why}",
                round + 1,
                plan.rounds
            ),
            &members,
        );
    }
    // The attempt starts from the same global model as this one.
    let global = start_of(db, &current)?;
    open(db, group_id, (request, plan), shard + 1, global.as_deref())
}

/// NaN (an unreadable loss) as null.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// What the group's runs were paid.
fn price(members: &[Member]) -> f64 {
    members
        .iter()
        .filter(|m| m.result.is_some())
        .filter_map(|m| m.price)
        .sum()
}

/// Ends the group as failed, for `why`.
fn fail(db: &Db, group_id: &str, why: &str, members: &[Member]) -> Result<(), ApiError> {
    if tasks::finish_group(
        db,
        group_id,
        "failed",
        Some(why),
        &json!({}),
        price(members),
    )? {
        return super::group::settle_ended(db, group_id);
    }
    Ok(())
}

/// Opens attempt `shard` of a round with `global` (`None`: the plan's
/// start): one member per planned node, queued and ready.
fn open(
    db: &Db,
    group_id: &str,
    (request, plan): (&crate::model::TaskRequest, &Plan),
    shard: u32,
    global: Option<&[f64]>,
) -> Result<(), ApiError> {
    let round = round_of(shard);
    let member = match tasks::validate(db, plan.member_request(request, global)) {
        Ok(m) => m,
        Err(e) => {
            return fail(
                db,
                group_id,
                &format!("round {}: {}", round + 1, e.message),
                &[],
            )
        }
    };
    let Some(state) = tasks::state(db, group_id)? else {
        return Ok(());
    };
    let owner = crate::model::User {
        id: state.owner.clone(),
        name: String::new(),
        public_key: None,
    };
    let sla = crate::domain::policy::get(db, group_id)?
        .map(|p| p.sla)
        .unwrap_or(crate::model::Sla::Normal);
    let deadline_at = crate::util::now_ms() + crate::domain::schedule::queue_deadline_ms(sla);
    for i in 0..plan.members {
        let id = groups::member_id(group_id, shard, i);
        tasks::insert(
            db,
            &owner,
            &id,
            &member,
            tasks::Entry {
                // The group's place in the fair queue.
                fair_key: (
                    "COALESCE((SELECT fair_key FROM broker_tasks WHERE id = ?), 0)",
                    vec![text(group_id)],
                ),
                deadline_at,
                ready: true,
                wake_at: None,
                status: "queued",
                group: Some((group_id, shard)),
            },
        )?;
        crate::domain::carbon::record_baseline(db, &id, &owner.id)?;
    }
    Ok(())
}

/// The completed task's result: the model, each round's figures (from
/// its decoded masked sum: hold-out accuracy only over all members
/// together; the energy and carbon of every attempt's runs), the privacy
/// spent, and with `require_proof` each round's signed contributions.
fn summary(
    db: &Db,
    group_id: &str,
    plan: &Plan,
    members: &[Member],
    global: &[f64],
) -> Result<Value, ApiError> {
    let stored = rosters::of_group(db, group_id)?;
    let mut rounds: Vec<Value> = Vec::new();
    for s in stored.iter() {
        let Some(outcome) = &s.outcome else {
            continue;
        };
        let r = s.roster.round;
        let ids: Vec<String> = members
            .iter()
            .filter(|m| round_of(m.shard) == r)
            .map(|m| m.id.clone())
            .collect();
        let mut row = outcome.clone();
        if let Some(o) = row.as_object_mut() {
            o.remove("sum");
            o.insert("carbon".into(), crate::domain::carbon::of_tasks(db, &ids)?);
        }
        rounds.push(row);
    }
    let mut result = json!({
        // Everything `greenmesh fl predict` needs to apply it.
        "model": { "name": plan.model_name, "spec": plan.model, "parameters": global.len(),
                   "params": global, "scaler": plan.scaler },
        "dataset": plan.dataset,
        "rounds": rounds,
        "secure_aggregation": { "scheme": "pairwise masks (Bonawitz et al. 2017), X25519 on the nodes' keys",
                                "attempts": stored.len(), "rounds": plan.rounds },
        "privacy": plan.epsilon.map(|eps| json!({
            "epsilon": eps,
            "epsilon_spent": plan.epsilon_spent(plan.rounds),
            "delta": plan.delta,
            "noise_multiplier": plan.noise_multiplier,
            "sampling_rate": plan.training.sampling_rate,
            "steps": plan.rounds * plan.training.steps,
            "protects": "each record (row) of each member's dataset",
        })),
    });
    if plan.proof {
        result["contributions"] = contributions(db, &stored, members)?;
    }
    Ok(result)
}

/// Each closed round's contribution bundle: its signed roster, and each
/// member's lease, receipt and masked output (`RoundContributions`).
fn contributions(db: &Db, stored: &[Stored], members: &[Member]) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for s in stored.iter().filter(|s| s.outcome.is_some()) {
        let mut runs = Vec::new();
        for entry in &s.roster.members {
            let Some(result) = members
                .iter()
                .find(|m| m.lease_id.as_deref() == Some(entry.lease_id.as_str()))
                .and_then(|m| m.result.as_ref())
            else {
                continue;
            };
            let Some(row) = super::load(db, &entry.lease_id)? else {
                continue;
            };
            runs.push(greenmesh_protocol::ContributedRun {
                lease: row.lease,
                receipt: serde_json::from_value(result["receipt"].clone())
                    .map_err(crate::error::storage)?,
                output: result["output"].as_str().unwrap_or_default().to_string(),
            });
        }
        out.push(greenmesh_protocol::RoundContributions {
            roster: s.roster.clone(),
            runs,
        });
    }
    serde_json::to_value(out).map_err(crate::error::storage)
}
