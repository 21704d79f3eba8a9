//! The data each wasmtime `Store` carries: WASI, wasi-http and capability state.

use crate::capability::outbound_http::OutboundHooks;
use crate::capability::ComponentCapabilities;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Per-instance state: created fresh for every request.
pub struct InstanceState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    /// Memory limits checked by wasmtime's store limiter (all of the
    /// instance's memories together).
    pub limits: crate::sandbox::MemoryLimiter,
    /// Outbound HTTP checks for this component.
    pub hooks: OutboundHooks,
    /// What this component was granted, and the shared backends.
    pub capabilities: Arc<ComponentCapabilities>,
    /// The Postgres sessions this instance holds, one per address.
    pub postgres: crate::capability::postgres::Sessions,
}

impl InstanceState {
    /// Fresh state for one instance of the component `capabilities` describes.
    pub fn new(
        capabilities: Arc<ComponentCapabilities>,
        limits: crate::sandbox::MemoryLimiter,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        wasi.wall_clock(capabilities.resources.clock.clone());
        for (k, v) in &capabilities.environment {
            wasi.env(k, v);
        }
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits,
            hooks: OutboundHooks {
                component_id: capabilities.component_id.clone(),
                allowed: capabilities.allowed_hosts.clone(),
            },
            capabilities,
            postgres: Default::default(),
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
