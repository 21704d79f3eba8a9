//! Hello guest: the smallest HTTP component, answers `hello` to everything (benchmark baseline).

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(_req: Request) -> impl IntoResponse {
    Response::new(200, "hello")
}
