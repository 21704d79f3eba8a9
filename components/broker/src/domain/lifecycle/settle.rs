//! The effects of a lease's life, in one place: what a new lease opens
//! (its carbon record, the delegation event) and what each way of ending
//! does to the task, the requester's quota, reputations, the ledger and the
//! event log.
//!
//! | end | task | quota | reputation | carbon | event |
//! |---|---|---|---|---|---|
//! | completed | completed, with the result | kept | provider success, requester success, standing | closed: completed | `task_completed`, `carbon_saved` |
//! | failed | failed, with the kernel's error | kept | provider failure | closed: failed | `task_failed` |
//! | expired | re-queued (attempt counted) | back if it gives up | provider timeout | dropped | `lease_expired` |
//! | refused | re-queued (attempt counted) | back if it gives up | — | dropped | `lease_refused` |
//! | stopped (by the node) | re-queued (attempt counted) | back if it gives up | — | closed: interrupted | `lease_stopped` |
//! | interrupted | re-queued (attempt given back) | — | — | fetched: interrupted when reported; else dropped | `task_interrupted` |
//! | vetoed | re-queued on the owner's nodes, eco (attempt given back) | — | — | as interrupted | `delegation_vetoed` |
//! | cancelled | stays cancelled | back if no node fetched it | requester failure if one had | as interrupted | `lease_cancelled` |
//!
//! Every effect is idempotent, keyed by the lease: applying them twice (a
//! repair after a crash, two requests racing) changes nothing the second
//! time. A task that gives up after its last attempt, is cancelled, or
//! passes its deadline unstarted is settled by [`settle_task`].

use super::{load, End, Owed, Row};
use crate::db::{text, Db};
use crate::domain::carbon::{self, RunEnd};
use crate::domain::events;
use crate::domain::tasks::{self, Attempt};
use crate::error::ApiError;
use crate::greenmesh::reputation::scores::{self, Event, Role};
use serde_json::json;

/// A re-queued task may start this long after its lease ended even past
/// its original deadline (it had started in time).
const RETRY_WINDOW_MS: u64 = 30 * 60_000;

/// Applies the effects `lease_id`'s state calls for that are not applied
/// yet, then marks it settled.
pub fn settle(db: &Db, lease_id: &str) -> Result<(), ApiError> {
    let Some(row) = load(db, lease_id)? else {
        return Ok(());
    };
    if row.owed == Owed::Nothing || row.status == "void" {
        return Ok(());
    }
    if row.status == "offered" && !row.owned {
        // Its creation is in flight, or crashed before the task took it.
        if crate::util::now_ms().saturating_sub(row.created_at) > super::ORPHAN_AFTER_MS {
            super::void_orphan(db, lease_id)?;
        }
        return Ok(());
    }
    if row.owed == Owed::Everything {
        opened(db, &row)?;
    }
    if let Some(end) = End::of_status(&row.status) {
        ended(db, &row, end)?;
        crate::util::fault_point("lease_end_applied");
    }
    // Settled as read: a change since (a revocation's report, say) keeps
    // its own effects owed.
    db.exec(
        "UPDATE broker_leases SET settled = 1, result = CASE WHEN status IN ('completed', 'failed') THEN NULL ELSE result END
         WHERE id = ? AND rev = ?",
        &[text(lease_id), greenmesh_storage::Value::Integer(row.rev)],
    )?;
    // A member's result owes its group a look (marked in `ended`).
    if matches!(
        End::of_status(&row.status),
        Some(End::Completed | End::Failed)
    ) {
        if let Some((group, _)) = crate::domain::groups::of_member(db, &row.lease.task_id)? {
            settle_task(db, &group)?;
        }
    }
    // A lease that was its task's last attempt leaves the task to settle
    // (a cancelled task settles itself, ending this lease on the way).
    let counted = matches!(
        End::of_status(&row.status),
        Some(End::Expired | End::Refused | End::Stopped)
    );
    if !counted {
        return Ok(());
    }
    if let Some(state) = tasks::state(db, &row.lease.task_id)? {
        if !state.settled && state.status == "failed" && state.lease_id.as_deref() == Some(lease_id)
        {
            settle_task(db, &row.lease.task_id)?;
        }
    }
    Ok(())
}

/// What a new lease opens.
fn opened(db: &Db, row: &Row) -> Result<(), ApiError> {
    let l = &row.lease;
    carbon::open(db, &l.lease_id)?;
    events::record_once(
        db,
        &format!("{}:leased", l.lease_id),
        "task_delegated",
        Some(&l.node_id),
        Some(&l.task_id),
        Some(&row.owner),
        json!({ "from": row.owner, "to": l.node_id, "lease_id": l.lease_id, "price": l.price,
                "sla": row.sla, "carbon_intensity": row.intensity }),
    )
}

fn key(row: &Row, what: &str) -> String {
    format!("{}:{what}", row.lease.lease_id)
}

/// What `end` does, applied once.
fn ended(db: &Db, row: &Row, end: End) -> Result<(), ApiError> {
    let l = &row.lease;
    let reason = row.end_reason.clone().unwrap_or_default();
    // An event about this lease's node and task, logged once per `what`.
    let note = |what: &str, event: &str, data: serde_json::Value| {
        events::record_once(
            db,
            &key(row, what),
            event,
            Some(&l.node_id),
            Some(&l.task_id),
            None,
            data,
        )
    };
    let record = |event: &str, data: serde_json::Value| note("ended", event, data);
    let provider = |event: Event| {
        scores::record_event(&key(row, "provider"), &l.node_id, Role::Provider, event);
    };
    // A group's member or a spot check: whether its success counts is
    // decided when it is judged with the others.
    let group = crate::domain::groups::of_member(db, &l.task_id)?.map(|(g, _)| g);
    let checked = crate::domain::spot_checks::checked_task(db, &l.task_id)?;
    let judged = group.is_some() || checked.is_some();
    match end {
        End::Completed | End::Failed => {
            let succeeded = end == End::Completed;
            let result = row.result.as_deref().unwrap_or("null");
            tasks::finish(
                db,
                &l.task_id,
                &l.lease_id,
                end.status(),
                row.end_reason.as_deref(),
                result,
            )?;
            crate::util::fault_point("task_finished");
            if let Some(group) = &group {
                tasks::unsettle(db, group)?;
            }
            if let Some(checked) = &checked {
                super::check::judge(db, checked)?;
            }
            let receipt: serde_json::Value = serde_json::from_str(result).unwrap_or_default();
            let duration_ms = receipt["receipt"]["duration_ms"].as_u64();
            let energy = row.energy_wh.unwrap_or(0.0);
            if succeeded && judged {
                // Settled with the others: success if it agreed, a wrong
                // result if it did not.
            } else if succeeded {
                provider(Event::Success);
                // The requester's side of a completed delegation: it was served.
                scores::record_event(
                    &key(row, "requester"),
                    &row.owner,
                    Role::Requester,
                    Event::Success,
                );
                crate::domain::standing::record_completion(
                    db,
                    &l.lease_id,
                    &row.owner,
                    &row.node_owner,
                )?;
            } else if crate::domain::faults::requesters(&receipt) {
                // The requester's module, input or limits failed the run:
                // the node is not to blame, the requester is.
                crate::domain::faults::record(
                    db,
                    &l.lease_id,
                    &row.owner,
                    &l.task_id,
                    &row.node_owner,
                )?;
            } else {
                provider(Event::Failure);
            }
            let run = if succeeded {
                RunEnd::Completed
            } else {
                RunEnd::Failed
            };
            let saved = carbon::close(db, &l.lease_id, energy, run)?;
            if let (true, Some(saved)) = (succeeded, saved) {
                note(
                    "carbon",
                    "carbon_saved",
                    json!({ "g_co2": saved, "energy_wh": energy }),
                )?;
            }
            record(
                if succeeded {
                    "task_completed"
                } else {
                    "task_failed"
                },
                json!({ "lease_id": l.lease_id, "duration_ms": duration_ms, "energy_wh": energy }),
            )?;
            // A deterministic result may be rerun elsewhere, unannounced.
            if succeeded && l.deterministic && !judged {
                use crate::domain::spot_checks;
                if spot_checks::draws_check(db, l)? {
                    spot_checks::open(db, &l.task_id, 1)?;
                    spot_checks::mark_checking(db, &l.task_id)?;
                }
            }
            Ok(())
        }
        End::Expired | End::Refused | End::Stopped => {
            let requeue_reason = match end {
                End::Expired => format!("{reason}; re-queued"),
                End::Refused => format!("{} refused the lease: {reason}", l.node_id),
                _ => format!("{} stopped the run: {reason}", l.node_id),
            };
            tasks::requeue(
                db,
                &l.task_id,
                &l.lease_id,
                &requeue_reason,
                Attempt::Counted,
                RETRY_WINDOW_MS,
            )?;
            match end {
                End::Expired => {
                    provider(Event::Timeout);
                    carbon::forget(db, &l.lease_id)?;
                    record("lease_expired", json!({ "lease_id": l.lease_id }))
                }
                End::Refused => {
                    carbon::forget(db, &l.lease_id)?;
                    record(
                        "lease_refused",
                        json!({ "lease_id": l.lease_id, "reason": reason }),
                    )
                }
                _ => {
                    carbon::close(
                        db,
                        &l.lease_id,
                        row.energy_wh.unwrap_or(0.0),
                        RunEnd::Interrupted,
                    )?;
                    record(
                        "lease_stopped",
                        json!({ "lease_id": l.lease_id, "reason": reason, "energy_wh": row.energy_wh }),
                    )
                }
            }
        }
        End::Interrupted | End::Vetoed | End::Cancelled => {
            match end {
                End::Interrupted => tasks::requeue(
                    db,
                    &l.task_id,
                    &l.lease_id,
                    &format!(
                        "interrupted on {} ({reason}); re-queued to start again",
                        l.node_id
                    ),
                    Attempt::GivenBack,
                    RETRY_WINDOW_MS,
                )?,
                End::Vetoed => {
                    tasks::requeue(
                        db,
                        &l.task_id,
                        &l.lease_id,
                        "delegation vetoed: waiting for one of your own nodes with clean energy (eco mode)",
                        Attempt::GivenBack,
                        RETRY_WINDOW_MS,
                    )?;
                    crate::domain::policy::pin_home(db, &l.task_id)?;
                }
                _ => {
                    // (A group's cancel counts once, for the group.)
                    if row.delivered_at.is_some() && !judged {
                        // A node may have been working on it: cancelling wastes its work.
                        scores::record_event(
                            &key(row, "requester"),
                            &row.owner,
                            Role::Requester,
                            Event::Failure,
                        );
                    }
                }
            }
            // Emitted is emitted: a run the node had fetched stays in the
            // ledger once it reports what it used; one it never fetched, or
            // never reported on before its lease ran out, leaves no record.
            match (row.delivered_at, row.stop_reported_at) {
                (Some(_), Some(at)) if at > 0 => {
                    carbon::close(
                        db,
                        &l.lease_id,
                        row.energy_wh.unwrap_or(0.0),
                        RunEnd::Interrupted,
                    )?;
                    let report: serde_json::Value = row
                        .result
                        .as_deref()
                        .and_then(|r| serde_json::from_str(r).ok())
                        .unwrap_or_default();
                    note(
                        "stop_reported",
                        "lease_stopped",
                        json!({ "lease_id": l.lease_id, "revoked": end.status(), "energy_wh": row.energy_wh,
                                "duration_ms": report["receipt"]["duration_ms"],
                                "receipt_status": report["receipt"]["status"] }),
                    )?;
                }
                (Some(_), None) => {} // the node has been told to stop; its report is awaited
                _ => carbon::forget(db, &l.lease_id)?,
            }
            let event = match end {
                End::Interrupted => "task_interrupted",
                End::Vetoed => "delegation_vetoed",
                _ => "lease_cancelled",
            };
            events::record_once(
                db,
                &key(row, "ended"),
                event,
                Some(&l.node_id),
                Some(&l.task_id),
                Some(&row.owner),
                json!({ "lease_id": l.lease_id, "why": reason,
                        "was": if row.delivered_at.is_some() { "delivered" } else { "offered" } }),
            )
        }
    }
}

/// Settles a task the broker ended itself (cancelled, failed by its
/// deadline, or given up after its last attempt): its lease is revoked, its
/// quota given back when no node ran it, and the end logged.
pub fn settle_task(db: &Db, task_id: &str) -> Result<(), ApiError> {
    let Some(state) = tasks::state(db, task_id)? else {
        return Ok(());
    };
    if state.settled {
        return Ok(());
    }
    if crate::domain::groups::spec(db, task_id)?.is_some() {
        return super::group::settle_group(db, task_id, &state);
    }
    let group = crate::domain::groups::of_member(db, task_id)?.map(|(g, _)| g);
    let checked = crate::domain::spot_checks::checked_task(db, task_id)?;
    match state.status.as_str() {
        "cancelled" => {
            let mut fetched = false;
            if let Some(lease_id) = &state.lease_id {
                super::end(
                    db,
                    lease_id,
                    End::Cancelled,
                    "the requester cancelled the task",
                )?;
                fetched = load(db, lease_id)?.is_some_and(|r| r.delivered_at.is_some());
            }
            // Cancelled before any node fetched it: the day's count is given
            // back. (A fetched lease may have run, so that task stays counted.)
            if !fetched {
                crate::domain::quota::release(db, &state.owner, task_id)?;
            }
            events::record_once(
                db,
                &format!("{task_id}:cancelled"),
                "task_cancelled",
                None,
                Some(task_id),
                Some(&state.owner),
                json!({ "lease_id": state.lease_id, "lease_fetched": fetched }),
            )?;
        }
        "failed" => {
            // No receipt ever came (failures with a receipt settle with
            // their lease): the task never ran, so its quota is given back
            // (a member's is its group's: the group judges the loss).
            match (&group, &checked) {
                (Some(group), _) => tasks::unsettle(db, group)?,
                // A check that could not run leaves its task unchecked.
                (_, Some(checked)) => super::check::judge(db, checked)?,
                _ => crate::domain::quota::release(db, &state.owner, task_id)?,
            }
            events::record_once(
                db,
                &format!("{task_id}:failed"),
                "task_failed",
                None,
                Some(task_id),
                Some(&state.owner),
                json!({ "reason": state.reason }),
            )?;
        }
        _ => {}
    }
    tasks::mark_settled(db, task_id)?;
    match (group, state.status.as_str()) {
        (Some(group), "failed") => settle_task(db, &group),
        _ => Ok(()),
    }
}
