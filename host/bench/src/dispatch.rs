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
//!
//! With `--postgres` the same run measures the embedded SQLite database,
//! then Postgres with one replica and with `--replicas` replicas (a fresh
//! database for each) and prints the three side by side: submissions go
//! round-robin over the replicas, and so do phase 2's heartbeats, so the
//! replicas race to claim the woken tasks.

use super::harness::Coordinator;
use super::postgres;
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
    /// A Postgres server (`postgres://user[:pass]@host:port/db`) on which
    /// to create one database per configuration; without it only SQLite
    /// runs.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Replicas in the last Postgres configuration.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
}

/// One configuration's figures.
struct Figures {
    label: String,
    /// Phase 1: submissions (each a full decision) per second, and each
    /// one's latency.
    submissions_per_second: f64,
    submit_p50: Duration,
    submit_p99: Duration,
    /// Phase 2: woken tasks decided again per second.
    redecisions_per_second: f64,
    /// Phase 3: one heartbeat with the whole queue parked.
    idle_heartbeat: Duration,
    /// Postgres transactions (each an autocommitted statement) per
    /// submission (phase 1) and per re-decision (phase 2).
    statements: Option<(f64, f64)>,
}

/// Runs every configuration and prints the table.
pub async fn run(setup: Setup) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for c in postgres::configurations(setup.postgres.as_deref(), setup.replicas, "dispatch").await?
    {
        rows.push(measure(&setup, &c.label, c.database.as_deref(), c.replicas).await?);
    }
    println!(
        "\ngreenmesh bench dispatch  ({} nodes, {} tasks, {} clients{}, this machine)",
        setup.nodes,
        setup.tasks,
        setup.clients,
        if setup.distinct { ", distinct" } else { "" }
    );
    println!(
        "| configuration | submissions/s | submit p50 | p99 | re-decisions/s | idle heartbeat | statements per submission | per re-decision |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.0} | {:.2} ms | {} | {} |",
            r.label,
            r.submissions_per_second,
            ms(r.submit_p50),
            ms(r.submit_p99),
            r.redecisions_per_second,
            ms(r.idle_heartbeat),
            r.statements
                .map_or("–".to_string(), |(n, _)| format!("{n:.1}")),
            r.statements
                .map_or("–".to_string(), |(_, n)| format!("{n:.1}"))
        );
    }
    Ok(())
}

/// One configuration: `replicas` coordinators on `database` (the embedded
/// SQLite file when `None`).
async fn measure(
    setup: &Setup,
    label: &str,
    database: Option<&str>,
    replicas: usize,
) -> anyhow::Result<Figures> {
    let &Setup {
        nodes,
        tasks,
        clients,
        unplaceable_share,
        distinct,
        ..
    } = setup;
    let clients = clients.max(1);
    println!("{label}:");
    let env = match database {
        Some(d) => postgres::coordinator_settings(d)?,
        None => Vec::new(),
    };
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut cs = Vec::new();
    for _ in 0..replicas.max(1) {
        cs.push(Arc::new(
            Coordinator::start_with(
                setup.manifest.clone(),
                &env,
                greenmesh_host::clock::VirtualClock::new(),
            )
            .await?,
        ));
    }
    let c = cs[0].clone();
    let t = Instant::now();
    // The first node of each replica's: phase 2's and 3's heartbeats.
    let mut beating = Vec::new();
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
            if beating.len() < cs.len() {
                beating.push(Arc::new(node));
            }
        }
    }
    anyhow::ensure!(
        beating.len() == cs.len(),
        "--nodes must be at least the replicas ({})",
        cs.len()
    );
    println!(
        "registered {nodes} nodes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let per_client = tasks / clients;
    // Of every 10 tasks, `unplaceable_share × 10` name a capability nobody offers.
    let unplaceable = move |i: usize| ((i % 10) as f64) < unplaceable_share * 10.0;
    let transactions_at_start = match database {
        Some(d) => Some(postgres::transactions(d).await?),
        None => None,
    };
    let t = Instant::now();
    let mut joins = Vec::new();
    for client in 0..clients {
        let cs = cs.clone();
        joins.push(tokio::spawn(async move {
            let mut placeable = 0usize;
            let mut latencies = Vec::with_capacity(per_client);
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
                let t0 = Instant::now();
                let v = cs[n % cs.len()]
                    .user("POST", "/api/v1/tasks", Some(task))
                    .await?;
                latencies.push(t0.elapsed());
                anyhow::ensure!(
                    v["status"] == "queued",
                    "expected queued, got {}",
                    v["status"]
                );
            }
            anyhow::Ok((placeable, latencies))
        }));
    }
    let mut placeable = 0;
    let mut latencies = Vec::new();
    for j in joins {
        let (p, l) = j.await??;
        placeable += p;
        latencies.extend(l);
    }
    latencies.sort();
    let submitted = per_client * clients;
    let secs = t.elapsed().as_secs_f64();
    let submissions_per_second = submitted as f64 / secs;
    println!(
        "phase 1: {submitted} submissions ({} for a capability nobody offers), each a full decision over {nodes} nodes: {submissions_per_second:.0} decisions/s ({:.2} ms each, {clients} clients)",
        submitted - placeable,
        secs * 1e3 * clients as f64 / submitted as f64
    );
    let queue = c.user("GET", "/api/v1/queue", None).await?;
    println!(
        "         queue: {} parked, {} ready",
        queue["parked"], queue["ready"]
    );
    let transactions_after_submissions = match database {
        Some(d) => Some(settled_transactions(d).await?),
        None => None,
    };

    // Phase 2: a market change wakes the parked computation tasks; each
    // replica's heartbeats (from a node of its own) run dispatch passes at
    // the same time.
    let beat = json!({ "load": 0.1 }).to_string().into_bytes();
    let t = Instant::now();
    c.register_node(nodes as u64, "computation", 5.0).await?;
    let mut beaters = Vec::new();
    for (c, node) in cs.iter().zip(beating.iter()) {
        let (c, node, beat) = (c.clone(), node.clone(), beat.clone());
        beaters.push(tokio::spawn(async move {
            let path = format!("/api/v1/nodes/{}/heartbeat", node.id);
            let mut beats = 0usize;
            loop {
                for _ in 0..20 {
                    c.signed(&node, "PUT", &path, beat.clone()).await?;
                    beats += 1;
                }
                let q = c.user("GET", "/api/v1/queue", None).await?;
                if q["ready"].as_u64() == Some(0) {
                    break anyhow::Ok(beats);
                }
                anyhow::ensure!(
                    t.elapsed() < Duration::from_secs(3600),
                    "the queue did not drain in an hour: {q}"
                );
            }
        }));
    }
    let mut beats = 0;
    for b in beaters {
        beats += b.await??;
    }
    let secs = t.elapsed().as_secs_f64();
    let redecisions_per_second = placeable as f64 / secs;
    println!(
        "phase 2: a node registers and wakes {placeable} parked tasks; {beats} heartbeats re-decide them all: {redecisions_per_second:.0} re-decisions/s ({secs:.1} s)"
    );
    let statements = match (
        database,
        transactions_at_start,
        transactions_after_submissions,
    ) {
        (Some(d), Some(t0), Some(t1)) => {
            let t2 = settled_transactions(d).await?;
            Some((
                (t1 - t0) as f64 / submitted.max(1) as f64,
                (t2 - t1) as f64 / placeable.max(1) as f64,
            ))
        }
        _ => None,
    };

    // Phase 3: with every task parked, a heartbeat decides nothing.
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        let (c, node) = (&cs[i % cs.len()], &beating[i % beating.len()]);
        let path = format!("/api/v1/nodes/{}/heartbeat", node.id);
        c.signed(node, "PUT", &path, beat.clone()).await?;
    }
    let idle_heartbeat = t.elapsed() / n as u32;
    println!(
        "phase 3: {n} heartbeats with {submitted} tasks parked: {:.2} ms each (nothing is rescanned)",
        idle_heartbeat.as_secs_f64() * 1e3
    );
    drop(c);
    for c in cs {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.stop().await;
        }
    }
    Ok(Figures {
        label: label.to_string(),
        submissions_per_second,
        submit_p50: super::percentile(&latencies, 0.5),
        submit_p99: super::percentile(&latencies, 0.99),
        redecisions_per_second,
        idle_heartbeat,
        statements,
    })
}

/// [`postgres::transactions`] once the replicas' backends have reported
/// (they do when idle, within a second).
async fn settled_transactions(database: &str) -> anyhow::Result<i64> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    postgres::transactions(database).await
}
