//! `POST /api/v1/blobs` (raw body) → `{sha256, size, reference}`;
//! `GET /api/v1/blobs/{sha256}` → the bytes.

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

/// `GET /api/v1/blobs/{sha256}`.
pub fn get(db: &Db, sha: &str) -> ApiResult {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/octet-stream")
        .body(blobs::get(db, sha)?)
        .build())
}
