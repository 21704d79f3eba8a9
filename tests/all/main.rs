//! End-to-end tests: each module starts the real host on 127.0.0.1:0 with a
//! manifest from `tests/apps/` and the guests from `tests/guests/`.

mod build;
mod cli;
mod compose;
mod coordinator;
mod dashboard;
mod durability;
mod energy;
mod federated;
mod governance;
mod gpu;
mod groups;
mod hostile;
mod kernels;
mod key_value;
mod lifecycle;
mod limits;
mod openapi;
mod outbound;
mod plugins;
mod postgres;
mod provider;
mod replicas;
mod routes;
mod simulate;
mod spot_checks;
mod sqlite;
mod transport;
mod ui;
mod variables;
mod verification;
mod zk;
