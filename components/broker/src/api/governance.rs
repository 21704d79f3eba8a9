//! The network's rules, readable by anyone (`GET /api/v1/governance`); the
//! admin's levers: the voting scheme (`PUT /api/v1/governance/voting-scheme`)
//! and recorded donations (`POST /api/v1/users/{id}/donations`); and
//! permission grants (`/api/v1/grants`).

use super::{json_response, parse_body, ApiResult};
use crate::db::Db;
use crate::error::ApiError;
use crate::greenmesh::quota::{tiers, types::Tier};
use crate::greenmesh::voting::ballots;
use crate::model::User;
use serde::Deserialize;
use serde_json::json;

/// `GET /api/v1/governance`.
pub fn rules() -> ApiResult {
    let tier = |t: Tier| {
        let mut v = crate::domain::quota::limits_json(&tiers::limits_of(t));
        v["tier"] = json!(crate::domain::quota::tier_name(t));
        v
    };
    Ok(json_response(
        200,
        &json!({
            "voting": {
                "scheme": ballots::scheme(),
                "schemes": ballots::schemes(),
                "levels": crate::domain::votes::LEVELS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "consensus_share": 0.6,
                "window_ms": spin_sdk::variables::get("voting_window_ms").ok().and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(300_000),
            },
            "ballots": crate::domain::identity::BallotRule::configured().to_json(),
            "registration": match crate::domain::identity::Registration::configured() {
                Ok(crate::domain::identity::Registration::Invite) => json!({ "mode": "invite" }),
                _ => json!({
                    "mode": "open",
                    "per_address_per_day": spin_sdk::variables::get("registrations_per_address_per_day").ok().and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(crate::domain::identity::REGISTRATIONS_PER_ADDRESS_PER_DAY),
                }),
            },
            "public_health_keywords": crate::domain::public_health::KEYWORDS,
            "quotas": {
                "enforced": crate::domain::quota::enabled(),
                "tiers": [tier(Tier::Free), tier(Tier::Supporter), tier(Tier::Contributor)],
            },
            "eco_min_clean_share": crate::domain::policy::eco_min_clean_share(),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeBody {
    scheme: String,
}

/// `PUT /api/v1/governance/voting-scheme` (admin): switches the weighting
/// scheme; open polls are re-tallied with it.
pub fn set_scheme(db: &Db, body: &[u8]) -> ApiResult {
    let b: SchemeBody = parse_body(body)?;
    let before = ballots::scheme();
    ballots::set_scheme(&b.scheme)
        .map_err(|e| crate::domain::votes::voting_error(e).on_field("scheme"))?;
    crate::domain::events::record(
        db,
        "voting_scheme_changed",
        None,
        None,
        None,
        json!({ "from": before, "to": b.scheme }),
    )?;
    Ok(json_response(
        200,
        &json!({ "scheme": ballots::scheme(), "previous": before }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Donation {
    /// Credits (donated compute time converted by the admin).
    credits: f64,
    #[serde(default)]
    note: Option<String>,
}

/// The most credits one donation records. Donations add up in a float:
/// unbounded, two large ones made the total infinite (answered as `null`,
/// and counted as no stake at all by the voting schemes).
pub const MAX_DONATION_CREDITS: f64 = 1e9;

/// `POST /api/v1/users/{id}/donations` (admin): records a donation.
pub fn donate(db: &Db, user_id: &str, body: &[u8]) -> ApiResult {
    let d: Donation = parse_body(body)?;
    if !d.credits.is_finite() || d.credits <= 0.0 || d.credits > MAX_DONATION_CREDITS {
        return Err(ApiError::invalid(
            "credits",
            format!("credits must be a positive number of at most {MAX_DONATION_CREDITS:e}"),
        ));
    }
    crate::domain::standing::Standing::load(db, user_id)?;
    crate::domain::standing::add_donation(db, user_id, d.credits)?;
    crate::domain::events::record(
        db,
        "donation_recorded",
        None,
        None,
        Some(user_id),
        json!({ "credits": d.credits, "note": d.note }),
    )?;
    let standing = crate::domain::standing::Standing::load(db, user_id)?;
    Ok(json_response(
        201,
        &json!({ "user_id": user_id, "donations": standing.donations }),
    ))
}

/// `POST /api/v1/grants`: the caller (the node's owner) grants a user.
pub fn grant(db: &Db, caller: &User, body: &[u8]) -> ApiResult {
    let g: crate::domain::grants::GrantRequest = parse_body(body)?;
    Ok(json_response(
        201,
        &crate::domain::grants::create(db, caller, g)?,
    ))
}

/// `GET /api/v1/grants`: grants the caller gave and received.
pub fn grants(db: &Db, caller: &User) -> ApiResult {
    Ok(json_response(
        200,
        &json!({ "grants": crate::domain::grants::list(db, caller)? }),
    ))
}

/// `DELETE /api/v1/grants/{id}`: the granter revokes a grant.
pub fn revoke_grant(db: &Db, caller: &User, id: &str) -> ApiResult {
    Ok(json_response(
        200,
        &crate::domain::grants::revoke(db, caller, id)?,
    ))
}
