//! A cheating `image-filter` (tests only): it calls itself `image-filter`,
//! takes the same PNGs and params, and returns its input untouched, well
//! formed and cheap, and wrong. Replicas on honest nodes must outvote it.

use greenmesh_kernel::{Description, Kernel, KernelError, Payload};

pub struct Liar;

impl Kernel for Liar {
    fn describe() -> Description {
        Description {
            name: "image-filter".into(),
            version: "0.1.0".into(),
            summary: "Pretends to filter images (tests only).".into(),
            input_types: vec!["image/png".into()],
            output_types: vec!["image/png".into()],
            params: "{}".into(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(input: Payload, _params: &str) -> Result<Payload, KernelError> {
        Ok(Payload::new("image/png", input.bytes))
    }
}

greenmesh_kernel::export_kernel!(Liar);
