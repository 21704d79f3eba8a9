//! Content-addressed blobs for inputs larger than the inline limit.
//! Task inputs refer to them as `{"blob": "sha256:<hex>"}` anywhere inside `inputs`.
//!
//! Access (issue 21): a blob is readable by each user who uploaded its bytes
//! and by a node while it holds a lease of a task that names it; anyone
//! else gets `404`, as for a blob that does not exist (and uploading bytes
//! someone else stored answers `201` like a new blob, so the answer is no
//! oracle). Each user's blobs count against [`QUOTA_BYTES`]; a blob older
//! than [`RETENTION_MS`] that no unfinished task names is deleted.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use serde_json::Value;

/// Largest blob, in bytes.
pub const MAX_BLOB_BYTES: usize = 16 << 20;

/// Bytes of blobs one user may hold (`blob_quota_mb` variable).
pub const QUOTA_BYTES: u64 = 256 << 20;

/// How long a blob no unfinished task names is kept (`blob_retention_hours`).
pub const RETENTION_MS: u64 = 7 * 24 * 3_600_000;

fn variable(name: &str) -> Option<u64> {
    spin_sdk::variables::get(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

fn quota_bytes() -> u64 {
    variable("blob_quota_mb").map_or(QUOTA_BYTES, |mb| mb << 20)
}

fn retention_ms() -> u64 {
    variable("blob_retention_hours").map_or(RETENTION_MS, |h| h * 3_600_000)
}

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
    if readable_by(db, &sha, owner)? {
        return Ok((sha, false));
    }
    // The owner's uploads one at a time (across replicas, on Postgres), so
    // concurrent ones cannot each see room under the quota.
    db.exclusive("blobs", owner, || store(db, owner, body, sha))
}

/// Stores `body` (hash `sha`) for `owner` if it fits their quota.
fn store(db: &Db, owner: &str, body: &[u8], sha: String) -> Result<(String, bool), ApiError> {
    let held = db.query(
        "SELECT TOTAL(b.size) FROM broker_blob_access a JOIN broker_blobs b ON b.sha256 = a.sha256 WHERE a.user_id = ?",
        &[text(owner)],
    )?;
    let held = held
        .rows
        .first()
        .and_then(|r| r.get::<f64>(0))
        .unwrap_or(0.0) as u64;
    let quota = quota_bytes();
    if held + body.len() as u64 > quota {
        return Err(ApiError::new(
            429,
            "blob_quota_exhausted",
            format!(
                "you hold {held} bytes of blobs; {} more would pass your {quota}-byte quota (blobs no unfinished task names are deleted after {} h)",
                body.len(),
                retention_ms() / 3_600_000
            ),
        ));
    }
    let now = crate::util::now_ms();
    if size(db, &sha)?.is_none() {
        db.exec(
            "INSERT OR IGNORE INTO broker_blobs (sha256, size, bytes, owner, created_at) VALUES (?, ?, ?, ?, ?)",
            &[text(sha.clone()), int(body.len() as u64), greenmesh_storage::Value::Blob(body.to_vec()), text(owner), int(now)],
        )?;
    }
    db.exec(
        "INSERT OR IGNORE INTO broker_blob_access (sha256, user_id, created_at) VALUES (?, ?, ?)",
        &[text(sha.clone()), text(owner), int(now)],
    )?;
    Ok((sha, true))
}

/// How often old blobs are swept.
const SWEEP_EVERY_MS: u64 = 10 * 60_000;

/// How a checked reference to `sha` reads in a stored task's JSON.
fn reference_text(sha: &str) -> String {
    format!("\"blob\":\"sha256:{sha}\"")
}

/// Whether user `user_id` uploaded blob `sha`.
pub fn readable_by(db: &Db, sha: &str, user_id: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        "SELECT 1 FROM broker_blob_access WHERE sha256 = ? AND user_id = ?",
        &[text(sha), text(user_id)],
    )?;
    Ok(!rows.rows.is_empty())
}

/// Whether node `node_id` holds a live lease of a task that names blob `sha`.
pub fn readable_by_node(db: &Db, sha: &str, node_id: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        "SELECT 1 FROM broker_leases l JOIN broker_tasks t ON t.id = l.task_id
         WHERE l.node_id = ? AND l.status IN ('offered', 'delivered') AND instr(t.body, ?) > 0 LIMIT 1",
        // As a checked reference (`{"blob": "sha256:…"}`, which submission
        // allows only for the submitter's own blobs), not any mention.
        &[text(node_id), text(reference_text(sha))],
    )?;
    Ok(!rows.rows.is_empty())
}

/// Deletes a few blobs past their retention that no unfinished task names
/// (a housekeeping step: bounded work per call).
pub fn sweep(db: &Db) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    // At most one sweep every ten minutes, whichever request gets there.
    db.exec(
        "INSERT OR IGNORE INTO broker_queue (name, value) VALUES ('blob_sweep_at', 0)",
        &[],
    )?;
    let due = db.query(
        "UPDATE broker_queue SET value = ? WHERE name = 'blob_sweep_at' AND value <= ? RETURNING value",
        &[int(now), int(now.saturating_sub(SWEEP_EVERY_MS))],
    )?;
    if due.rows.is_empty() {
        return Ok(());
    }
    let before = now.saturating_sub(retention_ms());
    let rows = db.query(
        "SELECT b.sha256 FROM broker_blobs b WHERE b.created_at < ?
           AND NOT EXISTS (SELECT 1 FROM broker_tasks t WHERE t.status IN ('queued', 'leased', 'running')
                             AND instr(t.body, '\"blob\":\"sha256:' || b.sha256 || '\"') > 0)
         LIMIT 16",
        &[int(before)],
    )?;
    for r in &rows.rows {
        let sha = r.get::<&str>(0).unwrap_or_default();
        db.exec(
            "DELETE FROM broker_blob_access WHERE sha256 = ?",
            &[text(sha)],
        )?;
        db.exec("DELETE FROM broker_blobs WHERE sha256 = ?", &[text(sha)])?;
    }
    Ok(())
}

/// Refuses `inputs` naming a blob `user_id` did not upload, as if it did
/// not exist (`400` naming the field).
pub fn check_access(db: &Db, user_id: &str, inputs: &Value) -> Result<(), ApiError> {
    let mut refs = Vec::new();
    references(inputs, "inputs", &mut refs);
    for (path, sha) in refs {
        if !readable_by(db, &sha, user_id)? {
            return Err(ApiError::invalid(
                format!("{path}.blob"),
                format!("no blob {sha}: upload it with POST /api/v1/blobs first"),
            ));
        }
    }
    Ok(())
}

/// Every well-formed blob reference in `v`: (path, sha).
fn references(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            if let Some(sha) = map
                .get("blob")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("sha256:"))
            {
                out.push((path.to_string(), sha.to_string()));
                return;
            }
            for (k, child) in map {
                references(child, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                references(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
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
