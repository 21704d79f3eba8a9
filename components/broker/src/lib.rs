//! The coordinator's HTTP entry point (the broker component).
//!
//! For now it serves `GET /api/v1/health`, which proves the coordinator's
//! storage is reachable; the task, node and lease API arrives with the
//! coordinator issue and is documented in `docs/api.md` as it lands.

use serde_json::json;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::sqlite::Connection;

#[http_component]
fn handle(req: Request) -> Response {
    let path = req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .unwrap_or_else(|| req.path())
        .to_string();
    match (req.method().to_string().as_str(), path.as_str()) {
        ("GET", "/health") => health(),
        _ => json_response(404, json!({ "error": "not found", "path": req.path() })),
    }
}

/// `GET /api/v1/health`: the service is up and its database answers.
fn health() -> Response {
    let database = Connection::open_default()
        .and_then(|db| db.execute("SELECT 1", &[]))
        .map(|_| "ok".to_string())
        .unwrap_or_else(|e| format!("unavailable: {e:?}"));
    let status = if database == "ok" { 200 } else { 503 };
    json_response(
        status,
        json!({
            "status": if status == 200 { "ok" } else { "degraded" },
            "service": "greenmesh-coordinator",
            "version": env!("CARGO_PKG_VERSION"),
            "database": database,
        }),
    )
}

fn json_response(status: u16, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
        .into_response()
}
