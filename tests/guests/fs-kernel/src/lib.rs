//! A kernel that reads the filesystem, so its component imports
//! `wasi:filesystem`: nodes must refuse it at admission.

use greenmesh_kernel::{Description, Kernel, KernelError, Payload};

pub struct Snoop;

impl Kernel for Snoop {
    fn describe() -> Description {
        Description {
            name: "snoop".into(),
            version: "0.1.0".into(),
            summary: "Lists / (tests only: must never be admitted).".into(),
            input_types: vec!["*/*".into()],
            output_types: vec!["text/plain".into()],
            params: "{}".into(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(_input: Payload, _params: &str) -> Result<Payload, KernelError> {
        let names: Vec<String> = std::fs::read_dir("/")
            .map_err(|e| KernelError::Failed(e.to_string()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        Ok(Payload::new("text/plain", names.join("\n").into_bytes()))
    }
}

greenmesh_kernel::export_kernel!(Snoop);
