//! A typed client of the coordinator's HTTP API, shared by the CLI, the
//! provider node, the benchmarks, the carbon replay and the tests.
//!
//! It speaks `http://` and `https://` (rustls with the ring provider: the
//! system's roots plus an optional private CA), reuses connections, has a
//! connect timeout and a per-request timeout (a long-poll gets its own), and
//! retries with backoff where a caller asks for it (heartbeats, receipts).
//! The base URL may carry a path prefix (`https://host/mesh`): API paths are
//! appended to it, and a node signs the API path alone (the proxy in front
//! of the coordinator strips the prefix, as an ingress rewrite does).
//!
//! # Layout
//!
//! - this file: [`Client`], [`ClientOptions`], [`RequestBuilder`], [`Reply`],
//!   [`Error`] and [`error_message`];
//! - [`retry`]: [`Retry`], which transport failures and statuses are retried;
//! - [`node`]: [`NodeClient`], requests as a node's owner and requests
//!   signed with the node key.

pub mod node;
pub mod retry;

pub use node::NodeClient;
pub use retry::Retry;

use bytes::Bytes;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

/// What went wrong talking to the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL is not an `http://` or `https://` URL with a host.
    #[error("bad coordinator URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The private CA file could not be read or holds no certificate.
    #[error("CA certificate {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },
    /// The client could not be built (TLS setup).
    #[error("HTTP client: {0}")]
    Build(String),
    /// Connecting, TLS, sending or reading failed, or the timeout passed.
    #[error("{method} {url}: {}", describe(.source))]
    Transport {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The coordinator answered with an error status.
    #[error("{status}: {message}")]
    Api { status: u16, message: String },
}

impl Error {
    /// Whether a timeout (connect or request) ended the call.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Transport { source, .. } if source.is_timeout())
    }
}

/// A readable transport error: reqwest's own text hides the cause chain.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// A PEM file of extra trusted roots (a private CA), added to the
    /// system's.
    pub ca_cert: Option<PathBuf>,
    /// Most time to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Most time for one request, answer included, unless the request sets
    /// its own (a long-poll).
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_cert: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A coordinator at one base URL. Cheap to clone: clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The base URL without a trailing slash, e.g. `https://host/mesh`.
    base: String,
}

/// One answer: status, headers and raw body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; a body that is not JSON becomes a JSON string.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Ok(json)` for a 2xx answer, [`Error::Api`] with the coordinator's
    /// message otherwise.
    pub fn into_result(self) -> Result<Value, Error> {
        let value = self.json();
        if (200..300).contains(&self.status) {
            Ok(value)
        } else {
            Err(Error::Api {
                status: self.status,
                message: error_message(&value),
            })
        }
    }
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

impl Client {
    /// A client of the coordinator at `base_url`.
    pub fn new(base_url: &str, options: &ClientOptions) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/').to_string();
        let bad = |reason: &str| Error::BadUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = base.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(bad("use http:// or https://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("no host, e.g. https://mesh.example.org"));
        }
        if uri.query().is_some() {
            return Err(bad("a base URL takes no query"));
        }
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("greenmesh/", env!("CARGO_PKG_VERSION")))
            // A coordinator is reached directly: a proxy from the
            // environment would see node tokens.
            .no_proxy();
        if let Some(path) = &options.ca_cert {
            builder = builder.tls_certs_merge(read_ca(path)?);
        }
        let http = builder.build().map_err(|e| Error::Build(describe(&e)))?;
        Ok(Self { http, base })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request for `path` (an API path such as `/api/v1/tasks?wait=5`).
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: None,
            retry: Retry::NONE,
            progress: None,
        }
    }

    /// One JSON call as the user holding `token` (none for public calls):
    /// the answer's JSON, or [`Error::Api`] for an error status.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let mut req = self.request(method, path);
        if let Some(t) = token {
            req = req.bearer(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await?.into_result()
    }
}

/// One request being put together; [`RequestBuilder::send`] sends it.
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder<'a> {
    client: &'a Client,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    timeout: Option<Duration>,
    retry: Retry,
    progress: Option<Progress>,
}

/// Told the bytes of a body sent so far (see [`RequestBuilder::progress`]).
pub type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// The body handed to the connection in chunks of this many bytes, each
/// reported to a [`Progress`] as it goes.
const PROGRESS_CHUNK: usize = 64 * 1024;

/// `body` as a stream of chunks, telling `progress` the running total.
fn reported(body: Bytes, progress: Progress) -> reqwest::Body {
    let chunks: Vec<Bytes> = (0..body.len())
        .step_by(PROGRESS_CHUNK)
        .map(|at| body.slice(at..(at + PROGRESS_CHUNK).min(body.len())))
        .collect();
    let mut sent = 0u64;
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks.into_iter().map(
        move |chunk| {
            sent += chunk.len() as u64;
            progress(sent);
            Ok::<_, std::convert::Infallible>(chunk)
        },
    )))
}

impl RequestBuilder<'_> {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Authenticates as the user holding `token`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Bytes::from(body.to_string());
        self.header("content-type", "application/json")
    }

    /// A raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// This request's own timeout (a long-poll waits longer than others).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the body in chunks, telling `progress` the bytes sent so far
    /// (for an upload's progress bar; a retry starts again from zero).
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Retries transport failures and busy answers (see [`Retry`]).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Sends it (again on each retry); only transport failures are errors.
    pub async fn send(self) -> Result<Reply, Error> {
        let url = format!("{}{}", self.client.base, self.path);
        let method = http::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| Error::Build(format!("{:?} is not an HTTP method", self.method)))?;
        self.retry
            .run(|| async {
                let mut req = self.client.http.request(method.clone(), &url);
                for (k, v) in &self.headers {
                    req = req.header(k, v);
                }
                if let Some(t) = self.timeout {
                    req = req.timeout(t);
                }
                let body = match &self.progress {
                    None => reqwest::Body::from(self.body.clone()),
                    // Its length stated, so the server can refuse a body
                    // too large before reading it, as with a plain body.
                    Some(p) => {
                        req = req.header(http::header::CONTENT_LENGTH, self.body.len());
                        reported(self.body.clone(), p.clone())
                    }
                };
                let resp = req
                    .body(body)
                    .send()
                    .await
                    .map_err(|source| self.transport(&url, source))?;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|source| self.transport(&url, source))?;
                Ok(Reply {
                    status,
                    headers,
                    body,
                })
            })
            .await
    }

    fn transport(&self, url: &str, source: reqwest::Error) -> Error {
        Error::Transport {
            method: self.method.clone(),
            url: url.to_string(),
            source,
        }
    }
}

/// Reads every certificate in a PEM file.
fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let fail = |reason: String| Error::CaCert {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(describe(&e)))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// rustls needs one process-wide crypto provider; greenmesh uses ring (the
/// coordinator's TLS server does too).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only when another provider is already installed: keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_http_or_https_with_a_host_and_no_query() {
        let o = ClientOptions::default();
        for bad in [
            "ftp://host",
            "127.0.0.1:3000",
            "https://",
            "http://h/x?y=1",
            "",
        ] {
            assert!(
                matches!(Client::new(bad, &o), Err(Error::BadUrl { .. })),
                "{bad}"
            );
        }
        let c = Client::new("https://mesh.example.org/mesh/", &o).unwrap();
        assert_eq!(
            c.base_url(),
            "https://mesh.example.org/mesh",
            "prefix kept, slash trimmed"
        );
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("greenmesh-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [dir.join("missing.pem"), empty] {
            let o = ClientOptions {
                ca_cert: Some(path.clone()),
                ..ClientOptions::default()
            };
            match Client::new("https://localhost", &o) {
                Err(Error::CaCert { path: p, .. }) => assert_eq!(p, path),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn api_errors_carry_the_coordinator_s_message_and_field() {
        let reply = Reply {
            status: 400,
            headers: Default::default(),
            body: Bytes::from(
                r#"{"error":{"message":"max_price must be positive","field":"max_price"}}"#,
            ),
        };
        match reply.into_result() {
            Err(Error::Api { status, message }) => {
                assert_eq!(status, 400);
                assert_eq!(message, "max_price must be positive (field max_price)");
            }
            other => panic!("{other:?}"),
        }
    }
}
