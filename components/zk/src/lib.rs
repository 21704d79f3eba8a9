//! Verifiable computation for greenmesh's `zk_proof` tasks (issue 24,
//! ADR 0022): a node proves it computed a statement the requester chose,
//! and anyone checks the proof in milliseconds without recomputing.
//!
//! The proofs are transparent STARKs (winterfell 0.13, no trusted setup)
//! over the 128-bit prime field `p = 2¹²⁸ − 45·2⁴⁰ + 1`, committed with
//! BLAKE3-256. Two statements:
//!
//! - [`Statement::Vdf`]: `steps − 1` rounds of `x ← (x − 42)^(1/3)` from a
//!   seed (a verifiable delay function: sequential to compute, quick to
//!   check);
//! - [`Statement::HashChain`]: `length` Rescue hashes, each of the previous
//!   digest, from a two-element seed.
//!
//! **What is proven, and what is not.** A proof shows that the claimed
//! result is what the statement computes from its public seed. Everything
//! is public: this is succinct verifiable computation, not zero knowledge
//! (winterfell's proofs are not hiding). Proving knowledge of a secret
//! preimage would need a hiding proof system (e.g. halo2 or a STARK with
//! zero-knowledge blinding); greenmesh does not claim it.
//!
//! Verification binds the proof to the statement: the seed and result are
//! the AIR's public inputs, and the proof's trace must be exactly as long
//! as the statement's steps (else a proof of a shorter computation would
//! pass). Proofs below a security floor (conjectured bits) are refused.
//!
//! # Layout
//!
//! - [`vdf`], [`hash_chain`]: each statement's AIR and prover;
//! - `rescue`, `utils`: the Rescue permutation and constraint helpers.
//!
//! The AIRs, provers and Rescue are adapted from winterfell's examples (MIT
//! licence, `components/zk/NOTICE`).

/// The associated types every prover here shares: winterfell's default
/// trace extension, constraint evaluator and commitment, Merkle-tree
/// vector commitments and its default random coin, over the hasher `H`.
#[macro_export]
#[doc(hidden)]
macro_rules! default_prover_types {
    () => {
        type HashFn = H;
        type VC = winterfell::crypto::MerkleTree<H>;
        type RandomCoin = winterfell::crypto::DefaultRandomCoin<Self::HashFn>;
        type TraceLde<E: FieldElement<BaseField = Self::BaseField>> =
            winterfell::DefaultTraceLde<E, Self::HashFn, Self::VC>;
        type ConstraintCommitment<E: FieldElement<BaseField = Self::BaseField>> =
            winterfell::DefaultConstraintCommitment<E, H, Self::VC>;
        type ConstraintEvaluator<'a, E: FieldElement<BaseField = Self::BaseField>> =
            winterfell::DefaultConstraintEvaluator<'a, Self::Air, E>;
    };
}

/// The methods that build those defaults.
#[macro_export]
#[doc(hidden)]
macro_rules! default_prover_parts {
    () => {
        fn new_trace_lde<E: FieldElement<BaseField = Self::BaseField>>(
            &self,
            trace_info: &TraceInfo,
            main_trace: &winterfell::matrix::ColMatrix<Self::BaseField>,
            domain: &winterfell::StarkDomain<Self::BaseField>,
            partition_option: winterfell::PartitionOptions,
        ) -> (Self::TraceLde<E>, winterfell::TracePolyTable<E>) {
            winterfell::DefaultTraceLde::new(trace_info, main_trace, domain, partition_option)
        }

        fn new_evaluator<'a, E: FieldElement<BaseField = Self::BaseField>>(
            &self,
            air: &'a Self::Air,
            aux_rand_elements: Option<winterfell::AuxRandElements<E>>,
            composition_coefficients: winterfell::ConstraintCompositionCoefficients<E>,
        ) -> Self::ConstraintEvaluator<'a, E> {
            winterfell::DefaultConstraintEvaluator::new(
                air,
                aux_rand_elements,
                composition_coefficients,
            )
        }

        fn build_constraint_commitment<E: FieldElement<BaseField = Self::BaseField>>(
            &self,
            composition_poly_trace: winterfell::CompositionPolyTrace<E>,
            num_constraint_composition_columns: usize,
            domain: &winterfell::StarkDomain<Self::BaseField>,
            partition_options: winterfell::PartitionOptions,
        ) -> (
            Self::ConstraintCommitment<E>,
            winterfell::CompositionPoly<E>,
        ) {
            winterfell::DefaultConstraintCommitment::new(
                composition_poly_trace,
                num_constraint_composition_columns,
                domain,
                partition_options,
            )
        }
    };
}

pub mod hash_chain;
mod rescue;
mod utils;
pub mod vdf;

use serde::{Deserialize, Serialize};
use winterfell::crypto::hashers::Blake3_256;
use winterfell::crypto::{DefaultRandomCoin, MerkleTree};
use winterfell::math::fields::f128::BaseElement;
use winterfell::math::StarkField;
use winterfell::{
    AcceptableOptions, BatchingMethod, FieldExtension, Proof, ProofOptions, Prover, Trace,
};

/// The commitment hash.
type Hasher = Blake3_256<BaseElement>;

/// Most rows a proof's trace may have (a million: minutes to prove in a
/// sandbox, and the verifier's work grows only with its logarithm).
pub const MAX_TRACE_ROWS: u64 = 1 << 20;
/// Fewest VDF steps (winterfell's smallest trace is 8 rows).
pub const MIN_STEPS: u64 = 8;
/// The security floor when the caller sets none, conjectured bits.
pub const DEFAULT_MIN_SECURITY_BITS: u32 = 96;

/// A computation a requester asks to be proven, with its public inputs.
/// Field elements are decimal strings (they exceed JSON's exact integers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "statement", rename_all = "snake_case", deny_unknown_fields)]
pub enum Statement {
    /// `steps − 1` cube-root rounds from `seed`; `steps` a power of two.
    Vdf { seed: String, steps: u64 },
    /// `length` Rescue hashes from `seed`; `length` a power of two.
    HashChain { seed: [String; 2], length: u64 },
}

/// Why a statement, proof or claim was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The statement itself is unusable (says which field and why).
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The proof bytes do not decode.
    Malformed(String),
    /// The proof's security is below the floor.
    Insecure { bits: u32, floor: u32 },
    /// The proof is of a different computation (trace length or width).
    WrongShape(String),
    /// The proof does not verify for this statement and result.
    Rejected(String),
    /// The prover failed.
    Prover(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid { field, message } => write!(f, "{field}: {message}"),
            Error::Malformed(m) => write!(f, "the proof does not decode: {m}"),
            Error::Insecure { bits, floor } => write!(
                f,
                "the proof has {bits} bits of conjectured security; at least {floor} are required"
            ),
            Error::WrongShape(m) => write!(f, "the proof is of another computation: {m}"),
            Error::Rejected(m) => write!(f, "the proof does not verify: {m}"),
            Error::Prover(m) => write!(f, "proving failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        message: message.into(),
    }
}

/// A field element from its decimal text (below the modulus).
pub fn element(field: &'static str, text: &str) -> Result<BaseElement, Error> {
    let v: u128 = text.trim().parse().map_err(|_| {
        invalid(
            field,
            format!("{text:?} is not a decimal integer below 2^128"),
        )
    })?;
    if v >= BaseElement::MODULUS {
        return Err(invalid(
            field,
            format!(
                "{v} is not below the field modulus {}",
                BaseElement::MODULUS
            ),
        ));
    }
    Ok(BaseElement::new(v))
}

/// A field element's decimal text.
pub fn text(e: BaseElement) -> String {
    e.as_int().to_string()
}

/// A statement checked and in field elements.
#[derive(Debug, Clone, Copy)]
enum Parsed {
    Vdf {
        seed: BaseElement,
        steps: usize,
    },
    HashChain {
        seed: [BaseElement; 2],
        length: usize,
    },
}

impl Statement {
    fn parse(&self) -> Result<Parsed, Error> {
        match self {
            Statement::Vdf { seed, steps } => {
                if !steps.is_power_of_two() || *steps < MIN_STEPS || *steps > MAX_TRACE_ROWS {
                    return Err(invalid(
                        "steps",
                        format!("{steps}: a power of two from {MIN_STEPS} to {MAX_TRACE_ROWS}"),
                    ));
                }
                Ok(Parsed::Vdf {
                    seed: element("seed", seed)?,
                    steps: *steps as usize,
                })
            }
            Statement::HashChain { seed, length } => {
                let max = MAX_TRACE_ROWS / rescue::CYCLE_LENGTH as u64;
                if !length.is_power_of_two() || *length > max {
                    return Err(invalid(
                        "length",
                        format!("{length}: a power of two from 1 to {max}"),
                    ));
                }
                Ok(Parsed::HashChain {
                    seed: [element("seed", &seed[0])?, element("seed", &seed[1])?],
                    length: *length as usize,
                })
            }
        }
    }

    /// Checks the statement is one this crate can prove.
    pub fn check(&self) -> Result<(), Error> {
        self.parse().map(|_| ())
    }

    /// Rows in the statement's trace (what proving time grows with).
    pub fn trace_rows(&self) -> Result<u64, Error> {
        Ok(match self.parse()? {
            Parsed::Vdf { steps, .. } => steps as u64,
            Parsed::HashChain { length, .. } => (length * rescue::CYCLE_LENGTH) as u64,
        })
    }

    /// Computes the statement's result directly (no proof): what a
    /// verifier without a proof would have to redo.
    pub fn evaluate(&self) -> Result<Vec<String>, Error> {
        Ok(match self.parse()? {
            Parsed::Vdf { seed, steps } => vec![text(vdf::evaluate(seed, steps))],
            Parsed::HashChain { seed, length } => {
                hash_chain::evaluate(seed, length).map(text).to_vec()
            }
        })
    }
}

/// The proof options greenmesh proves with: 42 queries, blowup 8, 16 bits
/// of grinding, no field extension (the 128-bit field), FRI folding 8.
pub fn proof_options() -> ProofOptions {
    proof_options_with(42, 8, 16)
}

/// Proof options with `queries`, `blowup` and `grinding` bits (the tests
/// make weak proofs with these).
pub fn proof_options_with(queries: usize, blowup: usize, grinding: u32) -> ProofOptions {
    ProofOptions::new(
        queries,
        blowup,
        grinding,
        FieldExtension::None,
        8,
        31,
        BatchingMethod::Linear,
        BatchingMethod::Linear,
    )
}

/// A proven result.
#[derive(Debug, Clone)]
pub struct Proven {
    /// The result, as decimal field elements (one for the VDF, two for a
    /// hash chain's digest).
    pub result: Vec<String>,
    pub proof: Vec<u8>,
    /// Conjectured security of the proof, bits.
    pub security_bits: u32,
}

/// Computes `statement` and proves it with `options`.
pub fn prove(statement: &Statement, options: ProofOptions) -> Result<Proven, Error> {
    let (result, proof) = match statement.parse()? {
        Parsed::Vdf { seed, steps } => {
            let trace = vdf::VdfProver::<Hasher>::build_trace(seed, steps);
            let result = trace.get(0, trace.length() - 1);
            let proof = vdf::VdfProver::<Hasher>::new(options)
                .prove(trace)
                .map_err(|e| Error::Prover(e.to_string()))?;
            (vec![text(result)], proof)
        }
        Parsed::HashChain { seed, length } => {
            let trace = hash_chain::ChainProver::<Hasher>::build_trace(seed, length);
            let last = trace.length() - 1;
            let result = [trace.get(0, last), trace.get(1, last)];
            let proof = hash_chain::ChainProver::<Hasher>::new(options)
                .prove(trace)
                .map_err(|e| Error::Prover(e.to_string()))?;
            (result.map(text).to_vec(), proof)
        }
    };
    Ok(Proven {
        result,
        security_bits: proof.conjectured_security::<Hasher>().bits(),
        proof: proof.to_bytes(),
    })
}

/// Decodes a proof whose trace must be `rows` rows × `width` columns.
///
/// winterfell's decoder builds the trace info and the options with
/// constructors that assert on values out of range (a blowup that is not
/// a power of two, zero queries, a trace of 2^70 rows, …). So the proof's
/// header is read and checked here first, byte by byte in winterfell's
/// layout, and must be the statement's shape with options in range: a
/// hostile proof is an error, never a panic.
fn decode(bytes: &[u8], rows: u64, width: usize) -> Result<Proof, Error> {
    let malformed = |m: String| Error::Malformed(m);
    let mut at = 0usize;
    let mut byte = |what: &str| -> Result<u8, Error> {
        let b = *bytes
            .get(at)
            .ok_or_else(|| malformed(format!("ends before its {what}")))?;
        at += 1;
        Ok(b)
    };
    // The trace info: main width, auxiliary width, auxiliary randomness,
    // log2 of the length, then a u16 of metadata bytes.
    let (main, aux, rands, log_len) = (
        byte("trace width")?,
        byte("auxiliary width")?,
        byte("auxiliary randomness")?,
        byte("trace length")?,
    );
    let meta = u16::from_le_bytes([byte("metadata")?, byte("metadata")?]);
    if usize::from(main) != width
        || aux != 0
        || rands != 0
        || meta != 0
        || u64::from(log_len) > 62
        || 1u64 << log_len != rows
    {
        return Err(Error::WrongShape(format!(
            "its trace is 2^{log_len} rows × {main} columns (+{aux}); the statement's is {rows} × {width}"
        )));
    }
    // The field modulus.
    let modulus_len = usize::from(byte("field modulus")?);
    let modulus = BaseElement::MODULUS.to_le_bytes();
    if bytes.get(at..at + modulus_len) != Some(&modulus[..]) {
        return Err(malformed("is over another field".to_string()));
    }
    at += modulus_len;
    // The options: queries, blowup, grinding, field extension, FRI folding,
    // FRI remainder degree, two batching methods, partitions, hash rate.
    let mut option = |what: &str| -> Result<u8, Error> {
        let b = *bytes
            .get(at)
            .ok_or_else(|| malformed(format!("ends before its {what}")))?;
        at += 1;
        Ok(b)
    };
    let queries = option("query count")?;
    let blowup = option("blowup factor")?;
    let grinding = option("grinding factor")?;
    let extension = option("field extension")?;
    let folding = option("FRI folding factor")?;
    let remainder = option("FRI remainder degree")?;
    let batching = [option("batching")?, option("batching")?];
    let partitions = option("partitions")?;
    let hash_rate = option("hash rate")?;
    let in_range = queries > 0
        && blowup.is_power_of_two()
        && (2..=128).contains(&blowup)
        && grinding <= 32
        && (1..=3).contains(&extension)
        && matches!(folding, 2 | 4 | 8 | 16)
        && (u16::from(remainder) + 1).is_power_of_two()
        && batching.iter().all(|b| *b <= 2)
        && (1..=16).contains(&partitions)
        && hash_rate >= 1;
    if !in_range {
        return Err(malformed("has proof options out of range".to_string()));
    }
    Proof::from_bytes(bytes).map_err(|e| Error::Malformed(e.to_string()))
}

/// What a verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Conjectured security of the proof, bits.
    pub security_bits: u32,
    pub trace_rows: u64,
}

/// Verifies that `proof` shows `statement` computes `result`, at
/// `min_security_bits` (conjectured) or more.
pub fn verify(
    statement: &Statement,
    result: &[String],
    proof: &[u8],
    min_security_bits: u32,
) -> Result<Verified, Error> {
    let parsed = statement.parse()?;
    let rows = statement.trace_rows()?;
    let width = match parsed {
        Parsed::Vdf { .. } => 1,
        Parsed::HashChain { .. } => rescue::STATE_WIDTH,
    };
    let proof = decode(proof, rows, width)?;
    let bits = proof.conjectured_security::<Hasher>().bits();
    if bits < min_security_bits {
        return Err(Error::Insecure {
            bits,
            floor: min_security_bits,
        });
    }
    let info = proof.trace_info();
    if info.length() as u64 != rows || info.main_trace_width() != width || info.is_multi_segment() {
        return Err(Error::WrongShape(format!(
            "its trace is {} rows × {} columns; the statement's is {rows} × {width}",
            info.length(),
            info.main_trace_width()
        )));
    }
    let acceptable = AcceptableOptions::MinConjecturedSecurity(min_security_bits);
    let rejected = |e: winterfell::VerifierError| Error::Rejected(e.to_string());
    let wanted = |n: usize| {
        if result.len() == n {
            Ok(())
        } else {
            Err(invalid(
                "result",
                format!("{} elements; the statement's result has {n}", result.len()),
            ))
        }
    };
    match parsed {
        Parsed::Vdf { seed, .. } => {
            wanted(1)?;
            let inputs = vdf::Inputs {
                seed,
                result: element("result", &result[0])?,
            };
            winterfell::verify::<vdf::VdfAir, Hasher, DefaultRandomCoin<Hasher>, MerkleTree<Hasher>>(
                proof,
                inputs,
                &acceptable,
            )
            .map_err(rejected)?;
        }
        Parsed::HashChain { seed, .. } => {
            wanted(2)?;
            let inputs = hash_chain::Inputs {
                seed,
                result: [
                    element("result", &result[0])?,
                    element("result", &result[1])?,
                ],
            };
            winterfell::verify::<
                hash_chain::ChainAir,
                Hasher,
                DefaultRandomCoin<Hasher>,
                MerkleTree<Hasher>,
            >(proof, inputs, &acceptable)
            .map_err(rejected)?;
        }
    }
    Ok(Verified {
        security_bits: bits,
        trace_rows: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vdf(seed: &str, steps: u64) -> Statement {
        Statement::Vdf {
            seed: seed.into(),
            steps,
        }
    }

    #[test]
    fn a_vdf_proof_verifies_for_its_statement_and_no_other() {
        let s = vdf("123", 64);
        let p = prove(&s, proof_options()).unwrap();
        assert_eq!(p.result, s.evaluate().unwrap());
        assert!(
            p.security_bits >= DEFAULT_MIN_SECURITY_BITS,
            "{}",
            p.security_bits
        );
        let ok = verify(&s, &p.result, &p.proof, 96).unwrap();
        assert_eq!(ok.trace_rows, 64);
        // Another seed, another result, a truncated proof: refused.
        assert!(matches!(
            verify(&vdf("124", 64), &p.result, &p.proof, 96),
            Err(Error::Rejected(_))
        ));
        let wrong = vec![(p.result[0].parse::<u128>().unwrap() + 1).to_string()];
        assert!(matches!(
            verify(&s, &wrong, &p.proof, 96),
            Err(Error::Rejected(_))
        ));
        assert!(matches!(
            verify(&s, &p.result, &p.proof[..p.proof.len() / 2], 96),
            Err(Error::Malformed(_))
        ));
        // A proof of a shorter run is of another computation.
        let short = prove(&vdf("123", 32), proof_options()).unwrap();
        assert!(matches!(
            verify(&s, &short.result, &short.proof, 96),
            Err(Error::WrongShape(_))
        ));
    }

    #[test]
    fn a_hash_chain_proof_verifies_and_weak_proofs_are_refused() {
        let s = Statement::HashChain {
            seed: ["42".into(), "43".into()],
            length: 4,
        };
        let p = prove(&s, proof_options()).unwrap();
        assert_eq!(p.result, s.evaluate().unwrap());
        verify(&s, &p.result, &p.proof, 96).unwrap();
        let weak = prove(&s, proof_options_with(4, 8, 0)).unwrap();
        assert!(weak.security_bits < 96, "{}", weak.security_bits);
        assert!(matches!(
            verify(&s, &weak.result, &weak.proof, 96),
            Err(Error::Insecure { .. })
        ));
    }

    #[test]
    fn a_chain_started_from_another_capacity_state_is_refused() {
        use winterfell::math::FieldElement;
        use winterfell::{Prover, Trace};
        let s = Statement::HashChain {
            seed: ["42".into(), "43".into()],
            length: 4,
        };
        let seed = [BaseElement::new(42), BaseElement::new(43)];
        // A forger's trace: the first hash starts with capacity (1, 0).
        let mut trace = winterfell::TraceTable::new(rescue::STATE_WIDTH, 4 * rescue::CYCLE_LENGTH);
        trace.fill(
            |state| {
                state[0] = seed[0];
                state[1] = seed[1];
                state[2] = BaseElement::ONE;
                state[3] = BaseElement::ZERO;
            },
            |step, state| {
                if (step % rescue::CYCLE_LENGTH) < rescue::NUM_ROUNDS {
                    rescue::apply_round(state, step);
                } else {
                    state[2] = BaseElement::ZERO;
                    state[3] = BaseElement::ZERO;
                }
            },
        );
        let last = trace.length() - 1;
        let forged = [trace.get(0, last), trace.get(1, last)].map(text).to_vec();
        assert_ne!(forged, s.evaluate().unwrap());
        let prover = hash_chain::ChainProver::<Hasher>::new(proof_options());
        // The prover's own check may refuse the trace; if it proves, the
        // verifier must refuse the proof.
        if let Ok(proof) = std::panic::catch_unwind(|| prover.prove(trace)) {
            if let Ok(proof) = proof {
                assert!(verify(&s, &forged, &proof.to_bytes(), 96).is_err());
            }
        }
    }

    #[test]
    fn proofs_with_out_of_range_options_are_malformed_not_a_panic() {
        let s = vdf("123", 64);
        let p = prove(&s, proof_options()).unwrap();
        // Header: 4 + 2 bytes of trace info, 1 + 16 of modulus, then the
        // options from byte 23: queries, blowup, grinding, extension,
        // folding, remainder, batching ×2, partitions, hash rate.
        assert_eq!(
            p.proof[23], 42,
            "the query count sits where the header says"
        );
        for (at, value) in [
            (23usize, 0u8),
            (24, 3),
            (24, 0),
            (25, 200),
            (26, 9),
            (27, 3),
            (28, 5),
            (29, 9),
            (31, 0),
        ] {
            let mut bytes = p.proof.clone();
            bytes[at] = value;
            assert!(
                matches!(verify(&s, &p.result, &bytes, 96), Err(Error::Malformed(_))),
                "byte {at} = {value}"
            );
        }
        // A trace length of 2^70 or a wider trace is another shape.
        for (at, value) in [(3usize, 70u8), (0, 2)] {
            let mut bytes = p.proof.clone();
            bytes[at] = value;
            assert!(
                matches!(verify(&s, &p.result, &bytes, 96), Err(Error::WrongShape(_))),
                "byte {at} = {value}"
            );
        }
        assert!(matches!(
            verify(&s, &p.result, &[], 96),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn bad_statements_name_the_field() {
        for (s, field) in [
            (vdf("1", 100), "steps"),
            (vdf("1", 4), "steps"),
            (vdf("x", 64), "seed"),
            (vdf(&u128::MAX.to_string(), 64), "seed"),
        ] {
            match s.check() {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{s:?}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }
}
