//! A provider node written for the tests: registers, heartbeats, polls for
//! leases and posts signed receipts, signing every request like a real node.

use crate::{send_with, Reply};
use bytes::Bytes;
use greenmesh_protocol::ed25519_compact::KeyPair;
use greenmesh_protocol::{sign_request, Lease, Receipt, ReceiptStatus};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A test node with its own key.
pub struct TestNode {
    pub addr: SocketAddr,
    pub key: KeyPair,
    pub id: String,
    /// The clock its signatures are stamped with: the coordinator's, when
    /// a test moves that one.
    pub clock: greenmesh_host::clock::VirtualClock,
}

/// How a test node registers beyond its capabilities.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Tasks the node accepts (`*` for all).
    pub allowed_tasks: Vec<String>,
    /// Share of clean energy it reports, 0..1.
    pub clean_share: f32,
    pub clock: greenmesh_host::clock::VirtualClock,
    /// The kernel hash it advertises for every capability (none by default).
    pub kernel_sha256: Option<String>,
    /// Datasets it declares: `(name, features, classes, rows)`.
    pub datasets: Vec<(String, u32, u32, u64)>,
    /// The grid intensity it reports, gCO2/kWh.
    pub carbon_intensity: f32,
    /// What it declares about its power (`{"max_watts", "own_generation_watts"}`).
    pub power: Option<Value>,
    /// Its name (`test node {seed}` by default).
    pub name: Option<String>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            allowed_tasks: vec!["*".into()],
            clean_share: 0.7,
            clock: Default::default(),
            kernel_sha256: None,
            datasets: Vec::new(),
            carbon_intensity: 120.0,
            power: None,
            name: None,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl TestNode {
    /// Registers a node owned by `token`'s user, offering `capabilities` as `(name, price)`.
    pub async fn register(
        addr: SocketAddr,
        token: &str,
        seed: u8,
        capabilities: &[(&str, f64)],
    ) -> anyhow::Result<Self> {
        Self::register_with(addr, token, seed, capabilities, NodeOptions::default()).await
    }

    /// Registers with an allow-list, an energy mix and a clock.
    pub async fn register_with(
        addr: SocketAddr,
        token: &str,
        seed: u8,
        capabilities: &[(&str, f64)],
        options: NodeOptions,
    ) -> anyhow::Result<Self> {
        let key = greenmesh_protocol::key_pair_from_seed([seed; 32]);
        let public_key = greenmesh_protocol::public_key_hex(&key.pk);
        let mut body = json!({
            "name": options.name.clone().unwrap_or_else(|| format!("test node {seed}")),
            "region": "GB",
            "public_key": public_key,
            "capabilities": capabilities.iter().map(|(n, p)| json!({
                "name": n, "price": p, "sha256": options.kernel_sha256,
            })).collect::<Vec<_>>(),
            "capacity": { "cpu_cores": 2, "memory_mb": 2048 },
            "energy": {
                "sources": [["solar", options.clean_share], ["grid", 1.0 - options.clean_share]],
                "clean_share": options.clean_share,
                "carbon_intensity": options.carbon_intensity,
            },
            "allowed_tasks": options.allowed_tasks,
            "datasets": options.datasets.iter().map(|(name, features, classes, rows)| json!({
                "name": name, "features": features, "classes": classes, "rows": rows,
            })).collect::<Vec<_>>(),
        });
        if let Some(power) = options.power {
            body["power"] = power;
        }
        let reply = crate::send_with(
            addr,
            "POST",
            "/api/v1/nodes",
            Bytes::from(body.to_string()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await?;
        anyhow::ensure!(
            reply.status == 201,
            "node registration failed: {} {}",
            reply.status,
            reply.text()
        );
        let id = reply.json()["id"].as_str().unwrap_or_default().to_string();
        Ok(Self {
            addr,
            key,
            id,
            clock: options.clock,
        })
    }

    /// The same node talking to a coordinator now at `addr` (restarted).
    pub fn moved_to(self, addr: SocketAddr) -> Self {
        Self { addr, ..self }
    }

    /// Sends a request signed with the node's key.
    pub async fn signed(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Reply> {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let ts = self.clock.now_ms();
        let sig = sign_request(&self.key.sk, method, path, ts, &body);
        send_with(
            self.addr,
            method,
            path,
            Bytes::from(body),
            &[
                ("x-greenmesh-node", &self.id),
                ("x-greenmesh-timestamp", &ts.to_string()),
                ("x-greenmesh-signature", &sig),
            ],
        )
        .await
    }

    /// Heartbeats with `energy` (the API's JSON: sources, clean_share,
    /// carbon_intensity, forecast).
    pub async fn report_energy(&self, energy: Value) -> anyhow::Result<Reply> {
        self.signed(
            "PUT",
            &format!("/api/v1/nodes/{}/heartbeat", self.id),
            json!({ "load": 0.0, "energy": energy }),
        )
        .await
    }

    /// Reports a new clean-energy share.
    pub async fn report_clean_share(&self, clean_share: f32) -> anyhow::Result<Reply> {
        self.signed(
            "PUT",
            &format!("/api/v1/nodes/{}/heartbeat", self.id),
            json!({ "load": 0.0, "energy": {
                "sources": [["solar", clean_share], ["grid", 1.0 - clean_share]],
                "clean_share": clean_share, "carbon_intensity": 120.0,
            } }),
        )
        .await
    }

    pub async fn heartbeat(&self, load: f32) -> anyhow::Result<Reply> {
        self.signed(
            "PUT",
            &format!("/api/v1/nodes/{}/heartbeat", self.id),
            json!({ "load": load }),
        )
        .await
    }

    /// Long-polls for leases: `(lease, input text)` pairs.
    pub async fn poll(&self, wait_secs: u64) -> anyhow::Result<Vec<(Lease, String)>> {
        let reply = self
            .signed(
                "GET",
                &format!("/api/v1/nodes/{}/leases?wait={wait_secs}", self.id),
                Value::Null,
            )
            .await?;
        anyhow::ensure!(
            reply.status == 200,
            "poll failed: {} {}",
            reply.status,
            reply.text()
        );
        let v = reply.json();
        let mut out = Vec::new();
        for l in v["leases"].as_array().cloned().unwrap_or_default() {
            let lease: Lease = serde_json::from_value(l["lease"].clone())?;
            out.push((lease, l["input"].as_str().unwrap_or_default().to_string()));
        }
        Ok(out)
    }

    /// Takes the next lease (waiting up to 5 s) and reports it done with
    /// the text output `text`, which must be accepted; the lease.
    pub async fn complete_next(&self, text: &str) -> Lease {
        let (lease, _) = self.poll(5).await.unwrap().remove(0);
        let out = json!({ "media_type": "text/plain", "text": text }).to_string();
        let r = self
            .post_result(&lease.lease_id, &self.receipt(&lease, &out), &out)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        lease
    }

    /// A receipt for `lease` with `output`, signed by this node.
    pub fn receipt(&self, lease: &Lease, output: &str) -> Receipt {
        let mut r = Receipt {
            lease_id: lease.lease_id.clone(),
            task_id: lease.task_id.clone(),
            node_id: lease.node_id.clone(),
            nonce: lease.nonce.clone(),
            status: ReceiptStatus::Succeeded,
            kernel_sha256: greenmesh_protocol::sha256_hex(b"test-kernel"),
            input_sha256: lease.input_sha256.clone(),
            output_sha256: greenmesh_protocol::sha256_hex(output.as_bytes()),
            // 0.01 Wh in 60 ms: 600 W, a plausible device.
            duration_ms: 60,
            peak_memory_bytes: 1 << 20,
            energy_wh: 0.01,
            error: None,
            fault: None,
            signature: String::new(),
        };
        r.sign(&self.key.sk);
        r
    }

    /// Refuses a lease it was given, saying why.
    pub async fn refuse(&self, lease_id: &str, reason: &str) -> anyhow::Result<Reply> {
        self.signed(
            "POST",
            &format!("/api/v1/leases/{lease_id}/refuse"),
            json!({ "reason": reason }),
        )
        .await
    }

    /// Posts a result (receipt + output) for a lease.
    pub async fn post_result(
        &self,
        lease_id: &str,
        receipt: &Receipt,
        output: &str,
    ) -> anyhow::Result<Reply> {
        self.signed(
            "POST",
            &format!("/api/v1/leases/{lease_id}/result"),
            json!({ "receipt": receipt, "output": output }),
        )
        .await
    }
}

/// Registers a user and returns its token.
pub async fn register_user(addr: SocketAddr, name: &str) -> anyhow::Result<String> {
    let reply = crate::send(
        addr,
        "POST",
        "/api/v1/users",
        Bytes::from(json!({ "name": name }).to_string()),
    )
    .await?;
    anyhow::ensure!(
        reply.status == 201,
        "user registration failed: {} {}",
        reply.status,
        reply.text()
    );
    Ok(reply.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}
