//! A Rescue hash chain: `h ← Rescue(h)` `length` times from a two-element
//! seed. The trace runs one hash per 16 rows (14 rounds, 2 rows copying
//! the digest on), so a chain of `length` hashes is `16 × length` rows.
//!
//! Adapted from winterfell's examples (`examples/src/rescue`), Copyright
//! (c) Facebook, Inc. and its affiliates, MIT licence (see
//! `components/zk/NOTICE`).

use crate::rescue::{self, CYCLE_LENGTH, NUM_ROUNDS, STATE_WIDTH};
use crate::utils::{are_equal, is_zero, not, EvaluationResult};
use core::marker::PhantomData;
use winterfell::{
    crypto::ElementHasher,
    math::{fields::f128::BaseElement, FieldElement, ToElements},
    Air, AirContext, Assertion, EvaluationFrame, ProofOptions, Prover, Trace, TraceInfo,
    TraceTable, TransitionConstraintDegree,
};

/// 1 on the rows that apply a round, 0 on the two copying rows.
const CYCLE_MASK: [BaseElement; CYCLE_LENGTH] = {
    let mut mask = [BaseElement::ONE; CYCLE_LENGTH];
    mask[CYCLE_LENGTH - 2] = BaseElement::ZERO;
    mask[CYCLE_LENGTH - 1] = BaseElement::ZERO;
    mask
};

/// The chain's digest after `length` hashes of `seed`.
pub fn evaluate(seed: [BaseElement; 2], length: usize) -> [BaseElement; 2] {
    let mut values = seed;
    let mut result = [BaseElement::ZERO; 2];
    for _ in 0..length {
        rescue::hash(values, &mut result);
        values.copy_from_slice(&result);
    }
    values
}

/// What the proof is about: the seed and the claimed digest.
#[derive(Clone)]
pub struct Inputs {
    pub seed: [BaseElement; 2],
    pub result: [BaseElement; 2],
}

impl ToElements<BaseElement> for Inputs {
    fn to_elements(&self) -> Vec<BaseElement> {
        let mut v = self.seed.to_vec();
        v.extend_from_slice(&self.result);
        v
    }
}

/// The hash chain's algebraic intermediate representation.
pub struct ChainAir {
    context: AirContext<BaseElement>,
    seed: [BaseElement; 2],
    result: [BaseElement; 2],
}

impl Air for ChainAir {
    type BaseField = BaseElement;
    type PublicInputs = Inputs;

    fn new(trace_info: TraceInfo, inputs: Inputs, options: ProofOptions) -> Self {
        let degrees = vec![TransitionConstraintDegree::with_cycles(3, vec![CYCLE_LENGTH]); 4];
        Self {
            context: AirContext::new(trace_info, degrees, 6, options),
            seed: inputs.seed,
            result: inputs.result,
        }
    }

    fn context(&self) -> &AirContext<Self::BaseField> {
        &self.context
    }

    fn evaluate_transition<E: FieldElement + From<Self::BaseField>>(
        &self,
        frame: &EvaluationFrame<E>,
        periodic_values: &[E],
        result: &mut [E],
    ) {
        let current = frame.current();
        let next = frame.next();
        let hash_flag = periodic_values[0];
        let ark = &periodic_values[1..];
        // A round where the flag is 1; a copy of the digest where it is 0.
        rescue::enforce_round(result, current, next, ark, hash_flag);
        let copy_flag = not(hash_flag);
        result.agg_constraint(0, copy_flag, are_equal(current[0], next[0]));
        result.agg_constraint(1, copy_flag, are_equal(current[1], next[1]));
        result.agg_constraint(2, copy_flag, is_zero(next[2]));
        result.agg_constraint(3, copy_flag, is_zero(next[3]));
    }

    fn get_assertions(&self) -> Vec<Assertion<Self::BaseField>> {
        let last_step = self.trace_length() - 1;
        // The capacity columns start at zero too: without it a prover could
        // start the first hash from another state and prove a digest that
        // is not the chain of the seed.
        vec![
            Assertion::single(0, 0, self.seed[0]),
            Assertion::single(1, 0, self.seed[1]),
            Assertion::single(2, 0, BaseElement::ZERO),
            Assertion::single(3, 0, BaseElement::ZERO),
            Assertion::single(0, last_step, self.result[0]),
            Assertion::single(1, last_step, self.result[1]),
        ]
    }

    fn get_periodic_column_values(&self) -> Vec<Vec<Self::BaseField>> {
        let mut columns = vec![CYCLE_MASK.to_vec()];
        columns.append(&mut rescue::get_round_constants());
        columns
    }
}

/// The hash chain's prover.
pub struct ChainProver<H: ElementHasher> {
    options: ProofOptions,
    _hasher: PhantomData<H>,
}

impl<H: ElementHasher> ChainProver<H> {
    pub fn new(options: ProofOptions) -> Self {
        Self {
            options,
            _hasher: PhantomData,
        }
    }

    /// The trace: four columns, 16 rows per hash.
    pub fn build_trace(seed: [BaseElement; 2], length: usize) -> TraceTable<BaseElement> {
        let mut trace = TraceTable::new(STATE_WIDTH, length * CYCLE_LENGTH);
        trace.fill(
            |state| {
                state[0] = seed[0];
                state[1] = seed[1];
                state[2] = BaseElement::ZERO;
                state[3] = BaseElement::ZERO;
            },
            |step, state| {
                if (step % CYCLE_LENGTH) < NUM_ROUNDS {
                    rescue::apply_round(state, step);
                } else {
                    state[2] = BaseElement::ZERO;
                    state[3] = BaseElement::ZERO;
                }
            },
        );
        trace
    }
}

impl<H: ElementHasher> Prover for ChainProver<H>
where
    H: ElementHasher<BaseField = BaseElement> + Sync,
{
    type BaseField = BaseElement;
    type Air = ChainAir;
    type Trace = TraceTable<BaseElement>;
    crate::default_prover_types!();

    fn get_pub_inputs(&self, trace: &Self::Trace) -> Inputs {
        let last = trace.length() - 1;
        Inputs {
            seed: [trace.get(0, 0), trace.get(1, 0)],
            result: [trace.get(0, last), trace.get(1, last)],
        }
    }

    fn options(&self) -> &ProofOptions {
        &self.options
    }

    crate::default_prover_parts!();
}
