//! The append-only event log (`broker_events`, seed 001's `mesh_events`):
//! every state change, readable at `GET /api/v1/events`.

use crate::api::{json_response, ApiError, ApiResult};
use crate::db::{int, opt_text, text, Db};
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
    db.exec(
        "INSERT INTO broker_events (event_type, node_id, task_id, user_id, data, at) VALUES (?, ?, ?, ?, ?, ?)",
        &[
            text(event_type),
            opt_text(node_id),
            opt_text(task_id),
            opt_text(user_id),
            text(data.to_string()),
            int(crate::util::now_ms()),
        ],
    )
}

/// `GET /api/v1/events[?after=ID][&task_id=..][&limit=N]`: oldest first after `after`.
pub fn list(db: &Db, query: &str) -> ApiResult {
    let after: i64 = match crate::api::query_param(query, "after") {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::invalid("after", "after must be an event id"))?,
        None => 0,
    };
    let limit: i64 = match crate::api::query_param(query, "limit") {
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be between 1 and 1000"))?,
        None => 100,
    };
    let task = crate::api::query_param(query, "task_id").unwrap_or("");
    let rows = db.query(
        "SELECT id, event_type, node_id, task_id, user_id, data, at FROM broker_events
         WHERE id > ? AND (? = '' OR task_id = ?) ORDER BY id LIMIT ?",
        &[
            spin_sdk::sqlite::Value::Integer(after),
            text(task),
            text(task),
            spin_sdk::sqlite::Value::Integer(limit),
        ],
    )?;
    let events: Vec<Value> = rows
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
        .collect();
    Ok(json_response(200, &json!({ "events": events })))
}
