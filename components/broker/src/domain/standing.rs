//! A user's standing in the community: what they gave and did. Voting
//! weighs ballots by it and the quota component promotes tiers on it.
//!
//! `tasks_completed` counts the user's own tasks that completed;
//! `tasks_executed` counts tasks the user's nodes completed for *other*
//! users (running your own tasks at home is not volunteering). Donations are
//! recorded by an admin (`POST /api/v1/users/{id}/donations`), in credits,
//! donated compute time included.

use crate::db::{text, Db};
use crate::error::ApiError;
use crate::greenmesh::quota::types as qt;
use crate::greenmesh::voting::types as vt;

/// Average month, for "months active".
const MONTH_MS: f64 = 30.436_875 * 86_400_000.0;

#[derive(Debug, Clone, Default)]
pub struct Standing {
    pub user_id: String,
    /// Registration time, ms since the Unix epoch.
    pub member_since: u64,
    pub donations: f64,
    pub tasks_completed: u64,
    pub tasks_executed: u64,
}

impl Standing {
    /// The standing of `user_id` (zeros for a user who did nothing yet).
    pub fn load(db: &Db, user_id: &str) -> Result<Self, ApiError> {
        let rows = db.query(
            "SELECT u.created_at, s.donations, s.tasks_completed, s.tasks_executed
             FROM broker_users u LEFT JOIN broker_user_standing s ON s.user_id = u.id WHERE u.id = ?",
            &[text(user_id)],
        )?;
        let r = rows
            .rows
            .first()
            .ok_or_else(|| ApiError::not_found(format!("no user {user_id}")))?;
        Ok(Self {
            user_id: user_id.to_string(),
            member_since: r.get::<i64>(0).unwrap_or(0) as u64,
            donations: r.get::<f64>(1).unwrap_or(0.0),
            tasks_completed: r.get::<i64>(2).unwrap_or(0) as u64,
            tasks_executed: r.get::<i64>(3).unwrap_or(0) as u64,
        })
    }

    pub fn months_active(&self, now_ms: u64) -> f64 {
        now_ms.saturating_sub(self.member_since) as f64 / MONTH_MS
    }

    /// What the voting component weighs a ballot by (asks reputation).
    pub fn for_vote(&self) -> vt::Standing {
        use crate::greenmesh::reputation::scores;
        vt::Standing {
            reputation: scores::get(&self.user_id, scores::Role::Requester).value,
            donations: self.donations,
            months_active: self.months_active(crate::util::now_ms()),
            tasks_completed: self.tasks_executed,
        }
    }

    /// What the quota component promotes on (asks voting for votes cast).
    pub fn for_quota(&self) -> qt::Standing {
        qt::Standing {
            member_since: self.member_since,
            donations: self.donations,
            tasks_completed: self.tasks_completed,
            tasks_executed: self.tasks_executed,
            votes_cast: crate::greenmesh::voting::ballots::votes_cast(&self.user_id),
        }
    }
}

/// Counts the task completed under `lease_id`: for its owner, and for the
/// node's owner when that is someone else. Once per lease, however often
/// it is called (the `broker_completions` row is the record; a trigger
/// keeps the counters).
pub fn record_completion(
    db: &Db,
    lease_id: &str,
    owner: &str,
    node_owner: &str,
) -> Result<(), ApiError> {
    db.exec(
        "INSERT OR IGNORE INTO broker_completions (lease_id, owner, node_owner, at) VALUES (?, ?, ?, ?)",
        &[
            text(lease_id),
            text(owner),
            text(node_owner),
            crate::db::int(crate::util::now_ms()),
        ],
    )
}

/// Adds `credits` to the user's donations.
pub fn add_donation(db: &Db, user_id: &str, credits: f64) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO broker_user_standing (user_id, donations) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET donations = broker_user_standing.donations + ?2",
        &[text(user_id), greenmesh_storage::Value::Real(credits)],
    )
}
