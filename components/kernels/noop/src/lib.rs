//! The `noop` kernel: echoes its input. `greenmesh bench kernels` times it to
//! measure the sandbox's own per-task cost (instantiate, copy in, copy out).

use greenmesh_kernel::{Description, Kernel, KernelError, Payload};

pub struct Noop;

impl Kernel for Noop {
    fn describe() -> Description {
        Description {
            name: "noop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Returns its input unchanged.".into(),
            input_types: vec!["*/*".into()],
            output_types: vec!["*/*".into()],
            params: "{}".into(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(input: Payload, _params: &str) -> Result<Payload, KernelError> {
        Ok(input)
    }
}

greenmesh_kernel::export_kernel!(Noop);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_the_input() {
        let input = Payload::new("application/octet-stream", vec![1, 2, 3]);
        assert_eq!(Noop::run(input.clone(), "{}").unwrap(), input);
    }
}
