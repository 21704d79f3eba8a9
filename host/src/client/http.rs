//! One JSON request to the coordinator; API errors become readable errors.

use super::Connection;
use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// Sends `method path` with an optional bearer token and JSON body.
pub async fn call(
    conn: &Connection,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let base: http::Uri = conn
        .url
        .parse()
        .with_context(|| format!("bad --url {}", conn.url))?;
    let authority = base
        .authority()
        .context("--url needs a host, e.g. http://127.0.0.1:3000")?
        .clone();
    if base.scheme_str() != Some("http") {
        bail!("only http:// coordinator URLs are supported by this client");
    }
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let resp = sender.send_request(req.body(Full::new(body))?).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    if !status.is_success() {
        let e = &value["error"];
        let field = e["field"]
            .as_str()
            .map(|f| format!(" (field {f})"))
            .unwrap_or_default();
        bail!(
            "{status}: {}{field}",
            e["message"].as_str().unwrap_or(&value.to_string())
        );
    }
    Ok(value)
}
