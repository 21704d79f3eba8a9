//! Component dependencies composed at load time with `wac-graph`.
//!
//! Follows Spin's rules: a dependency name (`ns:pkg/iface@ver`, `ns:pkg/iface`,
//! `ns:pkg` or a plain kebab name) is matched against the main component's
//! imports; the dependency's matching export is plugged in. A dependency gets
//! none of the parent's capabilities unless it inherits them
//! (`dependencies_inherit_configuration`, or per dependency
//! `inherit_configuration = true | [capability, ...]`). Spin plugs a
//! "deny-all" adapter component in front of such a dependency; greenmesh
//! instead re-routes each denied import to a private import name
//! (`greenmesh-denied-…`) that the host links to functions returning the
//! interface's own refusal (`access-denied`, `HTTP-request-denied`,
//! `undefined`, empty lists) — see [`crate::capability::deny`]. The composed
//! bytes are the same shape `wac plug` produces.

pub use crate::manifest::dependency::{DependencyName, Inherit};
use anyhow::{anyhow, bail, Context};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// One dependency, read and ready to compose.
pub struct Dependency {
    pub name: DependencyName,
    /// The key as written (for messages).
    pub key: String,
    pub bytes: Vec<u8>,
    /// Export of the dependency to use (default: the import's own name).
    pub export: Option<String>,
    pub inherit: Inherit,
}

/// An import of the composition the host must answer with refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedImport {
    /// The private import name in the composed component.
    pub import: String,
    /// The interface it stands for (`fermyon:spin/sqlite@2.0.0`).
    pub interface: String,
}

/// The composed component and the imports the host must deny.
pub struct Composition {
    pub bytes: Vec<u8>,
    pub denied: Vec<DeniedImport>,
}

/// Plugs `deps` into `main` (the component `id`).
pub fn compose(id: &str, main: &[u8], deps: Vec<Dependency>) -> anyhow::Result<Composition> {
    let mut graph = CompositionGraph::new();
    let main_pkg = Package::from_bytes(
        &format!("greenmesh-app:{id}"),
        None,
        main.to_vec(),
        graph.types_mut(),
    )
    .with_context(|| format!("reading component `{id}`"))?;
    let main_world = main_pkg.ty();
    let main_id = graph.register_package(main_pkg)?;
    let main_inst = graph.instantiate(main_id);
    let imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();
    let mut denied = Vec::new();
    let mut satisfied: Vec<(String, String)> = Vec::new();

    for (i, dep) in deps.into_iter().enumerate() {
        let matched: Vec<&String> = imports.iter().filter(|n| dep.name.matches(n)).collect();
        if matched.is_empty() {
            bail!(
                "dependency {:?} of component `{id}` matches none of its imports ({})",
                dep.key,
                imports.join(", ")
            );
        }
        let pkg = Package::from_bytes(
            &format!("greenmesh-dep:d{i}"),
            None,
            dep.bytes,
            graph.types_mut(),
        )
        .with_context(|| format!("reading dependency {:?} of component `{id}`", dep.key))?;
        let dep_world = pkg.ty();
        let dep_id = graph.register_package(pkg)?;
        let dep_inst = graph.instantiate(dep_id);

        let dep_imports: Vec<(String, wac_graph::types::ItemKind)> = graph.types()[dep_world]
            .imports
            .iter()
            .map(|(n, k)| (n.clone(), *k))
            .collect();
        for (j, (name, kind)) in dep_imports.into_iter().enumerate() {
            if dep.inherit.denies(&name) {
                let private = format!("greenmesh-denied-d{i}-i{j}");
                let node = graph.import(private.clone(), kind)?;
                graph
                    .set_instantiation_argument(dep_inst, &name, node)
                    .map_err(|e| anyhow!("denying {name} to dependency {:?}: {e}", dep.key))?;
                denied.push(DeniedImport {
                    import: private,
                    interface: name,
                });
            }
        }

        for import in matched {
            if let Some((_, other)) = satisfied.iter().find(|(imp, _)| imp == import) {
                bail!("import `{import}` of component `{id}` is satisfied by two dependencies: {other:?} and {:?}", dep.key);
            }
            let export = dep.export.clone().unwrap_or_else(|| import.clone());
            let node = graph
                .alias_instance_export(dep_inst, &export)
                .map_err(|_| {
                    anyhow!(
                        "dependency {:?} of component `{id}` does not export `{export}`",
                        dep.key
                    )
                })?;
            graph
                .set_instantiation_argument(main_inst, import, node)
                .map_err(|e| {
                    anyhow!(
                        "dependency {:?} cannot satisfy `{import}` of `{id}`: {e}",
                        dep.key
                    )
                })?;
            satisfied.push((import.clone(), dep.key.clone()));
        }
    }

    let exports: Vec<String> = graph.types()[main_world].exports.keys().cloned().collect();
    for name in exports {
        let node = graph.alias_instance_export(main_inst, &name)?;
        graph.export(node, name)?;
    }
    let bytes = graph
        .encode(EncodeOptions::default())
        .with_context(|| format!("encoding the composition of `{id}`"))?;
    Ok(Composition { bytes, denied })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(dep: &str, import: &str) -> bool {
        DependencyName::parse(dep).unwrap().matches(import)
    }

    #[test]
    fn names_match_like_spin() {
        assert!(m("foo:bar/baz@0.1.0", "foo:bar/baz@0.1.0"));
        assert!(!m("foo:bar/baz@0.1.0", "foo:bar/baz"));
        assert!(m("foo:bar/baz", "foo:bar/baz@0.1.0"));
        assert!(!m("foo:bar/baz", "foo:bar/bub"));
        assert!(m("foo:bar", "foo:bar/anything@1.0.0"));
        assert!(m("foo:bar@0.1.0", "foo:bar/baz@0.1.0"));
        assert!(m("foo-bar", "foo-bar"));
        assert!(!m("foo-bar", "foo:bar/baz"));
        assert!(DependencyName::parse("Foo").is_err());
        assert!(DependencyName::parse("foo:bar@x").is_err());
    }

    #[test]
    fn inheritance_selects_capabilities() {
        let none = Inherit::Only(vec![]);
        assert!(none.denies("fermyon:spin/sqlite@2.0.0"));
        assert!(none.denies("wasi:http/outgoing-handler@0.2.6"));
        assert!(!none.denies("wasi:clocks/monotonic-clock@0.2.6"));
        let kv = Inherit::Only(vec!["key_value_stores".into()]);
        assert!(!kv.denies("fermyon:spin/key-value@2.0.0"));
        assert!(kv.denies("fermyon:spin/variables@2.0.0"));
        assert!(!Inherit::All.denies("fermyon:spin/sqlite@2.0.0"));
    }
}
