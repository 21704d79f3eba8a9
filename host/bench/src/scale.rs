//! `greenmesh bench scale`: the coordinator on SQLite (one replica) and on
//! Postgres with one and three replicas, side by side in one run.
//!
//! Each configuration starts its replicas in-process over a fresh database
//! (one Postgres database per configuration, made on the server
//! `--postgres` names), registers `--nodes` nodes that each long-poll one
//! replica and answer every lease at once, and submits `--tasks` tasks
//! from `--clients` concurrent clients, round-robin over the replicas.
//! Figures per configuration: decisions per second (tasks leased and
//! completed per second, first submission to last result) and submit →
//! result latency p50/p99 (the result as the node's post is accepted)
//! under that load, where it is mostly time queued. Then, on the same
//! replicas, `--light` tasks one at a time (each submitted when the one
//! before has its result, round-robin over the replicas): the latency of
//! a task on an idle network, the path itself.

use super::harness::Coordinator;
use super::postgres;
use anyhow::Context;
use greenmesh_protocol::Lease;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the benchmark runs (`greenmesh bench scale` flags).
#[derive(Debug, clap::Args)]
pub struct Setup {
    /// The coordinator manifest (its components must be built).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// A Postgres server (`postgres://user[:pass]@host:port/db`) on which
    /// to create one database per configuration; without it only SQLite
    /// runs.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    #[arg(long, default_value_t = 2000)]
    pub tasks: usize,
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Concurrent submitting clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Tasks submitted one at a time after the loaded phase.
    #[arg(long, default_value_t = 100)]
    pub light: usize,
}

const SEED: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

/// One configuration's figures.
struct Figures {
    label: String,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    light_p50: Duration,
    light_p99: Duration,
    /// CPU time per task in the loaded phase: this process (replicas,
    /// nodes and clients) and the Postgres server's processes.
    cpu_here: Duration,
    cpu_postgres: Duration,
    /// The machine's CPUs busy in the loaded phase (0–1).
    busy: f64,
    /// Postgres transactions (each an autocommitted statement) per task.
    statements: Option<f64>,
}

/// The machine's CPU time so far, (busy, all), in `/proc/stat` ticks.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let all: u64 = f.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = f.get(3).unwrap_or(&0) + f.get(4).unwrap_or(&0);
    (all - idle, all)
}

/// CPU time (user + system) of processes named `comm` (all of them, with
/// the children they reaped: a backend that exits counts in its
/// postmaster's), or of this process when `comm` is `None`. Linux's
/// `/proc`; zero elsewhere.
fn cpu_time(comm: Option<&str>) -> Duration {
    // `/proc/<pid>/stat` counts in USER_HZ, 100 on Linux's ABI.
    let ticks = |stat: &str, with_children: bool| -> u64 {
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return 0;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let own = f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0);
        own + if with_children {
            f.get(13).unwrap_or(&0) + f.get(14).unwrap_or(&0)
        } else {
            0
        }
    };
    let total = match comm {
        None => std::fs::read_to_string("/proc/self/stat")
            .map(|s| ticks(&s, false))
            .unwrap_or(0),
        Some(name) => std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|s| {
                s.split_once(" (")
                    .is_some_and(|(_, r)| r.starts_with(&format!("{name})")))
            })
            .map(|s| ticks(&s, true))
            .sum(),
    };
    Duration::from_millis(total * 10)
}

/// Runs every configuration and prints the table.
pub async fn run(setup: Setup) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for c in postgres::configurations(setup.postgres.as_deref(), 3, "scale").await? {
        rows.push(measure(&setup, &c.label, c.database.as_deref(), c.replicas).await?);
    }
    println!(
        "\ngreenmesh bench scale  ({} tasks, {} nodes, {} clients, release build on this machine)",
        setup.tasks, setup.nodes, setup.clients
    );
    println!(
        "| configuration | decisions/s | loaded: submit → result p50 | p99 | one at a time: p50 | p99 | CPUs busy | CPU per task: greenmesh | Postgres | statements per task |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} % | {:.2} ms | {:.2} ms | {} |",
            r.label,
            r.per_second,
            ms(r.p50),
            ms(r.p99),
            ms(r.light_p50),
            ms(r.light_p99),
            r.busy * 100.0,
            ms(r.cpu_here),
            ms(r.cpu_postgres),
            r.statements.map_or("–".to_string(), |n| format!("{n:.0}"))
        );
    }
    Ok(())
}

async fn measure(
    setup: &Setup,
    label: &str,
    database: Option<&str>,
    replicas: usize,
) -> anyhow::Result<Figures> {
    let mut env: Vec<(&str, String)> = vec![
        ("SPIN_VARIABLE_BROKER_SIGNING_SEED", SEED.to_string()),
        ("SPIN_VARIABLE_QUOTAS", "off".to_string()),
    ];
    if let Some(d) = database {
        env.extend(postgres::coordinator_settings(d)?);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut coordinators = Vec::new();
    for _ in 0..replicas {
        coordinators.push(Arc::new(
            Coordinator::start_with(
                setup.manifest.clone(),
                &env,
                greenmesh_host::clock::VirtualClock::new(),
            )
            .await?,
        ));
    }
    let mut nodes = Vec::new();
    for i in 0..setup.nodes {
        nodes.push(Arc::new(
            coordinators[0]
                .register_node(i as u64, "computation", 1.0)
                .await?,
        ));
    }
    let submitted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each node answers every lease of the replica it polls at once.
    let mut workers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let (c, node) = (coordinators[i % replicas].clone(), node.clone());
        let (submitted, latencies, done, stop) = (
            submitted.clone(),
            latencies.clone(),
            done.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = format!("/api/v1/nodes/{}/leases?wait=1", node.id);
                let Ok(polled) = c.signed(&node, "GET", &path, Vec::new()).await else {
                    continue;
                };
                for l in polled["leases"].as_array().cloned().unwrap_or_default() {
                    let Ok(lease) = serde_json::from_value::<Lease>(l["lease"].clone()) else {
                        continue;
                    };
                    let body = node.result_body(&lease, "42");
                    let path = format!("/api/v1/leases/{}/result", lease.lease_id);
                    if c.signed(&node, "POST", &path, body).await.is_ok() {
                        let t0 = submitted.lock().expect("lock").get(&lease.task_id).copied();
                        if let Some(t0) = t0 {
                            latencies.lock().expect("lock").push(t0.elapsed());
                        }
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    let cpu_at_start = (cpu_time(None), cpu_time(Some("postgres")));
    let machine_at_start = machine_ticks();
    let transactions_at_start = match database {
        Some(d) => Some(postgres::transactions(d).await?),
        None => None,
    };
    let per_client = setup.tasks.div_ceil(setup.clients.max(1));
    let mut clients = Vec::new();
    for k in 0..setup.clients.max(1) {
        let coordinators = coordinators.clone();
        let submitted = submitted.clone();
        let count = per_client.min(setup.tasks.saturating_sub(k * per_client));
        clients.push(tokio::spawn(async move {
            for j in 0..count {
                let c = &coordinators[(k + j) % coordinators.len()];
                let t0 = Instant::now();
                let task =
                    json!({ "task_type": "computation", "inputs": { "n": j }, "max_price": 100.0 });
                let v = c.user("POST", "/api/v1/tasks", Some(task)).await?;
                if let Some(id) = v["id"].as_str() {
                    submitted.lock().expect("lock").insert(id.to_string(), t0);
                }
            }
            anyhow::Ok(())
        }));
    }
    for c in clients {
        c.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while done.load(std::sync::atomic::Ordering::Relaxed) < setup.tasks {
        anyhow::ensure!(Instant::now() < deadline, "{label}: tasks did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let cpu_here = cpu_time(None).saturating_sub(cpu_at_start.0) / setup.tasks.max(1) as u32;
    let cpu_postgres =
        cpu_time(Some("postgres")).saturating_sub(cpu_at_start.1) / setup.tasks.max(1) as u32;
    let machine = machine_ticks();
    let busy =
        (machine.0 - machine_at_start.0) as f64 / (machine.1 - machine_at_start.1).max(1) as f64;
    let mut samples = std::mem::take(&mut *latencies.lock().expect("lock"));
    samples.sort();
    // One at a time: each task submitted when the one before has its result.
    for j in 0..setup.light {
        let c = &coordinators[j % replicas];
        let t0 = Instant::now();
        let task =
            json!({ "task_type": "computation", "inputs": { "light": j }, "max_price": 100.0 });
        let v = c.user("POST", "/api/v1/tasks", Some(task)).await?;
        let id = v["id"].as_str().context("no task id")?.to_string();
        submitted.lock().expect("lock").insert(id, t0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while done.load(std::sync::atomic::Ordering::Relaxed) < setup.tasks + j + 1 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{label}: light task {j} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut light = std::mem::take(&mut *latencies.lock().expect("lock"));
    light.sort();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    for c in coordinators {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.stop().await;
        }
    }
    // Every task of both phases, once the replicas' sessions have closed
    // and reported.
    let statements = match (database, transactions_at_start) {
        (Some(d), Some(t0)) => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let n = postgres::transactions(d).await? - t0;
            Some(n as f64 / (setup.tasks + setup.light) as f64)
        }
        _ => None,
    };
    let figures = Figures {
        label: label.to_string(),
        per_second: setup.tasks as f64 / elapsed.as_secs_f64(),
        p50: super::percentile(&samples, 0.5),
        p99: super::percentile(&samples, 0.99),
        light_p50: super::percentile(&light, 0.5),
        light_p99: super::percentile(&light, 0.99),
        cpu_here,
        cpu_postgres,
        busy,
        statements,
    };
    println!(
        "{label}: {} tasks in {:.1} s",
        setup.tasks,
        elapsed.as_secs_f64()
    );
    Ok(figures)
}
