//! Spin variable templates: literal text with `{{ name }}` references.

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// A reference to an application variable.
    Variable(String),
}

/// A parsed `variables` value such as `"Bearer {{ api_token }}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template; an unmatched `{{` is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| "unmatched `{{` in template".to_string())?;
            let name = after[..end].trim();
            validate_name(name)?;
            parts.push(Part::Variable(name.to_string()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// The application variables this template reads.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(v) => Some(v.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders with `lookup` giving each variable's value.
    pub fn render<E>(
        &self,
        mut lookup: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Variable(v) => out.push_str(&lookup(v)?),
            }
        }
        Ok(out)
    }
}

/// Spin's variable-name rule: lower-case letters, digits and single
/// underscores, starting with a letter and not ending with `_`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let hint = "variable names may contain only lower-case letters, digits and underscores, and start with a letter";
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !chars_ok || name.ends_with('_') || name.contains("__") {
        return Err(format!("invalid variable name {name:?}: {hint}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_literals_and_variables() {
        let t = Template::parse("Bearer {{ token }}!").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), vec!["token"]);
        let out: Result<String, ()> = t.render(|_| Ok("abc".into()));
        assert_eq!(out.unwrap(), "Bearer abc!");
    }

    #[test]
    fn refuses_bad_templates_and_names() {
        assert!(Template::parse("{{ open").is_err());
        assert!(Template::parse("{{ Upper }}").is_err());
        assert!(validate_name("a__b").is_err());
        assert!(validate_name("ok_name2").is_ok());
    }
}
