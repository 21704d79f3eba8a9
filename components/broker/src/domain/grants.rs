//! Permission grants (seed 001's `peer_permissions`): a node's owner lets a
//! user run tasks matching a pattern on that node, optionally until an
//! expiry. The grant is signed with the owner's registered ed25519 key
//! (`greenmesh_protocol::Grant`); the broker verifies it before storing it.
//!
//! A node receives a lease only for tasks its own allow-list admits, or
//! that an unexpired, unrevoked grant to the task's owner covers.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use crate::model::User;
use greenmesh_protocol::Grant;
use greenmesh_storage::Value as Sql;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/grants` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    node_id: String,
    user_id: String,
    task_pattern: String,
    #[serde(default)]
    expires_at: Option<u64>,
    issued_at: u64,
    /// Hex ed25519 signature of the grant by the caller's registered key.
    signature: String,
}

fn valid_pattern(p: &str) -> bool {
    let name = p.strip_suffix('*').unwrap_or(p);
    p == "*"
        || (!name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'))
}

/// The caller (the node's owner) grants `b.user_id` the tasks matching
/// `b.task_pattern` on `b.node_id`; answers the stored grant. The user's
/// parked tasks are decided again: the grant may open a node to them.
pub fn create(db: &Db, caller: &User, b: GrantRequest) -> Result<Value, ApiError> {
    if !valid_pattern(&b.task_pattern) {
        return Err(ApiError::invalid(
            "task_pattern",
            "task_pattern must be `*`, a task name, or a task-name prefix ending in `*`",
        ));
    }
    let now = crate::util::now_ms();
    if b.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::invalid("expires_at", "expires_at is in the past"));
    }
    let node = crate::greenmesh::marketplace::registry::get(&b.node_id)
        .map_err(|_| ApiError::invalid("node_id", format!("no node {}", b.node_id)))?;
    if node.owner != caller.id {
        return Err(ApiError::forbidden(format!(
            "only the owner of {} can grant access to it",
            b.node_id
        )));
    }
    crate::domain::standing::Standing::load(db, &b.user_id)
        .map_err(|_| ApiError::invalid("user_id", format!("no user {}", b.user_id)))?;
    let key_hex = caller.public_key.as_deref().ok_or_else(|| {
        ApiError::new(
            409,
            "no_public_key",
            "grants are signed with your registered key: set public_key first (PATCH /api/v1/users/me)",
        )
    })?;
    let key =
        greenmesh_protocol::public_key(key_hex).map_err(|e| ApiError::internal(e.to_string()))?;
    let grant = Grant {
        node_id: b.node_id.clone(),
        user_id: b.user_id.clone(),
        task_pattern: b.task_pattern.clone(),
        expires_at: b.expires_at,
        issued_at: b.issued_at,
    };
    grant.verify(&key, &b.signature).map_err(|e| {
        ApiError::new(
            403,
            "bad_signature",
            format!("the grant's signature does not verify with your registered key ({e})"),
        )
        .on_field("signature")
    })?;
    let id = crate::util::new_id("grant");
    db.exec(
        "INSERT INTO broker_grants (id, node_id, user_id, task_pattern, expires_at, issued_at, granted_by,
             signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            text(id.clone()),
            text(b.node_id.clone()),
            text(b.user_id.clone()),
            text(b.task_pattern.clone()),
            b.expires_at.map(int).unwrap_or(Sql::Null),
            int(b.issued_at),
            text(caller.id.clone()),
            text(b.signature.clone()),
            int(now),
        ],
    )?;
    crate::domain::events::record(
        db,
        "grant_created",
        Some(&b.node_id),
        None,
        Some(&caller.id),
        json!({ "grant_id": id, "user_id": b.user_id, "task_pattern": b.task_pattern, "expires_at": b.expires_at }),
    )?;
    crate::domain::queue::wake_owner(db, &b.user_id)?;
    Ok(view(db, &id)?.unwrap_or(Value::Null))
}

fn row_json(r: &greenmesh_storage::RowResult, now: u64) -> Value {
    let expires_at = r.get::<i64>(4).map(|t| t as u64);
    let revoked_at = r.get::<i64>(8).map(|t| t as u64);
    let active = revoked_at.is_none() && expires_at.is_none_or(|t| t > now);
    json!({
        "id": r.get::<&str>(0),
        "node_id": r.get::<&str>(1),
        "user_id": r.get::<&str>(2),
        "task_pattern": r.get::<&str>(3),
        "expires_at": expires_at,
        "issued_at": r.get::<i64>(5),
        "granted_by": r.get::<&str>(6),
        "signature": r.get::<&str>(7),
        "revoked_at": revoked_at,
        "active": active,
    })
}

const COLUMNS: &str =
    "id, node_id, user_id, task_pattern, expires_at, issued_at, granted_by, signature, revoked_at";

fn view(db: &Db, id: &str) -> Result<Option<Value>, ApiError> {
    let rows = db.query(
        &format!("SELECT {COLUMNS} FROM broker_grants WHERE id = ?"),
        &[text(id)],
    )?;
    let now = crate::util::now_ms();
    Ok(rows.rows.first().map(|r| row_json(r, now)))
}

/// Grants the caller gave and received.
pub fn list(db: &Db, caller: &User) -> Result<Vec<Value>, ApiError> {
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM broker_grants WHERE granted_by = ?1 OR user_id = ?1
             ORDER BY created_at DESC LIMIT 500"
        ),
        &[text(caller.id.clone())],
    )?;
    let now = crate::util::now_ms();
    Ok(rows.rows.iter().map(|r| row_json(r, now)).collect())
}

/// The granter revokes grant `id`; answers it.
pub fn revoke(db: &Db, caller: &User, id: &str) -> Result<Value, ApiError> {
    match view(db, id)? {
        Some(g) if g["granted_by"] == caller.id.as_str() => {
            if g["revoked_at"].is_null() {
                db.exec(
                    "UPDATE broker_grants SET revoked_at = ? WHERE id = ?",
                    &[int(crate::util::now_ms()), text(id)],
                )?;
                crate::domain::events::record(
                    db,
                    "grant_revoked",
                    g["node_id"].as_str(),
                    None,
                    Some(&caller.id),
                    json!({ "grant_id": id }),
                )?;
            }
            Ok(view(db, id)?.unwrap_or(Value::Null))
        }
        _ => Err(ApiError::not_found(format!("no grant {id} of yours"))),
    }
}

/// A user's live grants: `(node, task pattern)`.
type LiveGrants = std::rc::Rc<Vec<(String, String)>>;

thread_local! {
    /// Live grants per user, read once per request: a heartbeat re-decides
    /// up to 50 queued tasks, mostly of a few users.
    static LIVE: std::cell::RefCell<std::collections::HashMap<String, LiveGrants>> =
        Default::default();
}

fn live_grants(db: &Db, user_id: &str) -> Result<LiveGrants, ApiError> {
    if let Some(g) = LIVE.with(|l| l.borrow().get(user_id).cloned()) {
        return Ok(g);
    }
    let rows = db.query(
        "SELECT node_id, task_pattern FROM broker_grants
         WHERE user_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        &[text(user_id), int(crate::util::now_ms())],
    )?;
    let grants = std::rc::Rc::new(
        rows.rows
            .iter()
            .filter_map(|r| Some((r.get::<&str>(0)?.to_string(), r.get::<&str>(1)?.to_string())))
            .collect::<Vec<_>>(),
    );
    LIVE.with(|l| l.borrow_mut().insert(user_id.to_string(), grants.clone()));
    Ok(grants)
}

/// Nodes whose live grants let `user_id` run a task named `names` (its
/// capability and, if any, its name).
pub fn granted_nodes(db: &Db, user_id: &str, names: &[&str]) -> Result<Vec<String>, ApiError> {
    let mut nodes: Vec<String> = live_grants(db, user_id)?
        .iter()
        .filter(|(_, pattern)| {
            names
                .iter()
                .any(|n| greenmesh_protocol::pattern_covers(pattern, n))
        })
        .map(|(node, _)| node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    Ok(nodes)
}

/// The live grant letting `user_id` run a task named `names` on `node_id`,
/// with its signature: a lease carries it so the node can check it itself.
pub fn covering(
    db: &Db,
    node_id: &str,
    user_id: &str,
    names: &[&str],
) -> Result<Option<greenmesh_protocol::SignedGrant>, ApiError> {
    let rows = db.query(
        "SELECT task_pattern, expires_at, issued_at, signature FROM broker_grants
         WHERE node_id = ? AND user_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
         ORDER BY created_at",
        &[text(node_id), text(user_id), int(crate::util::now_ms())],
    )?;
    Ok(rows.rows.iter().find_map(|r| {
        let grant = Grant {
            node_id: node_id.to_string(),
            user_id: user_id.to_string(),
            task_pattern: r.get::<&str>(0)?.to_string(),
            expires_at: r.get::<i64>(1).map(|t| t as u64),
            issued_at: r.get::<i64>(2)? as u64,
        };
        names
            .iter()
            .any(|n| grant.covers(n))
            .then(|| greenmesh_protocol::SignedGrant {
                grant,
                signature: r.get::<&str>(3).unwrap_or_default().to_string(),
            })
    }))
}
