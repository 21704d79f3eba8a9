//! A toy ingress on loopback: serves the coordinator under a path prefix
//! (`http://127.0.0.1:P/mesh/api/v1/...` → `/api/v1/...`, as an ingress
//! rewrite does) and can be told to stall: while stalled it accepts
//! requests and never answers, like a coordinator hung mid-request.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A running ingress.
pub struct Ingress {
    pub addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    /// Requests it has held without answering.
    held: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Ingress {
    /// Forwards `prefix/...` to `upstream` (a plain-HTTP coordinator).
    pub async fn start(upstream: SocketAddr, prefix: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let client = greenmesh_client::Client::new(
            &format!("http://{upstream}"),
            &greenmesh_client::ClientOptions::default(),
        )
        .unwrap();
        let (stalled2, held2) = (stalled.clone(), held.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (client, stalled, held) = (client.clone(), stalled2.clone(), held2.clone());
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, stalled, held) =
                            (client.clone(), stalled.clone(), held.clone());
                        async move {
                            if stalled.load(Ordering::SeqCst) {
                                held.fetch_add(1, Ordering::SeqCst);
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, Infallible>(forward(&client, prefix, req).await)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        Self {
            addr,
            stalled,
            held,
            task,
        }
    }

    /// The coordinator's URL through this ingress, e.g. `http://127.0.0.1:P/mesh`.
    pub fn url(&self, prefix: &str) -> String {
        format!("http://{}{prefix}", self.addr)
    }

    /// Stops answering (requests are accepted and held) or resumes.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    /// Requests held unanswered so far.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    client: &greenmesh_client::Client,
    prefix: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some(rest) = path.strip_prefix(prefix).filter(|r| r.starts_with('/')) else {
        let mut resp = hyper::Response::new(Full::new(Bytes::from("not under the prefix")));
        *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
        return resp;
    };
    let method = req.method().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut up = client.request(&method, rest).body(body);
    for (k, v) in &headers {
        if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
            up = up.header(k.as_str(), v.to_str().unwrap_or_default());
        }
    }
    match up.send().await {
        Ok(r) => {
            let mut resp = hyper::Response::new(Full::new(r.body));
            *resp.status_mut() = hyper::StatusCode::from_u16(r.status).unwrap();
            *resp.headers_mut() = r.headers;
            resp.headers_mut().remove(http::header::TRANSFER_ENCODING);
            resp
        }
        Err(e) => {
            let mut resp = hyper::Response::new(Full::new(Bytes::from(e.to_string())));
            *resp.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            resp
        }
    }
}
