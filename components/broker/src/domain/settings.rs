//! What the broker's dependencies are told: the few settings each needs,
//! read from the broker's own Spin variables and passed through their
//! `configure` calls at the start of each request. The dependencies inherit
//! no variables (`spin.toml`: `inherit_configuration = ["sqlite_databases"]`),
//! so a swapped-in plugin never sees the signing seed or the admin token
//! (ADR 0021).

use crate::greenmesh::marketplace::registry;
use crate::greenmesh::pricing::quotes;
use crate::greenmesh::quota::tiers;
use crate::greenmesh::reputation::scores;
use crate::greenmesh::voting::ballots;

/// The variables the voting component reads.
pub const VOTING: &[&str] = &[
    "voting_window_ms",
    "voting_scheme",
    "voting_committee",
    "database_url",
];
/// The variables the marketplace reads.
pub const MARKETPLACE: &[&str] = &["liveness_window_ms", "database_url"];
/// What the other table-keeping dependencies read: where their tables
/// are (`greenmesh_storage::configure`).
pub const STORAGE: &[&str] = &["database_url"];

/// `names`' values, and the schema versions the broker read on opening
/// the database (so each dependency skips its own read: one read per
/// request, not one per component).
fn read(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| {
            spin_sdk::variables::get(name)
                .ok()
                .map(|value| (name.to_string(), value))
        })
        .chain(greenmesh_storage::versions_setting())
        .collect()
}

/// Passes each dependency its settings (once per request, after the
/// broker opened the database).
pub fn configure_dependencies() {
    ballots::configure(&read(VOTING));
    registry::configure(&read(MARKETPLACE));
    let storage = read(STORAGE);
    scores::configure(&storage);
    quotes::configure(&storage);
    tiers::configure(&storage);
}
