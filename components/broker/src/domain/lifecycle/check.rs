//! How a spot check's end is judged: the checked task's result and its
//! checks' results go through the quorum rule (two runs, a third on a
//! disagreement). Agreement adds to each node's record (it will be checked
//! less often); a mismatch tells the requester at once (`verification:
//! disputed`, a `spot_check_mismatch` event) and a third owner's node
//! breaks the tie: the minority gets a wrong-result mark and its record
//! starts again (it will be checked at the ceiling).
//!
//! Every effect is idempotent (keyed reputation and log events, `INSERT OR
//! IGNORE` outcomes and checks), so a judge may run again after a crash or
//! a race: it is called from a check lease's settle, before that lease is
//! marked settled.

use crate::db::{text, Db};
use crate::domain::{events, spot_checks};
use crate::error::ApiError;
use crate::greenmesh::reputation::scores::{self, Event, Role};
use greenmesh_quorum::{judge as quorum, Report, Verdict};
use serde_json::{json, Value};

/// Runs a checked task's checks may grow to (the task's own, and two checks).
const MAX_RUNS: u32 = 3;

/// One run: the checked task's or a check's.
struct Run {
    task_id: String,
    lease_id: Option<String>,
    node_id: Option<String>,
    status: String,
    reason: Option<String>,
    result: Option<Value>,
}

impl Run {
    fn key(&self) -> Option<String> {
        let r = self.result.as_ref()?;
        Some(format!(
            "{}:{}",
            r["receipt"]["kernel_sha256"].as_str().unwrap_or_default(),
            r["receipt"]["output_sha256"].as_str().unwrap_or_default()
        ))
    }

    fn output_sha256(&self) -> Option<&str> {
        self.result.as_ref()?["receipt"]["output_sha256"].as_str()
    }

    fn report(&self) -> Report {
        match self.status.as_str() {
            "completed" => Report::Output(self.key().unwrap_or_default()),
            "failed" if self.result.is_some() => {
                Report::Failed(self.reason.clone().unwrap_or_default())
            }
            "failed" | "cancelled" => Report::Lost(self.reason.clone().unwrap_or_default()),
            _ => Report::Pending,
        }
    }
}

/// The checked task, then its checks in the order opened.
fn runs(db: &Db, task_id: &str) -> Result<Vec<Run>, ApiError> {
    let rows = db.query(
        "SELECT id, lease_id, node_id, status, reason, result FROM broker_tasks
         WHERE id = ?1 OR check_of = ?1 ORDER BY check_of IS NOT NULL, created_at, id",
        &[text(task_id)],
    )?;
    Ok(rows
        .rows
        .iter()
        .map(|r| Run {
            task_id: r.get::<&str>(0).unwrap_or_default().to_string(),
            lease_id: r.get::<&str>(1).map(str::to_string),
            node_id: r.get::<&str>(2).map(str::to_string),
            status: r.get::<&str>(3).unwrap_or_default().to_string(),
            reason: r.get::<&str>(4).map(str::to_string),
            result: r.get::<&str>(5).and_then(|s| serde_json::from_str(s).ok()),
        })
        .collect())
}

/// Judges the checks of `task_id` so far and applies what they show.
pub fn judge(db: &Db, task_id: &str) -> Result<(), ApiError> {
    let runs = runs(db, task_id)?;
    if runs.first().map(|r| r.task_id.as_str()) != Some(task_id) {
        return Ok(());
    }
    let reports: Vec<Report> = runs.iter().map(Run::report).collect();
    let owner = db.query(
        "SELECT owner FROM broker_tasks WHERE id = ?",
        &[text(task_id)],
    )?;
    let owner = owner
        .rows
        .first()
        .and_then(|r| r.get::<&str>(0))
        .unwrap_or_default()
        .to_string();
    let checks = runs.len() - 1;
    // Checks that could not run leave the result unchecked, not disputed.
    let nobody_reported = reports[1..].iter().all(|r| matches!(r, Report::Lost(_)));
    if nobody_reported && !reports[1..].is_empty() {
        return spot_checks::set_verification(
            db,
            task_id,
            &json!({ "status": "unchecked", "checks": checks,
                     "why": "no node of another owner could rerun it" }),
        );
    }
    match quorum(&reports, 2, MAX_RUNS) {
        Verdict::Pending => Ok(()),
        Verdict::MoreReplicas => {
            mismatch(db, task_id, &owner, &runs)?;
            spot_checks::open(db, task_id, checks as u32 + 1).map(|_| ())
        }
        Verdict::Failed(why) | Verdict::Disputed(why) => {
            mismatch(db, task_id, &owner, &runs)?;
            spot_checks::set_verification(
                db,
                task_id,
                &json!({ "status": "disputed", "checks": checks, "why": why }),
            )
        }
        Verdict::Agreed {
            agreeing, minority, ..
        } => {
            let agreed = runs[agreeing[0]].output_sha256();
            for &i in &agreeing {
                let r = &runs[i];
                if let (Some(lease_id), Some(node)) = (&r.lease_id, &r.node_id) {
                    super::judged(db, (lease_id, node), true, task_id, &owner, Value::Null)?;
                    if i > 0 {
                        // A check's run is paid in reputation once judged.
                        scores::record_event(
                            &format!("{lease_id}:provider"),
                            node,
                            Role::Provider,
                            Event::Success,
                        );
                    }
                }
            }
            for &i in &minority {
                let r = &runs[i];
                if let (Some(lease_id), Some(node)) = (&r.lease_id, &r.node_id) {
                    let detail = json!({ "lease_id": lease_id, "output_sha256": r.output_sha256(),
                                         "agreed_output_sha256": agreed, "by": "spot check" });
                    super::judged(db, (lease_id, node), false, task_id, &owner, detail)?;
                }
            }
            let status = match (minority.is_empty(), minority.contains(&0)) {
                (true, _) => json!({ "status": "verified", "checks": checks }),
                (false, true) => json!({
                    "status": "disputed", "checks": checks, "result_agreed": false,
                    "agreed_output_sha256": agreed,
                    "why": "a majority of other owners' nodes computed another output: this result is wrong",
                }),
                (false, false) => json!({
                    "status": "disputed", "checks": checks, "result_agreed": true,
                    "agreed_output_sha256": agreed,
                    "why": "a check disagreed and a third owner's node sided with this result",
                }),
            };
            spot_checks::set_verification(db, task_id, &status)
        }
    }
}

/// A check disagreed with the result: the requester hears of it at once.
fn mismatch(db: &Db, task_id: &str, owner: &str, runs: &[Run]) -> Result<(), ApiError> {
    spot_checks::set_verification(
        db,
        task_id,
        &json!({ "status": "disputed", "checks": runs.len() - 1,
                 "why": "a rerun on another owner's node gave another output; a third decides" }),
    )?;
    events::record_once(
        db,
        &format!("{task_id}:spot-check-mismatch"),
        "spot_check_mismatch",
        None,
        Some(task_id),
        Some(owner),
        json!({ "outputs": runs.iter().map(Run::output_sha256).collect::<Vec<_>>() }),
    )
}
