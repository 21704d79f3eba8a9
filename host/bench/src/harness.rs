//! A coordinator served in-process for benchmarks, with a user and helpers
//! to register nodes and sign node requests.

use greenmesh_client::{node::signed_request, Client, ClientOptions};
use greenmesh_host::app::LoadOptions;
use greenmesh_protocol::ed25519_compact::KeyPair;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A running coordinator and a registered user.
pub struct Coordinator {
    pub base: String,
    /// A client of it (connections are reused).
    pub client: Client,
    /// The wall clock its components read (and node requests are stamped with).
    pub clock: greenmesh_host::clock::VirtualClock,
    /// `Bearer <token>` of the benchmark user.
    pub auth: String,
    running: Option<greenmesh_host::Running>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    state: PathBuf,
}

/// A registered node and its key.
pub struct BenchNode {
    pub id: String,
    pub key: KeyPair,
}

impl BenchNode {
    /// The body of a successful result for `lease` with `output`: a
    /// receipt signed by this node (a no-op kernel, no energy).
    pub fn result_body(&self, lease: &greenmesh_protocol::Lease, output: &str) -> Vec<u8> {
        let mut receipt = greenmesh_protocol::Receipt {
            lease_id: lease.lease_id.clone(),
            task_id: lease.task_id.clone(),
            node_id: lease.node_id.clone(),
            nonce: lease.nonce.clone(),
            status: greenmesh_protocol::ReceiptStatus::Succeeded,
            kernel_sha256: greenmesh_protocol::sha256_hex(b"noop"),
            input_sha256: lease.input_sha256.clone(),
            output_sha256: greenmesh_protocol::sha256_hex(output.as_bytes()),
            duration_ms: 1,
            peak_memory_bytes: 0,
            energy_wh: 0.0,
            error: None,
            fault: None,
            signature: String::new(),
        };
        receipt.sign(&self.key.sk);
        json!({ "receipt": receipt, "output": output })
            .to_string()
            .into_bytes()
    }
}

impl Coordinator {
    /// Serves `manifest` with a fresh state folder (no rate limit, nodes
    /// live for a day without heartbeats) and registers a user.
    pub async fn start(manifest: PathBuf) -> anyhow::Result<Self> {
        Self::start_with(manifest, &[], greenmesh_host::clock::VirtualClock::new()).await
    }

    /// [`Coordinator::start`] with extra `SPIN_VARIABLE_*` settings and the
    /// clock its components read.
    pub async fn start_with(
        manifest: PathBuf,
        env: &[(&str, &str)],
        clock: greenmesh_host::clock::VirtualClock,
    ) -> anyhow::Result<Self> {
        let state = std::env::temp_dir().join(format!(
            "greenmesh-bench-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut environment = std::collections::HashMap::new();
        environment.insert(
            "SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE".to_string(),
            "1000000000".to_string(),
        );
        // Bench nodes register once and never heartbeat; without this a run
        // longer than the default 60 s window would measure decisions over a
        // fleet that had gone offline (one live node), not the fleet it set up.
        environment.insert(
            "SPIN_VARIABLE_LIVENESS_WINDOW_MS".to_string(),
            "86400000".to_string(),
        );
        // A handful of bench users submit 100,000 tasks: far beyond any
        // tier's daily count. Votes are still opened for every task, but
        // stay open for a day: a run that outlives the 5-minute window would
        // otherwise also measure 100,000 polls closing (each turns a task eco
        // and has it decided again).
        environment.insert("SPIN_VARIABLE_QUOTAS".to_string(), "off".to_string());
        environment.insert(
            "SPIN_VARIABLE_VOTING_WINDOW_MS".to_string(),
            "86400000".to_string(),
        );
        // Bench users all register from loopback.
        environment.insert(
            "SPIN_VARIABLE_REGISTRATIONS_PER_ADDRESS_PER_DAY".to_string(),
            "1000000".to_string(),
        );
        for (k, v) in env {
            environment.insert(k.to_string(), v.to_string());
        }
        let running = greenmesh_host::start(
            greenmesh_host::UpConfig {
                load: LoadOptions {
                    manifest,
                    state_dir: Some(state.clone()),
                    environment: Some(environment),
                    clock: clock.clone(),
                    ..Default::default()
                },
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                engine: Default::default(),
                build: false,
                tls: None,
                http: Default::default(),
            },
            async move {
                let _ = stop_rx.await;
            },
        )
        .await?;
        let base = format!("http://{}", running.addr);
        let client = Client::new(&base, &ClientOptions::default())?;
        let user = client
            .call(
                "POST",
                "/api/v1/users",
                None,
                Some(&json!({ "name": "bench" })),
            )
            .await?;
        let auth = format!("Bearer {}", user["token"].as_str().unwrap_or_default());
        Ok(Self {
            base,
            client,
            clock,
            auth,
            running: Some(running),
            stop: Some(stop),
            state,
        })
    }

    /// A user call.
    pub async fn user(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method, path)
            .header("authorization", &self.auth);
        if let Some(b) = &body {
            req = req.json(b);
        }
        Ok(req.send().await?.into_result()?)
    }

    /// Registers a node offering `capability` at `price`.
    pub async fn register_node(
        &self,
        seed: u64,
        capability: &str,
        price: f64,
    ) -> anyhow::Result<BenchNode> {
        self.register_node_as(&self.auth, seed, capability, price, "GB")
            .await
    }

    /// Registers a node owned by the user `auth` (`Bearer <token>`) in `region`.
    pub async fn register_node_as(
        &self,
        auth: &str,
        seed: u64,
        capability: &str,
        price: f64,
        region: &str,
    ) -> anyhow::Result<BenchNode> {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8] = 0x5a;
        let key = greenmesh_protocol::key_pair_from_seed(bytes);
        let public_key = greenmesh_protocol::public_key_hex(&key.pk);
        let body = json!({
            "name": format!("bench node {seed}"), "region": region, "public_key": public_key,
            "capabilities": [{ "name": capability, "price": price }],
            "capacity": { "cpu_cores": 2, "memory_mb": 1024 },
        });
        let node = self
            .client
            .request("POST", "/api/v1/nodes")
            .header("authorization", auth)
            .json(&body)
            .send()
            .await?
            .into_result()?;
        Ok(BenchNode {
            id: node["id"].as_str().unwrap_or_default().to_string(),
            key,
        })
    }

    /// A request signed as `node`, answering the status too.
    pub async fn signed_status(
        &self,
        node: &BenchNode,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let reply = self.signed_request(node, method, path, body).send().await?;
        Ok((reply.status, reply.json()))
    }

    /// A request signed as `node`.
    pub async fn signed(
        &self,
        node: &BenchNode,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Value> {
        Ok(self
            .signed_request(node, method, path, body)
            .send()
            .await?
            .into_result()?)
    }

    /// A request signed as `node`, stamped with the coordinator's clock.
    fn signed_request(
        &self,
        node: &BenchNode,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> greenmesh_client::RequestBuilder<'_> {
        signed_request(
            &self.client,
            &node.key.sk,
            &node.id,
            self.clock.now_ms(),
            method,
            path,
            body.into(),
        )
    }

    /// The coordinator's state folder (its database).
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state
    }

    /// Stops serving and removes the state folder (kept, and its path
    /// printed, when `GREENMESH_BENCH_KEEP_STATE` is set: for inspecting
    /// the database a run left).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let _ = running.task.await;
        }
        if std::env::var_os("GREENMESH_BENCH_KEEP_STATE").is_some() {
            println!("state kept in {}", self.state.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}
