//! Network administration: requests carrying the `admin_token` Spin
//! variable's value as their bearer token. With no token configured there
//! is no admin, and admin endpoints answer 403.

use crate::error::ApiError;
use spin_sdk::http::Request;

/// Checks the request carries the admin token.
pub fn require(req: &Request) -> Result<(), ApiError> {
    let configured = spin_sdk::variables::get("admin_token").unwrap_or_default();
    let configured = configured.trim();
    if configured.is_empty() {
        return Err(ApiError::forbidden(
            "no admin is configured on this network (set the admin_token variable)",
        ));
    }
    let given = req
        .header("authorization")
        .and_then(|h| h.as_str())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    // Compare digests, not the secrets themselves, so timing reveals nothing.
    if greenmesh_protocol::sha256_hex(given.as_bytes())
        != greenmesh_protocol::sha256_hex(configured.as_bytes())
    {
        return Err(ApiError::forbidden(
            "this needs the network's admin token as the bearer token",
        ));
    }
    Ok(())
}
