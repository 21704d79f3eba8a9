//! The task queue: admission, fair order, and when each queued task is
//! decided again.
//!
//! A queued task is in one of three states:
//! - **ready**: to be decided by the next dispatch pass;
//! - **waiting** until `wake_at`: a patient task holding out for a cleaner
//!   forecast slot, decided again every dispatch tick;
//! - **parked**: no node can serve it now (nobody offers the capability,
//!   every offer is above its price, too small, loaded, dirty, or already
//!   failed it, or the task needs a feature the network lacks). It is not
//!   looked at again until the market changes in a way that could serve it
//!   ([`wake`]): a node offering its capability registers or changes its
//!   offers, comes back online or frees capacity, and for tasks held by
//!   energy (eco, solar/wind-only) reports new energy.
//!
//! Passes take ready tasks in fair-key order: start-time fair queuing with
//! each requester's backlog as one flow (ADR 0016). A task's key is one
//! more than the larger of the queue's virtual time (the last key a pass
//! took up) and its owner's latest queued key, so a requester with nothing
//! queued goes ahead of another's deep backlog, and backlogs interleave.
//! Every queued task fails, quota given back, if its SLA's deadline passes
//! before it starts (`lifecycle::fail_overdue`).

use crate::db::{int, text, Db};
use crate::domain::groups;
use crate::domain::lifecycle::{self, Leasing};
use crate::domain::matching::{self, Placement};
use crate::domain::policy::Policy;
use crate::domain::tasks::{self, NewTask};
use crate::error::ApiError;
use crate::greenmesh::pricing::quotes;
use crate::model::{Decision, Sla, TaskRequest, User};
use serde_json::{json, Value};

/// Decisions one dispatch pass makes at most (a heartbeat's or a poll's
/// share of the queue: bounded, so a request's time is too).
pub const PASS_BUDGET: u32 = 64;

/// What wakes a parked task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WakeOn {
    /// A node offering the capability registers, changes offers, comes
    /// online or frees capacity.
    Market,
    /// The same, or such a node's energy changes.
    Energy,
}

impl WakeOn {
    fn as_str(self) -> &'static str {
        match self {
            WakeOn::Market => "market",
            WakeOn::Energy => "energy",
        }
    }
}

/// What changed in the market, for [`wake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Offers, liveness or capacity: wakes every parked task of the capabilities.
    Market,
    /// Only the energy report: wakes the tasks waiting on energy.
    Energy,
}

/// `POST /api/v1/tasks`: counts the task against its owner's quota, fixes
/// or opens the vote on its importance, stores it, then decides it at once,
/// or, when its owner has earlier tasks ready, runs a dispatch pass that
/// takes them (and then it) in order. Answers the stored task.
///
/// A task asking for several nodes (`min_nodes`, shards, `require_proof`)
/// is stored as a running group and its members as queued tasks, each
/// decided the same way; the group counts once against the quota.
pub fn submit(db: &Db, user: &User, task: NewTask) -> Result<Value, ApiError> {
    crate::domain::faults::check_throttle(db, &user.id)?;
    crate::domain::blobs::check_access(db, &user.id, &task.request.inputs)?;
    let id = crate::util::new_id("task");
    let (_, policy) = policy_at_submission(&task.request);
    // A group: federated rounds (their first round's members), or shards
    // and replicas.
    let group = match crate::domain::federated::Plan::of(&task.request)? {
        Some(_) if crate::domain::schedule::own_source(policy.sla).is_some() => {
            return Err(ApiError::invalid(
                "sla",
                format!(
                    "{} runs only on your own nodes, but federated members run on nodes of distinct owners",
                    policy.sla
                ),
            ))
        }
        Some(plan) => Some((
            federated_round(db, &id, &plan, &task)?,
            Layout::Federated(plan),
        )),
        None => match groups::shape(&task.request, policy.sla)? {
            Some(shape) => Some((members_of(db, &id, &task, &shape)?, Layout::Shards(shape))),
            None => None,
        },
    };
    let quota = crate::domain::quota::reserve(db, user, &id, &task.request.requirements)?;
    // Its key is above all its owner's queued tasks: if any of those is
    // ready, they go first.
    let behind_own = owner_has_ready(db, &user.id)?;
    let stored = match &group {
        None => store(db, user, &id, &task, behind_own, "queued"),
        Some((members, layout)) => {
            store(db, user, &id, &task, behind_own, "running").and_then(|()| {
                match layout {
                    Layout::Shards(shape) => groups::insert(db, &id, shape, &task.capability)?,
                    Layout::Federated(plan) => groups::insert_federated(
                        db,
                        &id,
                        (plan.rounds, plan.members),
                        plan.proof,
                        &task.capability,
                    )?,
                }
                for (member_id, shard, member) in members {
                    store_member(db, user, &id, (member_id, *shard), member, behind_own)?;
                }
                Ok(())
            })
        }
    };
    if stored.is_err() {
        // Nothing was accepted: give the day's count back.
        let _ = crate::domain::quota::release(db, &user.id, &id);
    }
    stored?;
    if behind_own {
        // Decide the queue in order.
        dispatch_pass(db, PASS_BUDGET)?;
    } else if let Some((members, _)) = &group {
        for (member_id, _, _) in members {
            dispatch_task(db, member_id, true)?;
        }
    } else {
        dispatch_task(db, &id, true)?;
    }
    let mut view =
        tasks::view(db, &id)?.ok_or_else(|| ApiError::internal("task vanished after insert"))?;
    if let Some(usage) = quota {
        view["quota"] = crate::domain::quota::usage_json(&usage);
    }
    Ok(view)
}

/// The public-health keyword a request mentions, if any, and the policy it
/// starts with.
fn policy_at_submission(r: &TaskRequest) -> (Option<&'static str>, Policy) {
    let keyword = crate::domain::public_health::matched_keyword(
        [r.name.as_deref(), r.description.as_deref()]
            .into_iter()
            .flatten(),
    );
    let policy = Policy::at_submission(keyword, r.importance.as_deref(), r.sla);
    (keyword, policy)
}

/// The SQL for a new task's fair key (and its parameters).
fn fair_key(owner: &str) -> (&'static str, Vec<greenmesh_storage::Value>) {
    (
        "1 + MAX(COALESCE((SELECT value FROM broker_queue WHERE name = 'virtual_time'), 0),
                 COALESCE((SELECT MAX(fair_key) FROM broker_tasks WHERE owner = ? AND status = 'queued' AND ready = 0), 0),
                 COALESCE((SELECT MAX(fair_key) FROM broker_tasks WHERE owner = ? AND status = 'queued' AND ready = 1), 0))",
        vec![text(owner), text(owner)],
    )
}

/// How a group's members are laid out.
enum Layout {
    Shards(groups::Shape),
    Federated(crate::domain::federated::Plan),
}

/// The first round of federated group `id`: one member per node, each
/// training from the plan's starting parameters.
fn federated_round(
    db: &Db,
    id: &str,
    plan: &crate::domain::federated::Plan,
    task: &NewTask,
) -> Result<Vec<(String, u32, NewTask)>, ApiError> {
    let member = tasks::validate(db, plan.member_request(&task.request, None))?;
    Ok((0..plan.members)
        .map(|i| (groups::member_id(id, 0, i), 0, member.clone()))
        .collect())
}

/// The members group `id` of `task` shaped `shape` runs as, validated
/// like any task (a shard's errors name it): `(id, shard, task)`.
fn members_of(
    db: &Db,
    id: &str,
    task: &NewTask,
    shape: &groups::Shape,
) -> Result<Vec<(String, u32, NewTask)>, ApiError> {
    let mut members = Vec::new();
    for shard in 0..shape.shard_count() {
        let request = groups::member_request(&task.request, shape, shard);
        let member = tasks::validate(db, request).map_err(|e| match &shape.shards {
            Some(_) => {
                let field = format!("inputs.shards[{shard}]");
                ApiError {
                    message: format!("{field}: {}", e.message),
                    ..e.on_field(field)
                }
            }
            None => e,
        })?;
        for replica in 0..shape.replicas {
            members.push((groups::member_id(id, shard, replica), shard, member.clone()));
        }
    }
    Ok(members)
}

/// Inserts member `(id, shard)` of group `group` (queued like a task
/// of its own, under the group's policy; no events of its own).
fn store_member(
    db: &Db,
    user: &User,
    group: &str,
    (id, shard): (&str, u32),
    member: &NewTask,
    behind_own: bool,
) -> Result<(), ApiError> {
    let (_, policy) = policy_at_submission(&member.request);
    let now = crate::util::now_ms();
    tasks::insert(
        db,
        user,
        id,
        member,
        tasks::Entry {
            fair_key: fair_key(&user.id),
            deadline_at: now + crate::domain::schedule::queue_deadline_ms(policy.sla),
            ready: behind_own,
            wake_at: (!behind_own).then_some(now),
            status: "queued",
            group: Some((group, shard)),
        },
    )?;
    crate::domain::carbon::record_baseline(db, id, &user.id)
}

/// Inserts a validated task with its importance policy, and logs it. A task
/// decided at once enters waiting, due now (should this request die before
/// deciding it, the next pass does); one `behind_own` tasks enters ready.
/// A group enters `running` (its members are what the queue decides).
fn store(
    db: &Db,
    user: &User,
    id: &str,
    task: &NewTask,
    behind_own: bool,
    status: &'static str,
) -> Result<(), ApiError> {
    let r = &task.request;
    let (keyword, policy) = policy_at_submission(r);
    let now = crate::util::now_ms();
    let queued = status == "queued";
    tasks::insert(
        db,
        user,
        id,
        task,
        tasks::Entry {
            fair_key: fair_key(&user.id),
            deadline_at: now + crate::domain::schedule::queue_deadline_ms(policy.sla),
            ready: behind_own && queued,
            wake_at: (!behind_own && queued).then_some(now),
            status,
            group: None,
        },
    )?;
    crate::domain::policy::insert(db, id, &policy)?;
    crate::domain::carbon::record_baseline(db, id, &user.id)?;
    crate::domain::events::record(
        db,
        "task_submitted",
        None,
        Some(id),
        Some(&user.id),
        json!({ "task_type": task.task_type, "capability": task.capability, "sla": policy.sla }),
    )?;
    if let Some(keyword) = keyword {
        crate::domain::events::record(
            db,
            "public_health_override",
            None,
            Some(id),
            Some(&user.id),
            json!({ "keyword": keyword, "name": r.name, "importance": "critical", "sla": policy.sla }),
        )?;
    }
    if policy.is_voted() {
        crate::domain::votes::open_for(id)?;
    }
    Ok(())
}

/// Whether `owner` has a task ready to be decided.
fn owner_has_ready(db: &Db, owner: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        "SELECT 1 FROM broker_tasks WHERE owner = ? AND status = 'queued' AND ready = 1 LIMIT 1",
        &[text(owner)],
    )?;
    Ok(!rows.rows.is_empty())
}

/// The dispatch decision for a task, without submitting it.
pub fn precheck(db: &Db, user: &User, task: &NewTask) -> Result<Value, ApiError> {
    let r = &task.request;
    let (_, policy) = policy_at_submission(r);
    let placement = Placement::new(
        db,
        &user.id,
        r,
        &task.capability,
        &policy,
        crate::util::now_ms(),
    )?;
    let decision = matching::decide(
        db,
        &task.capability,
        r,
        task.input_bytes,
        &placement,
        &matching::Avoid::default(),
    )?;
    let mut answer = json!({
        "eligible": decision.chosen.is_some(),
        "capability": task.capability,
        "policy": policy.to_json(),
        "decision": decision.to_json(),
    });
    // A group needs as many owners (replicas) or nodes (shards) as it has.
    if let Some(shape) = groups::shape(r, policy.sla)? {
        let offers: Vec<&crate::model::Candidate> =
            decision.chosen.iter().chain(&decision.runners_up).collect();
        let mut owners: Vec<&str> = offers.iter().map(|c| c.owner.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        let (needed, have, of) = if shape.replicas > 1 {
            (shape.owners_needed(), owners.len() as u32, "owners")
        } else {
            (shape.shard_count(), offers.len() as u32, "nodes")
        };
        answer["eligible"] = json!(have >= needed);
        answer["group"] = json!({
            "shards": shape.shard_count(), "replicas": shape.replicas,
            "needs": format!("{needed} distinct {of}; {have} eligible now"),
        });
    }
    Ok(answer)
}

/// A ready task, as a decision needs it.
struct Queued {
    /// Whether it was ever leased (a task never leased has no node to exclude).
    leased_before: bool,
    /// A member's group and shard.
    group: Option<(String, u32)>,
    /// A spot check's checked task.
    check_of: Option<String>,
    capability: String,
    request: TaskRequest,
    input_sha256: String,
    input_bytes: u64,
    owner: String,
    reason: Option<String>,
    policy: Policy,
    created_at: u64,
}

/// The queued task `task_id` if it is ready (or, for its first decision,
/// at all).
fn load_ready(db: &Db, task_id: &str, first: bool) -> Result<Option<Queued>, ApiError> {
    let rows = db.query(
        "SELECT t.capability, t.body, t.input_sha256, t.input_bytes, t.owner, t.reason, t.created_at,
                EXISTS (SELECT 1 FROM broker_leases l WHERE l.task_id = t.id), t.group_id, t.shard, t.check_of
         FROM broker_tasks t WHERE t.id = ? AND t.status = 'queued' AND (t.ready = 1 OR ?)",
        &[text(task_id), int(first as u64)],
    )?;
    let Some(row) = rows.rows.first() else {
        return Ok(None);
    };
    let body: Value =
        serde_json::from_str(row.get::<&str>(1).unwrap_or("{}")).map_err(crate::error::storage)?;
    let request: TaskRequest =
        serde_json::from_value(body["request"].clone()).map_err(crate::error::storage)?;
    let group = row
        .get::<&str>(8)
        .map(|g| (g.to_string(), row.get::<i64>(9).unwrap_or(0).max(0) as u32));
    let check_of = row.get::<&str>(10).map(str::to_string);
    // A member runs under its group's policy (votes move the group), a
    // check under its task's.
    let parent = group.as_ref().map(|(g, _)| g).or(check_of.as_ref());
    let policy = match crate::domain::policy::get(db, task_id)? {
        Some(p) => Some(p),
        None => match parent {
            Some(p) => crate::domain::policy::get(db, p)?,
            None => None,
        },
    }
    .unwrap_or_else(|| Policy::at_submission(None, None, request.sla));
    Ok(Some(Queued {
        capability: row.get::<&str>(0).unwrap_or_default().to_string(),
        input_sha256: row.get::<&str>(2).unwrap_or_default().to_string(),
        input_bytes: row.get::<i64>(3).unwrap_or(0).max(0) as u64,
        owner: row.get::<&str>(4).unwrap_or_default().to_string(),
        reason: row.get::<&str>(5).map(str::to_string),
        created_at: row.get::<i64>(6).unwrap_or(0).max(0) as u64,
        leased_before: row.get::<i64>(7) != Some(0),
        group,
        check_of,
        request,
        policy,
    }))
}

/// Decides one ready task: leases it, or leaves it waiting or parked with
/// the reason. On a task's first decision (`first`), a requester turning
/// down every quote is reported to pricing once.
pub fn dispatch_task(db: &Db, task_id: &str, first: bool) -> Result<(), ApiError> {
    let Some(q) = load_ready(db, task_id, first)? else {
        return Ok(());
    };
    let mut exclude = if q.leased_before {
        lifecycle::excluded_nodes(db, task_id)?
    } else {
        Vec::new()
    };
    // A member keeps off the owners of its shard's other replicas (and a
    // first replica off the nodes of other shards' first replicas), and
    // would rather go where the group has the fewest members.
    let mut spread = groups::Spread::default();
    if let Some((group, shard)) = &q.group {
        spread = groups::spread(db, group, *shard, task_id)?;
        exclude.append(&mut spread.nodes);
    }
    // A spot check keeps off the owners that ran the computation before.
    if let Some(checked) = &q.check_of {
        spread.owners = crate::domain::spot_checks::owners_to_avoid(db, checked)?;
    }
    let placement = Placement::new(
        db,
        &q.owner,
        &q.request,
        &q.capability,
        &q.policy,
        q.created_at,
    )?;
    let decision = matching::decide(
        db,
        &q.capability,
        &q.request,
        q.input_bytes,
        &placement,
        &matching::Avoid {
            nodes: &exclude,
            owners: &spread.owners,
            load: &spread.load,
        },
    )?;
    if let Some(chosen) = &decision.chosen {
        let seed_of = match (&q.group, &q.check_of) {
            (Some((group, shard)), _) => format!("{group}#{shard}"),
            (_, Some(checked)) => checked.clone(),
            _ => task_id.to_string(),
        };
        lifecycle::create(
            db,
            &Leasing {
                task_id,
                sla: q.policy.sla,
                owner: &q.owner,
                capability: &q.capability,
                request: &q.request,
                input_sha256: &q.input_sha256,
                seed_of: &seed_of,
            },
            chosen,
            &decision,
        )?;
        return Ok(());
    }
    if let (true, Some(quoted)) = (first, decision.cheapest_refused) {
        quotes::record_outcome(&quotes::Outcome {
            capability: q.capability.clone(),
            quoted,
            accepted: false,
            succeeded: false,
            duration_ms: 0,
        });
    }
    let now = crate::util::now_ms();
    let (wake_at, wake_on) = if decision.deferred {
        (
            Some(now + crate::domain::schedule::dispatch_tick_ms()),
            WakeOn::Energy,
        )
    } else if waits_on_energy(q.policy.sla) {
        (None, WakeOn::Energy)
    } else {
        (None, WakeOn::Market)
    };
    set_aside(
        db,
        task_id,
        &decision,
        first,
        first || q.reason != decision.reason,
        wake_at,
        wake_on,
    )
}

/// Whether a task that no node can take now may be helped by a node's
/// energy changing (eco needs a clean share, solar/wind-only their source).
fn waits_on_energy(sla: Sla) -> bool {
    matches!(sla, Sla::Eco | Sla::SolarOnly | Sla::WindOnly)
}

/// Leaves a decided task waiting (until `wake_at`) or parked; writes the
/// decision only when a requester would read something new (the reason).
/// A task decided at submission was never ready, and its readiness (three
/// indexes) is left alone.
fn set_aside(
    db: &Db,
    task_id: &str,
    decision: &Decision,
    first: bool,
    changed: bool,
    wake_at: Option<u64>,
    wake_on: WakeOn,
) -> Result<(), ApiError> {
    let wake = wake_at.map(int).unwrap_or(greenmesh_storage::Value::Null);
    let ready = if first { "" } else { "ready = 0, " };
    if changed {
        db.exec(
            &format!(
                "UPDATE broker_tasks SET {ready}wake_at = ?, wake_on = ?, reason = ?, decision = ?, updated_at = ?,
                     decisions = decisions + 1
                 WHERE id = ? AND status = 'queued'"
            ),
            &[
                wake,
                text(wake_on.as_str()),
                text(decision.reason.clone().unwrap_or_default()),
                text(decision.to_json().to_string()),
                int(crate::util::now_ms()),
                text(task_id),
            ],
        )
    } else {
        db.exec(
            &format!(
                "UPDATE broker_tasks SET {ready}wake_at = ?, wake_on = ?, decisions = decisions + 1
                 WHERE id = ? AND status = 'queued'"
            ),
            &[wake, text(wake_on.as_str()), text(task_id)],
        )
    }
}

/// How long a pass has the tasks it claimed to itself: longer than a
/// pass takes; a task woken or requeued sooner has its claim cleared.
const CLAIM_MS: u64 = 2_000;

/// One dispatch pass: waiting tasks whose time has come become ready, then
/// up to `budget` ready tasks are decided in fair-key order.
pub fn dispatch_pass(db: &Db, budget: u32) -> Result<(), ApiError> {
    matching::forget_snapshots();
    crate::domain::votes::settle(db)?;
    let now = crate::util::now_ms();
    db.exec(
        "UPDATE broker_tasks SET ready = 1, wake_at = NULL, claim_until = NULL
         WHERE status = 'queued' AND ready = 0 AND wake_at <= ?",
        &[int(now)],
    )?;
    // The first `budget` ready tasks no other pass has claimed, claimed in
    // one compare-and-set: the claim is checked again on each row as it is
    // written, so two racing passes never claim one task. (Correctness does
    // not rest on it: a lease still wins its task by compare-and-set.)
    // (On Postgres a pass racing another may claim fewer than `budget`:
    // a row the other just claimed fails the recheck and is not replaced.
    // Never one task twice; the next pass takes what is left.)
    //
    // On Postgres two claims locking their rows in different orders
    // deadlocked (three replicas' heartbeats, `bench dispatch`), so claims
    // take turns there: each first takes a transaction-level advisory lock,
    // held until the statement commits, before it locks any row. SQLite has
    // one writer at a time anyway.
    let claim = "UPDATE broker_tasks SET claim_until = ?1
         WHERE id IN (SELECT id FROM broker_tasks{turn}
                      WHERE status = 'queued' AND ready = 1 AND (claim_until IS NULL OR claim_until < ?2)
                      ORDER BY fair_key LIMIT ?3)
           AND status = 'queued' AND ready = 1 AND (claim_until IS NULL OR claim_until < ?2)
         RETURNING id, fair_key";
    let claim = if db.is_postgres() {
        format!(
            "WITH turn AS (SELECT pg_advisory_xact_lock(hashtext('broker'), hashtext('dispatch claim')))\n{}",
            claim.replace("{turn}", ", turn")
        )
    } else {
        claim.replace("{turn}", "")
    };
    let rows = db.query(&claim, &[int(now + CLAIM_MS), int(now), int(budget as u64)])?;
    let mut claimed: Vec<(i64, &str)> = rows
        .rows
        .iter()
        .map(|r| {
            (
                r.get::<i64>(1).unwrap_or(0),
                r.get::<&str>(0).unwrap_or_default(),
            )
        })
        .collect();
    claimed.sort();
    let mut taken = None;
    for (key, id) in claimed {
        dispatch_task(db, id, false)?;
        taken = Some(key);
    }
    if let Some(key) = taken {
        db.exec(
            "INSERT INTO broker_queue (name, value) VALUES ('virtual_time', ?)
             ON CONFLICT (name) DO UPDATE SET value = MAX(broker_queue.value, excluded.value)",
            &[greenmesh_storage::Value::Integer(key)],
        )?;
    }
    Ok(())
}

/// Makes the parked and waiting tasks of `capabilities` ready after a
/// market change (`Change::Energy` only wakes those energy could help).
pub fn wake(db: &Db, capabilities: &[String], change: Change) -> Result<(), ApiError> {
    let energy_only = change == Change::Energy;
    for capability in capabilities {
        db.exec(
            "UPDATE broker_tasks SET ready = 1, wake_at = NULL, claim_until = NULL
             WHERE status = 'queued' AND ready = 0 AND capability = ? AND (? = 0 OR wake_on = 'energy')",
            &[text(capability.clone()), int(energy_only as u64)],
        )?;
    }
    Ok(())
}

/// Makes `owner`'s parked and waiting tasks ready (a grant may open nodes to them).
pub fn wake_owner(db: &Db, owner: &str) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET ready = 1, wake_at = NULL, claim_until = NULL
         WHERE owner = ? AND status = 'queued' AND ready = 0",
        &[text(owner)],
    )
}

/// A task's SLA changed (its importance vote closed): its deadline follows,
/// and it is decided again under the new level.
pub fn sla_changed(db: &Db, task_id: &str, sla: Sla) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET deadline_at = created_at + ?1, ready = 1, wake_at = NULL, claim_until = NULL
         WHERE (id = ?2 OR group_id = ?2) AND status = 'queued'",
        &[
            int(crate::domain::schedule::queue_deadline_ms(sla)),
            text(task_id),
        ],
    )
}

/// The queue at a glance: how many tasks are ready, waiting and parked,
/// and the capabilities most parked tasks wait for.
pub fn stats(db: &Db) -> Result<Value, ApiError> {
    let counts = db.query(
        "SELECT TOTAL(ready = 1), TOTAL(ready = 0 AND wake_at IS NOT NULL), TOTAL(ready = 0 AND wake_at IS NULL)
         FROM broker_tasks WHERE status = 'queued'",
        &[],
    )?;
    let c = counts.rows.first();
    let n = |i: usize| c.and_then(|r| r.get::<f64>(i)).unwrap_or(0.0) as u64;
    let parked = db.query(
        "SELECT capability, COUNT(*) FROM broker_tasks WHERE status = 'queued' AND ready = 0 AND wake_at IS NULL
         GROUP BY capability ORDER BY 2 DESC, 1 LIMIT 20",
        &[],
    )?;
    Ok(json!({
        "queued": n(0) + n(1) + n(2),
        "ready": n(0),
        "waiting": n(1),
        "parked": n(2),
        "parked_by_capability": parked.rows.iter().map(|r| json!({
            "capability": r.get::<&str>(0), "tasks": r.get::<i64>(1),
        })).collect::<Vec<_>>(),
    }))
}
