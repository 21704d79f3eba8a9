//! Outbound HTTP (`wasi:http/outgoing-handler`), limited to the component's
//! `allowed_outbound_hosts`. A refused request gets `HTTP-request-denied`.

mod allowed_hosts;

pub use allowed_hosts::{default_port, AllowedHosts};

use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// Per-instance hooks that check every outgoing request against the grants.
pub struct OutboundHooks {
    pub component_id: Arc<str>,
    pub allowed: Arc<AllowedHosts>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .unwrap_or(0);
        if !self.allowed.allows(&scheme, &host, port) {
            tracing::warn!(
                component = %self.component_id,
                destination = %format!("{scheme}://{host}:{port}"),
                "outbound request refused: not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
