//! The marketplace component: exports `greenmesh:marketplace/registry@0.1.0`.
//!
//! Nodes register with their ed25519 public key, capabilities, capacity,
//! region and energy; heartbeats keep them online; a node silent for longer
//! than [`store::LIVENESS_WINDOW_MS`] is marked offline by the next search.
//! State lives in the `marketplace_*` tables ([`store`]); the eligibility
//! rules are pure functions in [`eligibility`].

pub mod eligibility;
mod store;
pub mod validate;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:marketplace/marketplace@0.1.0",
    additional_derives: [serde::Serialize, serde::Deserialize, Clone],
});

use exports::greenmesh::marketplace::registry::Guest;
use greenmesh::marketplace::types::{Beat, Error, Node, Registration, Requirements, SearchResult};

struct Marketplace;

impl Guest for Marketplace {
    fn configure(settings: Vec<(String, String)>) {
        store::configure(&settings);
    }

    fn register(owner: String, registration: Registration) -> Result<Node, Error> {
        validate::registration(&registration).map_err(Error::Invalid)?;
        store::Store::open()?.register(&owner, registration, store::now_ms())
    }

    fn heartbeat(node_id: String, beat: Beat) -> Result<Node, Error> {
        validate::beat(&beat).map_err(Error::Invalid)?;
        store::Store::open()?.heartbeat(&node_id, beat, store::now_ms())
    }

    fn withdraw(node_id: String, capability: Option<String>) -> Result<Node, Error> {
        store::Store::open()?.withdraw(&node_id, capability.as_deref())
    }

    fn get(node_id: String) -> Result<Node, Error> {
        let store = store::Store::open()?;
        store.expire_silent(store::now_ms())?;
        store.get(&node_id)
    }

    fn list_nodes() -> Result<Vec<Node>, Error> {
        let store = store::Store::open()?;
        store.expire_silent(store::now_ms())?;
        store.list()
    }

    fn home_intensity(owner: String) -> Result<(f32, String), Error> {
        let store = store::Store::open()?;
        store.expire_silent_once(store::now_ms())?;
        store.home_intensity(&owner)
    }

    fn search(requirements: Requirements) -> Result<SearchResult, Error> {
        let store = store::Store::open()?;
        let now = store::now_ms();
        store.expire_silent_once(now)?;
        let eligible = store.eligible(&requirements)?;
        let (ineligible, total_ineligible) = store.ineligible(&requirements)?;
        let mut result = eligibility::search(
            &requirements,
            eligible.into_iter().chain(ineligible).collect(),
            now,
        );
        result.more_declined = total_ineligible.saturating_sub(result.declined.len() as u32);
        result.eligible_total = result
            .eligible_total
            .max(store.eligible_count(&requirements)?);
        Ok(result)
    }
}

export!(Marketplace);
