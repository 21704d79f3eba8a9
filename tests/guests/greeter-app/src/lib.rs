//! Greeter app: an HTTP component that imports greenmesh:testing/greeter and answers with greet("mesh").

wit_bindgen::generate!({ path: "../wit", world: "greeter-app" });

use greenmesh::testing::greeter;
use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(_req: Request) -> impl IntoResponse {
    Response::new(200, greeter::greet("mesh"))
}
