//! greenmesh's verification rules as pure functions, shared by the broker
//! component (which applies them to real runs) and `greenmesh bench
//! verify` (which measures them on a simulated network of cheaters):
//!
//! - [`judge`]: whether the runs of one shard agree, need another replica,
//!   fail or stay disputed;
//! - [`spot_check`]: how often a node's results are checked by a hidden
//!   rerun elsewhere, from its record of verified agreement.

mod judge;
pub mod spot_check;

pub use judge::{judge, Report, Verdict};
