//! Content-addressed blobs for inputs larger than the inline limit.
//! Task inputs refer to them as `{"blob": "sha256:<hex>"}` anywhere inside `inputs`.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use serde_json::Value;

/// Largest blob, in bytes.
pub const MAX_BLOB_BYTES: usize = 16 << 20;

/// Stores `body` under its SHA-256 and answers it, with whether it is new
/// (storing the same bytes twice is a no-op).
pub fn put(db: &Db, owner: &str, body: &[u8]) -> Result<(String, bool), ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("a blob needs a non-empty body"));
    }
    if body.len() > MAX_BLOB_BYTES {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!(
                "blob is {} bytes; the limit is {MAX_BLOB_BYTES}",
                body.len()
            ),
        ));
    }
    let sha = greenmesh_protocol::sha256_hex(body);
    let existed = size(db, &sha)?.is_some();
    if !existed {
        db.exec(
            "INSERT OR IGNORE INTO broker_blobs (sha256, size, bytes, owner, created_at) VALUES (?, ?, ?, ?, ?)",
            &[text(sha.clone()), int(body.len() as u64), spin_sdk::sqlite::Value::Blob(body.to_vec()), text(owner), int(crate::util::now_ms())],
        )?;
    }
    Ok((sha, !existed))
}

/// The size of a stored blob, if present.
pub fn size(db: &Db, sha: &str) -> Result<Option<u64>, ApiError> {
    let rows = db.query(
        "SELECT size FROM broker_blobs WHERE sha256 = ?",
        &[text(sha)],
    )?;
    Ok(rows
        .rows
        .first()
        .and_then(|r| r.get::<i64>(0))
        .map(|s| s as u64))
}

/// The bytes of blob `sha`.
pub fn get(db: &Db, sha: &str) -> Result<Vec<u8>, ApiError> {
    let rows = db.query(
        "SELECT bytes FROM broker_blobs WHERE sha256 = ?",
        &[text(sha)],
    )?;
    rows.rows
        .first()
        .and_then(|r| r.get::<&[u8]>(0))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| ApiError::not_found(format!("no blob {sha}")))
}

/// Checks every `{"blob": "sha256:…"}` inside `inputs` exists; returns their total size.
pub fn check_references(db: &Db, inputs: &Value) -> Result<u64, ApiError> {
    let mut total = 0;
    walk(db, inputs, "inputs", &mut total)?;
    Ok(total)
}

fn walk(db: &Db, v: &Value, path: &str, total: &mut u64) -> Result<(), ApiError> {
    match v {
        Value::Object(map) => {
            if let Some(reference) = map.get("blob").and_then(Value::as_str) {
                let sha = reference
                    .strip_prefix("sha256:")
                    .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            format!("{path}.blob"),
                            "a blob reference is \"sha256:<64 hex>\"",
                        )
                    })?;
                let size = size(db, sha)?.ok_or_else(|| {
                    ApiError::invalid(
                        format!("{path}.blob"),
                        format!("no blob {sha}: upload it with POST /api/v1/blobs first"),
                    )
                })?;
                *total += size;
                return Ok(());
            }
            for (k, child) in map {
                walk(db, child, &format!("{path}.{k}"), total)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(db, child, &format!("{path}[{i}]"), total)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
