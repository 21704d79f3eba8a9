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
pub fn submit(db: &Db, user: &User, task: NewTask) -> Result<Value, ApiError> {
    let id = crate::util::new_id("task");
    let quota = crate::domain::quota::reserve(db, user, &id, &task.request.requirements)?;
    // Its key is above all its owner's queued tasks: if any of those is
    // ready, they go first.
    let behind_own = owner_has_ready(db, &user.id)?;
    let stored = store(db, user, &id, &task, behind_own);
    if stored.is_err() {
        // Nothing was accepted: give the day's count back.
        let _ = crate::domain::quota::release(db, &user.id, &id);
    }
    stored?;
    if behind_own {
        // Decide the queue in order.
        dispatch_pass(db, PASS_BUDGET)?;
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
fn fair_key(owner: &str) -> (&'static str, Vec<spin_sdk::sqlite::Value>) {
    (
        "1 + MAX(COALESCE((SELECT value FROM broker_queue WHERE name = 'virtual_time'), 0),
                 COALESCE((SELECT MAX(fair_key) FROM broker_tasks WHERE owner = ? AND status = 'queued' AND ready = 0), 0),
                 COALESCE((SELECT MAX(fair_key) FROM broker_tasks WHERE owner = ? AND status = 'queued' AND ready = 1), 0))",
        vec![text(owner), text(owner)],
    )
}

/// Inserts a validated task with its importance policy, and logs it. A task
/// decided at once enters waiting, due now (should this request die before
/// deciding it, the next pass does); one `behind_own` tasks enters ready.
fn store(db: &Db, user: &User, id: &str, task: &NewTask, behind_own: bool) -> Result<(), ApiError> {
    let r = &task.request;
    let (keyword, policy) = policy_at_submission(r);
    let now = crate::util::now_ms();
    tasks::insert(
        db,
        user,
        id,
        task,
        tasks::Entry {
            fair_key: fair_key(&user.id),
            deadline_at: now + crate::domain::schedule::queue_deadline_ms(policy.sla),
            ready: behind_own,
            wake_at: (!behind_own).then_some(now),
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
        crate::domain::votes::open_for(db, id, user, r.importance.as_deref())?;
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
    let decision = matching::decide(db, &task.capability, r, task.input_bytes, &placement, &[])?;
    Ok(json!({
        "eligible": decision.chosen.is_some(),
        "capability": task.capability,
        "policy": policy.to_json(),
        "decision": decision.to_json(),
    }))
}

/// A ready task, as a decision needs it.
struct Queued {
    /// Whether it was ever leased (a task never leased has no node to exclude).
    leased_before: bool,
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
                EXISTS (SELECT 1 FROM broker_leases l WHERE l.task_id = t.id)
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
    let policy = crate::domain::policy::get(db, task_id)?
        .unwrap_or_else(|| Policy::at_submission(None, None, request.sla));
    Ok(Some(Queued {
        capability: row.get::<&str>(0).unwrap_or_default().to_string(),
        input_sha256: row.get::<&str>(2).unwrap_or_default().to_string(),
        input_bytes: row.get::<i64>(3).unwrap_or(0).max(0) as u64,
        owner: row.get::<&str>(4).unwrap_or_default().to_string(),
        reason: row.get::<&str>(5).map(str::to_string),
        created_at: row.get::<i64>(6).unwrap_or(0).max(0) as u64,
        leased_before: row.get::<i64>(7) != Some(0),
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
    let exclude = if q.leased_before {
        lifecycle::excluded_nodes(db, task_id)?
    } else {
        Vec::new()
    };
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
        &exclude,
    )?;
    if let Some(chosen) = &decision.chosen {
        lifecycle::create(
            db,
            &Leasing {
                task_id,
                sla: q.policy.sla,
                owner: &q.owner,
                capability: &q.capability,
                request: &q.request,
                input_sha256: &q.input_sha256,
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
    let wake = wake_at.map(int).unwrap_or(spin_sdk::sqlite::Value::Null);
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

/// One dispatch pass: waiting tasks whose time has come become ready, then
/// up to `budget` ready tasks are decided in fair-key order.
pub fn dispatch_pass(db: &Db, budget: u32) -> Result<(), ApiError> {
    matching::forget_snapshots();
    crate::domain::votes::settle(db)?;
    let now = crate::util::now_ms();
    db.exec(
        "UPDATE broker_tasks SET ready = 1, wake_at = NULL WHERE status = 'queued' AND ready = 0 AND wake_at <= ?",
        &[int(now)],
    )?;
    let rows = db.query(
        "SELECT id, fair_key FROM broker_tasks WHERE status = 'queued' AND ready = 1 ORDER BY fair_key LIMIT ?",
        &[int(budget as u64)],
    )?;
    let mut taken = None;
    for r in &rows.rows {
        dispatch_task(db, r.get::<&str>(0).unwrap_or_default(), false)?;
        taken = r.get::<i64>(1).or(taken);
    }
    if let Some(key) = taken {
        db.exec(
            "INSERT INTO broker_queue (name, value) VALUES ('virtual_time', ?)
             ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
            &[spin_sdk::sqlite::Value::Integer(key)],
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
            "UPDATE broker_tasks SET ready = 1, wake_at = NULL
             WHERE status = 'queued' AND ready = 0 AND capability = ? AND (? = 0 OR wake_on = 'energy')",
            &[text(capability.clone()), int(energy_only as u64)],
        )?;
    }
    Ok(())
}

/// Makes `owner`'s parked and waiting tasks ready (a grant may open nodes to them).
pub fn wake_owner(db: &Db, owner: &str) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET ready = 1, wake_at = NULL WHERE owner = ? AND status = 'queued' AND ready = 0",
        &[text(owner)],
    )
}

/// A task's SLA changed (its importance vote closed): its deadline follows,
/// and it is decided again under the new level.
pub fn sla_changed(db: &Db, task_id: &str, sla: Sla) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET deadline_at = created_at + ?, ready = 1, wake_at = NULL
         WHERE id = ? AND status = 'queued'",
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
