//! The kernel SDK: a kernel is a type implementing [`Kernel`], exported to the
//! `greenmesh:kernel/micro-task@0.1.0` world with [`export_kernel!`].
//!
//! The same code builds natively (tests, and the native side of
//! `greenmesh bench kernels`) and for `wasm32-wasip2`, where the macro adds
//! the component glue. Kernels stay pure: bytes in, bytes out.

use serde::de::DeserializeOwned;

pub mod dataset;
pub mod fft;
pub mod gpu;
pub mod lanes;

/// Bytes and their media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Payload {
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.into(),
            bytes,
        }
    }
}

/// What a kernel is (see `wit/kernel.wit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub input_types: Vec<String>,
    pub output_types: Vec<String>,
    /// `{name: {"default": ..., "doc": "..."}}` as JSON.
    pub params: String,
    pub gpu: GpuUse,
}

/// How a kernel uses the GPU (see `wit/kernel.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuUse {
    None,
    /// Uses the GPU when the node has one, with a CPU path otherwise.
    Optional,
    /// Only runs with a GPU.
    Required,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    InvalidInput(String),
    UnsupportedMediaType(String),
    InvalidParams(String),
    Failed(String),
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            KernelError::UnsupportedMediaType(m) => write!(f, "unsupported media type: {m}"),
            KernelError::InvalidParams(m) => write!(f, "invalid params: {m}"),
            KernelError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for KernelError {}

/// A micro-task kernel.
pub trait Kernel {
    fn describe() -> Description;
    fn run(input: Payload, params: &str) -> Result<Payload, KernelError>;
}

/// Parses `params` (a JSON object; empty means `{}`) into `T`. Give `T`
/// `#[serde(default, deny_unknown_fields)]` so that defaults apply and a
/// misspelt option is an error rather than silently ignored.
pub fn params<T: DeserializeOwned>(params: &str) -> Result<T, KernelError> {
    let text = if params.trim().is_empty() {
        "{}"
    } else {
        params
    };
    serde_json::from_str(text).map_err(|e| KernelError::InvalidParams(e.to_string()))
}

/// Refuses any media type but the listed ones.
pub fn expect_media_type(input: &Payload, accepted: &[&str]) -> Result<(), KernelError> {
    if accepted.contains(&input.media_type.as_str()) {
        Ok(())
    } else {
        Err(KernelError::UnsupportedMediaType(format!(
            "{:?}; this kernel reads {}",
            input.media_type,
            accepted.join(", ")
        )))
    }
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "greenmesh:kernel/micro-task@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "greenmesh_kernel::bindings",
        generate_all,
    });
}

/// Conversions between the SDK's types and the generated bindings.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue {
    use super::bindings::greenmesh::kernel::types as wit;
    use super::{Description, GpuUse, Kernel, KernelError, Payload};

    pub fn describe<K: Kernel>() -> wit::Description {
        let Description {
            name,
            version,
            summary,
            input_types,
            output_types,
            params,
            gpu,
        } = K::describe();
        wit::Description {
            name,
            version,
            summary,
            input_types,
            output_types,
            params,
            gpu: match gpu {
                GpuUse::None => wit::GpuUse::None,
                GpuUse::Optional => wit::GpuUse::Optional,
                GpuUse::Required => wit::GpuUse::Required,
            },
        }
    }

    pub fn run<K: Kernel>(input: wit::Payload, params: String) -> Result<wit::Payload, wit::Error> {
        let input = Payload {
            media_type: input.media_type,
            bytes: input.bytes,
        };
        match K::run(input, &params) {
            Ok(out) => Ok(wit::Payload {
                media_type: out.media_type,
                bytes: out.bytes,
            }),
            Err(KernelError::InvalidInput(m)) => Err(wit::Error::InvalidInput(m)),
            Err(KernelError::UnsupportedMediaType(m)) => Err(wit::Error::UnsupportedMediaType(m)),
            Err(KernelError::InvalidParams(m)) => Err(wit::Error::InvalidParams(m)),
            Err(KernelError::Failed(m)) => Err(wit::Error::Failed(m)),
        }
    }
}

/// Exports a [`Kernel`] as the component's `greenmesh:kernel/kernel`
/// interface (a no-op in native builds).
#[macro_export]
macro_rules! export_kernel {
    ($kernel:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::bindings::exports::greenmesh::kernel::kernel::Guest for Export {
                fn describe() -> $crate::bindings::greenmesh::kernel::types::Description {
                    $crate::glue::describe::<$kernel>()
                }
                fn run(
                    input: $crate::bindings::greenmesh::kernel::types::Payload,
                    params: ::std::string::String,
                ) -> ::std::result::Result<
                    $crate::bindings::greenmesh::kernel::types::Payload,
                    $crate::bindings::greenmesh::kernel::types::Error,
                > {
                    $crate::glue::run::<$kernel>(input, params)
                }
            }
    $crate::bindings::export!(Export with_types_in $crate::bindings);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct P {
        sigma: f32,
    }
    impl Default for P {
        fn default() -> Self {
            P { sigma: 1.0 }
        }
    }

    #[test]
    fn params_apply_defaults_and_refuse_unknown_options() {
        assert_eq!(params::<P>("").unwrap(), P { sigma: 1.0 });
        assert_eq!(params::<P>(r#"{"sigma": 2}"#).unwrap(), P { sigma: 2.0 });
        let err = params::<P>(r#"{"sigm": 2}"#).unwrap_err();
        assert!(matches!(err, KernelError::InvalidParams(m) if m.contains("sigm")));
    }

    #[test]
    fn media_types_outside_the_list_are_refused() {
        let p = Payload::new("image/jpeg", vec![]);
        let err = expect_media_type(&p, &["image/png"]).unwrap_err();
        assert!(matches!(err, KernelError::UnsupportedMediaType(m) if m.contains("image/png")));
        assert!(expect_media_type(&Payload::new("image/png", vec![]), &["image/png"]).is_ok());
    }
}
