//! The broker's ed25519 signing key: from the secret Spin variable
//! `signing_seed` (64 hex characters) when set, otherwise generated on first
//! start and kept in `broker_keys`.

use crate::db::{text, Db};
use crate::error::ApiError;
use greenmesh_protocol::ed25519_compact::KeyPair;

/// Loads or creates the broker key.
pub fn broker_key(db: &Db) -> Result<KeyPair, ApiError> {
    if let Ok(seed) = spin_sdk::variables::get("signing_seed") {
        if !seed.trim().is_empty() {
            return greenmesh_protocol::key_pair_from_seed_hex(seed.trim())
                .map_err(|e| ApiError::internal(format!("variable signing_seed: {e}")));
        }
    }
    let rows = db.query(
        "SELECT seed_hex FROM broker_keys WHERE name = 'broker'",
        &[],
    )?;
    if let Some(seed) = rows.rows.first().and_then(|r| r.get::<&str>(0)) {
        return greenmesh_protocol::key_pair_from_seed_hex(seed)
            .map_err(|e| ApiError::internal(format!("stored broker key: {e}")));
    }
    let seed: [u8; 32] = crate::util::random_bytes();
    let hex = greenmesh_protocol::to_hex(&seed);
    // Another instance may have raced us: keep whichever landed first.
    db.exec(
        "INSERT OR IGNORE INTO broker_keys (name, seed_hex) VALUES ('broker', ?)",
        &[text(hex)],
    )?;
    let rows = db.query(
        "SELECT seed_hex FROM broker_keys WHERE name = 'broker'",
        &[],
    )?;
    let stored = rows
        .rows
        .first()
        .and_then(|r| r.get::<&str>(0))
        .ok_or_else(|| ApiError::internal("broker key missing after insert"))?;
    greenmesh_protocol::key_pair_from_seed_hex(stored)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Hex of the broker's public key.
pub fn public_key_hex(kp: &KeyPair) -> String {
    greenmesh_protocol::public_key_hex(&kp.pk)
}
