//! The `spin-*` request headers a Spin HTTP component receives.

use super::router::{RouteMatch, RoutePattern};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use std::net::SocketAddr;

/// Adds Spin's routing headers to `headers`, replacing any the client sent.
pub fn add_spin_headers(
    headers: &mut HeaderMap,
    full_url: &str,
    route: &RoutePattern,
    matched: &RouteMatch,
    client: SocketAddr,
) {
    let mut set = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(n, v);
        }
    };
    set("spin-full-url", full_url);
    set("spin-path-info", &matched.path_info);
    set("spin-matched-route", route.raw());
    set("spin-base-path", "/");
    set("spin-raw-component-route", route.raw());
    set("spin-component-route", route.component_route());
    set("spin-client-addr", &client.to_string());
    for (name, value) in &matched.params {
        set(
            &format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value,
        );
    }
}
