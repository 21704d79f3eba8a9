//! The Spin manifest v2 schema (`spin.toml`), as serde types.
//!
//! Every table that real Spin validates strictly is `deny_unknown_fields`
//! here too, so a manifest that `greenmesh up` accepts is one `spin up`
//! accepts. Host-only settings live under `[component.<id>.tool.greenmesh]`,
//! which Spin ignores (see [`GreenmeshTool`]).

use indexmap::IndexMap;
use serde::Deserialize;
use std::path::PathBuf;

/// The whole manifest file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be `2`; checked after parsing so the error can say so plainly.
    pub spin_manifest_version: toml::Value,
    /// `[application]`: name, version, description, authors.
    pub application: Application,
    /// `[variables]`: application variables and how each gets its value.
    #[serde(default)]
    pub variables: IndexMap<String, Variable>,
    /// `[[trigger.<type>]]`: only `http` is served; other trigger types are an error.
    #[serde(default)]
    pub trigger: IndexMap<String, Vec<toml::Value>>,
    /// `[component.<id>]`, in file order.
    #[serde(default)]
    pub component: IndexMap<String, Component>,
}

/// `[application]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    /// `[application.trigger.<type>]` global trigger settings (Spin accepts
    /// them; greenmesh reads none yet).
    #[serde(default)]
    pub trigger: IndexMap<String, toml::Value>,
    /// `[application.tool.<name>]`, ignored like Spin does.
    #[serde(default)]
    pub tool: IndexMap<String, toml::Value>,
}

/// `[variables.<name>]`: exactly one of `default` or `required = true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Secret values are never written to logs.
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    #[serde(default)]
    pub id: Option<String>,
    pub route: Route,
    /// The component id this route serves (inline components are not supported).
    #[serde(default)]
    pub component: Option<String>,
    /// A fixed response served without any component.
    #[serde(default)]
    pub static_response: Option<StaticResponse>,
    /// `{ type = "spin" }` (the default) or `{ type = "wagi" }` (refused).
    #[serde(default)]
    pub executor: Option<toml::Value>,
}

/// `static_response = { status_code, headers, body }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticResponse {
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// `route = "/path"` or `route = { private = true }` (reachable only by
/// self-requests, which greenmesh does not route).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Route {
    Path(String),
    Private(PrivateRoute),
}

/// `route = { private = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

/// `[component.<id>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub source: Source,
    #[serde(default)]
    pub description: Option<String>,
    /// Component variables: name → template over application variables.
    #[serde(default)]
    pub variables: IndexMap<String, String>,
    /// Environment variables given to the guest through `wasi:cli/environment`.
    #[serde(default)]
    pub environment: IndexMap<String, String>,
    /// Files mounted into the guest; greenmesh refuses non-empty lists (no ambient filesystem).
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Spin 1 spelling; rejected with a pointer to `allowed_outbound_hosts`.
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub build: Option<ComponentBuild>,
    /// `[component.<id>.tool.<name>]`: Spin ignores these; we read `greenmesh`.
    #[serde(default)]
    pub tool: IndexMap<String, toml::Value>,
    /// Whether every dependency inherits this component's capabilities.
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    /// Import name → component that satisfies it.
    #[serde(default)]
    pub dependencies: IndexMap<String, Dependency>,
}

/// `source = "file.wasm"`, or the remote forms Spin also accepts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Source {
    Local(PathBuf),
    Remote(toml::Table),
}

/// `[component.<id>.build]`, run by `greenmesh up --build` like `spin build`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentBuild {
    pub command: BuildCommand,
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A single command or a list run in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BuildCommand {
    One(String),
    Many(Vec<String>),
}

impl BuildCommand {
    /// The commands in the order they run.
    pub fn commands(&self) -> Vec<&str> {
        match self {
            BuildCommand::One(c) => vec![c.as_str()],
            BuildCommand::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// A `dependencies` entry. Only `{ path = ... }` is served here; version
/// strings and registry/url sources need a registry client and are refused
/// with a message that says so.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Dependency {
    Version(String),
    Table(DependencyTable),
}

/// The table form of a dependency.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyTable {
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub package: Option<String>,
    /// Which export of the dependency satisfies the import (default: same name).
    #[serde(default)]
    pub export: Option<String>,
    /// Per-dependency override of `dependencies_inherit_configuration`.
    #[serde(default)]
    pub inherit_configuration: Option<InheritConfiguration>,
}

/// `inherit_configuration = true | false | ["interface", ...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InheritConfiguration {
    All(bool),
    Some(Vec<String>),
}

/// `[component.<id>.tool.greenmesh]`: settings only greenmesh's host reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenmeshTool {
    /// Wall-clock limit for one request, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Linear-memory limit for one instance, in MiB.
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    /// Largest request body, in bytes (`413` past it, before it is read).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// How long a request's body may take to arrive, in milliseconds
    /// (`408` past it); no instance is taken while it arrives.
    #[serde(default)]
    pub body_timeout_ms: Option<u64>,
}
