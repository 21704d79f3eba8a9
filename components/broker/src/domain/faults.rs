//! Fault attribution (issue 21): a failed run's receipt says whose fault it
//! was, signed by the node. A requester's fault (its submitted module
//! trapped, erred or hit the limits it set; its input did not parse) weighs on the
//! requester's reputation, never on the node's, and a requester whose runs
//! keep failing is throttled: free accounts cannot sink honest nodes'
//! reputations with trapping modules.
//!
//! The claim is the node's: a node that blames requesters for its own
//! crashes signs a lie that a deterministic rerun can expose
//! (`greenmesh verify --rerun`, spot checks). So that one lying owner's
//! nodes cannot throttle a requester alone, the throttle needs the faults
//! to be reported by nodes of at least two owners.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use crate::greenmesh::reputation::scores::{self, Event, Role};
use serde_json::{json, Value};

/// Requester faults in the last [`WINDOW_MS`] after which submissions are
/// refused (`fault_throttle` variable; `0` turns it off).
const THROTTLE_AFTER: u64 = 20;
const WINDOW_MS: u64 = 60 * 60_000;

fn throttle_after() -> u64 {
    spin_sdk::variables::get("fault_throttle")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(THROTTLE_AFTER)
}

/// Whether a failed run's stored result (`{receipt, output}`) blames the requester.
pub fn requesters(result: &Value) -> bool {
    result["receipt"]["fault"] == "requester"
}

/// Owners whose nodes must have reported the faults before they throttle,
/// unless `fault_confirming_owners` says otherwise.
const CONFIRMING_OWNERS: i64 = 2;

fn confirming_owners() -> i64 {
    spin_sdk::variables::get("fault_confirming_owners")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(CONFIRMING_OWNERS)
}

/// Records a requester's fault for lease `lease_id` (once), reported by a
/// node of `node_owner`.
pub fn record(
    db: &Db,
    lease_id: &str,
    owner: &str,
    task_id: &str,
    node_owner: &str,
) -> Result<(), ApiError> {
    scores::record_event(
        &format!("{lease_id}:requester-fault"),
        owner,
        Role::Requester,
        Event::Failure,
    );
    crate::domain::events::record_once(
        db,
        &format!("{lease_id}:requester-fault"),
        "requester_fault",
        None,
        Some(task_id),
        Some(owner),
        json!({ "lease_id": lease_id, "node_owner": node_owner }),
    )
}

/// Refuses a submission from `user_id` if its runs failed through its own
/// fault too often lately (`429`, saying when to try again).
pub fn check_throttle(db: &Db, user_id: &str) -> Result<(), ApiError> {
    let limit = throttle_after();
    if limit == 0 {
        return Ok(());
    }
    let since = crate::util::now_ms().saturating_sub(WINDOW_MS);
    let rows = db.query(
        "SELECT SUM(MIN(n, ?3)), MIN(first), COUNT(*) FROM (
             SELECT COUNT(*) AS n, MIN(at) AS first FROM broker_events
             WHERE user_id = ?1 AND event_type = 'requester_fault' AND at > ?2
             GROUP BY json_extract(data, '$.node_owner'))",
        &[
            text(user_id),
            int(since),
            int(limit.div_ceil(confirming_owners().max(1) as u64)),
        ],
    )?;
    // Each owner's nodes count for at most their share of the limit, so a
    // lying owner's reports need others' to reach it.
    let row = rows.rows.first();
    let count = row.and_then(|r| r.get::<i64>(0)).unwrap_or(0).max(0) as u64;
    let owners = row.and_then(|r| r.get::<i64>(2)).unwrap_or(0);
    if count < limit || owners < confirming_owners() {
        return Ok(());
    }
    let oldest = row.and_then(|r| r.get::<i64>(1)).unwrap_or(0).max(0) as u64;
    let retry_s = (oldest + WINDOW_MS).saturating_sub(crate::util::now_ms()) / 1000 + 1;
    Err(ApiError::new(
        429,
        "too_many_failures",
        format!(
            "{count} of your runs failed through your own module, input or limits in the last hour, on nodes of {owners} owners (the limit is {limit}); try again in {retry_s} s"
        ),
    )
    .with_details(json!({ "retry_after_s": retry_s })))
}
