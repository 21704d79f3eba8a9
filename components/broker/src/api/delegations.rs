//! `GET /api/v1/delegations/{id}` and `POST /api/v1/delegations/{id}/veto`
//! (the task's owner only; rules in `domain::delegations`).

use super::{json_response, ApiResult};
use crate::db::Db;
use crate::domain::delegations;
use crate::model::User;

/// `GET /api/v1/delegations/{id}`.
pub fn get(db: &Db, caller: &User, lease_id: &str) -> ApiResult {
    Ok(json_response(200, &delegations::get(db, caller, lease_id)?))
}

/// `POST /api/v1/delegations/{id}/veto`.
pub fn veto(db: &Db, caller: &User, lease_id: &str) -> ApiResult {
    Ok(json_response(
        200,
        &delegations::veto(db, caller, lease_id)?,
    ))
}
