//! The GPU behind `greenmesh:gpu/compute`: one wgpu device per node, shared
//! by its tasks, and a [`Session`] per task holding that task's buffers and
//! pipelines and enforcing its limits (live buffer bytes, dispatch count,
//! GPU time). Every wgpu call that can fail runs inside an error scope, and
//! the device has an uncaptured-error handler, so nothing a kernel does can
//! panic the host: invalid WGSL, oversized buffers, bad bindings or
//! workgroup counts come back as errors.

use std::sync::Arc;
use std::time::Instant;

/// `greenmesh:gpu/compute` errors (mirrors the WIT variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuError {
    Unavailable(String),
    Limit(String),
    InvalidShader(String),
    InvalidArgument(String),
    Device(String),
}

/// What a node reports about its adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub max_buffer_bytes: u64,
}

impl AdapterInfo {
    /// How the node advertises it in its capacity.
    pub fn advertised(&self) -> String {
        format!(
            "{} ({}, {} MiB buffers)",
            self.name,
            self.backend,
            self.max_buffer_bytes >> 20
        )
    }
}

/// An opened adapter and device.
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    limits: wgpu::Limits,
    pub info: AdapterInfo,
}

impl Gpu {
    /// Opens the first adapter wgpu finds (backends from `WGPU_BACKEND`, all
    /// by default); `Ok(None)` when there is none.
    pub fn open() -> anyhow::Result<Option<Arc<Gpu>>> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = match pollster::block_on(
            instance.request_adapter(&wgpu::RequestAdapterOptions::default()),
        ) {
            Ok(a) => a,
            Err(_) => return Ok(None),
        };
        let limits = adapter.limits();
        let info = adapter.get_info();
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("greenmesh kernels"),
                required_limits: limits.clone(),
                ..Default::default()
            }))?;
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            tracing::warn!("GPU error outside any task: {e}");
        }));
        Ok(Some(Arc::new(Gpu {
            info: AdapterInfo {
                name: info.name,
                backend: format!("{:?}", info.backend).to_lowercase(),
                max_buffer_bytes: limits
                    .max_buffer_size
                    .min(limits.max_storage_buffer_binding_size),
            },
            device,
            queue,
            limits,
        })))
    }

    /// Runs `f` in a validation and out-of-memory error scope.
    fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T, wgpu::Error> {
        let memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let invalid = pollster::block_on(validation.pop());
        let oom = pollster::block_on(memory.pop());
        match invalid.or(oom) {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// One task's GPU limits.
#[derive(Debug, Clone, Copy)]
pub struct GpuLimits {
    /// Bytes of buffers alive at once.
    pub max_buffer_bytes: u64,
    pub max_dispatches: u32,
    /// When the task's time is up (GPU waits stop there).
    pub deadline: Instant,
}

/// A task's buffer.
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    size: u64,
}

impl GpuBuffer {
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A task's compiled compute pipeline.
pub struct GpuPipeline {
    pipeline: wgpu::ComputePipeline,
}

/// One task's use of the GPU.
pub struct Session {
    gpu: Option<Arc<Gpu>>,
    limits: GpuLimits,
    live_bytes: u64,
    dispatches: u32,
}

fn multiple_of_4(name: &str, v: u64) -> Result<(), GpuError> {
    if v.is_multiple_of(4) {
        Ok(())
    } else {
        Err(GpuError::InvalidArgument(format!(
            "{name} {v} is not a multiple of 4"
        )))
    }
}

impl Session {
    pub fn new(gpu: Option<Arc<Gpu>>, limits: GpuLimits) -> Self {
        Self {
            gpu,
            limits,
            live_bytes: 0,
            dispatches: 0,
        }
    }

    pub fn adapter(&self) -> Option<AdapterInfo> {
        self.gpu.as_ref().map(|g| g.info.clone())
    }

    fn gpu(&self) -> Result<Arc<Gpu>, GpuError> {
        self.gpu
            .clone()
            .ok_or_else(|| GpuError::Unavailable("this node has no GPU adapter".into()))
    }

    /// Waits for submitted work until the task's deadline.
    fn wait(&self, gpu: &Gpu, index: wgpu::SubmissionIndex) -> Result<(), GpuError> {
        let timeout = self
            .limits
            .deadline
            .saturating_duration_since(Instant::now());
        match gpu.device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: Some(timeout),
        }) {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(GpuError::Limit(
                "GPU time: the work did not finish within the lease's time limit".into(),
            )),
            Err(e) => Err(GpuError::Device(e.to_string())),
        }
    }

    /// Checks a buffer size is one this adapter can make.
    pub fn check_buffer_size(&self, size: u64) -> Result<(), GpuError> {
        let gpu = self.gpu()?;
        multiple_of_4("buffer size", size)?;
        if size == 0 || size > gpu.info.max_buffer_bytes {
            return Err(GpuError::InvalidArgument(format!(
                "buffer size {size}: must be 4 to {} bytes on this adapter",
                gpu.info.max_buffer_bytes
            )));
        }
        Ok(())
    }

    pub fn create_buffer(&mut self, size: u64) -> Result<GpuBuffer, GpuError> {
        let gpu = self.gpu()?;
        self.check_buffer_size(size)?;
        if self.live_bytes + size > self.limits.max_buffer_bytes {
            return Err(GpuError::Limit(format!(
                "GPU memory: {} bytes already in buffers, {size} more exceeds the lease's {}",
                self.live_bytes, self.limits.max_buffer_bytes
            )));
        }
        let buffer = gpu
            .scoped(|| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::UNIFORM
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .map_err(|e| GpuError::Device(e.to_string()))?;
        self.live_bytes += size;
        Ok(GpuBuffer { buffer, size })
    }

    pub fn release(&mut self, buffer: GpuBuffer) {
        self.live_bytes = self.live_bytes.saturating_sub(buffer.size);
        buffer.buffer.destroy();
    }

    pub fn write(&self, buffer: &GpuBuffer, offset: u64, data: &[u8]) -> Result<(), GpuError> {
        let gpu = self.gpu()?;
        multiple_of_4("offset", offset)?;
        multiple_of_4("write length", data.len() as u64)?;
        if offset + data.len() as u64 > buffer.size {
            return Err(GpuError::InvalidArgument(format!(
                "writing {} bytes at {offset} overruns a {}-byte buffer",
                data.len(),
                buffer.size
            )));
        }
        gpu.scoped(|| {
            gpu.queue.write_buffer(&buffer.buffer, offset, data);
            // Flush the staging copy now rather than at the next dispatch:
            // it is counted against the lease only while the write runs.
            gpu.queue.submit(std::iter::empty());
        })
        .map_err(|e| GpuError::InvalidArgument(e.to_string()))
    }

    pub fn read(&self, buffer: &GpuBuffer, offset: u64, length: u64) -> Result<Vec<u8>, GpuError> {
        let gpu = self.gpu()?;
        multiple_of_4("offset", offset)?;
        multiple_of_4("read length", length)?;
        if length == 0 || offset + length > buffer.size {
            return Err(GpuError::InvalidArgument(format!(
                "reading {length} bytes at {offset} is outside a {}-byte buffer",
                buffer.size
            )));
        }
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: length,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&buffer.buffer, offset, &staging, 0, length);
        let index = gpu.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(&gpu, index)?;
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GpuError::Device(e.to_string())),
            Err(_) => return Err(GpuError::Device("read-back did not complete".into())),
        }
        let bytes = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Device(e.to_string()))?
            .to_vec();
        staging.unmap();
        staging.destroy();
        Ok(bytes)
    }

    pub fn create_pipeline(
        &mut self,
        wgsl: &str,
        entry_point: &str,
    ) -> Result<GpuPipeline, GpuError> {
        let gpu = self.gpu()?;
        // Parse and validate first, so a bad shader is named as such.
        let module = gpu
            .scoped(|| {
                gpu.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: None,
                        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
                    })
            })
            .map_err(|e| GpuError::InvalidShader(e.to_string()))?;
        let pipeline = gpu
            .scoped(|| {
                gpu.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: None,
                        layout: None,
                        module: &module,
                        entry_point: Some(entry_point),
                        compilation_options: Default::default(),
                        cache: None,
                    })
            })
            .map_err(|e| GpuError::InvalidShader(e.to_string()))?;
        Ok(GpuPipeline { pipeline })
    }

    pub fn dispatch(
        &mut self,
        pipeline: &GpuPipeline,
        bindings: &[&GpuBuffer],
        (x, y, z): (u32, u32, u32),
    ) -> Result<(), GpuError> {
        let gpu = self.gpu()?;
        if self.dispatches >= self.limits.max_dispatches {
            return Err(GpuError::Limit(format!(
                "dispatches: the lease allows {}",
                self.limits.max_dispatches
            )));
        }
        let most = gpu.limits.max_compute_workgroups_per_dimension;
        if x > most || y > most || z > most {
            return Err(GpuError::InvalidArgument(format!(
                "workgroups ({x}, {y}, {z}): at most {most} per dimension on this adapter"
            )));
        }
        self.dispatches += 1;
        let index = gpu
            .scoped(|| {
                let layout = pipeline.pipeline.get_bind_group_layout(0);
                let entries: Vec<wgpu::BindGroupEntry> = bindings
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource: b.buffer.as_entire_binding(),
                    })
                    .collect();
                let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &layout,
                    entries: &entries,
                });
                let mut encoder = gpu.device.create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&pipeline.pipeline);
                    pass.set_bind_group(0, &group, &[]);
                    pass.dispatch_workgroups(x, y, z);
                }
                gpu.queue.submit([encoder.finish()])
            })
            .map_err(|e| GpuError::InvalidArgument(e.to_string()))?;
        self.wait(&gpu, index)
    }
}
