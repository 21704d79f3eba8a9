//! Echo guest: reports the request (method, uri, spin-* headers) and variable lookups as JSON.

use serde_json::{json, Map, Value};
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::{http_component, variables};

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let headers: Map<String, Value> = req
        .headers()
        .filter(|(name, _)| name.to_ascii_lowercase().starts_with("spin-"))
        .map(|(name, value)| {
            (
                name.to_owned(),
                json!(String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect();

    // Hand-parsed query string: every `var=NAME` asks for one variable.
    let query = req.uri().split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut vars = Map::new();
    for pair in query.split('&') {
        if let Some(("var", name)) = pair.split_once('=') {
            let result = match variables::get(name) {
                Ok(value) => json!({ "ok": value }),
                Err(e) => json!({ "err": format!("{e:?}") }),
            };
            vars.insert(name.to_owned(), result);
        }
    }

    let body = json!({
        "who": variables::get("who").ok(),
        "method": req.method().to_string(),
        "uri": req.uri(),
        "headers": headers,
        "vars": vars,
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build())
}
