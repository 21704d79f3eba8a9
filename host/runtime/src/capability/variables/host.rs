//! `fermyon:spin/variables` host function.

use crate::capability::bindings::variables::{Error, Host};
use crate::manifest::template::validate_name;
use crate::state::InstanceState;

impl Host for InstanceState {
    fn get(&mut self, name: String) -> Result<String, Error> {
        validate_name(&name).map_err(Error::InvalidName)?;
        let caps = &self.capabilities;
        match caps.variables.get(&caps.resources.variable_values, &name) {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(Error::Provider(e)),
            None => Err(Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                caps.component_id
            ))),
        }
    }
}
