//! The task API: submit, precheck, get (with `?wait`), list, cancel, and
//! a `require_proof` task's proof bundle.

use super::{json_response, parse_body, query_param, wait_param, ApiResult};
use crate::db::Db;
use crate::domain::{lifecycle, queue, tasks};
use crate::error::ApiError;
use crate::model::{TaskRequest, User};

/// `POST /api/v1/tasks`.
pub fn submit(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let request: TaskRequest = parse_body(body)?;
    let task = tasks::validate(db, request)?;
    Ok(json_response(201, &queue::submit(db, user, task)?))
}

/// `POST /api/v1/tasks/precheck`: the dispatch decision, without submitting.
pub fn precheck(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let request: TaskRequest = parse_body(body)?;
    let task = tasks::validate(db, request)?;
    Ok(json_response(200, &queue::precheck(db, user, &task)?))
}

/// `GET /api/v1/tasks/{id}[?wait=SECONDS]`: long-polls until the task ends.
pub fn get(db: &Db, user: &User, id: &str, query: &str) -> ApiResult {
    let wait = wait_param(query)?;
    let deadline = crate::util::now_ms() + wait * 1000;
    crate::domain::housekeeping(db)?;
    loop {
        let v = tasks::owned_view(db, user, id)?;
        let done = v["status"].as_str().is_some_and(tasks::is_terminal);
        if done || crate::util::now_ms() >= deadline {
            return Ok(json_response(200, &v));
        }
        lifecycle::expire(db)?;
        crate::util::sleep_ms(25);
    }
}

/// `GET /api/v1/tasks[?status=..]`: the caller's tasks, newest first.
pub fn list(db: &Db, user: &User, query: &str) -> ApiResult {
    let status = query_param(query, "status").unwrap_or("");
    Ok(json_response(
        200,
        &serde_json::json!({ "tasks": tasks::list(db, user, status)? }),
    ))
}

/// `DELETE /api/v1/tasks/{id}`: cancels a task that has not finished; a
/// node running it is told to stop.
pub fn cancel(db: &Db, user: &User, id: &str) -> ApiResult {
    let v = tasks::owned_view(db, user, id)?;
    if let Some(checked) = v["check_of"].as_str() {
        return Err(ApiError::conflict(format!(
            "task {id} is the broker's spot check of task {checked}; it is not yours to cancel"
        )));
    }
    if let Some(group) = v["group_id"].as_str() {
        return Err(ApiError::conflict(format!(
            "task {id} is a member of task {group}: cancel {group} (its members run and end together)"
        )));
    }
    let status = v["status"].as_str().unwrap_or_default().to_string();
    if tasks::is_terminal(&status) || !lifecycle::cancel_task(db, id)? {
        let now = tasks::owned_view(db, user, id)?;
        return Err(ApiError::conflict(format!(
            "task {id} is already {}",
            now["status"].as_str().unwrap_or(&status)
        )));
    }
    Ok(json_response(200, &tasks::owned_view(db, user, id)?))
}

/// `GET /api/v1/proofs/{id}`: the signed proof bundle of the caller's
/// `require_proof` task (its `result.proof_id`).
pub fn proof(db: &Db, user: &User, id: &str) -> ApiResult {
    Ok(json_response(
        200,
        &crate::domain::proofs::get(db, &user.id, id)?,
    ))
}
