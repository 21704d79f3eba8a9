//! How a federated group's rounds close. Round r is the group's shard r;
//! once none of its members is still queued or running, the members that
//! reported are averaged (FedAvg by row count) if they are a quorum (at
//! least two, and two thirds of the round), and the next round opens with
//! the new global model, or the task completes with it. Members that fail
//! or expire are re-leased by the lease lifecycle to another node holding
//! the dataset (a replacement); a round short of its quorum fails the task
//! saying which members were lost.
//!
//! A round that has its quorum but still waits on stragglers closes
//! without them after its patience (twice a member's time limit and lease
//! grace); they are revoked. `lifecycle::repair` looks at running
//! federated groups, so a round closes even if no member ends meanwhile.
//!
//! Opening a round inserts its members with fixed ids (`{task}-s{round}-r{i}`,
//! `INSERT OR IGNORE`), so racing judges open it once; completing is the
//! group's `running → completed` compare-and-set (`lifecycle::group`).

use crate::db::{text, Db};
use crate::domain::federated::{aggregate, Aggregate, MemberResult, Plan};
use crate::domain::groups::{self, Member};
use crate::domain::{events, tasks};
use crate::error::ApiError;
use serde_json::{json, Value};

/// The members of `round`.
fn of_round(members: &[Member], round: u32) -> Vec<&Member> {
    members.iter().filter(|m| m.shard == round).collect()
}

/// The results a closed round's members reported.
fn results(members: &[&Member]) -> Vec<MemberResult> {
    members
        .iter()
        .filter(|m| m.status == "completed")
        .filter_map(|m| m.result.as_ref().and_then(MemberResult::of))
        .collect()
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
    let round = members.iter().map(|m| m.shard).max().unwrap_or(0);
    let current = of_round(members, round);
    let reported = results(&current);
    let at_work: Vec<&&Member> = current
        .iter()
        .filter(|m| matches!(m.status.as_str(), "queued" | "leased"))
        .collect();
    if !at_work.is_empty() {
        // Stragglers: once the round has its quorum and has waited its
        // patience, it closes without them.
        let opened = current.iter().map(|m| m.created_at).min().unwrap_or(0);
        let patience = plan.patience_ms(
            request.requirements.max_execution_time_sec,
            super::lease_grace_ms(),
        );
        let overdue = crate::util::now_ms().saturating_sub(opened) > patience;
        if !(overdue && reported.len() as u32 >= plan.quorum()) {
            return Ok(());
        }
        for m in at_work {
            super::cancel_member(
                db,
                &m.id,
                &format!(
                    "round {} closed without it after waiting {} s",
                    round + 1,
                    patience / 1000
                ),
            )?;
        }
    }
    if (reported.len() as u32) < plan.quorum() {
        let lost: Vec<String> = current
            .iter()
            .filter(|m| m.status != "completed")
            .map(|m| format!("{} ({})", m.id, m.reason.as_deref().unwrap_or(&m.status)))
            .collect();
        let why = format!(
            "round {} of {}: {} of {} members reported a model (a round needs {}); lost: {}",
            round + 1,
            plan.rounds,
            reported.len(),
            current.len(),
            plan.quorum(),
            lost.join("; ")
        );
        return fail(db, group_id, &why, members);
    }
    let Some(agg) = aggregate(&reported) else {
        return fail(
            db,
            group_id,
            &format!(
                "round {}: members returned models of different sizes",
                round + 1
            ),
            members,
        );
    };
    events::record_once(
        db,
        &format!("{group_id}:round:{round}"),
        "round_closed",
        None,
        Some(group_id),
        None,
        json!({ "round": round + 1, "members": reported.len(), "samples": agg.samples,
                "loss": finite(agg.loss), "holdout_accuracy": agg.holdout_accuracy }),
    )?;
    if round + 1 < plan.rounds {
        return open(db, group_id, &request, &plan, round + 1, &agg.global);
    }
    let result = summary(db, &plan, members, &agg.global)?;
    if tasks::finish_group(db, group_id, "completed", None, &result, price(members))? {
        crate::util::fault_point("group_finished");
        return super::group::settle_ended(db, group_id);
    }
    Ok(())
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

/// Opens `round` with `global`: one member per node, queued and ready.
fn open(
    db: &Db,
    group_id: &str,
    request: &crate::model::TaskRequest,
    plan: &Plan,
    round: u32,
    global: &[f64],
) -> Result<(), ApiError> {
    let member = match tasks::validate(db, plan.member_request(request, Some(global))) {
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
        let id = groups::member_id(group_id, round, i);
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
                group: Some((group_id, round)),
            },
        )?;
        crate::domain::carbon::record_baseline(db, &id, &owner.id)?;
    }
    Ok(())
}

/// The completed task's result: the model, each round's figures (hold-out
/// accuracy only over all members together; the energy and carbon of its
/// runs), and the privacy spent.
fn summary(db: &Db, plan: &Plan, members: &[Member], global: &[f64]) -> Result<Value, ApiError> {
    let mut rounds: Vec<Value> = Vec::new();
    for r in 0..plan.rounds {
        let own = of_round(members, r);
        let Some(Aggregate {
            samples,
            loss,
            holdout_accuracy,
            ..
        }) = aggregate(&results(&own))
        else {
            continue;
        };
        let ids: Vec<String> = own.iter().map(|m| m.id.clone()).collect();
        rounds.push(json!({ "round": r + 1, "members": own.iter().filter(|m| m.status == "completed").count(),
                            "samples": samples, "loss": finite(loss), "holdout_accuracy": holdout_accuracy,
                            "carbon": crate::domain::carbon::of_tasks(db, &ids)? }));
    }
    Ok(json!({
        // Everything `greenmesh fl predict` needs to apply it.
        "model": { "name": plan.model_name, "spec": plan.model, "parameters": global.len(),
                   "params": global, "scaler": plan.scaler },
        "dataset": plan.dataset,
        "rounds": rounds,
        "privacy": plan.epsilon.map(|eps| json!({
            "epsilon": eps,
            "epsilon_spent": plan.epsilon_spent(plan.rounds),
            "delta": plan.delta,
            "noise_multiplier": plan.noise_multiplier,
            "sampling_rate": plan.training.sampling_rate,
            "steps": plan.rounds * plan.training.steps,
            "protects": "each record (row) of each member's dataset",
        })),
    }))
}
