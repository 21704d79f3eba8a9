//! The provider's loops: register, heartbeat, rescan the kernel folder,
//! long-poll for leases, run them, and report receipts until they stick.
//! A lease the coordinator revokes (its heartbeat and lease-poll answers
//! carry signed revocations) is stopped at the sandbox's next epoch tick,
//! or never started, and reported with a `stopped` receipt.

use super::admission;
use super::catalog::{self, Catalog};
use super::config::ProviderConfig;
use super::energy::EnergyReport;
use super::executor::{Prepared, RunError, RunLimits, Sandbox};
use super::journal::{Journal, State};
use super::task_io::{self, Data};
use super::{identity, lease_check};
use anyhow::Context;
use greenmesh_client::node::{now_ms, Signed};
use greenmesh_client::{Client, NodeClient, Retry};
use greenmesh_protocol::ed25519_compact::{KeyPair, PublicKey};
use greenmesh_protocol::{Lease, Receipt, ReceiptStatus, Revocation};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

/// The capability name for requester-supplied components.
pub const WASM_EXECUTION: &str = "wasm_execution";

/// The federated-training kernel's capability: its runs read the dataset
/// their lease names.
pub const FL_TRAIN: &str = "fl-train";

/// How long past its time limit a run may take to come back from the
/// sandbox before the agent abandons it.
const RUN_MARGIN: Duration = Duration::from_secs(5);

/// How long a stopping node lets running tasks finish before it stops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Waits for every worker.
async fn futures_join(workers: Vec<tokio::task::JoinHandle<()>>) {
    for w in workers {
        let _ = w.await;
    }
}

/// `wasm_execution` modules kept compiled, by SHA-256.
const MODULE_CACHE: usize = 16;

/// A lease as delivered, with its input text.
struct Job {
    lease: Lease,
    input: String,
}

/// Shared state of a running provider.
struct Agent {
    config: ProviderConfig,
    key: KeyPair,
    sandbox: Sandbox,
    catalog: RwLock<Catalog>,
    coordinator: NodeClient,
    journal: Journal,
    broker: PublicKey,
    running: AtomicUsize,
    modules: Mutex<HashMap<String, Prepared>>,
    /// Compile slots for submitted modules, abandoned compiles included
    /// ([`catalog::MAX_COMPILES`]).
    compiles: Arc<tokio::sync::Semaphore>,
    /// Last heartbeat round trip, ms.
    latency_ms: Mutex<Option<f64>>,
    /// Fixed settings, or a carbon trace replayed on the real clock.
    energy: EnergyReport,
    /// Stop switches of leases running or queued here, and of leases the
    /// coordinator revoked (with why), by lease id.
    stops: Mutex<HashMap<String, StopSwitch>>,
    /// Datasets held for federated training (read at start).
    datasets: Vec<crate::datasets::LocalDataset>,
}

/// One lease's stop switch.
struct StopSwitch {
    flag: Arc<AtomicBool>,
    /// Why it was revoked, once it was.
    reason: Option<String>,
    since: Instant,
}

/// Stop switches of leases this node never ran are forgotten after this long.
const FORGET_STOPS_AFTER: Duration = Duration::from_secs(3600);

/// Runs a provider until `shutdown` resolves; then hands back leases it has
/// not started, finishes the running ones and reports them.
pub async fn run(
    config: ProviderConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if !config.enabled {
        info!("MESH_ENABLED is false: not joining the mesh");
        return Ok(());
    }
    let token = config.token.clone().context(
        "provide needs its owner's API token: --token or GREENMESH_TOKEN (from `greenmesh user register`)",
    )?;
    let energy = EnergyReport::load(&config)?;
    let key = identity::node_key(&config.data_dir, &config.peer_id)?;
    let gpu = if config.gpu {
        super::gpu::Gpu::open()?
    } else {
        None
    };
    match &gpu {
        Some(g) => {
            info!(adapter = %g.info.name, backend = %g.info.backend, "GPU available to kernels")
        }
        None => info!("no GPU: kernels run on the CPU"),
    }
    let sandbox = Sandbox::new((config.memory_mb as usize) << 20, gpu)?;
    let (catalog, problems) = catalog::scan(&sandbox, &config.kernel_dir);
    for p in &problems {
        warn!("kernel not installed: {p}");
    }
    let journal = Journal::open(&config.data_dir)?;
    let mut coordinator = NodeClient::new(
        Client::new(&config.coordinator, &config.client_options())?,
        &token,
        key.clone(),
    );
    let offered = wait_for_broker_key(&coordinator).await?;
    let broker = identity::broker_key(
        &config.data_dir,
        config.broker_public_key.as_deref(),
        &offered,
    )?;
    let gpu_name = sandbox.gpu().map(|g| g.info.advertised());
    let datasets = crate::datasets::load_all(&config)?;
    let node_id = register(
        &coordinator,
        &config,
        &energy.json(&config, now_ms()),
        &key,
        (&catalog, &datasets),
        gpu_name.as_deref(),
    )
    .await?;
    coordinator.set_node_id(&node_id);
    info!(
        node = %node_id,
        peer_id = %config.peer_id,
        timezone = %config.timezone,
        kernels = %catalog.kernels.keys().cloned().collect::<Vec<_>>().join(", "),
        "registered with {}",
        config.coordinator
    );
    let agent = Arc::new(Agent {
        config,
        key,
        sandbox,
        catalog: RwLock::new(catalog),
        coordinator,
        journal,
        broker,
        running: AtomicUsize::new(0),
        modules: Mutex::new(HashMap::new()),
        compiles: Arc::new(tokio::sync::Semaphore::new(catalog::MAX_COMPILES)),
        latency_ms: Mutex::new(None),
        energy,
        stops: Mutex::new(HashMap::new()),
        datasets,
    });
    agent.hand_back_interrupted().await;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel::<Job>();
    let jobs_rx = Arc::new(tokio::sync::Mutex::new(jobs_rx));

    let background = vec![
        tokio::spawn(agent.clone().heartbeats(stop_rx.clone())),
        tokio::spawn(agent.clone().rescans(stop_rx.clone())),
        tokio::spawn(agent.clone().report_pending(stop_rx.clone())),
    ];
    let mut workers = Vec::new();
    for _ in 0..agent.config.max_concurrent {
        workers.push(tokio::spawn(
            agent.clone().work(jobs_rx.clone(), stop_rx.clone()),
        ));
    }
    agent.clone().poll(jobs_tx, stop_rx.clone()).await;

    info!("stopping: finishing running tasks, handing back unstarted leases");
    // Running tasks get a grace to finish; then they are stopped, whatever
    // their kernels do, and reported `stopped`.
    let mut workers = std::pin::pin!(futures_join(workers));
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut workers)
        .await
        .is_err()
    {
        warn!("tasks still running after {SHUTDOWN_GRACE:?}: stopping them");
        agent.stop_all("the node is shutting down");
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut workers).await;
    }
    let mut rx = jobs_rx.lock().await;
    while let Ok(job) = rx.try_recv() {
        agent
            .refuse(
                &job.lease,
                "the node is shutting down; lease handed back unstarted",
            )
            .await;
    }
    agent.report_all().await;
    for b in background {
        b.abort();
    }
    info!("stopped");
    Ok(())
}

/// The broker's public key, retrying until the coordinator answers.
async fn wait_for_broker_key(c: &NodeClient) -> anyhow::Result<String> {
    let mut delay = Duration::from_millis(200);
    let mut waited = Duration::ZERO;
    loop {
        match c.public("GET", "/api/v1/keys/broker").await {
            Ok((200, v)) => {
                return v["public_key"]
                    .as_str()
                    .map(str::to_string)
                    .context("the coordinator's /keys/broker has no public_key")
            }
            Ok((status, v)) => anyhow::bail!("GET /api/v1/keys/broker: {status} {v}"),
            Err(e) if waited < Duration::from_secs(60) => {
                if waited.is_zero() {
                    warn!("coordinator not reachable yet ({e:#}); retrying");
                }
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context("the coordinator did not answer for 60 s"))
            }
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Registers (or updates) the node with what its catalog offers.
async fn register(
    c: &NodeClient,
    config: &ProviderConfig,
    energy: &Value,
    key: &KeyPair,
    (catalog, datasets): (&Catalog, &[crate::datasets::LocalDataset]),
    gpu: Option<&str>,
) -> anyhow::Result<String> {
    // Every installed kernel is offered; the allow-list (sent beside them)
    // says which anyone may lease, and owner-signed grants open the rest
    // to named users (docs/governance.md).
    let mut capabilities: Vec<Value> = catalog
        .kernels
        .values()
        .map(|k| {
            json!({
                "name": k.name, "price": config.price(&k.name),
                "input_types": k.input_types, "output_types": k.output_types,
                "max_input_bytes": config.max_input_bytes,
                // Its receipts carry this hash; the broker refuses others.
                "sha256": k.sha256,
            })
        })
        .collect();
    if config.wasm_execution {
        capabilities.push(json!({
            "name": WASM_EXECUTION, "price": config.price(WASM_EXECUTION),
            "input_types": ["*/*"], "output_types": ["*/*"],
            "max_input_bytes": config.max_input_bytes,
        }));
    }
    let body = json!({
        "name": config.name,
        "region": config.location,
        "public_key": identity::public_hex(key),
        "capabilities": capabilities,
        "capacity": { "cpu_cores": config.cpu_cores, "memory_mb": config.memory_mb, "gpu": gpu },
        "energy": energy,
        "allowed_tasks": config.allowed_tasks,
        // Receipts report device_power_watts × run time: that is the most
        // this device draws. Own generation backs a clean share beyond the
        // grid's.
        "power": {
            "max_watts": config.device_power_watts,
            "own_generation_watts": config.own_generation_watts,
        },
        // Name and shape only: the rows stay here.
        "datasets": datasets
            .iter()
            .map(crate::datasets::LocalDataset::advertised)
            .collect::<Vec<_>>(),
    });
    let (status, v) = c.as_owner("POST", "/api/v1/nodes", &body).await?;
    anyhow::ensure!(
        status == 200 || status == 201,
        "registering the node: {status}: {}",
        greenmesh_client::error_message(&v)
    );
    v["id"]
        .as_str()
        .map(str::to_string)
        .context("registration answered without a node id")
}

impl Agent {
    fn kernel_names(&self) -> Vec<String> {
        self.catalog
            .read()
            .expect("catalog lock")
            .kernels
            .keys()
            .cloned()
            .collect()
    }

    fn installed(&self, capability: &str) -> lease_check::Installed {
        if capability == WASM_EXECUTION && self.config.wasm_execution {
            return lease_check::Installed::AnyModule;
        }
        match self
            .catalog
            .read()
            .expect("catalog lock")
            .kernels
            .get(capability)
        {
            Some(k) => lease_check::Installed::Kernel(k.sha256.clone()),
            None => lease_check::Installed::Nothing,
        }
    }

    /// Leases a previous process left mid-run go back to the coordinator.
    async fn hand_back_interrupted(&self) {
        for (lease_id, task_id) in self.journal.interrupted().unwrap_or_default() {
            let reason = "the node restarted while running it";
            self.refuse_id(&lease_id, reason).await;
            let _ = self.journal.set(&lease_id, &task_id, State::Closed, reason);
        }
    }

    async fn heartbeats(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.heartbeat_interval_ms.max(100));
        loop {
            let running = self.running.load(Ordering::Relaxed);
            let body = json!({
                "load": running as f64 / self.config.max_concurrent as f64,
                "running_tasks": running,
                "energy": self.energy.json(&self.config, now_ms()),
                "latency_ms": *self.latency_ms.lock().expect("latency lock"),
            });
            let path = format!("/api/v1/nodes/{}/heartbeat", self.coordinator.node_id());
            let sent = Instant::now();
            // A few quick retries ride out a blip; a coordinator that stays
            // away is tried again at the next beat. Every try has the
            // request timeout, so a stalled socket cannot hang the loop.
            let how = Signed {
                timeout: None,
                retry: Retry::backoff(3),
            };
            let reply = self
                .coordinator
                .signed_with("PUT", &path, body.to_string().into_bytes(), how)
                .await
                .map(|r| (r.status, r.json()));
            match reply {
                Ok((200, v)) => {
                    *self.latency_ms.lock().expect("latency lock") =
                        Some(sent.elapsed().as_secs_f64() * 1e3);
                    self.revoke(&v["revoked"]);
                }
                Ok((404, _)) | Ok((401, _)) => {
                    warn!("the coordinator does not know this node; registering again");
                    self.reregister().await;
                }
                Ok((status, v)) => warn!("heartbeat: {status} {v}"),
                Err(e) => warn!("heartbeat failed: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn reregister(&self) {
        let catalog = self.catalog.read().expect("catalog lock").clone();
        let gpu = self.sandbox.gpu().map(|g| g.info.advertised());
        match register(
            &self.coordinator,
            &self.config,
            &self.energy.json(&self.config, now_ms()),
            &self.key,
            (&catalog, &self.datasets),
            gpu.as_deref(),
        )
        .await
        {
            Ok(_) => info!(kernels = %self.kernel_names().join(", "), "offers updated"),
            Err(e) => warn!("re-registration failed: {e:#}"),
        }
    }

    async fn rescans(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.rescan_interval_ms.max(100));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let current = catalog::fingerprint(&self.config.kernel_dir);
            if current == self.catalog.read().expect("catalog lock").fingerprint {
                continue;
            }
            let this = self.clone();
            let scanned = tokio::task::spawn_blocking(move || {
                catalog::scan(&this.sandbox, &this.config.kernel_dir)
            })
            .await;
            let Ok((catalog, problems)) = scanned else {
                continue;
            };
            for p in &problems {
                warn!("kernel not installed: {p}");
            }
            let before = self.kernel_names();
            *self.catalog.write().expect("catalog lock") = catalog;
            let after = self.kernel_names();
            if before != after {
                info!(before = %before.join(", "), after = %after.join(", "), "kernel folder changed");
                self.reregister().await;
            }
        }
    }

    async fn poll(
        self: Arc<Self>,
        jobs: mpsc::UnboundedSender<Job>,
        mut stop: watch::Receiver<bool>,
    ) {
        let path = format!(
            "/api/v1/nodes/{}/leases?wait={}",
            self.coordinator.node_id(),
            self.config.poll_wait_sec
        );
        // The coordinator holds a long-poll up to `wait` seconds: it gets
        // that much more than the request timeout.
        let how = Signed {
            timeout: Some(
                Duration::from_millis(self.config.request_timeout_ms)
                    + Duration::from_secs(self.config.poll_wait_sec),
            ),
            retry: Retry::NONE,
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            if *stop.borrow() {
                return;
            }
            let reply = tokio::select! {
                r = self.coordinator.signed_with("GET", &path, Vec::new(), how) => r.map(|r| (r.status, r.json())),
                _ = stop.changed() => return,
            };
            match reply {
                Ok((200, v)) => {
                    backoff = Duration::from_millis(200);
                    self.revoke(&v["revoked"]);
                    for item in v["leases"].as_array().into_iter().flatten() {
                        match serde_json::from_value::<Lease>(item["lease"].clone()) {
                            Ok(lease) => {
                                let input = item["input"].as_str().unwrap_or_default().to_string();
                                info!(lease = %lease.lease_id, task = %lease.task_id, capability = %lease.capability, "lease received");
                                let _ = jobs.send(Job { lease, input });
                            }
                            Err(e) => warn!("unreadable lease: {e}"),
                        }
                    }
                    continue;
                }
                Ok((status, v)) => warn!("lease poll: {status} {v}"),
                Err(e) => warn!("lease poll failed: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn work(
        self: Arc<Self>,
        jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let job = {
                let mut rx = jobs.lock().await;
                tokio::select! {
                    j = rx.recv() => j,
                    _ = stop.changed() => None,
                }
            };
            let Some(job) = job else { return };
            if *stop.borrow() {
                self.refuse(
                    &job.lease,
                    "the node is shutting down; lease handed back unstarted",
                )
                .await;
                continue;
            }
            self.running.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.clone().process(job).await {
                error!("lease failed on this node: {e:#}");
            }
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Applies the coordinator's revocations (checked against the pinned
    /// broker key and this node's id): a running lease stops at its next
    /// epoch tick, a queued one will not start.
    fn revoke(&self, revoked: &Value) {
        let node_id = self.coordinator.node_id();
        let mut stops = self.stops.lock().expect("stops lock");
        stops.retain(|_, s| s.reason.is_none() || s.since.elapsed() < FORGET_STOPS_AFTER);
        for item in revoked.as_array().into_iter().flatten() {
            let Ok(r) = serde_json::from_value::<Revocation>(item.clone()) else {
                warn!("unreadable revocation: {item}");
                continue;
            };
            if r.node_id != node_id || r.verify(&self.broker).is_err() {
                warn!(lease = %r.lease_id, "revocation not signed by the broker for this node; ignored");
                continue;
            }
            let switch = stops
                .entry(r.lease_id.clone())
                .or_insert_with(|| StopSwitch {
                    flag: Arc::new(AtomicBool::new(false)),
                    reason: None,
                    since: Instant::now(),
                });
            if switch.reason.is_none() {
                warn!(lease = %r.lease_id, task = %r.task_id, "lease {} by the coordinator: {}; stopping", r.status, r.reason);
                switch.reason = Some(format!("lease {}: {}", r.status, r.reason));
                switch.flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The stop switch of `lease_id` (new, or set by an earlier revocation).
    fn stop_switch(&self, lease_id: &str) -> Arc<AtomicBool> {
        let mut stops = self.stops.lock().expect("stops lock");
        stops
            .entry(lease_id.to_string())
            .or_insert_with(|| StopSwitch {
                flag: Arc::new(AtomicBool::new(false)),
                reason: None,
                since: Instant::now(),
            })
            .flag
            .clone()
    }

    /// Stops every run in progress, for `why`.
    fn stop_all(&self, why: &str) {
        let mut stops = self.stops.lock().expect("stops lock");
        for s in stops.values_mut() {
            s.reason.get_or_insert_with(|| why.to_string());
            s.flag.store(true, Ordering::Relaxed);
        }
    }

    /// Why `lease_id` was stopped, dropping its switch.
    fn take_stop(&self, lease_id: &str) -> Option<String> {
        self.stops
            .lock()
            .expect("stops lock")
            .remove(lease_id)
            .and_then(|s| s.reason)
    }

    async fn refuse(&self, lease: &Lease, reason: &str) {
        warn!(lease = %lease.lease_id, task = %lease.task_id, "refused: {reason}");
        self.refuse_id(&lease.lease_id, reason).await;
    }

    async fn refuse_id(&self, lease_id: &str, reason: &str) {
        let body = json!({ "reason": reason }).to_string().into_bytes();
        match self
            .coordinator
            .signed("POST", &format!("/api/v1/leases/{lease_id}/refuse"), body)
            .await
        {
            Ok((200, _)) => {}
            Ok((status, v)) => warn!(lease = %lease_id, "refusal not recorded: {status} {v}"),
            Err(e) => warn!(lease = %lease_id, "refusal not sent: {e:#}"),
        }
    }

    /// The owner's registered public key, from the coordinator.
    async fn owner_key(&self) -> Option<PublicKey> {
        match self
            .coordinator
            .as_owner("GET", "/api/v1/users/me", &serde_json::Value::Null)
            .await
        {
            Ok((200, me)) => me["public_key"]
                .as_str()
                .and_then(|k| greenmesh_protocol::public_key(k).ok()),
            Ok((status, v)) => {
                warn!("could not read the owner's key: {status} {v}");
                None
            }
            Err(e) => {
                warn!("could not read the owner's key: {e:#}");
                None
            }
        }
    }

    /// One lease: check, run, sign, report.
    async fn process(self: Arc<Self>, job: Job) -> anyhow::Result<()> {
        let lease = job.lease;
        if !self.journal.claim(&lease.lease_id, &lease.task_id)? {
            info!(lease = %lease.lease_id, "already handled by this node; ignored");
            return Ok(());
        }
        let node_id = self.coordinator.node_id().to_string();
        // A grant is checked against the owner's current key, asked for
        // only when a lease relies on one.
        let owner = match &lease.grant {
            Some(_) if !self.config.allows(&lease.capability) => self.owner_key().await,
            _ => None,
        };
        let checked = lease_check::check(
            &lease,
            &job.input,
            &lease_check::Trust {
                broker: &self.broker,
                owner: owner.as_ref(),
            },
            &node_id,
            &self.config,
            &|c| self.installed(c),
            now_ms(),
        )
        .and_then(|()| {
            if lease.capability != FL_TRAIN {
                return Ok(());
            }
            lease_check::check_training(
                &job.input,
                lease.deterministic || self.config.deterministic,
                &|name| self.datasets.iter().any(|d| d.name == name),
            )
        });
        if let Err(reason) = checked {
            self.refuse(&lease, &reason).await;
            self.journal
                .set(&lease.lease_id, &lease.task_id, State::Closed, &reason)?;
            return Ok(());
        }
        let stop = self.stop_switch(&lease.lease_id);
        let started = Instant::now();
        // Whose fault a failure is (the receipt signs it): the node's unless
        // the run shows it was the requester's.
        let mut fault = greenmesh_protocol::Fault::Node;
        let prepared = if stop.load(Ordering::Relaxed) {
            Err(RunError::Stopped.to_string())
        } else {
            self.prepare(&lease, &job.input).await
        };
        let (kernel_sha, outcome) = match prepared {
            Ok(_) if stop.load(Ordering::Relaxed) => {
                (String::new(), Err(RunError::Stopped.to_string()))
            }
            Ok((prepared, kernel_sha, media_type, bytes, params)) => {
                let input_len = bytes.len();
                info!(lease = %lease.lease_id, capability = %lease.capability, "running on {input_len} bytes of {media_type}");
                let limits = RunLimits {
                    timeout: Duration::from_millis(
                        lease.timeout_ms.min(self.config.max_task_duration_ms),
                    ),
                    max_memory_bytes: (lease.max_memory_mb.min(self.config.memory_mb) as usize)
                        << 20,
                    fuel: lease.fuel,
                    max_output_bytes: self.config.max_output_bytes,
                    max_gpu_dispatches: self.config.gpu_max_dispatches,
                    deterministic: lease.deterministic || self.config.deterministic,
                    seed: crate::executor::deterministic_seed(
                        lease.seed.as_deref().unwrap_or(&lease.nonce),
                    ),
                    stop: Some(stop.clone()),
                    // Exactly the dataset the lease names, if this node holds it.
                    dataset: (lease.capability == FL_TRAIN)
                        .then(|| crate::datasets::named_by(&self.datasets, &job.input))
                        .flatten()
                        .map(|d| d.data.clone()),
                };
                let this = self.clone();
                // The sandbox bounds every run; this bounds the sandbox, in
                // case a host call it does not know to bound blocks: past
                // the time limit and a margin the run is abandoned (asked to
                // stop) and the lease reported failed.
                let abandon_after = limits.timeout + RUN_MARGIN;
                let mut abandoned = false;
                let run = tokio::task::spawn_blocking(move || {
                    this.sandbox
                        .run(&prepared, &media_type, &bytes, &params, &limits)
                });
                let report = match tokio::time::timeout(abandon_after, run).await {
                    Ok(report) => report?,
                    Err(_) => {
                        // A run the sandbox could not bound is the node's
                        // problem, not the requester's.
                        abandoned = true;
                        stop.store(true, Ordering::Relaxed);
                        warn!(lease = %lease.lease_id, "the sandbox did not return within {abandon_after:?}; run abandoned");
                        crate::executor::RunReport::abandoned(abandon_after)
                    }
                };
                if !report.log.is_empty() {
                    info!(lease = %lease.lease_id, "kernel output: {}", report.log.trim_end());
                }
                let peak = report.peak_memory_bytes;
                if let Err(e) = &report.outcome {
                    fault = if abandoned {
                        greenmesh_protocol::Fault::Node
                    } else {
                        e.fault(lease.capability == WASM_EXECUTION)
                    };
                }
                let outcome = report
                    .outcome
                    .map_err(|e| match stderr_summary(&report.log) {
                        s if s.is_empty() => e.to_string(),
                        s => format!("{e} (kernel stderr: {s})"),
                    });
                (kernel_sha, outcome.map(|o| (o, peak)))
            }
            Err(reason) => {
                // A submitted module that does not compile or an input that
                // does not parse is the requester's; a blob the node could
                // not fetch is its own.
                if reason.starts_with("invalid input") || reason.starts_with("wasm_module") {
                    fault = greenmesh_protocol::Fault::Requester;
                }
                (String::new(), Err(reason))
            }
        };
        let duration = started.elapsed();
        // A federated round's update leaves the node masked (ADR 0019).
        let secure = lease.capability == FL_TRAIN && crate::secure_round::asked(&job.input);
        let outcome = match outcome {
            Ok((out, peak)) if secure => {
                fault = greenmesh_protocol::Fault::Node;
                self.masked(&lease, &out.bytes, &stop)
                    .await
                    .map(|text| (text, peak))
            }
            Ok((out, peak)) => Ok((task_io::output_text(&out.media_type, &out.bytes), peak)),
            Err(e) => Err(e),
        };
        let stopped_because = self.take_stop(&lease.lease_id);
        let (status, output, peak, error) = match (outcome, stopped_because) {
            // Revoked: whatever the run got to, it is reported as stopped.
            (_, Some(why)) => (
                ReceiptStatus::Stopped,
                String::new(),
                0,
                Some(format!("stopped: {why}")),
            ),
            (Ok((out, peak)), None) => (ReceiptStatus::Succeeded, out, peak, None),
            (Err(reason), None) => (ReceiptStatus::Failed, String::new(), 0, Some(reason)),
        };
        let mut receipt = Receipt {
            lease_id: lease.lease_id.clone(),
            task_id: lease.task_id.clone(),
            node_id,
            nonce: lease.nonce.clone(),
            status,
            kernel_sha256: kernel_sha,
            input_sha256: lease.input_sha256.clone(),
            output_sha256: greenmesh_protocol::sha256_hex(output.as_bytes()),
            duration_ms: duration.as_millis() as u64,
            peak_memory_bytes: peak,
            // Over the milliseconds the receipt reports: the coordinator
            // bounds energy by the declared power over exactly those.
            energy_wh: self.config.device_power_watts * duration.as_millis() as f64 / 3_600_000.0,
            fault: (status == ReceiptStatus::Failed).then_some(fault),
            error,
            signature: String::new(),
        };
        receipt.sign(&self.key.sk);
        match (&receipt.status, &receipt.error) {
            (ReceiptStatus::Succeeded, _) => {
                info!(lease = %lease.lease_id, ms = receipt.duration_ms, wh = receipt.energy_wh, "succeeded")
            }
            (ReceiptStatus::Stopped, e) => {
                warn!(lease = %lease.lease_id, ms = receipt.duration_ms, wh = receipt.energy_wh, "{}", e.as_deref().unwrap_or("stopped"))
            }
            (_, e) => {
                warn!(lease = %lease.lease_id, ms = receipt.duration_ms, "failed: {}", e.as_deref().unwrap_or(""))
            }
        }
        let body = json!({ "receipt": receipt, "output": output }).to_string();
        self.journal.finish(&lease.lease_id, &body)?;
        self.report(&lease.lease_id, &lease.task_id, &body).await;
        Ok(())
    }

    /// The kernel's training update masked against its round's roster,
    /// which the node polls for until the broker fixed it (every member
    /// holds a lease), the lease runs out, or the run is stopped.
    async fn masked(
        &self,
        lease: &Lease,
        kernel_output: &[u8],
        stop: &AtomicBool,
    ) -> Result<String, String> {
        let path = format!("/api/v1/leases/{}/roster", lease.lease_id);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(RunError::Stopped.to_string());
            }
            if now_ms() > lease.expires_at {
                return Err("the round's roster did not come before the lease ran out".into());
            }
            let reply = self
                .coordinator
                .signed_with("GET", &path, Vec::new(), Signed::default())
                .await;
            match reply {
                Ok(r) if r.status == 200 => {
                    let roster: greenmesh_protocol::Roster =
                        serde_json::from_value(r.json()["roster"].clone())
                            .map_err(|e| format!("the round's roster does not read: {e}"))?;
                    crate::secure_round::check(&roster, &self.broker, lease, &self.key.pk)?;
                    info!(lease = %lease.lease_id, members = roster.members.len(), "masking the update against round {}'s roster", roster.round + 1);
                    return crate::secure_round::masked_output(
                        kernel_output,
                        &self.key,
                        &lease.node_id,
                        &roster,
                    );
                }
                Ok(r) if matches!(r.status, 404 | 410) => {
                    return Err(format!(
                        "left out of the round: {}",
                        greenmesh_client::error_message(&r.json())
                    ))
                }
                Ok(_) | Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Resolves the kernel and the input bytes; an error fails the task
    /// with that reason.
    async fn prepare(
        &self,
        lease: &Lease,
        input_text: &str,
    ) -> Result<(Prepared, String, String, Vec<u8>, String), String> {
        let input = task_io::parse(input_text).map_err(|e| format!("invalid input: {e}"))?;
        let (prepared, sha, default_type) = if lease.capability == WASM_EXECUTION {
            let module = input
                .wasm_module
                .as_deref()
                .ok_or("invalid input: wasm_execution needs wasm_module")?;
            let (prepared, sha) = self.admit_module(module).await?;
            (prepared, sha, "application/octet-stream".to_string())
        } else {
            let catalog = self.catalog.read().expect("catalog lock");
            let k = catalog
                .kernels
                .get(&lease.capability)
                .ok_or_else(|| format!("no {} kernel installed", lease.capability))?;
            let default_type = k
                .input_types
                .first()
                .filter(|t| *t != "*/*")
                .cloned()
                .unwrap_or_else(|| "application/octet-stream".into());
            (k.prepared.clone(), k.sha256.clone(), default_type)
        };
        let bytes = match input.data {
            Data::Inline(b) => b,
            Data::Blob(hex) => self.fetch_blob(&hex).await?,
        };
        let media_type = input.media_type.unwrap_or(default_type);
        Ok((prepared, sha, media_type, bytes, input.params))
    }

    /// Compiles (within the node's compile budget), admits and links a
    /// submitted module, or finds it in the cache.
    async fn admit_module(&self, module: &[u8]) -> Result<(Prepared, String), String> {
        let sha = greenmesh_protocol::sha256_hex(module);
        if let Some(p) = self.modules.lock().expect("modules lock").get(&sha) {
            return Ok((p.clone(), sha));
        }
        let budget = catalog::CompileBudget {
            max_bytes: self.config.max_module_bytes,
            max_time: Duration::from_millis(self.config.compile_budget_ms),
        };
        let component =
            catalog::compile_within(self.sandbox.engine(), module.into(), budget, &self.compiles)
                .await
                .map_err(|e| match e {
                    // The node's state: not the requester's fault.
                    busy @ admission::Refusal::CompilerBusy => {
                        format!("node busy: the wasm_module {busy}")
                    }
                    e => format!("wasm_module {e}"),
                })?;
        let (prepared, sha) = catalog::admit_compiled(&self.sandbox, &component, module)
            .map_err(|e| format!("wasm_module {e:#}"))?;
        let mut cache = self.modules.lock().expect("modules lock");
        if cache.len() >= MODULE_CACHE {
            cache.clear();
        }
        cache.insert(sha.clone(), prepared.clone());
        Ok((prepared, sha))
    }

    async fn fetch_blob(&self, hex: &str) -> Result<Vec<u8>, String> {
        let reply = self
            .coordinator
            .signed_with(
                "GET",
                &format!("/api/v1/blobs/{hex}"),
                Vec::new(),
                Signed::default(),
            )
            .await
            .map_err(|e| format!("fetching blob {hex}: {e}"))?;
        let (status, bytes) = (reply.status, reply.body);
        if status != 200 {
            return Err(format!("fetching blob {hex}: {status}"));
        }
        if greenmesh_protocol::sha256_hex(&bytes) != hex {
            return Err(format!("blob {hex} does not match its hash"));
        }
        Ok(bytes.to_vec())
    }

    /// Posts a result; the journal records whether it stuck.
    async fn report(&self, lease_id: &str, task_id: &str, body: &str) {
        let path = format!("/api/v1/leases/{lease_id}/result");
        // The coordinator records a receipt once (a copy gets 409), so a
        // retry after a lost answer is safe.
        let how = Signed {
            timeout: None,
            retry: Retry::backoff(4),
        };
        let reply = self
            .coordinator
            .signed_with("POST", &path, body.as_bytes().to_vec(), how)
            .await
            .map(|r| (r.status, r.json()));
        let (state, note) = match reply {
            Ok((200, _)) => (State::Reported, "accepted".to_string()),
            Ok((409, _)) => (
                State::Reported,
                "the coordinator already had a receipt".to_string(),
            ),
            Ok((410, v)) => (
                State::Closed,
                format!(
                    "lease ended before the receipt: {}",
                    greenmesh_client::error_message(&v)
                ),
            ),
            Ok((400, v)) => (
                State::Closed,
                format!("receipt refused: {}", greenmesh_client::error_message(&v)),
            ),
            Ok((status, v)) => {
                warn!(lease = %lease_id, "result not accepted yet ({status} {v}); will retry");
                return;
            }
            Err(e) => {
                warn!(lease = %lease_id, "coordinator unreachable ({e}); will retry");
                return;
            }
        };
        match state {
            State::Reported => info!(lease = %lease_id, "receipt {note}"),
            _ => warn!(lease = %lease_id, "{note}"),
        }
        if let Err(e) = self.journal.set(lease_id, task_id, state, &note) {
            error!("journal: {e:#}");
        }
    }

    async fn report_all(&self) {
        for p in self.journal.pending().unwrap_or_default() {
            let task_id = serde_json::from_str::<Value>(&p.body)
                .ok()
                .and_then(|v| v["receipt"]["task_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            self.report(&p.lease_id, &task_id, &p.body).await;
        }
    }

    async fn report_pending(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            self.report_all().await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// What a failing kernel wrote, on one line and capped: a Rust panic's
/// location and message, without the backtrace hint.
fn stderr_summary(log: &str) -> String {
    let text = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect::<Vec<_>>()
        .join(" / ");
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
