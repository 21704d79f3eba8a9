//! The wasmtime `Engine`: pooling allocator, epoch interruption, compile cache.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

/// How often the epoch advances; per-request deadlines are counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of each freed linear memory kept resident and reset in place.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Most instances alive at once (concurrent requests across all components).
    pub max_instances: u32,
    /// Largest linear memory the pool can hold for one instance, in bytes.
    /// Per-component limits (`tool.greenmesh.max_memory_mb`, `--max-memory-mb`)
    /// are enforced per store below it; 4 GiB (all a 32-bit memory can
    /// address) only reserves address space, it commits nothing.
    pub max_memory_bytes: u64,
    /// Where compiled code is cached between runs; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_memory_bytes: 4 << 30,
            cache_dir: None,
        }
    }
}

/// Builds the engine every component of an app shares.
pub fn build(settings: &EngineSettings) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // wac-graph marks the private imports that stand for denied interfaces
    // with `(implements "<interface>")`; see `compose`.
    config.wasm_component_model_implements(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(2 << 20);
    if std::env::var_os("GREENMESH_PERFMAP").is_some() {
        // `perf` can then name guest functions (docs/benchmarks.md).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }

    let mut pool = PoolingAllocationConfig::new();
    let n = settings.max_instances;
    pool.total_component_instances(n);
    // A composed component holds several core instances and memories (the
    // coordinator's broker, with its five service components and their
    // adapters, about a dozen of each): sized so that `n` of them fit, and
    // `n` requests in flight never exhaust the pool (issue 21).
    pool.total_core_instances(n * 24);
    pool.total_memories(n * 16);
    pool.total_tables(n * 24);
    pool.total_stacks(n);
    pool.max_memories_per_component(16);
    pool.max_tables_per_component(32);
    pool.max_core_instances_per_component(64);
    pool.max_memory_size(settings.max_memory_bytes as usize);
    pool.max_component_instance_size(1 << 20);
    pool.max_core_instance_size(1 << 20);
    // Reset a freed instance's memory by rewriting only its dirty pages
    // (PAGEMAP_SCAN on Linux ≥ 6.7, plain memset of the low pages before)
    // instead of `madvise`, whose TLB shootdowns across cores dominated the
    // coordinator's profile: a composed request frees four memories.
    pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
    pool.table_keep_resident(64 << 10);
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    // What still needs `madvise` is flushed in batches.
    pool.decommit_batch_size(16);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    if let Some(dir) = &settings.cache_dir {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache)?));
    }
    Ok(Engine::new(&config)?)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("greenmesh-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
