//! Who is calling: users by API token (stored only as a SHA-256 hash), nodes
//! by an ed25519 signature over the request; plus per-user rate limits.

use crate::api::ApiError;
use crate::db::{int, text, Db};
use crate::greenmesh::marketplace::registry;
use crate::greenmesh::marketplace::types::Node;
use spin_sdk::http::Request;

/// Requests a user may make per minute (fixed window), unless the
/// `rate_limit_per_minute` Spin variable says otherwise.
pub const RATE_LIMIT_PER_MINUTE: i64 = 1200;

fn rate_limit() -> i64 {
    spin_sdk::variables::get("rate_limit_per_minute")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(RATE_LIMIT_PER_MINUTE)
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub public_key: Option<String>,
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    greenmesh_protocol::sha256_hex(token.as_bytes())
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).and_then(|h| h.as_str())
}

/// The user behind `Authorization: Bearer <token>`, after the rate limit.
pub fn user(db: &Db, req: &Request) -> Result<User, ApiError> {
    let token = header(req, "authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
    let rows = db.query(
        "SELECT id, name, public_key, window_start, window_count FROM broker_users WHERE token_hash = ?",
        &[text(token_hash(token.trim()))],
    )?;
    let row = rows
        .rows
        .first()
        .ok_or_else(|| ApiError::unauthorized("unknown API token"))?;
    let user = User {
        id: row.get::<&str>(0).unwrap_or_default().to_string(),
        name: row.get::<&str>(1).unwrap_or_default().to_string(),
        public_key: row.get::<&str>(2).map(str::to_string),
    };
    let now = crate::util::now_ms();
    let window_start = row.get::<i64>(3).unwrap_or(0) as u64;
    let count = row.get::<i64>(4).unwrap_or(0);
    if now.saturating_sub(window_start) >= 60_000 {
        db.exec(
            "UPDATE broker_users SET window_start = ?, window_count = 1 WHERE id = ?",
            &[int(now), text(user.id.clone())],
        )?;
    } else if count >= rate_limit() {
        let retry = (60_000 - now.saturating_sub(window_start)).div_ceil(1000);
        return Err(ApiError::new(
            429,
            "rate_limited",
            format!(
                "more than {} requests this minute; retry in {retry} s",
                rate_limit()
            ),
        ));
    } else {
        db.exec(
            "UPDATE broker_users SET window_count = window_count + 1 WHERE id = ?",
            &[text(user.id.clone())],
        )?;
    }
    Ok(user)
}

/// The node `node_id`, if the request carries its valid signature.
pub fn node(req: &Request, node_id: &str) -> Result<Node, ApiError> {
    let claimed = header(req, "x-greenmesh-node").ok_or_else(|| {
        ApiError::unauthorized(
            "node requests need x-greenmesh-node, x-greenmesh-timestamp and x-greenmesh-signature",
        )
    })?;
    if claimed != node_id {
        return Err(ApiError::unauthorized(
            "x-greenmesh-node does not match the node in the path",
        ));
    }
    let timestamp: u64 = header(req, "x-greenmesh-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            ApiError::unauthorized("x-greenmesh-timestamp must be milliseconds since the epoch")
        })?;
    let signature = header(req, "x-greenmesh-signature")
        .ok_or_else(|| ApiError::unauthorized("missing x-greenmesh-signature"))?;
    let node = registry::get(node_id)
        .map_err(|_| ApiError::unauthorized(format!("unknown node {node_id}")))?;
    let key = greenmesh_protocol::public_key(&node.public_key)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let path = signed_path(req);
    greenmesh_protocol::verify_request(
        &key,
        &req.method().to_string(),
        &path,
        timestamp,
        req.body(),
        signature,
        crate::util::now_ms(),
    )
    .map_err(|e| ApiError::unauthorized(format!("node signature refused: {e}")))?;
    Ok(node)
}

/// The path (with query) a node signs: what it sent, e.g. `/api/v1/nodes/x/leases?wait=5`.
pub fn signed_path(req: &Request) -> String {
    let path = req.path();
    let query = req.query();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// Either a user (bearer token) or a node (signed request, node id from its header).
pub fn user_or_node(db: &Db, req: &Request) -> Result<(), ApiError> {
    if header(req, "authorization").is_some() {
        return user(db, req).map(|_| ());
    }
    let node_id = header(req, "x-greenmesh-node")
        .ok_or_else(|| ApiError::unauthorized("sign in with a user token or as a node"))?
        .to_string();
    node(req, &node_id).map(|_| ())
}
