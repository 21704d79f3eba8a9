//! Serves an [`App`] over HTTP/1.1, plain or over rustls: one fresh, pooled
//! instance per request.

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

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a client may take to finish the TLS handshake: a stalled one
/// holds only its own task, and not for long.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Shared state of a running HTTP trigger.
struct Server {
    app: Arc<App>,
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
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let server = Arc::new(Server {
        app,
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
    let service = hyper::service::service_fn(move |req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.handle(req, client).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    watcher.watch(conn).await
}

impl Server {
    async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:x}-{id}", std::process::id());
        let span = tracing::info_span!("request", id = %request_id, method = %req.method(), path = %req.uri().path());
        async move {
            let path = req.uri().path().to_string();
            let Some((route, target, matched)) = self.app.router.route(&path) else {
                tracing::info!(status = 404, "no route");
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
            let response = run_component(component, req, scheme, &request_id).await;
            tracing::info!(
                component = %component.id,
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "served"
            );
            response
        }
        .instrument(span)
        .await
    }
}

/// Instantiates `component` in a fresh store and lets it handle `req`.
async fn run_component(
    component: &LoadedComponent,
    req: Request<Incoming>,
    scheme: Scheme,
    request_id: &str,
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
            let result = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
            }
            .await;
            if let Err(e) = &result {
                tracing::error!(component = %component_id, reason = %describe_trap(e, &limits), "guest failed: {e:?}");
            }
            result.map_err(|e| describe_trap(&e, &limits))
        }
        .instrument(span),
    );

    match receiver.await {
        Ok(Ok(resp)) => resp,
        Ok(Err(code)) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("component answered with error {code:?}"),
            request_id,
        ),
        Err(_) => {
            let reason = match task.await {
                Ok(Ok(())) => "component returned without setting a response".to_string(),
                Ok(Err(reason)) => reason,
                Err(e) => format!("component task failed: {e}"),
            };
            json_error(StatusCode::INTERNAL_SERVER_ERROR, &reason, request_id)
        }
    }
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
