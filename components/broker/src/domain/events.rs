//! The append-only event log (`broker_events`, seed 001's `mesh_events`):
//! every state change, readable at `GET /api/v1/events`.
//!
//! An event logged as the effect of a state change carries a `dedupe` key
//! (e.g. `lease-…:completed`): the lease lifecycle may apply an effect
//! again after a crash, and the unique key makes the second insert a no-op.

use crate::db::{int, opt_text, text, Db};
use crate::error::ApiError;
use serde_json::{json, Value};

/// Appends one event.
pub fn record(
    db: &Db,
    event_type: &str,
    node_id: Option<&str>,
    task_id: Option<&str>,
    user_id: Option<&str>,
    data: Value,
) -> Result<(), ApiError> {
    insert(db, None, event_type, node_id, task_id, user_id, data)
}

/// Appends one event unless one with `key` was logged already.
pub fn record_once(
    db: &Db,
    key: &str,
    event_type: &str,
    node_id: Option<&str>,
    task_id: Option<&str>,
    user_id: Option<&str>,
    data: Value,
) -> Result<(), ApiError> {
    insert(db, Some(key), event_type, node_id, task_id, user_id, data)
}

fn insert(
    db: &Db,
    key: Option<&str>,
    event_type: &str,
    node_id: Option<&str>,
    task_id: Option<&str>,
    user_id: Option<&str>,
    data: Value,
) -> Result<(), ApiError> {
    db.exec(
        "INSERT OR IGNORE INTO broker_events (event_type, node_id, task_id, user_id, data, at, dedupe)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            text(event_type),
            opt_text(node_id),
            opt_text(task_id),
            opt_text(user_id),
            text(data.to_string()),
            int(crate::util::now_ms()),
            opt_text(key),
        ],
    )
}

/// Which events to read.
pub struct Filter<'a> {
    /// Only events after this id.
    pub after: i64,
    /// Only this task's events (`""` for all).
    pub task_id: &'a str,
    pub limit: i64,
}

/// Events matching `filter`, oldest first.
pub fn list(db: &Db, filter: &Filter) -> Result<Vec<Value>, ApiError> {
    let rows = db.query(
        "SELECT id, event_type, node_id, task_id, user_id, data, at FROM broker_events
         WHERE id > ? AND (? = '' OR task_id = ?) ORDER BY id LIMIT ?",
        &[
            greenmesh_storage::Value::Integer(filter.after),
            text(filter.task_id),
            text(filter.task_id),
            greenmesh_storage::Value::Integer(filter.limit),
        ],
    )?;
    Ok(rows
        .rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<i64>(0),
                "event_type": r.get::<&str>(1),
                "node_id": r.get::<&str>(2),
                "task_id": r.get::<&str>(3),
                "user_id": r.get::<&str>(4),
                "data": r.get::<&str>(5).and_then(|d| serde_json::from_str::<Value>(d).ok()),
                "at": r.get::<i64>(6),
            })
        })
        .collect())
}
