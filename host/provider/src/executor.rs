//! The kernel sandbox: runs one micro-task kernel under a lease's limits.
//!
//! A kernel gets no filesystem, network or environment: its WASI context has
//! no preopens, no sockets, no variables or arguments, empty stdin, and
//! stdout/stderr captured to a small buffer (stderr is how a panicking Rust
//! kernel says why). Time is bounded by an epoch deadline, work by fuel,
//! memory by a store limiter that also records the peak, and the output by
//! a size cap; a run can be stopped from outside at the next epoch tick
//! (a revoked lease, [`RunLimits::stop`]). In deterministic mode clocks stand still at the Unix epoch,
//! randomness is a fixed function of the lease, and Cranelift canonicalises
//! NaNs, so a rerun on another node gives the same bytes. That costs float
//! code up to several times its speed, so it is per run: a lease asks for it
//! (a requester who will verify by re-execution), or a node forces it. Its
//! engine, and each kernel's deterministic build, are made on first use.

use greenmesh_host::engine::{EpochTicker, EPOCH_TICK};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap, UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "greenmesh:kernel/micro-task",
        with: {
            "greenmesh:gpu/compute.buffer": crate::gpu::GpuBuffer,
            "greenmesh:gpu/compute.pipeline": crate::gpu::GpuPipeline,
        },
    });
}

use super::gpu::{Gpu, GpuBuffer, GpuError, GpuLimits, GpuPipeline, Session};
use generated::exports::greenmesh::kernel::kernel::{Description, Error as KernelError, Payload};
use generated::greenmesh::gpu::compute as wit_gpu;
pub use generated::greenmesh::kernel::types::GpuUse;
use generated::MicroTaskPre;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Resource};

/// Kernel instances alive at once (running tasks, describe calls, rescans).
const POOLED_INSTANCES: u32 = 32;

/// Bytes of each freed kernel memory reset in place rather than unmapped,
/// so the next task does not fault its working set in again.
const KEEP_RESIDENT_BYTES: usize = 32 << 20;

/// Bytes of a kernel's stdout and stderr kept (the rest is dropped).
const CAPTURED_OUTPUT_BYTES: usize = 16 << 10;

/// What one run may use (from the lease and the node's own caps).
#[derive(Debug, Clone)]
pub struct RunLimits {
    pub timeout: Duration,
    pub max_memory_bytes: usize,
    pub fuel: u64,
    pub max_output_bytes: usize,
    /// GPU dispatches allowed (GPU buffers count against `max_memory_bytes`,
    /// GPU waits against `timeout`).
    pub max_gpu_dispatches: u32,
    /// Run in deterministic mode (NaN canonicalisation, frozen clocks,
    /// seeded randomness).
    pub deterministic: bool,
    /// Seeds `wasi:random` in deterministic mode (e.g. the lease nonce's hash).
    pub seed: [u8; 32],
    /// Set from outside to stop the run at the next epoch tick (the lease
    /// was revoked); the run ends with [`RunError::Stopped`].
    pub stop: Option<Arc<AtomicBool>>,
    /// The one dataset the kernel may read (`greenmesh:kernel/dataset`):
    /// the one the lease names, or none.
    pub dataset: Option<Arc<greenmesh_fl::data::Dataset>>,
}

impl RunLimits {
    /// Limits that only bound memory (and allow ten minutes): for
    /// benchmarks and tests that measure or compare, not police, a kernel.
    pub fn measuring(max_memory_bytes: usize) -> Self {
        Self {
            timeout: Duration::from_secs(600),
            max_memory_bytes,
            fuel: u64::MAX / 2,
            max_output_bytes: 256 << 20,
            max_gpu_dispatches: 1_000,
            deterministic: false,
            seed: [0; 32],
            stop: None,
            dataset: None,
        }
    }
}

/// The deterministic-mode seed for a lease's seed (or, on a lease from
/// before seeds, its nonce): its SHA-256.
pub fn deterministic_seed(seed: &str) -> [u8; 32] {
    let hex = greenmesh_protocol::sha256_hex(seed.as_bytes());
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    out
}

/// Why a run produced no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The kernel answered with an error.
    Kernel {
        kind: &'static str,
        message: String,
    },
    Timeout {
        limit_ms: u64,
    },
    OutOfFuel {
        fuel: u64,
    },
    MemoryLimit {
        limit_bytes: usize,
    },
    OutputTooLarge {
        size: usize,
        limit: usize,
    },
    StackOverflow,
    /// Stopped from outside (the lease was revoked) before it finished.
    Stopped,
    /// Any other trap (a panic, `unreachable`, a bad memory access, ...).
    Trap(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Kernel { kind, message } => write!(f, "kernel error ({kind}): {message}"),
            RunError::Timeout { limit_ms } => {
                write!(f, "time limit: still running after {limit_ms} ms; stopped")
            }
            RunError::OutOfFuel { fuel } => {
                write!(f, "fuel limit: used all {fuel} units of fuel; stopped")
            }
            RunError::MemoryLimit { limit_bytes } => write!(
                f,
                "memory limit: tried to grow linear memory past {} MiB; stopped",
                limit_bytes >> 20
            ),
            RunError::OutputTooLarge { size, limit } => write!(
                f,
                "output limit: the kernel returned {size} bytes; at most {limit} are allowed"
            ),
            RunError::StackOverflow => write!(f, "stack overflow; stopped"),
            RunError::Stopped => write!(f, "stopped on request before it finished"),
            RunError::Trap(m) => write!(f, "trapped: {m}"),
        }
    }
}

impl RunError {
    /// Whose fault this failure is. Only a submitted module
    /// (`wasm_execution`) is the requester's code: its traps, errors and
    /// limits hit are the requester's fault. A failure of the node's own
    /// installed kernel is the node's (input the node could not even parse
    /// is judged before the run, in the agent).
    pub fn fault(&self, submitted_module: bool) -> greenmesh_protocol::Fault {
        use greenmesh_protocol::Fault;
        match self {
            RunError::Stopped => Fault::Node,
            _ if submitted_module => Fault::Requester,
            _ => Fault::Node,
        }
    }
}

/// The result of one run with what it used.
#[derive(Debug)]
pub struct RunReport {
    pub outcome: Result<Output, RunError>,
    pub duration: Duration,
    pub peak_memory_bytes: u64,
    pub fuel_used: u64,
    /// What the kernel wrote to stdout and stderr (capped).
    pub log: String,
}

impl RunReport {
    /// A run the caller gave up waiting for after `after`: over its time limit.
    pub fn abandoned(after: Duration) -> Self {
        Self {
            outcome: Err(RunError::Timeout {
                limit_ms: after.as_millis() as u64,
            }),
            duration: after,
            peak_memory_bytes: 0,
            fuel_used: 0,
            log: String::new(),
        }
    }
}

/// A kernel's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// The engines and linkers every kernel run shares: one per mode.
pub struct Sandbox {
    fast: Mode,
    /// Built on the first deterministic run.
    deterministic: OnceLock<Result<Mode, String>>,
    max_memory_bytes: usize,
    gpu: Option<Arc<Gpu>>,
}

/// One way of compiling kernels: an engine (NaN canonicalisation on or
/// off), the linker for it and the epoch ticker that drives its deadlines.
struct Mode {
    engine: Engine,
    linker: Linker<KernelState>,
    deterministic: bool,
    _ticker: EpochTicker,
}

/// A compiled kernel, ready to instantiate in either mode.
#[derive(Clone)]
pub struct Prepared {
    fast: MicroTaskPre<KernelState>,
    /// The component's bytes, for the deterministic build.
    wasm: Arc<[u8]>,
    deterministic: Arc<OnceLock<Result<MicroTaskPre<KernelState>, String>>>,
}

/// Per-run store data.
pub struct KernelState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: PeakLimiter,
    gpu: Session,
    /// Set when the run was stopped through [`RunLimits::stop`].
    stopped: bool,
    /// What `greenmesh:kernel/dataset` serves ([`RunLimits::dataset`]).
    dataset: Option<Arc<greenmesh_fl::data::Dataset>>,
    /// What bounds the kernel's sleeps (`lease_clock`).
    bound: crate::lease_clock::Bound,
    /// Where the kernel's monotonic clock counts from (`None`: frozen).
    clock_start: Option<std::time::Instant>,
}

impl crate::lease_clock::Bounded for KernelState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
    fn bound(&self) -> crate::lease_clock::Bound {
        crate::lease_clock::Bound {
            clock_now: self
                .clock_start
                .map_or(0, |s| s.elapsed().as_nanos() as u64),
            ..self.bound.clone()
        }
    }
}

impl WasiView for KernelState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the memory limit and remembers the largest size reached.
struct PeakLimiter {
    limit: usize,
    /// Bytes of every linear memory of the run together (a component may
    /// have several; each would pass a per-memory check alone).
    total: usize,
    /// Bytes of the run's GPU buffers, and of a read-back's or a write's
    /// staging copy while it exists: counted with the linear memories.
    gpu: usize,
    peak: usize,
    hit: bool,
}

impl PeakLimiter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            total: 0,
            gpu: 0,
            peak: 0,
            hit: false,
        }
    }

    /// Counts `bytes` more of GPU memory (a buffer, or a staging copy),
    /// or refuses them when memories and GPU together would pass the limit.
    fn take_gpu(&mut self, bytes: u64) -> Result<(), GpuError> {
        let all = self
            .total
            .saturating_add(self.gpu)
            .saturating_add(usize::try_from(bytes).unwrap_or(usize::MAX));
        if all > self.limit {
            return Err(GpuError::Limit(format!(
                "GPU memory: {all} bytes across the kernel's memories and GPU buffers \
                 (staging copies included), {} allowed by the lease",
                self.limit
            )));
        }
        self.gpu = all - self.total;
        self.peak = self.peak.max(all);
        Ok(())
    }

    /// Gives back `bytes` of GPU memory.
    fn give_gpu(&mut self, bytes: u64) {
        self.gpu = self
            .gpu
            .saturating_sub(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
}

impl ResourceLimiter for PeakLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called when each memory is created (from 0) and as it grows.
        let total = self.total.saturating_sub(current).saturating_add(desired);
        let all = total.saturating_add(self.gpu);
        if all > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit: {all} bytes requested across the kernel's memories and GPU buffers, {} allowed",
                self.limit
            )));
        }
        self.total = total;
        self.peak = self.peak.max(all);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The monotonic clock other runs see: nanoseconds since the run's store
/// was made (what `lease_clock` needs to turn an instant into a sleep).
struct MonotonicSince(std::time::Instant);

impl wasmtime_wasi::HostMonotonicClock for MonotonicSince {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// The clock deterministic runs see: the Unix epoch, forever.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl Mode {
    /// An engine with fuel and epochs, plus NaN canonicalisation when
    /// `deterministic`. Memories come from a pool of slots of
    /// `max_memory_bytes` (address space only).
    fn new(deterministic: bool, max_memory_bytes: usize) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.cranelift_nan_canonicalization(deterministic);
        config.max_wasm_stack(1 << 20);
        if std::env::var_os("GREENMESH_PERFMAP").is_some() {
            // `perf` can then name kernel functions (docs/benchmarks.md).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOLED_INSTANCES);
        pool.total_core_instances(POOLED_INSTANCES * 8);
        pool.total_memories(POOLED_INSTANCES * 4);
        pool.total_tables(POOLED_INSTANCES * 8);
        pool.max_memories_per_component(8);
        pool.max_tables_per_component(16);
        pool.max_core_instances_per_component(32);
        pool.max_memory_size(max_memory_bytes.max(64 << 20));
        pool.max_component_instance_size(1 << 20);
        pool.max_core_instance_size(1 << 20);
        pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
        pool.table_keep_resident(64 << 10);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        // Every WASI interface is linked, but admission refuses components
        // that import more than io/cli/clocks/random, and the context has
        // no preopens or network anyway.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        // Sleeps end at the lease's deadline, whatever the kernel asks.
        crate::lease_clock::bound_sleeps(&mut linker)?;
        generated::MicroTask::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        Ok(Self {
            _ticker: EpochTicker::start(engine.clone()),
            engine,
            linker,
            deterministic,
        })
    }

    fn prepare(&self, component: &Component) -> anyhow::Result<MicroTaskPre<KernelState>> {
        let pre: InstancePre<KernelState> = self.linker.instantiate_pre(component)?;
        Ok(MicroTaskPre::new(pre)?)
    }
}

impl Sandbox {
    /// The kernel engines: the fast one now, the deterministic one on first
    /// use. `max_memory_bytes` sizes the memory pool (address space only).
    pub fn new(max_memory_bytes: usize, gpu: Option<Arc<Gpu>>) -> anyhow::Result<Self> {
        Ok(Self {
            fast: Mode::new(false, max_memory_bytes)?,
            deterministic: OnceLock::new(),
            max_memory_bytes,
            gpu,
        })
    }

    /// The engine admission inspects components with.
    pub fn engine(&self) -> &Engine {
        &self.fast.engine
    }

    /// The GPU kernels run on, if the node has one.
    pub fn gpu(&self) -> Option<&Arc<Gpu>> {
        self.gpu.as_ref()
    }

    /// Compiles `wasm` (no admission check: see [`super::admission`]).
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<Component> {
        Ok(Component::new(&self.fast.engine, wasm)?)
    }

    /// Links a kernel compiled from `wasm` by [`Sandbox::compile`] once,
    /// for many runs.
    pub fn prepare(&self, component: &Component, wasm: &[u8]) -> anyhow::Result<Prepared> {
        Ok(Prepared {
            fast: self.fast.prepare(component)?,
            wasm: wasm.into(),
            deterministic: Arc::new(OnceLock::new()),
        })
    }

    /// The deterministic engine, built on first use.
    fn deterministic_mode(&self) -> Result<&Mode, String> {
        self.deterministic
            .get_or_init(|| Mode::new(true, self.max_memory_bytes).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The mode `limits` ask for and `kernel` built for it (compiled for
    /// the deterministic engine on first use).
    fn mode_for<'a>(
        &'a self,
        kernel: &'a Prepared,
        limits: &RunLimits,
    ) -> Result<(&'a Mode, &'a MicroTaskPre<KernelState>), RunError> {
        if !limits.deterministic {
            return Ok((&self.fast, &kernel.fast));
        }
        let unavailable =
            |e: String| RunError::Trap(format!("deterministic mode unavailable: {e}"));
        let mode = self.deterministic_mode().map_err(unavailable)?;
        let pre = kernel
            .deterministic
            .get_or_init(|| {
                let component =
                    Component::new(&mode.engine, &kernel.wasm).map_err(|e| format!("{e:#}"))?;
                mode.prepare(&component).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| unavailable(e.clone()))?;
        Ok((mode, pre))
    }

    fn store(&self, mode: &Mode, limits: &RunLimits) -> (Store<KernelState>, MemoryOutputPipe) {
        let log = MemoryOutputPipe::new(CAPTURED_OUTPUT_BYTES);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(log.clone()).stderr(log.clone());
        let clock_start = (!mode.deterministic).then(std::time::Instant::now);
        if let Some(start) = clock_start {
            wasi.monotonic_clock(MonotonicSince(start));
        }
        if mode.deterministic {
            wasi.wall_clock(FrozenClock)
                .monotonic_clock(FrozenClock)
                .secure_random(wasmtime_wasi::Deterministic::new(limits.seed.to_vec()))
                .insecure_random(wasmtime_wasi::Deterministic::new(limits.seed.to_vec()))
                .insecure_random_seed(u128::from_le_bytes(
                    limits.seed[..16].try_into().expect("16 bytes"),
                ));
        }
        let state = KernelState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: PeakLimiter::new(limits.max_memory_bytes),
            gpu: Session::new(
                self.gpu.clone(),
                GpuLimits {
                    max_buffer_bytes: limits.max_memory_bytes as u64,
                    max_dispatches: limits.max_gpu_dispatches,
                    deadline: std::time::Instant::now() + limits.timeout,
                },
            ),
            stopped: false,
            dataset: limits.dataset.clone(),
            bound: crate::lease_clock::Bound {
                deadline: std::time::Instant::now() + limits.timeout,
                stop: limits.stop.clone(),
                clock_now: 0,
            },
            clock_start,
        };
        let mut store = Store::new(&mode.engine, state);
        store.limiter(|s| &mut s.limiter);
        (store, log)
    }

    /// Asks a kernel to describe itself (small fixed limits).
    pub fn describe(&self, kernel: &Prepared) -> anyhow::Result<Description> {
        let limits = RunLimits {
            timeout: Duration::from_secs(5),
            max_memory_bytes: 64 << 20,
            fuel: 1_000_000_000,
            max_output_bytes: 1 << 20,
            max_gpu_dispatches: 0,
            deterministic: false,
            seed: [0; 32],
            stop: None,
            dataset: None,
        };
        let (mut store, _log) = self.store(&self.fast, &limits);
        store.set_fuel(limits.fuel)?;
        store.set_epoch_deadline(ticks(limits.timeout));
        store.epoch_deadline_trap();
        let bindings = kernel.fast.instantiate(&mut store)?;
        Ok(bindings
            .greenmesh_kernel_kernel()
            .call_describe(&mut store)?)
    }

    /// Runs `kernel` on `input` under `limits`. Never panics on guest
    /// misbehaviour: every limit hit or trap is a [`RunError`].
    pub fn run(
        &self,
        kernel: &Prepared,
        media_type: &str,
        input: &[u8],
        params: &str,
        limits: &RunLimits,
    ) -> RunReport {
        let started = Instant::now();
        let (mode, pre) = match self.mode_for(kernel, limits) {
            Ok(found) => found,
            Err(e) => {
                return RunReport {
                    outcome: Err(e),
                    duration: started.elapsed(),
                    peak_memory_bytes: 0,
                    fuel_used: 0,
                    log: String::new(),
                }
            }
        };
        let (mut store, log) = self.store(mode, limits);
        let outcome = Self::run_in(&mut store, pre, media_type, input, params, limits);
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data();
        let outcome = outcome.map_err(|e| {
            if state.limiter.hit {
                RunError::MemoryLimit {
                    limit_bytes: limits.max_memory_bytes,
                }
            } else if state.stopped {
                RunError::Stopped
            } else {
                e
            }
        });
        RunReport {
            outcome,
            duration: started.elapsed(),
            peak_memory_bytes: state.limiter.peak as u64,
            fuel_used,
            log: String::from_utf8_lossy(&log.contents()).into_owned(),
        }
    }

    fn run_in(
        store: &mut Store<KernelState>,
        kernel: &MicroTaskPre<KernelState>,
        media_type: &str,
        input: &[u8],
        params: &str,
        limits: &RunLimits,
    ) -> Result<Output, RunError> {
        store.set_fuel(limits.fuel).map_err(trap(limits))?;
        match &limits.stop {
            None => {
                store.set_epoch_deadline(ticks(limits.timeout));
                store.epoch_deadline_trap();
            }
            Some(stop) => {
                // Checked at every tick: a stop request, then the time limit.
                let (stop, deadline) = (stop.clone(), Instant::now() + limits.timeout);
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(move |mut ctx| {
                    if stop.load(Ordering::Relaxed) {
                        ctx.data_mut().stopped = true;
                        return Ok(UpdateDeadline::Interrupt);
                    }
                    if Instant::now() >= deadline {
                        return Ok(UpdateDeadline::Interrupt);
                    }
                    Ok(UpdateDeadline::Continue(1))
                });
            }
        }
        let bindings = kernel.instantiate(&mut *store).map_err(trap(limits))?;
        let payload = Payload {
            media_type: media_type.to_string(),
            bytes: input.to_vec(),
        };
        let answer = bindings
            .greenmesh_kernel_kernel()
            .call_run(&mut *store, &payload, params)
            .map_err(trap(limits))?;
        match answer {
            Ok(out) if out.bytes.len() > limits.max_output_bytes => Err(RunError::OutputTooLarge {
                size: out.bytes.len(),
                limit: limits.max_output_bytes,
            }),
            Ok(out) => Ok(Output {
                media_type: out.media_type,
                bytes: out.bytes,
            }),
            Err(e) => Err(kernel_error(e)),
        }
    }
}

/// Epoch ticks covering `timeout` (at least one).
fn ticks(timeout: Duration) -> u64 {
    (timeout.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1
}

fn kernel_error(e: KernelError) -> RunError {
    let (kind, message) = match e {
        KernelError::InvalidInput(m) => ("invalid input", m),
        KernelError::UnsupportedMediaType(m) => ("unsupported media type", m),
        KernelError::InvalidParams(m) => ("invalid params", m),
        KernelError::Failed(m) => ("failed", m),
    };
    RunError::Kernel { kind, message }
}

/// Classifies a wasmtime error from instantiating or calling a kernel.
fn trap(limits: &RunLimits) -> impl Fn(wasmtime::Error) -> RunError + '_ {
    move |e| match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RunError::Timeout {
            limit_ms: limits.timeout.as_millis() as u64,
        },
        Some(Trap::OutOfFuel) => RunError::OutOfFuel { fuel: limits.fuel },
        Some(Trap::StackOverflow) => RunError::StackOverflow,
        Some(other) => RunError::Trap(other.to_string()),
        None => RunError::Trap(format!("{e:#}")),
    }
}

fn gpu_error(e: GpuError) -> wit_gpu::Error {
    match e {
        GpuError::Unavailable(m) => wit_gpu::Error::Unavailable(m),
        GpuError::Limit(m) => wit_gpu::Error::Limit(m),
        GpuError::InvalidShader(m) => wit_gpu::Error::InvalidShader(m),
        GpuError::InvalidArgument(m) => wit_gpu::Error::InvalidArgument(m),
        GpuError::Device(m) => wit_gpu::Error::Device(m),
    }
}

fn bad_handle(e: wasmtime::component::ResourceTableError) -> wit_gpu::Error {
    wit_gpu::Error::InvalidArgument(format!("unknown GPU handle: {e}"))
}

impl generated::greenmesh::kernel::types::Host for KernelState {}

/// The lease's dataset, read-only: its shape and rows by range.
impl generated::greenmesh::kernel::dataset::Host for KernelState {
    fn describe(&mut self) -> Option<generated::greenmesh::kernel::dataset::Shape> {
        self.dataset.as_ref().map(|d| {
            let s = d.schema();
            generated::greenmesh::kernel::dataset::Shape {
                features: s.features as u32,
                classes: s.classes as u32,
                rows: s.rows as u64,
            }
        })
    }

    fn rows(&mut self, start: u64, count: u32) -> (Vec<f64>, Vec<u32>) {
        let Some(d) = &self.dataset else {
            return (Vec::new(), Vec::new());
        };
        let from = (start as usize).min(d.labels.len());
        let to = from
            .saturating_add(count.min(4096) as usize)
            .min(d.labels.len());
        (
            d.features[from..to].iter().flatten().copied().collect(),
            d.labels[from..to].iter().map(|&l| l as u32).collect(),
        )
    }
}

impl wit_gpu::Host for KernelState {
    fn adapter(&mut self) -> Option<wit_gpu::AdapterInfo> {
        self.gpu.adapter().map(|a| wit_gpu::AdapterInfo {
            name: a.name,
            backend: a.backend,
            max_buffer_bytes: a.max_buffer_bytes,
        })
    }

    fn create_buffer(&mut self, size: u64) -> Result<Resource<GpuBuffer>, wit_gpu::Error> {
        self.gpu.check_buffer_size(size).map_err(gpu_error)?;
        self.limiter.take_gpu(size).map_err(gpu_error)?;
        let buffer = match self.gpu.create_buffer(size) {
            Ok(buffer) => buffer,
            Err(e) => {
                self.limiter.give_gpu(size);
                return Err(gpu_error(e));
            }
        };
        self.table.push(buffer).map_err(bad_handle)
    }

    fn create_pipeline(
        &mut self,
        wgsl: String,
        entry_point: String,
    ) -> Result<Resource<GpuPipeline>, wit_gpu::Error> {
        let pipeline = self
            .gpu
            .create_pipeline(&wgsl, &entry_point)
            .map_err(gpu_error)?;
        self.table.push(pipeline).map_err(bad_handle)
    }

    fn dispatch(
        &mut self,
        pipeline: Resource<GpuPipeline>,
        bindings: Vec<Resource<GpuBuffer>>,
        workgroups: (u32, u32, u32),
    ) -> Result<(), wit_gpu::Error> {
        let pipeline = self.table.get(&pipeline).map_err(bad_handle)?;
        let buffers = bindings
            .iter()
            .map(|b| self.table.get(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad_handle)?;
        self.gpu
            .dispatch(pipeline, &buffers, workgroups)
            .map_err(gpu_error)
    }
}

impl wit_gpu::HostBuffer for KernelState {
    fn size(&mut self, buffer: Resource<GpuBuffer>) -> u64 {
        self.table.get(&buffer).map(GpuBuffer::size).unwrap_or(0)
    }

    fn write(
        &mut self,
        buffer: Resource<GpuBuffer>,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), wit_gpu::Error> {
        let buffer = self.table.get(&buffer).map_err(bad_handle)?;
        // The write's staging copy (wgpu's, and the host's copy of the
        // bytes) exists while it runs: it counts while it does, and the
        // write is flushed before it returns.
        self.limiter
            .take_gpu(data.len() as u64)
            .map_err(gpu_error)?;
        let written = self.gpu.write(buffer, offset, &data);
        self.limiter.give_gpu(data.len() as u64);
        written.map_err(gpu_error)
    }

    fn read(
        &mut self,
        buffer: Resource<GpuBuffer>,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, wit_gpu::Error> {
        let buffer = self.table.get(&buffer).map_err(bad_handle)?;
        // The staging copy exists for the read: it counts while it does.
        self.limiter.take_gpu(length).map_err(gpu_error)?;
        let read = self.gpu.read(buffer, offset, length);
        self.limiter.give_gpu(length);
        read.map_err(gpu_error)
    }

    fn drop(&mut self, buffer: Resource<GpuBuffer>) -> wasmtime::Result<()> {
        let buffer = self.table.delete(buffer)?;
        self.limiter.give_gpu(buffer.size());
        self.gpu.release(buffer);
        Ok(())
    }
}

impl wit_gpu::HostPipeline for KernelState {
    fn drop(&mut self, pipeline: Resource<GpuPipeline>) -> wasmtime::Result<()> {
        self.table.delete(pipeline)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_memories_of_95_mib_under_a_100_mb_lease_fail_on_memory() {
        let mut limiter = PeakLimiter::new(100_000_000);
        let each = 95 << 20;
        // The first memory fits; the second, alone also under the limit,
        // does not fit beside it.
        assert!(limiter.memory_growing(0, each, None).unwrap());
        assert!(limiter.memory_growing(0, each, None).is_err());
        assert!(limiter.hit);
        assert_eq!(limiter.peak, each, "peak_memory_bytes counts every memory");
        // Growth counts only what is added.
        let mut limiter = PeakLimiter::new(100 << 20);
        assert!(limiter.memory_growing(0, 10 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 10 << 20, None).unwrap());
        assert!(limiter.memory_growing(10 << 20, 80 << 20, None).unwrap());
        assert_eq!(limiter.peak, 90 << 20);
        assert!(limiter.memory_growing(10 << 20, 30 << 20, None).is_err());
    }

    #[test]
    fn gpu_buffers_and_staging_copies_count_with_the_linear_memories() {
        let mut limiter = PeakLimiter::new(100 << 20);
        assert!(limiter.memory_growing(0, 60 << 20, None).unwrap());
        // A 30 MiB buffer fits beside 60 MiB of memory...
        limiter.take_gpu(30 << 20).unwrap();
        // ...a 20 MiB read-back's staging copy does not...
        let e = format!("{:?}", limiter.take_gpu(20 << 20).unwrap_err());
        assert!(e.contains("GPU memory"), "{e}");
        // ...a 10 MiB one does, while it exists.
        limiter.take_gpu(10 << 20).unwrap();
        assert_eq!(
            limiter.peak,
            100 << 20,
            "peak_memory_bytes counts the GPU too"
        );
        limiter.give_gpu(10 << 20);
        // Memory cannot grow into what the GPU holds.
        assert!(limiter.memory_growing(60 << 20, 75 << 20, None).is_err());
        limiter.give_gpu(30 << 20);
        assert!(limiter.memory_growing(60 << 20, 75 << 20, None).unwrap());
    }
}
