//! What the three voting components (`voting`, `voting-quadratic`,
//! `voting-committee`) share: the importance levels, the consensus rules
//! (seed 001) and the SQLite ballot box in the `voting_*` tables.
//!
//! A component supplies only its [`Weighting`] (a scheme name and a weight
//! function over a [`StoredBallot`]) and maps these plain Rust types to its
//! WIT bindings (the mapping is shared too, as the [`wit_mapping!`] macro).
//! Because every implementation keeps the same tables, a
//! network can point `spin.toml` at another implementation without losing
//! polls or ballots.
//!
//! The pure parts ([`level`], [`tally`], [`ballot`], [`weighting`],
//! [`outcome`]) have native unit tests (`cargo test --lib -p voting-core`);
//! [`store`] and [`config`] need the Spin host.

pub mod ballot;
pub mod clock;
pub mod config;
pub mod error;
pub mod level;
pub mod outcome;
pub mod poll;
pub mod store;
pub mod tally;
pub mod weighting;
mod wit_mapping;

pub use ballot::{Ballot, Standing, StoredBallot};
pub use error::Error;
pub use level::Level;
pub use outcome::Outcome;
pub use poll::Poll;
pub use tally::{tally, DecidedBy, Tally};
pub use weighting::Weighting;
