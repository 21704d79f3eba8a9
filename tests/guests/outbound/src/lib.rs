//! Outbound guest: `GET /?url=<url>` fetches the url with spin_sdk::http::send and reports the result.

use serde_json::json;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    // Everything after `url=` (no percent-decoding).
    let query = req.uri().split_once('?').map(|(_, q)| q).unwrap_or("");
    let url = query
        .strip_prefix("url=")
        .or_else(|| query.split_once("&url=").map(|(_, rest)| rest))
        .unwrap_or("");

    let (status, body) = match spin_sdk::http::send::<_, Response>(Request::get(url).build()).await
    {
        Ok(resp) => (
            200,
            json!({
                "status": *resp.status(),
                "body": String::from_utf8_lossy(resp.body()),
            }),
        ),
        // Display plus Debug, so the wasi ErrorCode name (e.g. HttpRequestDenied) is always present.
        Err(e) => (502, json!({ "error": format!("{e} ({e:?})") })),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build())
}
