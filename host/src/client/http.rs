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
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    call_raw(&conn.url, method, path, &headers, body).await
}

/// Sends `method path` to `base_url` with extra headers and a raw body; an
/// API error status becomes an error carrying the coordinator's message.
pub async fn call_raw(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<Value> {
    let (status, value) = send(base_url, method, path, headers, body).await?;
    if !(200..300).contains(&status) {
        bail!("{status}: {}", error_message(&value));
    }
    Ok(value)
}

/// The readable part of an API error body: message and field.
pub fn error_message(value: &Value) -> String {
    let e = &value["error"];
    let field = e["field"]
        .as_str()
        .map(|f| format!(" (field {f})"))
        .unwrap_or_default();
    format!(
        "{}{field}",
        e["message"].as_str().unwrap_or(&value.to_string())
    )
}

/// Sends one request and returns the status with the body as JSON (a
/// non-JSON body becomes a JSON string). Only transport failures are errors.
pub async fn send(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<(u16, Value)> {
    let (status, bytes) = send_bytes(base_url, method, path, headers, body).await?;
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Ok((status, value))
}

/// Sends one request and returns the status and the raw body.
pub async fn send_bytes(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<(u16, Bytes)> {
    let base: http::Uri = base_url
        .parse()
        .with_context(|| format!("bad coordinator URL {base_url}"))?;
    let authority = base
        .authority()
        .context("the coordinator URL needs a host, e.g. http://127.0.0.1:3000")?
        .clone();
    if base.scheme_str() != Some("http") {
        bail!("only http:// coordinator URLs are supported by this client");
    }
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body)))?)
        .await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}
