//! The broker: the coordinator's HTTP component (routes under `/api/v1`).
//!
//! It imports the marketplace, pricing and reputation interfaces, which
//! `spin.toml` satisfies with component dependencies, and keeps its own
//! `broker_*` tables. One module per resource:
//! [`users`], [`nodes`], [`tasks`], [`leases`], [`events`]; matching is in
//! [`dispatch`], credentials in [`auth`] and [`keys`]. Governance (docs/governance.md):
//! [`votes`] and [`quota`] front the voting and quota components;
//! [`public_health`], [`policy`], [`grants`], [`delegations`] (veto),
//! [`standing`], [`governance`] and [`admin`] are the broker's own.

mod admin;
mod api;
mod auth;
mod blobs;
mod carbon;
mod db;
mod delegations;
mod dispatch;
mod events;
mod governance;
mod grants;
mod interrupt;
mod keys;
mod leases;
mod nodes;
mod policy;
mod public_health;
mod quota;
mod schedule;
mod standing;
mod tasks;
mod users;
mod util;
mod votes;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:broker/broker@0.1.0",
    generate_all,
});

use api::{json_response, ApiError, ApiResult};
use serde_json::json;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    match route(&req) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn route(req: &Request) -> ApiResult {
    let path = req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| req.path().trim_start_matches("/api/v1").to_string());
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let query = req.query().to_string();
    let body = req.body();

    if let (Method::Get, ["health"]) = (&method, segments.as_slice()) {
        return health();
    }
    let db = db::Db::open()?;
    match (method, segments.as_slice()) {
        (Method::Get, ["keys", "broker"]) => {
            let key = keys::broker_key(&db)?;
            Ok(json_response(
                200,
                &json!({ "public_key": keys::public_key_hex(&key), "algorithm": "ed25519" }),
            ))
        }
        (Method::Post, ["users"]) => users::register(&db, body),
        (Method::Get, ["users", "me"]) => users::me(&auth::user(&db, req)?),
        (Method::Patch, ["users", "me"]) => users::update(&db, &auth::user(&db, req)?, body),
        (Method::Get, ["users", id, "quota"]) => quota::get(&db, &auth::user(&db, req)?, id),
        (Method::Post, ["users", id, "donations"]) => {
            admin::require(req)?;
            governance::donate(&db, id, body)
        }

        (Method::Get, ["governance"]) => governance::rules(),
        (Method::Put, ["governance", "voting-scheme"]) => {
            admin::require(req)?;
            governance::set_scheme(&db, body)
        }
        (Method::Get, ["polls"]) => {
            auth::user(&db, req)?;
            votes::list_open(&db)
        }
        (Method::Post, ["tasks", id, "votes"]) => {
            votes::cast(&db, &auth::user(&db, req)?, id, body)
        }
        (Method::Get, ["tasks", id, "votes"]) => {
            auth::user(&db, req)?;
            votes::get(&db, id)
        }

        (Method::Post, ["grants"]) => grants::create(&db, &auth::user(&db, req)?, body),
        (Method::Get, ["grants"]) => grants::list(&db, &auth::user(&db, req)?),
        (Method::Delete, ["grants", id]) => grants::revoke(&db, &auth::user(&db, req)?, id),
        (Method::Get, ["delegations", id]) => delegations::get(&db, &auth::user(&db, req)?, id),
        (Method::Post, ["delegations", id, "veto"]) => {
            delegations::veto(&db, &auth::user(&db, req)?, id)
        }

        (Method::Post, ["nodes"]) => nodes::register(&db, &auth::user(&db, req)?, body),
        (Method::Get, ["nodes"]) => nodes::list(),
        (Method::Get, ["nodes", id]) => nodes::get(id),
        (Method::Delete, ["nodes", id]) => nodes::withdraw(&db, &auth::user(&db, req)?, id, &query),
        (Method::Put, ["nodes", id, "heartbeat"]) => {
            auth::node(req, id)?;
            nodes::heartbeat(&db, id, body)
        }
        (Method::Get, ["nodes", id, "leases"]) => {
            auth::node(req, id)?;
            leases::poll(&db, id, &query)
        }
        (Method::Post, ["leases", id, "result"]) => {
            let (lease, status) = leases::authorize(req, &db, id)?;
            leases::result(&db, &lease, &status, body)
        }
        (Method::Post, ["leases", id, "refuse"]) => {
            let (lease, status) = leases::authorize(req, &db, id)?;
            leases::refuse(&db, &lease, &status, body)
        }

        (Method::Post, ["tasks"]) => tasks::submit(&db, &auth::user(&db, req)?, body),
        (Method::Post, ["tasks", "precheck"]) => tasks::precheck(&db, &auth::user(&db, req)?, body),
        (Method::Get, ["tasks"]) => tasks::list(&db, &auth::user(&db, req)?, &query),
        (Method::Get, ["tasks", id]) => tasks::get(&db, &auth::user(&db, req)?, id, &query),
        (Method::Delete, ["tasks", id]) => tasks::cancel(&db, &auth::user(&db, req)?, id),

        (Method::Get, ["events"]) => events::list(&db, &query),
        (Method::Get, ["ledger"]) => carbon::ledger(&db, &query),
        (Method::Get, ["users", id, "impact"]) => carbon::impact(&db, &auth::user(&db, req)?, id),
        (Method::Post, ["blobs"]) => blobs::put(&db, &auth::user(&db, req)?.id, body),
        (Method::Get, ["blobs", sha]) => {
            auth::user_or_node(&db, req)?;
            blobs::get(&db, sha)
        }
        (_, segs) if known_path(segs) => Err(ApiError::new(
            405,
            "method_not_allowed",
            format!("{} is not allowed on {path}", req.method()),
        )),
        _ => Err(ApiError::not_found(format!("no endpoint {path}"))),
    }
}

/// Paths that exist with some other method (for 405 vs 404).
fn known_path(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["health"]
            | ["users"]
            | ["users", "me"]
            | ["nodes"]
            | ["nodes", _]
            | ["nodes", _, "heartbeat"]
            | ["nodes", _, "leases"]
            | ["leases", _, "result"]
            | ["leases", _, "refuse"]
            | ["tasks"]
            | ["tasks", _]
            | ["events"]
            | ["keys", "broker"]
            | ["users", _, "quota"]
            | ["users", _, "impact"]
            | ["ledger"]
            | ["users", _, "donations"]
            | ["governance"]
            | ["governance", "voting-scheme"]
            | ["polls"]
            | ["tasks", _, "votes"]
            | ["grants"]
            | ["grants", _]
            | ["delegations", _]
            | ["delegations", _, "veto"]
    )
}

/// `GET /api/v1/health`: the service is up and its database answers.
fn health() -> ApiResult {
    let database = spin_sdk::sqlite::Connection::open_default()
        .and_then(|db| db.execute("SELECT 1", &[]))
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
