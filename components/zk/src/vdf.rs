//! A verifiable delay function: `x ← (x − 42)^(1/3)` in the 128-bit field,
//! `steps − 1` times from a seed. Each step is a cube root (about 128
//! squarings), so the result takes sequential time to compute; checking a
//! step forward is one cube, and the proof lets anyone check all of them
//! in milliseconds.
//!
//! Adapted from winterfell's examples (`examples/src/vdf/regular`),
//! Copyright (c) Facebook, Inc. and its affiliates, MIT licence (see
//! `components/zk/NOTICE`).

use core::marker::PhantomData;
use winterfell::{
    crypto::ElementHasher,
    math::{fields::f128::BaseElement, FieldElement, ToElements},
    Air, AirContext, Assertion, EvaluationFrame, ProofOptions, Prover, Trace, TraceInfo,
    TraceTable, TransitionConstraintDegree,
};

const ALPHA: u64 = 3;
/// The inverse of 3 modulo p − 1 (the cube root's exponent).
const INV_ALPHA: u128 = 226854911280625642308916371969163307691;
const FORTY_TWO: BaseElement = BaseElement::new(42);

/// The VDF's result after `steps` rows (the seed is row 0).
pub fn evaluate(seed: BaseElement, steps: usize) -> BaseElement {
    let mut state = seed;
    for _ in 0..steps.saturating_sub(1) {
        state = (state - FORTY_TWO).exp(INV_ALPHA);
    }
    state
}

/// What the proof is about: the seed and the claimed result.
#[derive(Clone)]
pub struct Inputs {
    pub seed: BaseElement,
    pub result: BaseElement,
}

impl ToElements<BaseElement> for Inputs {
    fn to_elements(&self) -> Vec<BaseElement> {
        vec![self.seed, self.result]
    }
}

/// The VDF's algebraic intermediate representation.
pub struct VdfAir {
    context: AirContext<BaseElement>,
    seed: BaseElement,
    result: BaseElement,
}

impl Air for VdfAir {
    type BaseField = BaseElement;
    type PublicInputs = Inputs;

    fn new(trace_info: TraceInfo, inputs: Inputs, options: ProofOptions) -> Self {
        let degrees = vec![TransitionConstraintDegree::new(3)];
        Self {
            context: AirContext::new(trace_info, degrees, 2, options),
            seed: inputs.seed,
            result: inputs.result,
        }
    }

    fn evaluate_transition<E: FieldElement<BaseField = Self::BaseField>>(
        &self,
        frame: &EvaluationFrame<E>,
        _periodic_values: &[E],
        result: &mut [E],
    ) {
        let current = frame.current()[0];
        let next = frame.next()[0];
        result[0] = current - (next.exp(ALPHA.into()) + FORTY_TWO.into());
    }

    fn get_assertions(&self) -> Vec<Assertion<Self::BaseField>> {
        let last_step = self.trace_length() - 1;
        vec![
            Assertion::single(0, 0, self.seed),
            Assertion::single(0, last_step, self.result),
        ]
    }

    fn context(&self) -> &AirContext<Self::BaseField> {
        &self.context
    }
}

/// The VDF's prover.
pub struct VdfProver<H: ElementHasher> {
    options: ProofOptions,
    _hasher: PhantomData<H>,
}

impl<H: ElementHasher> VdfProver<H> {
    pub fn new(options: ProofOptions) -> Self {
        Self {
            options,
            _hasher: PhantomData,
        }
    }

    /// The trace: one column, `steps` rows.
    pub fn build_trace(seed: BaseElement, steps: usize) -> TraceTable<BaseElement> {
        let mut trace = Vec::with_capacity(steps);
        let mut state = seed;
        trace.push(state);
        for _ in 0..(steps - 1) {
            state = (state - FORTY_TWO).exp(INV_ALPHA);
            trace.push(state);
        }
        TraceTable::init(vec![trace])
    }
}

impl<H: ElementHasher> Prover for VdfProver<H>
where
    H: ElementHasher<BaseField = BaseElement> + Sync,
{
    type BaseField = BaseElement;
    type Air = VdfAir;
    type Trace = TraceTable<BaseElement>;
    crate::default_prover_types!();

    fn get_pub_inputs(&self, trace: &Self::Trace) -> Inputs {
        Inputs {
            seed: trace.get(0, 0),
            result: trace.get(0, trace.length() - 1),
        }
    }

    fn options(&self) -> &ProofOptions {
        &self.options
    }

    crate::default_prover_parts!();
}
