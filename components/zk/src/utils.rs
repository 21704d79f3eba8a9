//! Constraint helpers shared by the AIRs.
//!
//! Adapted from winterfell's examples (`examples/src/utils/mod.rs`),
//! Copyright (c) Facebook, Inc. and its affiliates, MIT licence (see
//! `components/zk/NOTICE`).

use winterfell::math::FieldElement;

/// Zero when `a == b`.
pub fn are_equal<E: FieldElement>(a: E, b: E) -> E {
    a - b
}

/// Zero when `a` is.
pub fn is_zero<E: FieldElement>(a: E) -> E {
    a
}

/// `1 - a`.
pub fn not<E: FieldElement>(a: E) -> E {
    E::ONE - a
}

/// Adds a constraint gated by a flag.
pub trait EvaluationResult<E> {
    fn agg_constraint(&mut self, index: usize, flag: E, value: E);
}

impl<E: FieldElement> EvaluationResult<E> for [E] {
    fn agg_constraint(&mut self, index: usize, flag: E, value: E) {
        self[index] += flag * value;
    }
}
