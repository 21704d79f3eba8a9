//! greenmesh's federated learning as pure functions (no storage, no I/O,
//! randomness passed in), so the same code trains inside the sandboxed
//! `fl-train` kernel, aggregates in the broker, and runs natively in tests
//! and `greenmesh bench fl` (issue 20; `docs/federated.md`).
//!
//! - [`accountant`]: the Rényi-DP accountant of the subsampled Gaussian
//!   mechanism (Mironov 2017; Mironov, Talwar and Zhang 2019), ε from a
//!   noise multiplier and the noise multiplier for a target (ε, δ);
//! - [`data`]: a node's CSV rows, the schema it may advertise, scaling;
//! - [`model`]: softmax regression and a one-hidden-layer MLP;
//! - [`train`]: DP-SGD on one node's rows, and FedAvg over the members;
//! - [`random`]: randomness passed in (a node's own, for privacy noise).

pub mod accountant;
pub mod data;
pub mod model;
pub mod random;
pub mod train;
