//! `greenmesh bench dispatch`: dispatch decisions per second with many
//! registered nodes and a deep queue.
//!
//! Setup registers `nodes` nodes offering `computation` at prices 1–10
//! credits. Phase 1 submits `tasks` tasks: the placeable ones (`computation`,
//! each with its own `max_price` just under every possible quote, so no node
//! takes it: the learned multiplier floors at 0.25×) and, with
//! `--unplaceable-share`, a share of tasks for a capability nobody offers.
//! Every submission is one full decision (marketplace search, a quote and a
//! reputation lookup per top offer, scoring, the explanation) and parks
//! the task.
//!
//! Phase 2 measures re-decisions: one more node registers offering
//! `computation` (a market change), which wakes every parked `computation`
//! task; node heartbeats then run dispatch passes until the queue has no
//! ready task left. Decisions per second = woken tasks / that time. Tasks
//! asking the market the same question (capability and requirements) in one
//! pass share its answer; `--distinct` gives every task its own memory
//! requirement, so each decision pays for its own search, quotes and
//! reputations. The unplaceable tasks are never woken. Phase 3 measures
//! what a heartbeat costs with the whole queue parked: it must not depend
//! on the queue.

use super::harness::Coordinator;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the benchmark runs (`greenmesh bench dispatch` flags).
#[derive(Debug, clap::Args)]
pub struct Setup {
    /// The coordinator manifest (its components must be built).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub nodes: usize,
    #[arg(long, default_value_t = 100_000)]
    pub tasks: usize,
    /// Concurrent API clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Share of tasks (0–1, in tenths) for a capability no node offers.
    #[arg(long, default_value_t = 0.0)]
    pub unplaceable_share: f64,
    /// Give every task its own requirements (memory), so no two decisions
    /// in a pass share a market snapshot: the cost of a decision alone.
    #[arg(long)]
    pub distinct: bool,
}

/// Runs the benchmark and prints decisions per second.
pub async fn run(setup: Setup) -> anyhow::Result<()> {
    let Setup {
        manifest,
        nodes,
        tasks,
        clients,
        unplaceable_share,
        distinct,
    } = setup;
    let clients = clients.max(1);
    let c = Arc::new(Coordinator::start(manifest).await?);
    let t = Instant::now();
    let mut first = None;
    for chunk_start in (0..nodes).step_by(clients) {
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

    let per_client = tasks / clients;
    // Of every 10 tasks, `unplaceable_share × 10` name a capability nobody offers.
    let unplaceable = move |i: usize| ((i % 10) as f64) < unplaceable_share * 10.0;
    let t = Instant::now();
    let mut joins = Vec::new();
    for client in 0..clients {
        let c = c.clone();
        joins.push(tokio::spawn(async move {
            let mut placeable = 0usize;
            for i in 0..per_client {
                let n = client * per_client + i;
                let task = if unplaceable(n) {
                    json!({ "task_type": "computation", "capability": "nobody-offers-this",
                            "inputs": { "n": n } })
                } else {
                    placeable += 1;
                    // Each its own price (below every quote); with
                    // `distinct` also its own memory, so each decision asks
                    // the market its own question.
                    let memory = if distinct { 1 + n % 1000 } else { 100 };
                    json!({ "task_type": "computation", "inputs": { "n": n },
                            "max_price": 0.1 + (n % 1000) as f64 * 1e-5,
                            "requirements": { "max_memory_mb": memory } })
                };
                let v = c.user("POST", "/api/v1/tasks", Some(task)).await?;
                anyhow::ensure!(
                    v["status"] == "queued",
                    "expected queued, got {}",
                    v["status"]
                );
            }
            anyhow::Ok(placeable)
        }));
    }
    let mut placeable = 0;
    for j in joins {
        placeable += j.await??;
    }
    let submitted = per_client * clients;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "phase 1: {submitted} submissions ({} for a capability nobody offers), each a full decision over {nodes} nodes: {:.0} decisions/s ({:.2} ms each, {clients} clients)",
        submitted - placeable,
        submitted as f64 / secs,
        secs * 1e3 * clients as f64 / submitted as f64
    );
    let queue = c.user("GET", "/api/v1/queue", None).await?;
    println!(
        "         queue: {} parked, {} ready",
        queue["parked"], queue["ready"]
    );

    // Phase 2: a market change wakes the parked computation tasks.
    let node = first.ok_or_else(|| anyhow::anyhow!("no nodes"))?;
    let beat = json!({ "load": 0.1 }).to_string().into_bytes();
    let path = format!("/api/v1/nodes/{}/heartbeat", node.id);
    let t = Instant::now();
    c.register_node(nodes as u64, "computation", 5.0).await?;
    let mut beats = 0usize;
    let drained = loop {
        for _ in 0..20 {
            c.signed(&node, "PUT", &path, beat.clone()).await?;
            beats += 1;
        }
        let q = c.user("GET", "/api/v1/queue", None).await?;
        if q["ready"].as_u64() == Some(0) {
            break t.elapsed();
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(3600),
            "the queue did not drain in an hour: {q}"
        );
    };
    let secs = drained.as_secs_f64();
    println!(
        "phase 2: a node registers and wakes {placeable} parked tasks; {beats} heartbeats re-decide them all: {:.0} re-decisions/s ({:.1} s)",
        placeable as f64 / secs,
        secs
    );

    // Phase 3: with every task parked, a heartbeat decides nothing.
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        c.signed(&node, "PUT", &path, beat.clone()).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "phase 3: {n} heartbeats with {submitted} tasks parked: {:.2} ms each (nothing is rescanned)",
        secs * 1e3 / n as f64
    );
    if let Ok(c) = Arc::try_unwrap(c) {
        c.stop().await;
    }
    Ok(())
}
