//! The kernels a node offers: every `.wasm` in its kernel folder that passes
//! admission and describes itself. Rescanning compares a fingerprint of the
//! folder (names, sizes, modification times) so that dropping a file in, or
//! removing one, changes what the node advertises.

use super::admission;
use super::executor::{GpuUse, Prepared, Sandbox};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    admission::check(sandbox.engine(), &component)?;
    let prepared = sandbox.prepare(&component, bytes)?;
    Ok((prepared, greenmesh_protocol::sha256_hex(bytes)))
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
