//! Loading an app: manifest → runtime config → variables → stores →
//! composed, compiled components ready to instantiate, and the router.

use crate::capability::{
    self, key_value, outbound_http, sqlite, variables, ComponentCapabilities, SharedResources,
};
use crate::compose;
use crate::manifest::{
    self, schema, ComponentValues, DependencySpec, LoadedManifest, TriggerTarget,
};
use crate::runtime_config::{Location, RuntimeConfig};
use crate::sandbox::Limits;
use crate::state::InstanceState;
use crate::trigger::http::router::Router;
use anyhow::{anyhow, Context};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// How to load an app.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
    /// Default state folder is `.spin/` beside the manifest.
    pub state_dir: Option<PathBuf>,
    /// Default limits for components without `tool.greenmesh` settings.
    pub limits: Limits,
    /// Where `SPIN_VARIABLE_*` values come from: `None` reads the process
    /// environment; embedders and tests pass a map instead.
    pub environment: Option<HashMap<String, String>>,
    /// The wall clock the components read (real time by default).
    pub clock: crate::clock::VirtualClock,
}

/// One component, compiled and pre-linked.
pub struct LoadedComponent {
    pub id: Arc<str>,
    pub pre: ProxyPre<InstanceState>,
    pub capabilities: Arc<ComponentCapabilities>,
    pub limits: Limits,
}

/// A loaded app, ready to serve.
pub struct App {
    pub name: String,
    pub engine: Engine,
    pub components: HashMap<String, LoadedComponent>,
    pub router: Router<TriggerTarget>,
}

impl App {
    /// Loads and compiles the app described by `opts`.
    pub fn load(engine: &Engine, opts: &LoadOptions) -> anyhow::Result<Self> {
        let loaded = manifest::load(&opts.manifest)?;
        let runtime = match &opts.runtime_config {
            Some(p) => RuntimeConfig::load(p)?,
            None => RuntimeConfig::default(),
        };
        let state_dir = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| loaded.dir.join(".spin"));
        let mut resources =
            open_resources(&loaded, &runtime, &state_dir, opts.environment.as_ref())?;
        resources.clock = opts.clock.clone();
        let resources = Arc::new(resources);

        let mut base = Linker::new(engine);
        capability::add_to_linker(&mut base)?;

        let mut components = HashMap::new();
        for (id, spec) in &loaded.manifest.component {
            let component =
                load_component(engine, &base, &loaded, id, spec, &resources, opts.limits)
                    .with_context(|| format!("loading component `{id}`"))?;
            components.insert(id.clone(), component);
        }
        let router = build_router(&loaded);
        Ok(Self {
            name: loaded.manifest.application.name.clone(),
            engine: engine.clone(),
            components,
            router,
        })
    }
}

fn open_resources(
    loaded: &LoadedManifest,
    runtime: &RuntimeConfig,
    state_dir: &Path,
    environment: Option<&HashMap<String, String>>,
) -> anyhow::Result<SharedResources> {
    let declared = loaded
        .manifest
        .variables
        .iter()
        .map(|(name, v)| {
            (
                name.clone(),
                variables::AppVariable {
                    default: v.default.clone(),
                    required: v.required,
                    secret: v.secret,
                },
            )
        })
        .collect();
    let env = |k: &str| match environment {
        Some(map) => map.get(k).cloned(),
        None => std::env::var(k).ok(),
    };
    let variable_values = variables::VariableValues::resolve(&declared, env)
        .map_err(|e| anyhow!("{}: {e}", loaded.path.display()))?;

    let mut resources = SharedResources {
        variable_values,
        postgres: crate::capability::postgres::Pools::new(
            crate::capability::postgres::Settings::from_env(env)?,
        ),
        ..Default::default()
    };
    for (id, c) in &loaded.manifest.component {
        for label in &c.sqlite_databases {
            if resources.sqlite.contains_key(label) {
                continue;
            }
            let db = match runtime.sqlite(label, state_dir) {
                Some(Location::File(path)) => sqlite::Database::open(&path)?,
                Some(Location::Memory) => sqlite::Database::in_memory()?,
                None => {
                    return Err(anyhow!(
                        "component `{id}` uses sqlite database {label:?}, which has no \
                         `[sqlite_database.{label}]` entry in the runtime config (only `default` has a built-in location)"
                    ))
                }
            };
            resources.sqlite.insert(label.clone(), db);
        }
        for label in &c.key_value_stores {
            if resources.key_value.contains_key(label) {
                continue;
            }
            let store = match runtime.key_value(label, state_dir) {
                Some(Location::File(path)) => key_value::KvStore::open(Some(&path), label)?,
                Some(Location::Memory) => key_value::KvStore::open(None, label)?,
                None => {
                    return Err(anyhow!(
                        "component `{id}` uses key-value store {label:?}, which has no \
                         `[key_value_store.{label}]` entry in the runtime config (only `default` has a built-in location)"
                    ))
                }
            };
            resources.key_value.insert(label.clone(), store);
        }
    }
    Ok(resources)
}

fn load_component(
    engine: &Engine,
    base: &Linker<InstanceState>,
    loaded: &LoadedManifest,
    id: &str,
    spec: &schema::Component,
    resources: &Arc<SharedResources>,
    default_limits: Limits,
) -> anyhow::Result<LoadedComponent> {
    let schema::Source::Local(source) = &spec.source else {
        unreachable!("remote sources are refused by manifest::load");
    };
    let source = loaded.resolve(source);
    let bytes = std::fs::read(&source).with_context(|| {
        format!(
            "reading {} (build it first, or run `greenmesh up --build`)",
            source.display()
        )
    })?;

    let values: &ComponentValues = &loaded.components[id];
    let (bytes, denied) = if values.dependencies.is_empty() {
        (bytes, Vec::new())
    } else {
        let deps = values
            .dependencies
            .iter()
            .map(|dep| read_dependency(loaded, dep))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let composition = compose::compose(id, &bytes, deps)?;
        (composition.bytes, composition.denied)
    };

    let component = Component::new(engine, &bytes)
        .map_err(anyhow::Error::from)
        .context("compiling")?;
    let mut linker = base.clone();
    capability::deny::link(&mut linker, engine, &component, &denied)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| anyhow!("{e}: greenmesh serves WASI 0.2, wasi:http 0.2, fermyon:spin sqlite, key-value and variables @2.0.0 , spin:sqlite@3.0.0 and spin:postgres@4.0.0"))?;
    let pre = ProxyPre::new(pre)
        .map_err(anyhow::Error::from)
        .context("the component must export wasi:http/incoming-handler@0.2.x")?;

    let tool = loaded.greenmesh_tool(id);
    let limits = Limits {
        timeout: tool
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(default_limits.timeout),
        max_memory_bytes: tool
            .max_memory_mb
            .map(|mb| (mb as usize) << 20)
            .unwrap_or(default_limits.max_memory_bytes),
        max_body_bytes: tool.max_body_bytes.unwrap_or(default_limits.max_body_bytes),
        body_timeout: tool
            .body_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(default_limits.body_timeout),
    };
    // Templated entries, now that the variables have values.
    let mut allowed_hosts = values.allowed_hosts.clone();
    for (key, template) in &values.allowed_host_templates {
        let rendered = template
            .render(|v| {
                resources
                    .variable_values
                    .get(v)
                    .map(str::to_string)
                    .ok_or_else(|| format!("variable `{v}` has no value"))
            })
            .map_err(|m| anyhow!("{key}: {m}"))?;
        allowed_hosts.push(
            crate::manifest::allowed_host::AllowedHost::parse(&rendered)
                .map_err(|m| anyhow!("{key} (rendered as {rendered:?}): {m}"))?,
        );
    }
    let id: Arc<str> = id.into();
    Ok(LoadedComponent {
        id: id.clone(),
        pre,
        capabilities: Arc::new(ComponentCapabilities {
            component_id: id,
            sqlite_grants: spec.sqlite_databases.iter().cloned().collect(),
            key_value_grants: spec.key_value_stores.iter().cloned().collect(),
            variables: variables::ComponentVariables {
                templates: values.templates.clone(),
            },
            allowed_hosts: Arc::new(outbound_http::AllowedHosts(allowed_hosts)),
            environment: spec
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            resources: resources.clone(),
        }),
        limits,
    })
}

/// Reads a dependency's file for composition.
fn read_dependency(
    loaded: &LoadedManifest,
    dep: &DependencySpec,
) -> anyhow::Result<compose::Dependency> {
    let path = loaded.resolve(&dep.path);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading dependency {:?} from {}", dep.key, path.display()))?;
    Ok(compose::Dependency {
        name: dep.name.clone(),
        key: dep.key.clone(),
        bytes,
        export: dep.export.clone(),
        inherit: dep.inherit.clone(),
    })
}

fn build_router(loaded: &LoadedManifest) -> Router<TriggerTarget> {
    let mut router = Router::default();
    for trigger in &loaded.triggers {
        // Private routes are only reachable by the app's own requests.
        let Some(pattern) = &trigger.route else {
            continue;
        };
        if let Some(old) = router.add(pattern.clone(), trigger.target.clone()) {
            tracing::warn!(route = %pattern, replaced = ?old, "duplicate route: the later entry wins, as in Spin");
        }
    }
    router
}
