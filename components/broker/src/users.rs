//! `POST /api/v1/users` (registration, returns the only copy of the token),
//! `GET /api/v1/users/me` and `PATCH /api/v1/users/me` (timezone, key).

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
    /// IANA timezone: the user's quota resets at their local midnight.
    #[serde(default)]
    timezone: Option<String>,
}

fn check_public_key(key: &str) -> Result<(), ApiError> {
    greenmesh_protocol::public_key(key)
        .map(|_| ())
        .map_err(|_| {
            ApiError::invalid(
                "public_key",
                "public_key must be a 32-byte ed25519 key in hex",
            )
        })
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
        check_public_key(key)?;
    }
    let id = crate::util::new_id("user");
    // Validated (and stored by the quota component) before the user exists,
    // so a bad timezone registers nothing.
    if let Some(tz) = &r.timezone {
        crate::quota::set_timezone(&id, tz)?;
    }
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
        &json!({ "id": id, "name": r.name, "token": token, "public_key": r.public_key, "timezone": r.timezone.unwrap_or_else(|| "UTC".into()) }),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
}

/// `PATCH /api/v1/users/me`: sets the caller's timezone and/or public key
/// (the key that signs their permission grants).
pub fn update(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let u: Update = parse_body(body)?;
    if u.timezone.is_none() && u.public_key.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send timezone and/or public_key",
        ));
    }
    if let Some(key) = &u.public_key {
        check_public_key(key)?;
    }
    if let Some(tz) = &u.timezone {
        crate::quota::set_timezone(&user.id, tz)?;
    }
    if let Some(key) = &u.public_key {
        db.exec(
            "UPDATE broker_users SET public_key = ? WHERE id = ?",
            &[text(key.to_ascii_lowercase()), text(user.id.clone())],
        )?;
    }
    let rows = db.query(
        "SELECT public_key FROM broker_users WHERE id = ?",
        &[text(user.id.clone())],
    )?;
    Ok(json_response(
        200,
        &json!({
            "id": user.id, "name": user.name,
            "public_key": rows.rows.first().and_then(|r| r.get::<&str>(0)),
            "timezone": u.timezone,
        }),
    ))
}
