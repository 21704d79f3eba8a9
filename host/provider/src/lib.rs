//! `greenmesh provide`: the provider node.
//!
//! The public surface is [`run`] with its [`ProviderConfig`] and
//! [`Overrides`], plus the sandbox pieces the benchmarks, tests and
//! `greenmesh verify` drive directly: [`catalog`], [`executor`], [`gpu`]
//! and [`rerun`].
//!
//! # Layout
//!
//! - `config`: settings from a file, seed 001's `MESH_*` variables and flags.
//! - [`datasets`]: node-local datasets for federated training, advertised
//!   by shape only.
//! - `energy`: the energy state reported, optionally replayed from a
//!   carbon-intensity trace with a 24 h forecast.
//! - `identity`: the node key and the pinned broker key.
//! - [`catalog`]: the kernels in the kernel folder; `admission`: which
//!   components may run at all.
//! - [`executor`]: the sandbox (limits from the lease, deterministic mode);
//!   [`gpu`]: `greenmesh:gpu/compute` on wgpu.
//! - `lease_check`: what a lease must satisfy before it runs.
//! - `lease_clock`: kernel sleeps that end at the lease's deadline.
//! - `secure_round`: secure aggregation on the node: the round's signed
//!   roster checked, the training update masked against it.
//! - `task_io`: task inputs to kernel bytes and back.
//! - `journal`: run-once bookkeeping across restarts.
//! - [`rerun`]: one lease re-executed offline as its node ran it
//!   (`greenmesh verify --rerun`).
//! - `agent`: the loops (register, heartbeat, rescan, long-poll, run,
//!   report), talking to the coordinator through `greenmesh_client`'s
//!   [`NodeClient`](greenmesh_client::NodeClient).

mod admission;
mod agent;
pub mod catalog;
mod config;
pub mod datasets;
mod energy;
pub mod executor;
pub mod gpu;
mod identity;
mod journal;
mod lease_check;
mod lease_clock;
pub mod rerun;
mod secure_round;
mod task_io;

pub use agent::run;
pub use config::{parse_dataset, Overrides, ProviderConfig};
