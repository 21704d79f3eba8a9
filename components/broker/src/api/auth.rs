//! Who is calling: users by API token, nodes by an ed25519 signature over
//! the request.

use crate::db::Db;
use crate::error::ApiError;
use crate::greenmesh::marketplace::registry;
use crate::greenmesh::marketplace::types::Node;
use crate::model::User;
use spin_sdk::http::Request;

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).and_then(|h| h.as_str())
}

/// The user behind `Authorization: Bearer <token>`, after the rate limit.
pub fn user(db: &Db, req: &Request) -> Result<User, ApiError> {
    let token = header(req, "authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
    crate::domain::users::authenticate(db, token.trim())
}

/// The node `node_id`, if the request carries its valid signature.
pub fn node(req: &Request, db: &Db, node_id: &str) -> Result<Node, ApiError> {
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
    if !crate::domain::nodes::first_use_of_signature(db, signature, timestamp)? {
        return Err(ApiError::unauthorized(
            "node signature refused: already used (a replayed request)",
        ));
    }
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

/// Who made a request that users and nodes may both make.
pub enum Caller {
    User(User),
    Node(String),
}

/// Either a user (bearer token) or a node (signed request, node id from its header).
pub fn user_or_node(db: &Db, req: &Request) -> Result<Caller, ApiError> {
    if header(req, "authorization").is_some() {
        return user(db, req).map(Caller::User);
    }
    let node_id = header(req, "x-greenmesh-node")
        .ok_or_else(|| ApiError::unauthorized("sign in with a user token or as a node"))?
        .to_string();
    node(req, db, &node_id)?;
    Ok(Caller::Node(node_id))
}
