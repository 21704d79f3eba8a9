//! `POST /api/v1/users` (registration, returns the only copy of the token;
//! `POST /api/v1/admin/invites` mints invites for it),
//! `GET /api/v1/users/me` and `PATCH /api/v1/users/me` (timezone, key).

use super::{json_response, parse_body, ApiResult};
use crate::db::Db;
use crate::domain::{identity, users};
use crate::model::User;
use serde::Deserialize;
use spin_sdk::http::Request;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    name: String,
    #[serde(default)]
    public_key: Option<String>,
    /// IANA timezone: the user's quota resets at their local midnight.
    #[serde(default)]
    timezone: Option<String>,
    /// An admin's invite, on a network that registers by invite.
    #[serde(default)]
    invite: Option<String>,
}

/// `POST /api/v1/users`: counted against the client's address (or its
/// invite); an admin's bearer token registers without either.
pub fn register(db: &Db, req: &Request, body: &[u8]) -> ApiResult {
    let r: Registration = parse_body(body)?;
    let address = identity::address_key(req.header("spin-client-addr").and_then(|h| h.as_str()));
    let by_admin = super::admin::require(req).is_ok();
    let v = users::register(
        db,
        &r.name,
        r.public_key.as_deref(),
        r.timezone.as_deref(),
        || identity::admit_registration(db, &address, r.invite.as_deref(), by_admin),
    )?;
    Ok(json_response(201, &v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/admin/invites` (admin): a single-use invite, valid 7 days.
pub fn invite(db: &Db, body: &[u8]) -> ApiResult {
    let r: InviteRequest = if body.is_empty() {
        InviteRequest { note: None }
    } else {
        parse_body(body)?
    };
    if r.note.as_deref().is_some_and(|n| n.len() > 200) {
        return Err(crate::error::ApiError::invalid(
            "note",
            "note must be at most 200 characters",
        ));
    }
    Ok(json_response(
        201,
        &identity::mint_invite(db, r.note.as_deref())?,
    ))
}

/// `GET /api/v1/users/me`.
pub fn me(user: &User) -> ApiResult {
    Ok(json_response(200, &users::me(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
}

/// `PATCH /api/v1/users/me`.
pub fn update(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let u: Update = parse_body(body)?;
    let v = users::update(db, user, u.timezone.as_deref(), u.public_key.as_deref())?;
    Ok(json_response(200, &v))
}

/// `GET /api/v1/users/{id}/quota` (`me` for the caller): the user's own
/// usage, limits and next reset.
pub fn quota(db: &Db, caller: &User, user_id: &str) -> ApiResult {
    let user_id = super::own_id(caller, user_id, "quota")?;
    let usage = crate::domain::quota::usage(db, user_id)?;
    Ok(json_response(
        200,
        &crate::domain::quota::usage_json(&usage),
    ))
}

/// `GET /api/v1/users/{id}/nodes` (`me` for the caller): the nodes they
/// operate, the runs each served, energy and credits earned.
pub fn nodes(db: &Db, caller: &User, user_id: &str) -> ApiResult {
    let user_id = super::own_id(caller, user_id, "nodes")?;
    Ok(json_response(
        200,
        &crate::domain::nodes::of_owner(db, user_id)?,
    ))
}

/// `GET /api/v1/users/{id}/impact` (`me` for the caller): their tasks'
/// energy, emissions and savings, overall and this (UTC) month.
pub fn impact(db: &Db, caller: &User, user_id: &str) -> ApiResult {
    let user_id = super::own_id(caller, user_id, "impact")?;
    Ok(json_response(
        200,
        &crate::domain::carbon::impact(db, user_id)?,
    ))
}
