//! The broker: the coordinator's HTTP component (routes under `/api/v1`).
//!
//! It imports the marketplace, pricing, reputation, voting and quota
//! interfaces, which `spin.toml` satisfies with component dependencies, and
//! keeps its own `broker_*` tables.
//!
//! # Layout
//!
//! Imports run one way: [`api`] → [`domain`] → [`model`], [`db`], [`error`], [`util`].
//!
//! - [`api`]: routes and handlers (one file per resource), authentication,
//!   JSON in and out. Handlers hold no rules and never call each other.
//! - [`domain`]: the rules: the task queue, matching and scoring, the lease
//!   lifecycle with its effects, energy interruptions, governance, carbon.
//!   Its own table of modules is in `domain/mod.rs`.
//! - [`model`]: the shared types (task request, requirements, [`model::Sla`],
//!   decision, candidate, user).
//! - [`db`]: the tables and their migrations; [`error`]: the one error
//!   type; [`util`]: time, ids, hex, fault points for tests.

mod api;
mod db;
mod domain;
mod error;
mod model;
mod util;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:broker/broker@0.1.0",
    generate_all,
});

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    api::handle(req)
}
