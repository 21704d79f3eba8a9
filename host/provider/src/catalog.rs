//! The kernels a node offers: every `.wasm` in its kernel folder that passes
//! admission and describes itself. Rescanning compares a fingerprint of the
//! folder (names, sizes, modification times) so that dropping a file in, or
//! removing one, changes what the node advertises.

use super::admission;
use super::executor::{GpuUse, Prepared, Sandbox};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wasmtime::component::Component;
use wasmtime::Engine;

/// One installed kernel.
#[derive(Clone)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub input_types: Vec<String>,
    pub output_types: Vec<String>,
    /// Whether it needs a GPU (`required`), can use one (`optional`) or not.
    pub gpu: GpuUse,
    /// SHA-256 (hex) of the `.wasm`, reported in receipts.
    pub sha256: String,
    pub path: PathBuf,
    pub prepared: Prepared,
}

/// What the folder held at one scan.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

#[derive(Clone, Default)]
pub struct Catalog {
    pub kernels: BTreeMap<String, Installed>,
    pub fingerprint: Fingerprint,
}

/// The `.wasm` files in `dir` with their sizes and times, sorted.
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files: Fingerprint = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    files
}

/// Loads one kernel file: compile, admit, link, describe.
pub fn load(sandbox: &Sandbox, path: &Path) -> anyhow::Result<Installed> {
    let bytes = std::fs::read(path)?;
    let (prepared, sha256) = admit(sandbox, &bytes)?;
    let d = sandbox.describe(&prepared)?;
    anyhow::ensure!(
        !d.name.is_empty()
            && d.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
        "describes itself with an unusable name {:?}",
        d.name
    );
    Ok(Installed {
        name: d.name,
        version: d.version,
        summary: d.summary,
        input_types: d.input_types,
        output_types: d.output_types,
        gpu: d.gpu,
        sha256,
        path: path.to_path_buf(),
        prepared,
    })
}

/// Compiles and admits component bytes (a kernel file or a `wasm_execution`
/// module); returns it linked, with its SHA-256.
pub fn admit(sandbox: &Sandbox, bytes: &[u8]) -> anyhow::Result<(Prepared, String)> {
    let component = sandbox
        .compile(bytes)
        .map_err(|e| admission::Refusal::Invalid(format!("{e:#}")))?;
    admit_compiled(sandbox, &component, bytes)
}

/// Admits and links a component compiled from `bytes`.
pub fn admit_compiled(
    sandbox: &Sandbox,
    component: &Component,
    bytes: &[u8],
) -> anyhow::Result<(Prepared, String)> {
    admission::check(sandbox.engine(), component)?;
    let prepared = sandbox.prepare(component, bytes)?;
    Ok((prepared, greenmesh_protocol::sha256_hex(bytes)))
}

/// What compiling one submitted module may cost.
#[derive(Debug, Clone, Copy)]
pub struct CompileBudget {
    pub max_bytes: usize,
    pub max_time: Duration,
}

/// Compiles running at once on a node, abandoned ones included: a stream
/// of compile bombs holds at most this many of the node's threads.
pub const MAX_COMPILES: usize = 2;

/// Compiles a submitted module within `budget`: larger modules are refused
/// unread, and a compile that outlasts the budget is given up (Cranelift
/// cannot be interrupted: its thread finishes in the background and its
/// result is dropped), so a compile bomb costs the node at most the budget
/// before it serves the next lease.
///
/// Each compile holds one of `compiles` (the node's [`MAX_COMPILES`]
/// slots) until its thread really ends, so abandoned compiles are bounded
/// in number too. A module that finds every slot held for the whole budget
/// is refused as [`admission::Refusal::CompilerBusy`]: the node's state,
/// not the module's fault.
pub async fn compile_within(
    engine: &Engine,
    bytes: Arc<[u8]>,
    budget: CompileBudget,
    compiles: &Arc<tokio::sync::Semaphore>,
) -> Result<Component, admission::Refusal> {
    if bytes.len() > budget.max_bytes {
        return Err(admission::Refusal::TooLarge {
            bytes: bytes.len(),
            max: budget.max_bytes,
        });
    }
    let slot = match tokio::time::timeout(budget.max_time, compiles.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) | Err(_) => return Err(admission::Refusal::CompilerBusy),
    };
    let engine = engine.clone();
    let compile = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        Component::new(&engine, &bytes[..])
    });
    match tokio::time::timeout(budget.max_time, compile).await {
        Ok(Ok(Ok(component))) => Ok(component),
        Ok(Ok(Err(e))) => Err(admission::Refusal::Invalid(format!("{e:#}"))),
        Ok(Err(join)) => Err(admission::Refusal::Invalid(format!(
            "the compiler failed: {join}"
        ))),
        Err(_) => Err(admission::Refusal::CompileBudget {
            ms: budget.max_time.as_millis() as u64,
        }),
    }
}

/// Scans `dir`; files that fail are reported, not fatal. Two files naming
/// the same kernel: the first by file name wins.
pub fn scan(sandbox: &Sandbox, dir: &Path) -> (Catalog, Vec<String>) {
    let fingerprint = fingerprint(dir);
    let mut kernels = BTreeMap::new();
    let mut problems = Vec::new();
    if !dir.is_dir() {
        problems.push(format!("kernel folder {} does not exist", dir.display()));
    }
    for (path, _, _) in &fingerprint {
        match load(sandbox, path) {
            Ok(k) if k.gpu == GpuUse::Required && sandbox.gpu().is_none() => {
                problems.push(format!(
                    "{}: kernel {:?} needs a GPU and this node has none; not offered",
                    path.display(),
                    k.name
                ))
            }
            Ok(k) if kernels.contains_key(&k.name) => problems.push(format!(
                "{}: kernel {:?} is already installed from another file; skipped",
                path.display(),
                k.name
            )),
            Ok(k) => {
                kernels.insert(k.name.clone(), k);
            }
            Err(e) => problems.push(format!("{}: {e:#}", path.display())),
        }
    }
    (
        Catalog {
            kernels,
            fingerprint,
        },
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, Component as ComponentBytes, Function, FunctionSection, Instruction, Module,
        ModuleSection, TypeSection, ValType,
    };

    /// A component holding one core function of `blocks` nested blocks,
    /// each with arithmetic on many locals: a few kilobytes per thousand
    /// blocks, and far more work for the compiler than its size suggests.
    fn compile_bomb(blocks: u32) -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        let mut functions = FunctionSection::new();
        functions.function(0);
        let locals = 64;
        let mut f = Function::new([(locals, ValType::I64)]);
        for i in 0..blocks {
            f.instruction(&Instruction::Block(wasm_encoder::BlockType::Empty));
            let a = 1 + i % locals;
            let b = 1 + (i * 7) % locals;
            f.instruction(&Instruction::LocalGet(a))
                .instruction(&Instruction::LocalGet(b))
                .instruction(&Instruction::I64Mul)
                .instruction(&Instruction::LocalGet(0))
                .instruction(&Instruction::I64ExtendI32U)
                .instruction(&Instruction::I64Add)
                .instruction(&Instruction::LocalSet(b))
                .instruction(&Instruction::LocalGet(0))
                .instruction(&Instruction::BrIf(0));
        }
        for _ in 0..blocks {
            f.instruction(&Instruction::End);
        }
        f.instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::End);
        let mut code = CodeSection::new();
        code.function(&f);
        let mut module = Module::new();
        module.section(&types).section(&functions).section(&code);
        let mut component = ComponentBytes::new();
        component.section(&ModuleSection(&module));
        component.finish()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_compile_bomb_is_refused() {
        let sandbox = Sandbox::new(64 << 20, None).unwrap();
        let budget = CompileBudget {
            max_bytes: 8 << 20,
            max_time: Duration::from_millis(50),
        };
        let small = compile_bomb(10);
        let bomb = compile_bomb(8_000);
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        // The same kind of module, small, compiles within the budget...
        let compiles = Arc::new(tokio::sync::Semaphore::new(1));
        compile_within(sandbox.engine(), small.clone().into(), budget, &compiles)
            .await
            .expect("a small module compiles within 50 ms");
        // ...the bomb does not, and the node has its answer at the budget.
        let started = std::time::Instant::now();
        let refused = compile_within(sandbox.engine(), bomb.into(), budget, &compiles).await;
        assert!(
            matches!(refused, Err(admission::Refusal::CompileBudget { ms: 50 })),
            "{refused:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // The abandoned compile still holds its slot: with every slot held,
        // another module is refused as the node being busy (not blamed on
        // the module), and no further compile thread is started.
        assert_eq!(compiles.available_permits(), 0, "the bomb still compiles");
        let refused =
            compile_within(sandbox.engine(), small.clone().into(), budget, &compiles).await;
        assert!(
            matches!(refused, Err(admission::Refusal::CompilerBusy)),
            "{refused:?}"
        );
        // Once the bomb's thread ends, its slot is free again.
        let freed = std::time::Instant::now();
        while compiles.available_permits() == 0 {
            assert!(
                freed.elapsed() < Duration::from_secs(120),
                "the bomb never ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        compile_within(sandbox.engine(), small.into(), budget, &compiles)
            .await
            .expect("the slot is free again");
        // Too large: refused before compiling.
        let huge: Arc<[u8]> = vec![0u8; (8 << 20) + 1].into();
        let refused = compile_within(sandbox.engine(), huge, budget, &compiles).await;
        assert!(
            matches!(refused, Err(admission::Refusal::TooLarge { .. })),
            "{refused:?}"
        );
    }
}
