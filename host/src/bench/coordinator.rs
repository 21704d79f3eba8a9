//! `greenmesh bench coordinator`: submit → result latency for a trivial task
//! with one local node, through the real coordinator served in-process.
//!
//! Each round: the requester submits, the node long-polls its lease, signs a
//! receipt and posts the result, the requester's `GET ?wait` returns the
//! completed task. Rounds run one after another; the figures are the time
//! from the submit to the requester holding the result.

use crate::app::LoadOptions;
use crate::client::http::call_raw;
use greenmesh_protocol::{Lease, Receipt, ReceiptStatus};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the benchmark and prints p50/p99.
pub async fn run(manifest: PathBuf, tasks: usize) -> anyhow::Result<()> {
    let state = std::env::temp_dir().join(format!(
        "greenmesh-bench-coordinator-{}",
        std::process::id()
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut environment = std::collections::HashMap::new();
    environment.insert(
        "SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE".to_string(),
        "100000000".to_string(),
    );
    let running = crate::start(
        crate::UpConfig {
            load: LoadOptions {
                manifest,
                state_dir: Some(state.clone()),
                environment: Some(environment),
                ..Default::default()
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            engine: Default::default(),
            build: false,
        },
        async move {
            let _ = stop_rx.await;
        },
    )
    .await?;
    let base = format!("http://{}", running.addr);

    let user = call_raw(
        &base,
        "POST",
        "/api/v1/users",
        &[],
        json!({ "name": "bench" }).to_string().into_bytes(),
    )
    .await?;
    let auth = format!("Bearer {}", user["token"].as_str().unwrap_or_default());
    let key = greenmesh_protocol::key_pair_from_seed([42; 32]);
    let public_key: String = key.pk.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let node = call_raw(
        &base,
        "POST",
        "/api/v1/nodes",
        &[("authorization", &auth)],
        json!({
            "name": "bench node", "region": "GB", "public_key": public_key,
            "capabilities": [{ "name": "computation", "price": 1.0 }],
            "capacity": { "cpu_cores": 2, "memory_mb": 1024 },
        })
        .to_string()
        .into_bytes(),
    )
    .await?;
    let node_id = node["id"].as_str().unwrap_or_default().to_string();
    let signed = |method: &'static str, path: String, body: Vec<u8>| {
        let ts = now_ms();
        let sig = greenmesh_protocol::sign_request(&key.sk, method, &path, ts, &body);
        let (base, node_id) = (base.clone(), node_id.clone());
        async move {
            let ts = ts.to_string();
            let headers = [
                ("x-greenmesh-node", node_id.as_str()),
                ("x-greenmesh-timestamp", ts.as_str()),
                ("x-greenmesh-signature", sig.as_str()),
            ];
            call_raw(&base, method, &path, &headers, body).await
        }
    };

    let task = json!({ "task_type": "computation", "inputs": { "n": 1 }, "max_price": 100.0 })
        .to_string()
        .into_bytes();
    let mut samples = Vec::with_capacity(tasks);
    for round in 0..tasks + 10 {
        let t0 = Instant::now();
        let submitted = call_raw(
            &base,
            "POST",
            "/api/v1/tasks",
            &[("authorization", &auth)],
            task.clone(),
        )
        .await?;
        let id = submitted["id"].as_str().unwrap_or_default().to_string();
        let polled = signed(
            "GET",
            format!("/api/v1/nodes/{node_id}/leases?wait=5"),
            Vec::new(),
        )
        .await?;
        let lease: Lease = serde_json::from_value(polled["leases"][0]["lease"].clone())?;
        let output = "42";
        let mut receipt = Receipt {
            lease_id: lease.lease_id.clone(),
            task_id: lease.task_id.clone(),
            node_id: lease.node_id.clone(),
            nonce: lease.nonce.clone(),
            status: ReceiptStatus::Succeeded,
            kernel_sha256: greenmesh_protocol::sha256_hex(b"noop"),
            input_sha256: lease.input_sha256.clone(),
            output_sha256: greenmesh_protocol::sha256_hex(output.as_bytes()),
            duration_ms: 0,
            peak_memory_bytes: 0,
            energy_wh: 0.0,
            error: None,
            signature: String::new(),
        };
        receipt.sign(&key.sk);
        let body = json!({ "receipt": receipt, "output": output })
            .to_string()
            .into_bytes();
        signed(
            "POST",
            format!("/api/v1/leases/{}/result", lease.lease_id),
            body,
        )
        .await?;
        let done: Value = call_raw(
            &base,
            "GET",
            &format!("/api/v1/tasks/{id}?wait=5"),
            &[("authorization", &auth)],
            Vec::new(),
        )
        .await?;
        anyhow::ensure!(
            done["status"] == "completed",
            "task {id} ended {}",
            done["status"]
        );
        if round >= 10 {
            samples.push(t0.elapsed()); // the first 10 rounds warm up
        }
    }
    samples.sort();
    println!("greenmesh bench coordinator  ({tasks} tasks, one local node, sequential)");
    println!(
        "submit → result: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        super::percentile(&samples, 0.5).as_secs_f64() * 1e3,
        super::percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples
            .last()
            .copied()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1e3,
    );
    let _ = stop_tx.send(());
    let _ = running.task.await;
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}
