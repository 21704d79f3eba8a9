//! `POST /api/v1/blobs` (raw body) → `{sha256, size, reference}`;
//! `GET /api/v1/blobs/{sha256}` → the bytes.

use super::auth::Caller;
use super::{json_response, ApiResult};
use crate::db::Db;
use crate::domain::blobs;
use crate::model::User;
use serde_json::json;
use spin_sdk::http::Response;

/// `POST /api/v1/blobs`.
pub fn put(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let (sha, new) = blobs::put(db, &user.id, body)?;
    Ok(json_response(
        if new { 201 } else { 200 },
        &json!({ "sha256": sha, "size": body.len(), "reference": format!("sha256:{sha}") }),
    ))
}

/// `GET /api/v1/blobs/{sha256}`: for its uploaders, and for a node while
/// it holds a lease of a task that names it; `404` for anyone else.
pub fn get(db: &Db, caller: &Caller, sha: &str) -> ApiResult {
    let allowed = match caller {
        Caller::User(user) => blobs::readable_by(db, sha, &user.id)?,
        Caller::Node(node_id) => blobs::readable_by_node(db, sha, node_id)?,
    };
    if !allowed {
        return Err(crate::error::ApiError::not_found(format!("no blob {sha}")));
    }
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .body(blobs::get(db, sha)?)
        .build())
}
