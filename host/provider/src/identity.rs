//! The node's ed25519 key and the broker key it trusts, kept in the data folder.
//!
//! `keys/<peer_id>.seed` holds the 32-byte seed in hex, created on first
//! start (mode 0600 on Unix). `broker.pub` pins the broker's public key the
//! first time one is seen (or the configured one); a lease signed by any
//! other key is refused.

use greenmesh_protocol::ed25519_compact::{KeyPair, PublicKey, Seed};
use std::path::{Path, PathBuf};

fn seed_path(data_dir: &Path, peer_id: &str) -> PathBuf {
    data_dir.join("keys").join(format!("{peer_id}.seed"))
}

/// Loads the node key for `peer_id`, creating it on first use.
pub fn node_key(data_dir: &Path, peer_id: &str) -> anyhow::Result<KeyPair> {
    let path = seed_path(data_dir, peer_id);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return greenmesh_protocol::key_pair_from_seed_hex(text.trim())
            .map_err(|e| anyhow::anyhow!("{}: not a key seed ({e})", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a new key: {e}"))?;
    let key = KeyPair::from_seed(Seed::new(seed));
    let dir = path.parent().expect("keys folder");
    std::fs::create_dir_all(dir)?;
    write_private(&path, &greenmesh_protocol::to_hex(key.sk.seed().as_ref()))?;
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    Ok(())
}

/// The node's public key in hex.
pub fn public_hex(key: &KeyPair) -> String {
    greenmesh_protocol::to_hex(key.pk.as_ref())
}

/// The broker key to trust: the configured one, else the pinned one, else
/// `offered` (pinned now). A different key from what is pinned is an error.
pub fn broker_key(
    data_dir: &Path,
    configured: Option<&str>,
    offered: &str,
) -> anyhow::Result<PublicKey> {
    let pin = data_dir.join("broker.pub");
    let trusted = match configured {
        Some(k) => k.trim().to_string(),
        None => match std::fs::read_to_string(&pin) {
            Ok(k) => k.trim().to_string(),
            Err(_) => {
                std::fs::create_dir_all(data_dir)?;
                std::fs::write(&pin, offered)?;
                offered.to_string()
            }
        },
    };
    anyhow::ensure!(
        trusted == offered.trim(),
        "the coordinator presents broker key {offered}, but this node trusts {trusted} \
         (from {}); delete that file only if the coordinator's key really changed",
        if configured.is_some() {
            "broker_public_key".to_string()
        } else {
            pin.display().to_string()
        }
    );
    greenmesh_protocol::public_key(&trusted).map_err(|e| anyhow::anyhow!("broker key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_the_broker_key_is_pinned() {
        let dir = std::env::temp_dir().join(format!("gm-identity-{}", std::process::id()));
        let a = node_key(&dir, "alpha").unwrap();
        assert_eq!(
            node_key(&dir, "alpha").unwrap().pk,
            a.pk,
            "kept across starts"
        );
        assert_ne!(
            node_key(&dir, "beta").unwrap().pk,
            a.pk,
            "one key per peer id"
        );
        let broker = public_hex(&greenmesh_protocol::key_pair_from_seed([7; 32]));
        let other = public_hex(&greenmesh_protocol::key_pair_from_seed([8; 32]));
        assert!(broker_key(&dir, None, &broker).is_ok());
        let err = broker_key(&dir, None, &other).unwrap_err();
        assert!(err.to_string().contains("trusts"), "{err}");
        assert!(
            broker_key(&dir, Some(&other), &other).is_ok(),
            "configured key wins"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
