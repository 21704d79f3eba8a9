//! Public views of the network: health, the broker's key, the queue, the
//! event log and the carbon ledger.

use super::{json_response, limit_param, query_param, ApiResult};
use crate::db::Db;
use crate::domain::{carbon, events, keys, queue};
use crate::error::ApiError;
use serde_json::json;

/// `GET /api/v1/health`: the service is up and its database answers.
pub fn health() -> ApiResult {
    let database = Db::open()
        .and_then(|db| db.exec("SELECT 1", &[]))
        .map(|_| "ok".to_string())
        .unwrap_or_else(|e| format!("unavailable: {e:?}"));
    let ok = database == "ok";
    Ok(json_response(
        if ok { 200 } else { 503 },
        &json!({
            "status": if ok { "ok" } else { "degraded" },
            "service": "greenmesh-coordinator",
            "version": env!("CARGO_PKG_VERSION"),
            "database": database,
        }),
    ))
}

/// `GET /api/v1/keys/broker`: the key leases and revocations are signed with.
pub fn broker_key(db: &Db) -> ApiResult {
    let key = keys::broker_key(db)?;
    Ok(json_response(
        200,
        &json!({ "public_key": keys::public_key_hex(&key), "algorithm": "ed25519" }),
    ))
}

/// `GET /api/v1/queue`: how many tasks are ready, waiting and parked.
pub fn queue(db: &Db) -> ApiResult {
    Ok(json_response(200, &queue::stats(db)?))
}

/// `GET /api/v1/events[?after=ID][&task_id=..][&limit=N]`: oldest first after `after`.
pub fn events(db: &Db, query: &str) -> ApiResult {
    let after: i64 = match query_param(query, "after") {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::invalid("after", "after must be an event id"))?,
        None => 0,
    };
    let filter = events::Filter {
        after,
        task_id: query_param(query, "task_id").unwrap_or(""),
        limit: limit_param(query)? as i64,
    };
    Ok(json_response(
        200,
        &json!({ "events": events::list(db, &filter)? }),
    ))
}

/// `GET /api/v1/ledger[?limit=N][&before=MS][&delegated=true]`: runs,
/// newest first, with the network's totals.
pub fn ledger(db: &Db, query: &str) -> ApiResult {
    let before = match query_param(query, "before") {
        None => u64::MAX >> 1,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::invalid("before", "before must be milliseconds since the epoch")
        })?,
    };
    let delegated_only = match query_param(query, "delegated") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "delegated",
                "delegated must be true or false",
            ))
        }
    };
    let filter = carbon::LedgerFilter {
        limit: limit_param(query)?,
        before,
        delegated_only,
    };
    Ok(json_response(200, &carbon::ledger(db, &filter)?))
}
