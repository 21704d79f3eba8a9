//! The `fermyon:spin/variables` capability: component variables rendered
//! from application variables.

pub mod host;
pub mod resolver;

pub use resolver::{AppVariable, ComponentVariables, VariableValues};
