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
use serde::{Deserialize, Serialize};
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

/// The members of one attempt at one round, as the broker fixed them and
/// signed: each member masks against exactly this list. A member lost
/// after the roster is fixed spoils the sum, so the broker re-runs the
/// round as a new attempt with a new roster (ADR 0019).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The federated task (the group).
    pub task_id: String,
    pub round: u32,
    pub attempt: u32,
    pub members: Vec<RosterMember>,
    /// Broker signature (hex) over [`Roster::signing_bytes`].
    pub signature: String,
}

/// One member of a [`Roster`]: its node, the node's registered key, and
/// the lease it trains under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterMember {
    pub node_id: String,
    pub public_key: String,
    pub lease_id: String,
}

impl Roster {
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut text = format!(
            "greenmesh-roster-v1\n{}\n{}\n{}",
            self.task_id, self.round, self.attempt
        );
        for m in &self.members {
            text.push_str(&format!(
                "\n{}\t{}\t{}",
                m.node_id, m.public_key, m.lease_id
            ));
        }
        text.into_bytes()
    }

    /// Signs in place with the broker's key.
    pub fn sign(&mut self, key: &ed25519_compact::SecretKey) {
        self.signature = crate::sign(key, &self.signing_bytes());
    }

    /// Checks the broker's signature.
    pub fn verify(&self, broker: &PublicKey) -> Result<(), ProtocolError> {
        crate::verify(broker, &self.signing_bytes(), &self.signature)
    }

    /// SHA-256 (hex) of the signed fields: the masks' context, so masks
    /// of one roster never serve another.
    pub fn sha256(&self) -> String {
        crate::sha256_hex(&self.signing_bytes())
    }

    /// The members' node ids and keys, as [`mask`] takes them.
    pub fn keys(&self) -> Result<Vec<(String, PublicKey)>, ProtocolError> {
        self.members
            .iter()
            .map(|m| Ok((m.node_id.clone(), crate::public_key(&m.public_key)?)))
            .collect()
    }
}

/// What one member adds to a round's sum, before masking: its parameters
/// weighted by its rows, so the sum over members is FedAvg's numerator.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub params: Vec<f64>,
    pub samples: f64,
    pub loss: f64,
    pub correct: f64,
    pub total: f64,
}

/// Words after the parameters: rows, rows × loss, hold-out correct and total.
const TAIL: usize = 4;

impl Contribution {
    /// The fixed-point vector: `samples·params`, `samples`,
    /// `samples·loss` (0 if not finite), hold-out correct and total.
    pub fn words(&self) -> Vec<u64> {
        let n = self.samples;
        let loss = if self.loss.is_finite() {
            self.loss
        } else {
            0.0
        };
        let mut v: Vec<f64> = self.params.iter().map(|p| p * n).collect();
        v.extend([n, n * loss, self.correct, self.total]);
        encode(&v)
    }

    /// The round's totals from the summed words of every member: the
    /// row-weighted mean parameters (FedAvg), total rows, row-weighted
    /// loss, and pooled hold-out counts. `None` if the sum is not one of
    /// plausible totals (a member masked against another roster, or sent
    /// noise): rows and counts must be whole and non-negative.
    pub fn of_sum(sum: &[u64]) -> Option<Contribution> {
        if sum.len() <= TAIL {
            return None;
        }
        let v = decode(sum);
        let (params, tail) = v.split_at(v.len() - TAIL);
        let whole = |x: f64| x >= 0.0 && (x - x.round()).abs() < 1e-3 && x < 1e12;
        let (n, nloss, correct, total) = (tail[0], tail[1], tail[2], tail[3]);
        if !(whole(n) && n >= 1.0 && whole(correct) && whole(total) && correct <= total) {
            return None;
        }
        Some(Contribution {
            params: params.iter().map(|p| p / n).collect(),
            samples: n.round(),
            loss: nloss / n,
            correct: correct.round(),
            total: total.round(),
        })
    }
}

/// A member's masked contribution, as it reports it: the roster it masked
/// against, and the words (little-endian, hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Masked {
    pub roster_sha256: String,
    pub words: String,
}

impl Masked {
    /// `contribution` masked by node `me_id` (key `me`) against `roster`.
    pub fn of(
        contribution: &Contribution,
        me: &KeyPair,
        me_id: &str,
        roster: &Roster,
    ) -> Result<Masked, ProtocolError> {
        let mut words = contribution.words();
        let context = roster.sha256();
        let masks = mask(me, me_id, &roster.keys()?, &context, words.len())?;
        add(&mut words, &masks);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Ok(Masked {
            roster_sha256: context,
            words: crate::to_hex(&bytes),
        })
    }

    /// The masked words.
    pub fn words(&self) -> Result<Vec<u64>, ProtocolError> {
        let bytes = hex::decode(&self.words)
            .map_err(|e| ProtocolError::Malformed(format!("masked words: {e}")))?;
        if bytes.len() % 8 != 0 {
            return Err(ProtocolError::Malformed(
                "masked words: not whole 64-bit words".into(),
            ));
        }
        Ok(bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// The sum of `masked` contributions, all against one roster of that many
/// members and of one length; `None` otherwise.
pub fn sum(masked: &[Masked]) -> Option<Vec<u64>> {
    let first = masked.first()?;
    let mut total = first.words().ok()?;
    for m in &masked[1..] {
        let words = m.words().ok()?;
        if m.roster_sha256 != first.roster_sha256 || words.len() != total.len() {
            return None;
        }
        add(&mut total, &words);
    }
    Some(total)
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

    #[test]
    fn contributions_masked_against_a_signed_roster_sum_to_fedavg() {
        let broker = key_pair_from_seed([9; 32]);
        let (keys, ids) = roster(3);
        let mut r = Roster {
            task_id: "t".into(),
            round: 2,
            attempt: 0,
            members: ids
                .iter()
                .map(|(id, pk)| RosterMember {
                    node_id: id.clone(),
                    public_key: crate::public_key_hex(pk),
                    lease_id: format!("lease-{id}"),
                })
                .collect(),
            signature: String::new(),
        };
        r.sign(&broker.sk);
        r.verify(&broker.pk).unwrap();
        let parts = [
            (vec![1.0, -2.0], 10.0, 0.5, 3.0, 4.0),
            (vec![3.0, 0.0], 30.0, 0.25, 5.0, 6.0),
            (vec![-1.0, 4.0], 60.0, 1.0, 1.0, 2.0),
        ];
        let masked: Vec<Masked> = parts
            .iter()
            .zip(&keys)
            .zip(&ids)
            .map(|(((params, samples, loss, correct, total), k), (id, _))| {
                let c = Contribution {
                    params: params.clone(),
                    samples: *samples,
                    loss: *loss,
                    correct: *correct,
                    total: *total,
                };
                Masked::of(&c, k, id, &r).unwrap()
            })
            .collect();
        let got = Contribution::of_sum(&sum(&masked).unwrap()).unwrap();
        let want = [(10.0 + 90.0 - 60.0) / 100.0, (-20.0 + 240.0) / 100.0];
        assert!(
            got.params
                .iter()
                .zip(want)
                .all(|(g, w)| (g - w).abs() < 1e-6),
            "{got:?}"
        );
        assert_eq!((got.samples, got.correct, got.total), (100.0, 9.0, 12.0));
        assert!((got.loss - (5.0 + 7.5 + 60.0) / 100.0).abs() < 1e-6);
        // Two of three: the masks do not cancel, and the totals say so.
        assert_eq!(Contribution::of_sum(&sum(&masked[..2]).unwrap()), None);
        // One alone does not decode either.
        assert_eq!(Contribution::of_sum(&masked[0].words().unwrap()), None);
        // A roster changed after signing fails its signature.
        let mut forged = r.clone();
        forged.members.pop();
        assert!(forged.verify(&broker.pk).is_err());
    }
}
