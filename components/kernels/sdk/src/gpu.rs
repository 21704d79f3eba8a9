//! GPU compute for kernels: storage buffers, WGSL compute pipelines,
//! dispatch and read-back, through the host's `greenmesh:gpu/compute`
//! (wgpu). In native builds (tests, benchmarks) there is no host: every
//! call answers [`GpuError::Unavailable`], so kernels take their CPU path.

/// The node's adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    pub name: String,
    pub backend: String,
    pub max_buffer_bytes: u64,
}

/// Why a GPU call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuError {
    Unavailable(String),
    Limit(String),
    InvalidShader(String),
    InvalidArgument(String),
    Device(String),
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuError::Unavailable(m) => write!(f, "no GPU: {m}"),
            GpuError::Limit(m) => write!(f, "GPU limit: {m}"),
            GpuError::InvalidShader(m) => write!(f, "invalid shader: {m}"),
            GpuError::InvalidArgument(m) => write!(f, "invalid GPU argument: {m}"),
            GpuError::Device(m) => write!(f, "GPU device error: {m}"),
        }
    }
}

impl std::error::Error for GpuError {}

impl From<GpuError> for crate::KernelError {
    fn from(e: GpuError) -> Self {
        crate::KernelError::Failed(e.to_string())
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Adapter, GpuError};
    use crate::bindings::greenmesh::gpu::compute as wit;

    pub struct Buffer(wit::Buffer);
    pub struct Pipeline(wit::Pipeline);

    fn error(e: wit::Error) -> GpuError {
        match e {
            wit::Error::Unavailable(m) => GpuError::Unavailable(m),
            wit::Error::Limit(m) => GpuError::Limit(m),
            wit::Error::InvalidShader(m) => GpuError::InvalidShader(m),
            wit::Error::InvalidArgument(m) => GpuError::InvalidArgument(m),
            wit::Error::Device(m) => GpuError::Device(m),
        }
    }

    pub fn adapter() -> Option<Adapter> {
        wit::adapter().map(|a| Adapter {
            name: a.name,
            backend: a.backend,
            max_buffer_bytes: a.max_buffer_bytes,
        })
    }

    impl Buffer {
        pub fn new(size: u64) -> Result<Self, GpuError> {
            wit::create_buffer(size).map(Buffer).map_err(error)
        }
        pub fn size(&self) -> u64 {
            self.0.size()
        }
        pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), GpuError> {
            self.0.write(offset, data).map_err(error)
        }
        pub fn read(&self, offset: u64, length: u64) -> Result<Vec<u8>, GpuError> {
            self.0.read(offset, length).map_err(error)
        }
    }

    impl Pipeline {
        pub fn new(wgsl: &str, entry_point: &str) -> Result<Self, GpuError> {
            wit::create_pipeline(wgsl, entry_point)
                .map(Pipeline)
                .map_err(error)
        }
    }

    pub fn dispatch(
        pipeline: &Pipeline,
        bindings: &[&Buffer],
        workgroups: (u32, u32, u32),
    ) -> Result<(), GpuError> {
        let bindings: Vec<&wit::Buffer> = bindings.iter().map(|b| &b.0).collect();
        wit::dispatch(&pipeline.0, &bindings, workgroups).map_err(error)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Adapter, GpuError};

    fn unavailable() -> GpuError {
        GpuError::Unavailable("native build: no kernel host".into())
    }

    /// Never constructed natively.
    pub struct Buffer(std::convert::Infallible);
    /// Never constructed natively.
    pub struct Pipeline(std::convert::Infallible);

    pub fn adapter() -> Option<Adapter> {
        None
    }

    impl Buffer {
        pub fn new(_size: u64) -> Result<Self, GpuError> {
            Err(unavailable())
        }
        pub fn size(&self) -> u64 {
            match self.0 {}
        }
        pub fn write(&self, _offset: u64, _data: &[u8]) -> Result<(), GpuError> {
            match self.0 {}
        }
        pub fn read(&self, _offset: u64, _length: u64) -> Result<Vec<u8>, GpuError> {
            match self.0 {}
        }
    }

    impl Pipeline {
        pub fn new(_wgsl: &str, _entry_point: &str) -> Result<Self, GpuError> {
            Err(unavailable())
        }
    }

    pub fn dispatch(
        pipeline: &Pipeline,
        _bindings: &[&Buffer],
        _workgroups: (u32, u32, u32),
    ) -> Result<(), GpuError> {
        match pipeline.0 {}
    }
}

/// Where a kernel with a GPU path runs it: the `device` param such kernels
/// take (`"auto"`, `"cpu"` or `"gpu"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The GPU when the node has one, else the CPU path.
    #[default]
    Auto,
    Cpu,
    /// The GPU or fail.
    Gpu,
}

impl Device {
    /// Whether to take the GPU path.
    pub fn use_gpu(self) -> bool {
        match self {
            Device::Cpu => false,
            Device::Gpu => true,
            Device::Auto => adapter().is_some(),
        }
    }
}

/// The node's adapter; `None` on GPU-less nodes (and natively).
pub fn adapter() -> Option<Adapter> {
    imp::adapter()
}

pub use imp::{dispatch, Buffer, Pipeline};

/// `f32`s as the little-endian bytes buffers hold.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian bytes back to `f32`s.
pub fn bytes_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
