//! Reads and checks a Spin manifest v2 (`spin.toml`) into typed values.
//!
//! Parsing ([`schema`]) rejects unknown keys; [`load`] then checks what serde
//! cannot (references between tables, route and template syntax, features
//! greenmesh does not serve) so every mistake surfaces at startup as one
//! [`ManifestError`] naming the file and the key. What it checked it keeps,
//! parsed: routes ([`route::RoutePattern`]), variable templates
//! ([`template::Template`]), outbound hosts ([`allowed_host::AllowedHost`])
//! and dependency names ([`dependency::DependencyName`]), so the loader
//! never parses the same strings again. This module imports nothing from
//! the rest of the runtime: the trigger, the capabilities and the composer
//! import these values from here.

pub mod allowed_host;
pub mod dependency;
mod error;
pub mod route;
pub mod schema;
pub mod template;

pub use error::ManifestError;
pub use schema::{GreenmeshTool, HttpTrigger, Manifest};

use allowed_host::AllowedHost;
use dependency::{DependencyName, Inherit, CAPABILITY_SETS};
use indexmap::IndexMap;
use route::RoutePattern;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use template::{validate_name, Template};

/// A manifest that passed every check, with the paths needed to resolve it.
#[derive(Debug)]
pub struct LoadedManifest {
    /// The file as the user named it (used in messages).
    pub path: PathBuf,
    /// Directory relative paths in the manifest are resolved against.
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// `[[trigger.http]]` entries, in order.
    pub triggers: Vec<Trigger>,
    /// What each component (by id, in manifest order) is granted, parsed.
    pub components: IndexMap<String, ComponentValues>,
}

/// One checked `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Where it is served; `None` for `route = { private = true }`
    /// (reachable only by the app's own requests).
    pub route: Option<RoutePattern>,
    pub target: TriggerTarget,
}

/// What answers a trigger's requests.
#[derive(Debug, Clone)]
pub enum TriggerTarget {
    /// The component with this id (it exists).
    Component(String),
    /// A fixed response.
    Static(schema::StaticResponse),
}

/// A component's parsed grants.
#[derive(Debug, Clone, Default)]
pub struct ComponentValues {
    /// `allowed_outbound_hosts`.
    pub allowed_hosts: Vec<AllowedHost>,
    /// `allowed_outbound_hosts` entries with `{{ variable }}` templates (as
    /// Spin allows, e.g. `"postgres://{{ db_host }}"`): rendered and parsed
    /// when the app loads, with the key each came from.
    pub allowed_host_templates: Vec<(String, Template)>,
    /// `variables`: component variable name → template over application
    /// variables (every one declared).
    pub templates: HashMap<String, Template>,
    /// `dependencies`, in manifest order.
    pub dependencies: Vec<DependencySpec>,
}

/// One `[component.<id>.dependencies]` entry (only local files are served).
#[derive(Debug, Clone)]
pub struct DependencySpec {
    /// The key as written (for messages).
    pub key: String,
    pub name: DependencyName,
    /// The file, relative to the manifest unless absolute.
    pub path: PathBuf,
    /// The dependency's export to use (default: the import's own name).
    pub export: Option<String>,
    pub inherit: Inherit,
}

impl LoadedManifest {
    /// Resolves a manifest-relative path.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// The `[component.<id>.tool.greenmesh]` table of a component.
    pub fn greenmesh_tool(&self, id: &str) -> GreenmeshTool {
        self.manifest
            .component
            .get(id)
            .and_then(|c| c.tool.get("greenmesh"))
            .and_then(|t| t.clone().try_into().ok())
            .unwrap_or_default()
    }
}

/// Reads and checks the manifest at `path`.
pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ManifestError::new(path, ".", format!("cannot read manifest: {e}")))?;
    parse(path, &text)
}

/// Checks manifest `text`; `path` is used for messages and relative paths.
pub fn parse(path: &Path, text: &str) -> Result<LoadedManifest, ManifestError> {
    let de = toml::Deserializer::parse(text).map_err(|e| ManifestError {
        file: path.to_path_buf(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        key: ".".into(),
        message: e.message().trim().to_string(),
    })?;
    let manifest: Manifest = serde_path_to_error::deserialize(de)
        .map_err(|e| ManifestError::from_toml(path, text, e))?;
    let err = |key: String, msg: String| ManifestError::new(path, key, msg);

    if manifest.spin_manifest_version.as_integer() != Some(2) {
        return Err(err(
            "spin_manifest_version".into(),
            format!(
                "expected 2, found {}: greenmesh runs Spin manifest version 2",
                manifest.spin_manifest_version
            ),
        ));
    }
    check_variables(&manifest, &err)?;
    let mut components = IndexMap::new();
    for (id, component) in &manifest.component {
        let values = check_component(&manifest, id, component, &err)?;
        components.insert(id.clone(), values);
    }
    let triggers = check_triggers(path, &manifest, &err)?;

    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok(LoadedManifest {
        path: path.to_path_buf(),
        dir,
        manifest,
        triggers,
        components,
    })
}

type ErrFn<'a> = dyn Fn(String, String) -> ManifestError + 'a;

fn check_variables(manifest: &Manifest, err: &ErrFn) -> Result<(), ManifestError> {
    for (name, var) in &manifest.variables {
        let key = format!("variables.{name}");
        validate_name(name).map_err(|m| err(key.clone(), m))?;
        match (var.required, &var.default) {
            (true, Some(_)) => {
                return Err(err(
                    key,
                    "a variable is either `required` or has a `default`, not both".into(),
                ))
            }
            (false, None) => {
                return Err(err(
                    key,
                    "must be `required = true` or have a `default`".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Spin's component-id rule: kebab-case words of lower-case letters and digits.
fn is_kebab_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Store and database labels: kebab or snake case.
fn is_label(label: &str) -> bool {
    label.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_component(
    manifest: &Manifest,
    id: &str,
    c: &schema::Component,
    err: &ErrFn,
) -> Result<ComponentValues, ManifestError> {
    let mut values = ComponentValues::default();
    let key = |k: &str| format!("component.{id}.{k}");
    if !is_kebab_id(id) {
        return Err(err(
            format!("component.{id}"),
            "component ids are kebab-case: lower-case letters and digits separated by `-`".into(),
        ));
    }
    if let schema::Source::Remote(_) = c.source {
        return Err(err(
            key("source"),
            "only local file sources (`source = \"path/to/component.wasm\"`) are supported; \
             download the component and point `source` at the file"
                .into(),
        ));
    }
    if !c.files.is_empty() {
        return Err(err(
            key("files"),
            "greenmesh gives components no filesystem; remove `files` or embed the data".into(),
        ));
    }
    if !c.allowed_http_hosts.is_empty() {
        return Err(err(
            key("allowed_http_hosts"),
            "`allowed_http_hosts` is the Spin 1 spelling: use `allowed_outbound_hosts = [\"https://host\"]`".into(),
        ));
    }
    if !c.ai_models.is_empty() {
        return Err(err(
            key("ai_models"),
            "AI models are not served by greenmesh".into(),
        ));
    }
    for (i, host) in c.allowed_outbound_hosts.iter().enumerate() {
        let k = format!("{}[{i}]", key("allowed_outbound_hosts"));
        if host.contains("{{") {
            let t = Template::parse(host).map_err(|m| err(k.clone(), m))?;
            if let Some(v) = t.variables().find(|v| !manifest.variables.contains_key(*v)) {
                return Err(err(
                    k,
                    format!("template refers to undefined application variable {v:?}: declare it under [variables]"),
                ));
            }
            values.allowed_host_templates.push((k, t));
            continue;
        }
        values
            .allowed_hosts
            .push(AllowedHost::parse(host).map_err(|m| err(k, m))?);
    }
    for (field, labels) in [
        ("key_value_stores", &c.key_value_stores),
        ("sqlite_databases", &c.sqlite_databases),
    ] {
        for (i, label) in labels.iter().enumerate() {
            if !is_label(label) {
                return Err(err(
                    format!("{}[{i}]", key(field)),
                    format!("invalid label {label:?}: use lower-case letters, digits, `-` and `_`"),
                ));
            }
        }
    }
    for (name, template) in &c.variables {
        let k = format!("{}.{name}", key("variables"));
        validate_name(name).map_err(|m| err(k.clone(), m))?;
        let t = Template::parse(template).map_err(|m| err(k.clone(), m))?;
        for v in t.variables() {
            if !manifest.variables.contains_key(v) {
                return Err(err(
                    k.clone(),
                    format!("template refers to undefined application variable {v:?}: declare it under [variables]"),
                ));
            }
        }
        values.templates.insert(name.clone(), t);
    }
    if let Some(tool) = c.tool.get("greenmesh") {
        let parsed: Result<GreenmeshTool, _> = serde_path_to_error::deserialize(tool.clone());
        if let Err(e) = parsed {
            let sub = e.path().to_string();
            let k = if sub.is_empty() || sub == "." {
                key("tool.greenmesh")
            } else {
                format!("{}.{sub}", key("tool.greenmesh"))
            };
            return Err(err(k, e.into_inner().to_string().trim().to_string()));
        }
    }
    for (name, dep) in &c.dependencies {
        let k = format!("{}.\"{name}\"", key("dependencies"));
        let dep_name = DependencyName::parse(name).map_err(|m| err(k.clone(), m))?;
        match dep {
            schema::Dependency::Version(_) => {
                return Err(err(
                    k,
                    "registry dependencies are not supported: use `{ path = \"dep.wasm\" }`".into(),
                ))
            }
            schema::Dependency::Table(t) => {
                let Some(dep_path) = &t.path else {
                    return Err(err(
                        k,
                        "only `{ path = \"dep.wasm\" }` dependencies are supported (no url or registry)".into(),
                    ));
                };
                if t.inherit_configuration.is_some() && c.dependencies_inherit_configuration {
                    return Err(err(
                        format!("{k}.inherit_configuration"),
                        "set either `dependencies_inherit_configuration` on the component or \
                         `inherit_configuration` on a dependency, not both"
                            .into(),
                    ));
                }
                if let Some(schema::InheritConfiguration::Some(list)) = &t.inherit_configuration {
                    for cap in list {
                        if !CAPABILITY_SETS.iter().any(|(n, _)| n == cap) {
                            let known: Vec<_> = CAPABILITY_SETS.iter().map(|(n, _)| *n).collect();
                            return Err(err(
                                format!("{k}.inherit_configuration"),
                                format!("unknown capability {cap:?} (known: {})", known.join(", ")),
                            ));
                        }
                    }
                }
                let inherit = match &t.inherit_configuration {
                    Some(schema::InheritConfiguration::All(true)) => Inherit::All,
                    Some(schema::InheritConfiguration::All(false)) => Inherit::Only(Vec::new()),
                    Some(schema::InheritConfiguration::Some(list)) => Inherit::Only(list.clone()),
                    None if c.dependencies_inherit_configuration => Inherit::All,
                    None => Inherit::Only(Vec::new()),
                };
                values.dependencies.push(DependencySpec {
                    key: name.clone(),
                    name: dep_name,
                    path: dep_path.clone(),
                    export: t.export.clone(),
                    inherit,
                });
            }
        }
    }
    Ok(values)
}

fn check_triggers(
    path: &Path,
    manifest: &Manifest,
    err: &ErrFn,
) -> Result<Vec<Trigger>, ManifestError> {
    let mut out = Vec::new();
    for (kind, entries) in &manifest.trigger {
        if kind != "http" {
            return Err(err(
                format!("trigger.{kind}"),
                format!("trigger type {kind:?} is not supported by greenmesh (only `http`)"),
            ));
        }
        for (i, entry) in entries.iter().enumerate() {
            let trigger: HttpTrigger =
                serde_path_to_error::deserialize(entry.clone()).map_err(|e| {
                    let sub = e.path().to_string();
                    let mut me = ManifestError::new(
                        path,
                        if sub.is_empty() || sub == "." {
                            format!("trigger.http[{i}]")
                        } else {
                            format!("trigger.http[{i}].{sub}")
                        },
                        e.into_inner().to_string().trim().to_string(),
                    );
                    me.line = None;
                    me
                })?;
            let key = |k: &str| format!("trigger.http[{i}].{k}");
            let target = match (&trigger.component, &trigger.static_response) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(err(
                        format!("trigger.http[{i}]"),
                        "set exactly one of `component` and `static_response`".into(),
                    ))
                }
                (Some(id), None) if !manifest.component.contains_key(id) => {
                    let known: Vec<&str> = manifest.component.keys().map(String::as_str).collect();
                    return Err(err(
                        key("component"),
                        format!(
                            "no component named {id:?} (components: {})",
                            known.join(", ")
                        ),
                    ));
                }
                (Some(id), None) => TriggerTarget::Component(id.clone()),
                (None, Some(resp)) => TriggerTarget::Static(resp.clone()),
            };
            let route = match &trigger.route {
                schema::Route::Path(route) => Some(
                    RoutePattern::parse(route)
                        .map_err(|e| err(key("route"), format!("{route:?}: {e}")))?,
                ),
                schema::Route::Private(p) if !p.private => {
                    return Err(err(
                        key("route"),
                        "`route = { private = false }` is not allowed; give a path".into(),
                    ))
                }
                schema::Route::Private(_) => None,
            };
            if let Some(executor) = &trigger.executor {
                let ty = executor.get("type").and_then(|t| t.as_str());
                if !matches!(ty, Some("spin") | Some("http")) {
                    return Err(err(
                        key("executor"),
                        "only the `spin` executor (wasi:http components) is supported".into(),
                    ));
                }
            }
            out.push(Trigger { route, target });
        }
    }
    Ok(out)
}
