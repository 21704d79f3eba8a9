//! `greenmesh bench coordinator`: submit → result latency for a trivial task
//! with one local node, through the real coordinator served in-process.
//!
//! Each round: the requester submits, the node long-polls its lease, signs a
//! receipt and posts the result, the requester's `GET ?wait` returns the
//! completed task. Rounds run one after another; the figures are the time
//! from the submit to the requester holding the result.

use super::harness::Coordinator;
use greenmesh_protocol::Lease;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Runs the benchmark and prints p50/p99.
pub async fn run(manifest: PathBuf, tasks: usize) -> anyhow::Result<()> {
    let c = Coordinator::start(manifest).await?;
    let node = c.register_node(1, "computation", 1.0).await?;
    let task = json!({ "task_type": "computation", "inputs": { "n": 1 }, "max_price": 100.0 });
    let mut samples = Vec::with_capacity(tasks);
    for round in 0..tasks + 10 {
        let t0 = Instant::now();
        let submitted = c.user("POST", "/api/v1/tasks", Some(task.clone())).await?;
        let id = submitted["id"].as_str().unwrap_or_default().to_string();
        let polled = c
            .signed(
                &node,
                "GET",
                &format!("/api/v1/nodes/{}/leases?wait=5", node.id),
                Vec::new(),
            )
            .await?;
        let lease: Lease = serde_json::from_value(polled["leases"][0]["lease"].clone())?;
        let body = node.result_body(&lease, "42");
        c.signed(
            &node,
            "POST",
            &format!("/api/v1/leases/{}/result", lease.lease_id),
            body,
        )
        .await?;
        let done = c
            .user("GET", &format!("/api/v1/tasks/{id}?wait=5"), None)
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
    c.stop().await;
    Ok(())
}
