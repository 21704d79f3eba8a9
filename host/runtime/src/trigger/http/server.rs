//! Serves an [`App`] over HTTP/1.1, plain or over rustls: one fresh, pooled
//! instance per request, with a production server's limits (issue 21):
//!
//! - at most [`ServeLimits::max_connections`] open connections (more are
//!   closed as accepted); headers must arrive within `header_timeout`;
//! - a request's body is read *before* an instance is taken: a declared
//!   length past the route's cap is `413` unread, a body that grows past it
//!   `413`, one that does not arrive within the route's body timeout `408`;
//!   so slow clients cost a task and a socket, never an instance slot;
//! - instances in flight are capped overall (the pool's size) and per
//!   client address: a request waits up to a second for a slot, then gets
//!   `503` with `Retry-After` (so does one the full pool refuses), never
//!   `500`;
//! - a client that goes away before its response is ready cancels its
//!   instance (a disconnected long-poll frees its slot).

use super::headers::add_spin_headers;
use crate::app::{App, LoadedComponent};
use crate::manifest::TriggerTarget;
use crate::state::InstanceState;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::Instrument;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

/// How long a request waits for an instance slot before `503`.
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a client may take to finish the TLS handshake: a stalled one
/// holds only its own task, and not for long.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server's own limits (per-route ones are each component's
/// [`crate::sandbox::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Instances in flight at once, all clients together (at most the pool).
    pub max_in_flight: u32,
    /// Instances in flight at once for one client address.
    pub max_per_client: u32,
    /// Open connections at once.
    pub max_connections: u32,
    /// How long a client may take to send a request's headers.
    pub header_timeout: std::time::Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            max_per_client: 64,
            max_connections: 4096,
            header_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Shared state of a running HTTP trigger.
struct Server {
    app: Arc<App>,
    limits: ServeLimits,
    /// Instance slots, all clients together.
    slots: Arc<tokio::sync::Semaphore>,
    /// Instances in flight per client address.
    per_client: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>,
    local_addr: SocketAddr,
    /// `http` or `https`: what guests see in `spin-full-url` and the
    /// incoming request's scheme.
    scheme: &'static str,
    next_request: AtomicU64,
}

/// Accepts connections on `listener` until `shutdown` resolves; with `tls`,
/// every connection is HTTPS.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections as usize));
    let server = Arc::new(Server {
        app,
        limits,
        slots: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight as usize)),
        per_client: Default::default(),
        local_addr: listener.local_addr()?,
        scheme: if tls.is_some() { "https" } else { "http" },
        next_request: AtomicU64::new(1),
    });
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(connection) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%client, "connection limit reached; closed");
            drop(stream);
            continue;
        };
        // Without TCP_NODELAY, Nagle + delayed ACKs cap a keep-alive client
        // at a few hundred requests per second.
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let served = match acceptor {
                None => serve_connection(server, stream, client, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => serve_connection(server, tls, client, watcher).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%client, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%client, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%client, error = %e, "connection ended with an error");
            }
            drop(connection);
        });
    }
    tracing::info!("stopped accepting connections; draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them")
        }
    }
    Ok(())
}

/// Serves HTTP/1.1 with keep-alive on one accepted connection.
async fn serve_connection<S>(
    server: Arc<Server>,
    stream: S,
    client: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
) -> hyper::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = server.limits.header_timeout;
    let service = hyper::service::service_fn(move |req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.handle(req, client).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    watcher.watch(conn).await
}

impl Server {
    /// Takes an instance slot for `client`, waiting up to [`SLOT_WAIT`] for
    /// one (a burst is absorbed): `None` when the server or this client
    /// still has as many requests in flight as allowed.
    async fn slot(self: &Arc<Self>, client: std::net::IpAddr) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        // This client's share first, so a client at its cap waits without
        // holding any of the slots others need.
        loop {
            {
                let mut per = self.per_client.lock().expect("per-client lock");
                let n = per.entry(client).or_insert(0);
                if *n < self.limits.max_per_client {
                    *n += 1;
                    break;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let counted = Counted {
            server: self.clone(),
            client,
        };
        // A free slot is taken without arming a timer (the common case).
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned())
                .await
                .ok()?
                .ok()?,
        };
        Some(Slot {
            _counted: counted,
            _permit: permit,
        })
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:x}-{id}", std::process::id());
        let span = tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.uri().path());
        async move {
            let path = req.uri().path().to_string();
            let Some((route, target, matched)) = self.app.router.route(&path) else {
                tracing::debug!(status = 404, "no route");
                return json_error(
                    StatusCode::NOT_FOUND,
                    &format!("no route matches {path}"),
                    &request_id,
                );
            };
            let component = match target {
                TriggerTarget::Static(resp) => return static_response(resp),
                TriggerTarget::Component(id) => match self.app.components.get(id) {
                    Some(c) => c,
                    None => {
                        return json_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "route has no component",
                            &request_id,
                        )
                    }
                },
            };
            // The body first, with no instance held: capped and timed.
            let mut req = match read_body(req, &component.limits).await {
                Ok(req) => req,
                Err((status, message)) => {
                    tracing::info!(status = status.as_u16(), "{message}");
                    return json_error(status, &message, &request_id);
                }
            };
            let Some(slot) = self.slot(client.ip()).await else {
                tracing::warn!(%client, status = 503, "no instance slot free");
                return busy(
                    "the server is at its limit of requests in flight (overall or for your address); retry shortly",
                    &request_id,
                );
            };
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| self.local_addr.to_string());
            if !req.headers().contains_key(http::header::HOST) {
                if let Ok(v) = http::HeaderValue::try_from(host.as_str()) {
                    req.headers_mut().insert(http::header::HOST, v);
                }
            }
            let path_and_query = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let full_url = format!("{}://{host}{path_and_query}", self.scheme);
            add_spin_headers(req.headers_mut(), &full_url, route, &matched, client);
            let started = std::time::Instant::now();
            let scheme = if self.scheme == "https" {
                Scheme::Https
            } else {
                Scheme::Http
            };
            // The slot goes with the instance: it is freed when the
            // instance is, after the body has streamed (or the deadline).
            let response = run_component(component, req, scheme, &request_id, slot).await;
            // Each request is a debug line (heartbeats and polls arrive
            // every few seconds); a server error is worth a person's eye.
            let (status, elapsed_us) = (
                response.status().as_u16(),
                started.elapsed().as_micros() as u64,
            );
            if status >= 500 {
                tracing::warn!(component = %component.id, status, elapsed_us, "served");
            } else {
                tracing::debug!(component = %component.id, status, elapsed_us, "served");
            }
            response
        }
        .instrument(span)
        .await
    }
}

/// An instance slot held for one request; freed when dropped.
struct Slot {
    _counted: Counted,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// One request counted against its client's share; uncounted when dropped.
struct Counted {
    server: Arc<Server>,
    client: std::net::IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut per = self.server.per_client.lock().expect("per-client lock");
        if let Some(n) = per.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.client);
            }
        }
    }
}

/// `503` with `Retry-After: 1`: busy, not broken.
fn busy(message: &str, request_id: &str) -> Response<HyperOutgoingBody> {
    let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, message, request_id);
    resp.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    resp
}

/// A request's body, read whole within `limits`: `413` past the body cap
/// (unread when the declared length says so), `408` past the body timeout.
async fn read_body(
    req: Request<Incoming>,
    limits: &crate::sandbox::Limits,
) -> Result<Request<Full<Bytes>>, (StatusCode, String)> {
    let cap = limits.max_body_bytes;
    let too_large = |n: &dyn std::fmt::Display| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {n} bytes; this route takes at most {cap}"),
        )
    };
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > cap) {
        return Err(too_large(&n));
    }
    let (parts, body) = req.into_parts();
    // No body (a GET): nothing to wait for, no timer to arm.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Request::from_parts(parts, Full::new(Bytes::new())));
    }
    let limited = http_body_util::Limited::new(body, cap as usize);
    match tokio::time::timeout(limits.body_timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(Request::from_parts(parts, Full::new(collected.to_bytes()))),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(too_large(&format!("more than {cap}")))
        }
        Ok(Err(e)) => Err((
            StatusCode::BAD_REQUEST,
            format!("reading the request body: {e}"),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} ms",
                limits.body_timeout.as_millis()
            ),
        )),
    }
}

/// Aborts a guest's task if the request is dropped (the client went away)
/// before the response was ready; disarmed once it is.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Instantiates `component` in a fresh store and lets it handle `req`,
/// holding `slot` for as long as the instance lives. The whole request,
/// from instantiation to the last byte of a streamed response, is bounded
/// by the component's time limit: the epoch deadline only fires while
/// wasm runs, so a guest waiting on a slow reader (or a sleep) is cut off
/// by this deadline instead, and its instance and slot freed.
async fn run_component(
    component: &LoadedComponent,
    req: Request<Full<Bytes>>,
    scheme: Scheme,
    request_id: &str,
    slot: Slot,
) -> Response<HyperOutgoingBody> {
    let engine = component.pre.engine();
    let mut store = Store::new(
        engine,
        InstanceState::new(
            component.capabilities.clone(),
            component.limits.store_limits(),
        ),
    );
    store.limiter(|s| &mut s.limits);
    component.limits.arm(&mut store);

    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let req = store.data_mut().http().new_incoming_request(scheme, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        Ok((req, out))
    })();
    let (req, out) = match prepared {
        Ok(v) => v,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("bad request: {e}"),
                request_id,
            )
        }
    };

    let pre = component.pre.clone();
    let limits = component.limits;
    let component_id = component.id.clone();
    let span = tracing::Span::current();
    let task = tokio::spawn(
        async move {
            let _slot = slot;
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            };
            let result = match tokio::time::timeout(limits.timeout, run).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Trap::Interrupt.into()),
            };
            if let Err(e) = &result {
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
                    return Err(Failure::PoolFull(e.to_string()));
                }
                tracing::error!(component = %component_id, reason = %describe_trap(e, &limits), "guest failed: {e:?}");
            }
            result.map_err(|e| Failure::Guest(describe_trap(&e, &limits)))
        }
        .instrument(span),
    );

    let mut guard = AbortOnDrop(Some(task.abort_handle()));
    let answer = receiver.await;
    // Answered (or failed): the guest may still be streaming the body.
    guard.0 = None;
    match answer {
        Ok(Ok(resp)) => resp,
        Ok(Err(code)) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("component answered with error {code:?}"),
            request_id,
        ),
        Err(_) => {
            let reason = match task.await {
                Ok(Ok(())) => "component returned without setting a response".to_string(),
                // The instance pool is full: the server is busy, not broken.
                Ok(Err(Failure::PoolFull(reason))) => return busy(&reason, request_id),
                Ok(Err(Failure::Guest(reason))) => reason,
                Err(e) => format!("component task failed: {e}"),
            };
            json_error(StatusCode::INTERNAL_SERVER_ERROR, &reason, request_id)
        }
    }
}

/// Why an instance gave no response.
enum Failure {
    /// Every instance of the pool is in use (`503`, not `500`).
    PoolFull(String),
    /// The guest trapped, erred or ran out of time.
    Guest(String),
}

/// A one-line, user-facing reason for a guest failure.
fn describe_trap(e: &wasmtime::Error, limits: &crate::sandbox::Limits) -> String {
    let text = format!("{e:?}");
    if matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    ) {
        format!("time limit of {} ms exceeded", limits.timeout.as_millis())
    } else if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
        format!(
            "memory limit of {} MiB exceeded",
            limits.max_memory_bytes >> 20
        )
    } else if matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::StackOverflow)
    ) {
        "stack overflow".to_string()
    } else {
        format!("component trapped: {}", e.root_cause())
    }
}

fn body(bytes: impl Into<Bytes>) -> HyperOutgoingBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON error response `{"error": ..., "request_id": ...}`.
fn json_error(status: StatusCode, message: &str, request_id: &str) -> Response<HyperOutgoingBody> {
    let json = serde_json::json!({ "error": message, "request_id": request_id });
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body(json.to_string()))
        .unwrap_or_else(|_| Response::new(body(Bytes::new())))
}

fn static_response(resp: &crate::manifest::schema::StaticResponse) -> Response<HyperOutgoingBody> {
    let mut builder = Response::builder().status(resp.status_code.unwrap_or(200));
    for (k, v) in &resp.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(body(resp.body.clone().unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(body(Bytes::new())))
}
