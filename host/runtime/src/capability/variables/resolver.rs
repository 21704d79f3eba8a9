//! Resolves component variables: template → application variable →
//! `SPIN_VARIABLE_<NAME>` from the environment, else the manifest default.

use crate::manifest::template::Template;
use indexmap::IndexMap;
use std::collections::HashMap;

/// An application variable's declaration.
#[derive(Debug, Clone)]
pub struct AppVariable {
    pub default: Option<String>,
    pub required: bool,
    /// Never logged.
    pub secret: bool,
}

/// Application variable values, resolved once at startup so a missing
/// required variable stops the host before it serves anything.
#[derive(Debug, Clone, Default)]
pub struct VariableValues {
    values: HashMap<String, String>,
}

/// Why a variable could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("variable `{name}` is required but has no value: set {env}")]
    MissingRequired { name: String, env: String },
}

impl VariableValues {
    /// Resolves every application variable from `env` (normally the process
    /// environment) and the defaults.
    pub fn resolve(
        declared: &IndexMap<String, AppVariable>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ResolveError> {
        let mut values = HashMap::new();
        for (name, var) in declared {
            let env_name = env_name(name);
            match env(&env_name).or_else(|| var.default.clone()) {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if var.required => {
                    return Err(ResolveError::MissingRequired {
                        name: name.clone(),
                        env: env_name,
                    })
                }
                None => {}
            }
        }
        Ok(Self { values })
    }

    /// The value of an application variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// `api_key` → `SPIN_VARIABLE_API_KEY`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// One component's variables: its templates over the app's values.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    pub templates: HashMap<String, Template>,
}

impl ComponentVariables {
    /// Renders component variable `name`; `None` if the component has no such variable.
    pub fn get(&self, values: &VariableValues, name: &str) -> Option<Result<String, String>> {
        let template = self.templates.get(name)?;
        Some(template.render(|v| {
            values
                .get(v)
                .map(str::to_string)
                .ok_or_else(|| format!("no value for application variable {v:?}"))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared() -> IndexMap<String, AppVariable> {
        let mut d = IndexMap::new();
        d.insert(
            "greeting".into(),
            AppVariable {
                default: Some("hi".into()),
                required: false,
                secret: false,
            },
        );
        d.insert(
            "api_key".into(),
            AppVariable {
                default: None,
                required: true,
                secret: true,
            },
        );
        d
    }

    #[test]
    fn env_overrides_default_and_required_is_checked() {
        let env = |k: &str| (k == "SPIN_VARIABLE_API_KEY").then(|| "k".to_string());
        let v = VariableValues::resolve(&declared(), env).unwrap();
        assert_eq!(v.get("greeting"), Some("hi"));
        assert_eq!(v.get("api_key"), Some("k"));
        let err = VariableValues::resolve(&declared(), |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "variable `api_key` is required but has no value: set SPIN_VARIABLE_API_KEY"
        );
    }
}
