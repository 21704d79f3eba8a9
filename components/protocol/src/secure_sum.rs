//! Secure aggregation's arithmetic (Bonawitz et al. 2017, pairwise masks):
//! the members of a federated round each add masks to their update that
//! cancel in the sum, so whoever sums the masked updates (the coordinator)
//! learns the sum and nothing about any one member's update.
//!
//! - Every pair of members shares a secret: X25519 on keys derived from
//!   their registered ed25519 node keys (no new key to register).
//! - From it and the round's context, a pseudorandom mask stream
//!   (SHA-256 in counter mode). Of the pair, the member whose node id sorts
//!   first adds the mask, the other subtracts it.
//! - Values are fixed point ([`SCALE`]) in wrapping 64-bit arithmetic, so
//!   the masks cancel exactly and a masked value is uniform on its own.
//!
//! A member must mask against exactly the roster the others used: one that
//! drops after masking leaves its pairs' masks in the sum, so the round is
//! re-run without it (ADR 0019).

use crate::ProtocolError;
use ed25519_compact::x25519;
use ed25519_compact::{KeyPair, PublicKey};
use sha2::{Digest, Sha256};

/// Fixed-point scale: values are rounded to multiples of 2⁻²⁴ (and must
/// stay within ±2³⁹ summed).
pub const SCALE: f64 = (1u64 << 24) as f64;

/// `values` in fixed point, wrapping.
pub fn encode(values: &[f64]) -> Vec<u64> {
    values
        .iter()
        .map(|v| ((v * SCALE).round() as i64) as u64)
        .collect()
}

/// A (summed) fixed-point vector back to numbers.
pub fn decode(sum: &[u64]) -> Vec<f64> {
    sum.iter().map(|&v| (v as i64) as f64 / SCALE).collect()
}

/// `acc += other`, wrapping.
pub fn add(acc: &mut [u64], other: &[u64]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a = a.wrapping_add(*b);
    }
}

/// The pairwise secret of `me` and `peer`, from their ed25519 node keys.
fn shared(me: &KeyPair, peer: &PublicKey) -> Result<[u8; 32], ProtocolError> {
    let bad = |e: ed25519_compact::Error| ProtocolError::Malformed(format!("x25519: {e}"));
    let mine = x25519::KeyPair::from_ed25519(me).map_err(bad)?;
    let theirs = x25519::PublicKey::from_ed25519(peer).map_err(bad)?;
    let dh = theirs.dh(&mine.sk).map_err(bad)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(dh.as_ref());
    Ok(out)
}

/// `len` pseudorandom words from `secret` and `context`.
fn stream(secret: &[u8; 32], context: &str, len: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(len + 4);
    let mut counter = 0u64;
    while out.len() < len {
        let block = Sha256::new()
            .chain_update(b"greenmesh-mask-v1\n")
            .chain_update(secret)
            .chain_update(context.as_bytes())
            .chain_update(counter.to_le_bytes())
            .finalize();
        for word in block.chunks(8) {
            out.push(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        counter += 1;
    }
    out.truncate(len);
    out
}

/// The mask node `me_id` (key `me`) adds to its `len`-word update in the
/// round named by `context`, against every other member of `roster`
/// (node id, ed25519 public key; `me_id` among them or not).
pub fn mask(
    me: &KeyPair,
    me_id: &str,
    roster: &[(String, PublicKey)],
    context: &str,
    len: usize,
) -> Result<Vec<u64>, ProtocolError> {
    let mut total = vec![0u64; len];
    for (peer_id, peer_key) in roster.iter().filter(|(id, _)| id != me_id) {
        let words = stream(&shared(me, peer_key)?, context, len);
        for (t, w) in total.iter_mut().zip(words) {
            *t = if me_id < peer_id.as_str() {
                t.wrapping_add(w)
            } else {
                t.wrapping_sub(w)
            };
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_pair_from_seed;

    fn roster(n: u8) -> (Vec<KeyPair>, Vec<(String, PublicKey)>) {
        let keys: Vec<KeyPair> = (1..=n).map(|i| key_pair_from_seed([i; 32])).collect();
        let roster = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("node-{i}"), k.pk))
            .collect();
        (keys, roster)
    }

    #[test]
    fn masked_updates_sum_to_the_plain_sum() {
        let (keys, roster) = roster(5);
        let updates: Vec<Vec<f64>> = (0..5)
            .map(|i| vec![i as f64 * 1.5, -0.25, 1e-3 * i as f64, 40.0])
            .collect();
        let mut sum = vec![0u64; 4];
        for (i, (k, u)) in keys.iter().zip(&updates).enumerate() {
            let mut masked = encode(u);
            add(
                &mut masked,
                &mask(k, &roster[i].0, &roster, "task-1/round-3", 4).unwrap(),
            );
            add(&mut sum, &masked);
        }
        let plain: Vec<f64> = (0..4).map(|j| updates.iter().map(|u| u[j]).sum()).collect();
        for (got, want) in decode(&sum).iter().zip(&plain) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn what_the_coordinator_holds_does_not_unmask_one_update() {
        // It holds every masked update, the roster's public keys and the
        // context; without a member's secret key one masked update decodes
        // to noise, and so does any partial sum short of the whole round.
        let (keys, roster) = roster(3);
        let update = vec![0.5; 8];
        let mut masked = encode(&update);
        add(
            &mut masked,
            &mask(&keys[0], "node-0", &roster, "ctx", 8).unwrap(),
        );
        let alone = decode(&masked);
        assert!(
            alone.iter().zip(&update).all(|(a, u)| (a - u).abs() > 1.0),
            "{alone:?}"
        );
        let mut two = masked.clone();
        let mut other = encode(&update);
        add(
            &mut other,
            &mask(&keys[1], "node-1", &roster, "ctx", 8).unwrap(),
        );
        add(&mut two, &other);
        assert!(
            decode(&two).iter().all(|v| (v - 1.0).abs() > 1.0),
            "two of three still masked"
        );
        // Another round's context gives other masks: a mask learnt once
        // says nothing about the next.
        assert_ne!(
            mask(&keys[0], "node-0", &roster, "ctx", 8).unwrap(),
            mask(&keys[0], "node-0", &roster, "ctx2", 8).unwrap()
        );
    }

    #[test]
    fn a_member_dropped_after_masking_leaves_the_sum_unusable() {
        let (keys, roster) = roster(3);
        let mut sum = vec![0u64; 2];
        for (i, k) in keys.iter().enumerate().take(2) {
            let mut masked = encode(&[1.0, 2.0]);
            add(
                &mut masked,
                &mask(k, &roster[i].0, &roster, "ctx", 2).unwrap(),
            );
            add(&mut sum, &masked);
        }
        let got = decode(&sum);
        assert!(
            (got[0] - 2.0).abs() > 1.0,
            "{got:?}: the round must be re-run"
        );
    }
}
