//! Secure aggregation's rosters (ADR 0019): for each attempt at a
//! federated round, the members whose masks must cancel, fixed once and
//! signed by the broker. A member masks its update against the roster it
//! fetched (`GET /api/v1/leases/{id}/roster`); the broker only ever sums
//! masked updates, and stores the round's decoded totals as its outcome.
//!
//! Fixing is an `INSERT OR IGNORE` on (group, round, attempt): racing
//! requests read back the one roster that won.

use crate::db::{int, text, Db};
use crate::domain::groups::Member;
use crate::error::ApiError;
use greenmesh_protocol::{Roster, RosterMember};
use serde_json::Value;

/// A stored roster and what its round came to.
#[derive(Debug, Clone)]
pub struct Stored {
    pub roster: Roster,
    /// The decoded totals, once the masked sum was taken.
    pub outcome: Option<Value>,
    pub created_at: u64,
}

fn stored(r: &greenmesh_storage::RowResult) -> Result<Stored, ApiError> {
    Ok(Stored {
        roster: serde_json::from_str(r.get::<&str>(0).unwrap_or_default())
            .map_err(crate::error::storage)?,
        outcome: r.get::<&str>(1).and_then(|s| serde_json::from_str(s).ok()),
        created_at: r.get::<i64>(2).unwrap_or(0).max(0) as u64,
    })
}

/// The roster of `group_id`'s `round`, attempt `attempt`, if fixed.
pub fn get(db: &Db, group_id: &str, round: u32, attempt: u32) -> Result<Option<Stored>, ApiError> {
    let rows = db.query(
        "SELECT body, outcome, created_at FROM broker_rosters WHERE group_id = ? AND round = ? AND attempt = ?",
        &[text(group_id), int(round as u64), int(attempt as u64)],
    )?;
    rows.rows.first().map(stored).transpose()
}

/// Every roster of `group_id`, by round and attempt.
pub fn of_group(db: &Db, group_id: &str) -> Result<Vec<Stored>, ApiError> {
    let rows = db.query(
        "SELECT body, outcome, created_at FROM broker_rosters WHERE group_id = ? ORDER BY round, attempt",
        &[text(group_id)],
    )?;
    rows.rows.iter().map(stored).collect()
}

/// Fixes the roster of `leased` (members with a live lease), signed, unless
/// one is already fixed; answers the one that holds.
pub fn fix(
    db: &Db,
    group_id: &str,
    (round, attempt): (u32, u32),
    leased: &[&Member],
) -> Result<Stored, ApiError> {
    let mut members = Vec::new();
    for m in leased {
        let (Some(node_id), Some(lease_id)) = (&m.node_id, &m.lease_id) else {
            continue;
        };
        let node = crate::greenmesh::marketplace::registry::get(node_id)
            .map_err(crate::domain::nodes::market_error)?;
        members.push(RosterMember {
            node_id: node_id.clone(),
            public_key: node.public_key,
            lease_id: lease_id.clone(),
        });
    }
    let mut roster = Roster {
        task_id: group_id.to_string(),
        round,
        attempt,
        members,
        signature: String::new(),
    };
    roster.sign(&crate::domain::keys::broker_key(db)?.sk);
    db.exec(
        "INSERT OR IGNORE INTO broker_rosters (group_id, round, attempt, body, created_at) VALUES (?, ?, ?, ?, ?)",
        &[
            text(group_id),
            int(round as u64),
            int(attempt as u64),
            text(serde_json::to_string(&roster).map_err(crate::error::storage)?),
            int(crate::util::now_ms()),
        ],
    )?;
    get(db, group_id, round, attempt)?
        .ok_or_else(|| ApiError::internal("roster vanished after insert"))
}

/// Records what the round's masked sum decoded to (once).
pub fn set_outcome(
    db: &Db,
    group_id: &str,
    (round, attempt): (u32, u32),
    outcome: &Value,
) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_rosters SET outcome = ? WHERE group_id = ? AND round = ? AND attempt = ? AND outcome IS NULL",
        &[
            text(outcome.to_string()),
            text(group_id),
            int(round as u64),
            int(attempt as u64),
        ],
    )
}
