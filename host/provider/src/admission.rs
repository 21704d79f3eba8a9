//! Admission: which components may run as kernels.
//!
//! A kernel must export `greenmesh:kernel/kernel@0.1.x` and may import only
//! the WASI interfaces the sandbox serves harmlessly: `wasi:io/*`,
//! `wasi:clocks/*`, `wasi:random/*` and `wasi:cli/*` (environment, exit,
//! stdio, terminals), the types-only `greenmesh:kernel/types` that the
//! kernel interface's own types arrive through, `greenmesh:gpu/compute`
//! (served with per-task limits; refusals on GPU-less nodes), and the
//! read-only `greenmesh:kernel/dataset` (bound to the dataset a lease
//! names, or to nothing). Anything else (`wasi:filesystem`, `wasi:sockets`,
//! `wasi:http`, or an interface nobody here provides) is refused before
//! the component is instantiated, with the offending import named.

use wasmtime::component::Component;
use wasmtime::Engine;

/// Import namespaces a kernel may use.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "greenmesh:kernel/types@0.1.",
    "greenmesh:gpu/compute@0.1.",
    "greenmesh:kernel/dataset@0.1.",
];

/// The interface every kernel exports (any 0.1.x patch version).
pub const KERNEL_EXPORT: &str = "greenmesh:kernel/kernel@0.1.";

/// Why a component was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("imports {forbidden} (a kernel may import only {allowed}); refused at admission", allowed = allowed_list())]
    ForbiddenImport { forbidden: String },
    #[error("does not export greenmesh:kernel/kernel@0.1.x (exports: {exports}); not a kernel")]
    NotAKernel { exports: String },
    #[error("is not a valid WebAssembly component: {0}")]
    Invalid(String),
    #[error("is {bytes} bytes; this node compiles modules of at most {max} bytes")]
    TooLarge { bytes: usize, max: usize },
    #[error("took longer than {ms} ms to compile (this node's compile budget); refused")]
    CompileBudget { ms: u64 },
    /// Every compile slot of the node is held (abandoned compile bombs
    /// among them): the node's state, not the module's fault.
    #[error("could not be compiled: every compile slot of this node is taken by other modules")]
    CompilerBusy,
}

fn allowed_list() -> String {
    ALLOWED_IMPORTS
        .iter()
        .map(|p| format!("{p}*"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a compiled component's imports and exports.
pub fn check(engine: &Engine, component: &Component) -> Result<(), Refusal> {
    let ty = component.component_type();
    let forbidden: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)))
        .collect();
    if !forbidden.is_empty() {
        return Err(Refusal::ForbiddenImport {
            forbidden: forbidden.join(", "),
        });
    }
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if !exports.iter().any(|e| e.starts_with(KERNEL_EXPORT)) {
        return Err(Refusal::NotAKernel {
            exports: if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            },
        });
    }
    Ok(())
}
