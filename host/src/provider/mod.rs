//! `greenmesh provide`: the provider node.
//!
//! - [`config`]: settings from a file, seed 001's `MESH_*` variables and flags.
//! - [`energy`]: the energy state reported, optionally replayed from a
//!   carbon-intensity trace with a 24 h forecast.
//! - [`identity`]: the node key and the pinned broker key.
//! - [`catalog`]: the kernels in the kernel folder; [`admission`]: which
//!   components may run at all.
//! - [`executor`]: the sandbox (limits from the lease, deterministic mode);
//!   [`gpu`]: `greenmesh:gpu/compute` on wgpu.
//! - [`lease_check`]: what a lease must satisfy before it runs.
//! - [`task_io`]: task inputs to kernel bytes and back.
//! - [`journal`]: run-once bookkeeping across restarts.
//! - [`coordinator`]: signed requests to the coordinator; [`agent`]: the loops.

pub mod admission;
pub mod agent;
pub mod catalog;
pub mod config;
pub mod coordinator;
pub mod energy;
pub mod executor;
pub mod gpu;
pub mod identity;
pub mod journal;
pub mod lease_check;
pub mod task_io;

pub use agent::run;
pub use config::{Overrides, ProviderConfig};
