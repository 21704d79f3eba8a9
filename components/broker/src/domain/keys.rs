//! The broker's ed25519 signing key: from the secret Spin variable
//! `signing_seed` (64 hex characters) when set, otherwise generated on first
//! start and kept in the broker's key-value store, which its dependencies do
//! not inherit (they share only the SQLite database; ADR 0021).
//!
//! SQLite still settles which generated key wins when several instances
//! start at once: each writes its seed to the store under its public key,
//! then offers that public key to `broker_keys` (`name = 'broker_public'`,
//! first insert wins); every instance then signs with the winner's seed.
//! Once settled, the store itself records which key is in use
//! (`broker_public`) and the shared database is no longer read for it: a
//! dependency that can write the database cannot plant or swap the key. A
//! seed kept in `broker_keys` by an older version (`name = 'broker'`) is
//! moved to the store on first use, only while the store holds no key.

use crate::db::{text, Db};
use crate::error::ApiError;
use greenmesh_protocol::ed25519_compact::KeyPair;
use spin_sdk::key_value::Store;

/// The store's record of the key in use (its public key): once written,
/// the database's rows are no longer consulted.
const CHOSEN: &str = "broker_public";

fn seed_key(public_hex: &str) -> String {
    format!("broker_seed:{public_hex}")
}

fn kv_error(e: impl std::fmt::Debug) -> ApiError {
    ApiError::internal(format!("key-value store: {e:?}"))
}

fn from_seed(seed_hex: &str, what: &str) -> Result<KeyPair, ApiError> {
    greenmesh_protocol::key_pair_from_seed_hex(seed_hex.trim())
        .map_err(|e| ApiError::internal(format!("{what}: {e}")))
}

/// The seed stored for `public_hex`, if the store has it.
fn stored_seed(store: &Store, public_hex: &str) -> Result<Option<KeyPair>, ApiError> {
    match store.get(&seed_key(public_hex)).map_err(kv_error)? {
        Some(bytes) => Ok(Some(from_seed(
            &String::from_utf8_lossy(&bytes),
            "stored broker key",
        )?)),
        None => Ok(None),
    }
}

/// Keeps `kp` in the store and offers it as the broker's key; answers the
/// public key that won.
fn offer(db: &Db, store: &Store, kp: &KeyPair) -> Result<String, ApiError> {
    let public = public_key_hex(kp);
    let seed = greenmesh_protocol::to_hex(kp.sk.seed().as_ref());
    store
        .set(&seed_key(&public), seed.as_bytes())
        .map_err(kv_error)?;
    db.exec(
        "INSERT OR IGNORE INTO broker_keys (name, seed_hex) VALUES ('broker_public', ?)",
        &[text(public.clone())],
    )?;
    let winner = db
        .text_of(
            "SELECT seed_hex FROM broker_keys WHERE name = 'broker_public'",
            &[],
        )?
        .ok_or_else(|| ApiError::internal("broker key missing after insert"))?;
    if winner != public {
        // Another instance's key won: drop ours.
        let _ = store.delete(&seed_key(&public));
    }
    Ok(winner)
}

/// Loads or creates the broker key.
pub fn broker_key(db: &Db) -> Result<KeyPair, ApiError> {
    if let Ok(seed) = spin_sdk::variables::get("signing_seed") {
        if !seed.trim().is_empty() {
            return from_seed(&seed, "variable signing_seed");
        }
    }
    let store = Store::open_default().map_err(kv_error)?;
    // Settled: the store names the key. The shared database is not trusted
    // for this (a dependency can write it).
    if let Some(public) = store.get(CHOSEN).map_err(kv_error)? {
        let public = String::from_utf8_lossy(&public).to_string();
        return stored_seed(&store, &public)?.ok_or_else(|| {
            ApiError::internal(format!(
                "the broker's key {public} is not in its key-value store"
            ))
        });
    }
    let winner = match db.text_of(
        "SELECT seed_hex FROM broker_keys WHERE name = 'broker_public'",
        &[],
    )? {
        Some(public) => public,
        None => {
            // An older version kept the seed itself in SQLite: move it,
            // once, while this store holds no key yet.
            let legacy = if store.get_keys().map_err(kv_error)?.is_empty() {
                db.text_of(
                    "SELECT seed_hex FROM broker_keys WHERE name = 'broker'",
                    &[],
                )?
            } else {
                None
            };
            let kp = match legacy {
                Some(seed) => from_seed(&seed, "stored broker key")?,
                None => {
                    let seed: [u8; 32] = crate::util::random_bytes();
                    from_seed(&greenmesh_protocol::to_hex(&seed), "generated key")?
                }
            };
            offer(db, &store, &kp)?
        }
    };
    db.exec("DELETE FROM broker_keys WHERE name = 'broker'", &[])?;
    let kp = stored_seed(&store, &winner)?
        .ok_or_else(|| ApiError::internal("the winning broker key is not in the store"))?;
    // Every racer writes the same winner.
    store.set(CHOSEN, winner.as_bytes()).map_err(kv_error)?;
    Ok(kp)
}

/// Hex of the broker's public key.
pub fn public_key_hex(kp: &KeyPair) -> String {
    greenmesh_protocol::public_key_hex(&kp.pk)
}
