//! Sleeps a kernel cannot stretch past its lease. wasmtime-wasi's
//! `wasi:clocks/monotonic-clock` subscriptions sleep as long as asked
//! (`subscribe-duration(u64::MAX)` never wakes), and the epoch deadline
//! only fires while wasm runs: a kernel that sleeps would park its worker
//! forever. These shadow the two `subscribe-*` functions with pollables
//! that wake at the requested time, the lease's deadline, or a stop
//! (revocation, shutdown), whichever comes first; back in wasm, the epoch
//! deadline then traps the run as over its time limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable};

/// The monotonic clock's package as wasmtime-wasi links it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// How long a stopped or overdue sleeper may take to notice.
const CHECK_EVERY: Duration = Duration::from_millis(20);

/// What bounds a run's sleeps.
#[derive(Clone)]
pub struct Bound {
    /// The lease's time limit, from the run's start.
    pub deadline: Instant,
    /// Set from outside to stop the run.
    pub stop: Option<Arc<AtomicBool>>,
    /// The monotonic clock's reading now, as the kernel sees it
    /// (nanoseconds), for `subscribe-instant`.
    pub clock_now: u64,
}

/// A store whose kernels' sleeps are bounded.
pub trait Bounded: Send + 'static {
    fn table(&mut self) -> &mut ResourceTable;
    fn bound(&self) -> Bound;
}

/// A sleep that ends at `wake`, the deadline, or a stop.
struct Sleep {
    wake: Instant,
    stop: Option<Arc<AtomicBool>>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        loop {
            let now = Instant::now();
            let stopped = self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed));
            if now >= self.wake || stopped {
                return;
            }
            tokio::time::sleep((self.wake - now).min(CHECK_EVERY)).await;
        }
    }
}

fn subscribe<T: Bounded>(state: &mut T, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
    let bound = state.bound();
    let asked = Instant::now().checked_add(Duration::from_nanos(nanos));
    let wake = asked.map_or(bound.deadline, |w| w.min(bound.deadline));
    let sleep = state.table().push(Sleep {
        wake,
        stop: bound.stop,
    })?;
    wasmtime_wasi::p2::subscribe(state.table(), sleep)
}

/// Shadows `subscribe-duration` and `subscribe-instant` in `linker` (after
/// wasmtime-wasi's own were added) with lease-bounded sleeps.
pub fn bound_sleeps<T: Bounded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (nanos,): (u64,)| {
        Ok((subscribe(store.data_mut(), nanos)?,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (when,): (u64,)| {
        let state: &mut T = store.data_mut();
        let nanos = when.saturating_sub(state.bound().clock_now);
        Ok((subscribe(state, nanos)?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
