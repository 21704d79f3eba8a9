//! Importance votes: `POST /api/v1/tasks/{id}/votes`, `GET
//! /api/v1/tasks/{id}/votes`, `GET /api/v1/polls`.

use super::{json_response, parse_body, ApiResult};
use crate::db::Db;
use crate::domain::votes;
use crate::model::User;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    importance: String,
    /// Voice credits, for quadratic voting.
    #[serde(default)]
    credits: Option<u32>,
}

/// `POST /api/v1/tasks/{id}/votes`: any user's ballot on a task's importance.
pub fn cast(db: &Db, user: &User, task_id: &str, body: &[u8]) -> ApiResult {
    let v: VoteBody = parse_body(body)?;
    let receipt = votes::cast(db, user, task_id, &v.importance, v.credits.unwrap_or(0))?;
    Ok(json_response(
        if receipt.replaced { 200 } else { 201 },
        &json!({ "replaced": receipt.replaced, "poll": votes::poll_json(&receipt.poll) }),
    ))
}

/// `GET /api/v1/tasks/{id}/votes`: the task's importance and its poll, if any.
pub fn get(db: &Db, task_id: &str) -> ApiResult {
    Ok(json_response(200, &votes::of_task(db, task_id)?))
}

/// `GET /api/v1/polls`: open polls, soonest to close first.
pub fn list_open(db: &Db) -> ApiResult {
    Ok(json_response(
        200,
        &json!({ "polls": votes::open_polls(db)? }),
    ))
}
