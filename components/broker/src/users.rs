//! `POST /api/v1/users` (registration, returns the only copy of the token)
//! and `GET /api/v1/users/me`.

use crate::api::{json_response, parse_body, ApiError, ApiResult};
use crate::auth::{token_hash, User};
use crate::db::{int, opt_text, text, Db};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    name: String,
    #[serde(default)]
    public_key: Option<String>,
}

/// Registers a user and returns its API token (shown once; stored hashed).
pub fn register(db: &Db, body: &[u8]) -> ApiResult {
    let r: Registration = parse_body(body)?;
    if r.name.trim().is_empty() || r.name.len() > 100 {
        return Err(ApiError::invalid(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    if let Some(key) = &r.public_key {
        greenmesh_protocol::public_key(key).map_err(|_| {
            ApiError::invalid(
                "public_key",
                "public_key must be a 32-byte ed25519 key in hex",
            )
        })?;
    }
    let id = crate::util::new_id("user");
    let secret: [u8; 32] = crate::util::random_bytes();
    let token: String = format!(
        "gm_{}",
        secret
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    db.exec(
        "INSERT INTO broker_users (id, name, token_hash, public_key, created_at) VALUES (?, ?, ?, ?, ?)",
        &[text(id.clone()), text(r.name.clone()), text(token_hash(&token)), opt_text(r.public_key.clone()), int(crate::util::now_ms())],
    )?;
    crate::events::record(
        db,
        "user_registered",
        None,
        None,
        Some(&id),
        json!({ "name": r.name }),
    )?;
    Ok(json_response(
        201,
        &json!({ "id": id, "name": r.name, "token": token, "public_key": r.public_key }),
    ))
}

/// The caller's own record, with its requester reputation.
pub fn me(user: &User) -> ApiResult {
    use crate::greenmesh::reputation::scores;
    let rep = scores::get(&user.id, scores::Role::Requester);
    Ok(json_response(
        200,
        &json!({
            "id": user.id, "name": user.name, "public_key": user.public_key,
            "reputation": crate::nodes::reputation_json(&rep),
        }),
    ))
}
