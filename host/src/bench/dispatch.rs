//! `greenmesh bench dispatch`: dispatch decisions per second with many
//! registered nodes and a deep queue.
//!
//! Setup registers `nodes` nodes offering `computation` at prices 1–10
//! credits, then submits `tasks` tasks whose `max_price` (0.1) is below every
//! possible quote (the learned multiplier floors at 0.25×), so each stays queued: every submission is one full decision
//! (marketplace search, a quote and a reputation lookup per top offer,
//! scoring, the explanation, the queued write). Phase 2 then measures
//! re-dispatch of the queue: each node heartbeat re-decides the 50 oldest
//! queued tasks, as the coordinator does in production.

use super::harness::Coordinator;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Runs the benchmark and prints decisions per second.
pub async fn run(
    manifest: PathBuf,
    nodes: usize,
    tasks: usize,
    clients: usize,
) -> anyhow::Result<()> {
    let c = Arc::new(Coordinator::start(manifest).await?);
    let t = Instant::now();
    let mut first = None;
    for chunk_start in (0..nodes).step_by(clients.max(1)) {
        let mut joins = Vec::new();
        for seed in chunk_start..(chunk_start + clients).min(nodes) {
            let c = c.clone();
            joins.push(tokio::spawn(async move {
                c.register_node(seed as u64, "computation", 1.0 + (seed % 10) as f64)
                    .await
            }));
        }
        for j in joins {
            let node = j.await??;
            first.get_or_insert(node);
        }
    }
    println!(
        "registered {nodes} nodes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let task = json!({ "task_type": "computation", "inputs": { "n": 1 }, "max_price": 0.1 });
    let per_client = tasks / clients.max(1);
    let t = Instant::now();
    let mut joins = Vec::new();
    for _ in 0..clients.max(1) {
        let (c, task) = (c.clone(), task.clone());
        joins.push(tokio::spawn(async move {
            for _ in 0..per_client {
                let v = c.user("POST", "/api/v1/tasks", Some(task.clone())).await?;
                anyhow::ensure!(
                    v["status"] == "queued",
                    "expected queued, got {}",
                    v["status"]
                );
            }
            anyhow::Ok(())
        }));
    }
    for j in joins {
        j.await??;
    }
    let submitted = per_client * clients.max(1);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "phase 1: {submitted} submissions, each a full decision over {nodes} nodes: {:.0} decisions/s ({:.2} ms each, {clients} clients)",
        submitted as f64 / secs,
        secs * 1e3 * clients as f64 / submitted as f64
    );

    let node = first.ok_or_else(|| anyhow::anyhow!("no nodes"))?;
    let beats = 100;
    let t = Instant::now();
    for _ in 0..beats {
        c.signed(
            &node,
            "PUT",
            &format!("/api/v1/nodes/{}/heartbeat", node.id),
            json!({ "load": 0.1 }).to_string().into_bytes(),
        )
        .await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "phase 2: {beats} heartbeats × 50 queued re-decisions with {submitted} queued: {:.0} decisions/s",
        (beats * 50) as f64 / secs
    );
    if let Ok(c) = Arc::try_unwrap(c) {
        c.stop().await;
    }
    Ok(())
}
