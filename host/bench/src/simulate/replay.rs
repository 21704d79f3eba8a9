//! One replay: the real coordinator (spin.toml's components, in-process on
//! loopback) against the host's virtual clock, with one simulated node per
//! region reporting its trace and a forecast, and a requester submitting
//! jobs at their arrival times. The policy is the broker's: the replay only
//! moves the clock, reports energy, submits, runs leases for their duration
//! and posts receipts. It never tells the coordinator the trace's future
//! beyond the forecast a node would send.

use super::report::{JobOutcome, Run};
use crate::harness::{BenchNode, Coordinator};
use anyhow::{bail, Context};
use greenmesh_carbon::{forecast, Trace};
use greenmesh_host::clock::VirtualClock;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

/// What a node's forecast is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Foresight {
    /// The trace ahead with seeded error growing with the lead time.
    Forecast { mean_error: f32, seed: u64 },
    /// Daily persistence from the past only.
    History,
}

/// One replay's settings.
pub struct Setup<'a> {
    pub manifest: PathBuf,
    /// The requester's home region first; more traces add nodes elsewhere.
    pub traces: &'a [Trace],
    pub sla: &'a str,
    pub window_ms: u64,
    pub job_ms: u64,
    pub submits: &'a [u64],
    pub step_ms: u64,
    pub foresight: Foresight,
    pub power_w: f64,
    /// What the progress bar calls this replay.
    pub label: &'a str,
}

struct Node {
    node: BenchNode,
    trace: usize,
}

struct Running {
    job: usize,
    lease_id: String,
    lease: Value,
    node: usize,
    start: u64,
}

/// Replays `setup`; returns each job's outcome.
pub async fn run(setup: &Setup<'_>) -> anyhow::Result<Run> {
    let first = *setup.submits.first().context("no jobs")?;
    let last = *setup.submits.last().context("no jobs")?;
    let start = first - first % setup.step_ms;
    let end = last + setup.window_ms + setup.job_ms + 2 * setup.step_ms;
    let clock = VirtualClock::starting_at(UNIX_EPOCH + Duration::from_millis(start));
    let tick = setup.step_ms.to_string();
    let c = Coordinator::start_with(
        setup.manifest.clone(),
        &[
            ("SPIN_VARIABLE_DISPATCH_TICK_MS", &tick),
            ("SPIN_VARIABLE_LEASE_GRACE_MS", "604800000"),
            ("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "604800000"),
        ],
        clock.clone(),
    )
    .await?;
    let result = drive(&c, setup, &clock, start, end).await;
    c.stop().await;
    result
}

async fn drive(
    c: &Coordinator,
    setup: &Setup<'_>,
    clock: &VirtualClock,
    start: u64,
    end: u64,
) -> anyhow::Result<Run> {
    // The requester owns the node in its home region (its baseline grid);
    // an operator owns the nodes elsewhere.
    let operator = c
        .user("POST", "/api/v1/users", Some(json!({ "name": "operator" })))
        .await?;
    let operator = format!("Bearer {}", operator["token"].as_str().unwrap_or_default());
    let mut nodes = Vec::new();
    for (i, t) in setup.traces.iter().enumerate() {
        let owner = if i == 0 {
            c.auth.clone()
        } else {
            operator.clone()
        };
        let node = c
            .register_node_as(&owner, 1000 + i as u64, "image-filter", 1.0, &t.region)
            .await?;
        nodes.push(Node { node, trace: i });
    }
    let horizon = setup.window_ms + setup.job_ms;
    let mut jobs: Vec<JobOutcome> = setup
        .submits
        .iter()
        .map(|&s| JobOutcome::new(s - s % setup.step_ms + setup.step_ms))
        .collect();
    let mut by_task: HashMap<String, usize> = HashMap::new();
    let mut running: Vec<Running> = Vec::new();
    let mut next_job = 0;
    let mut t = start;
    // The replayed span as a bar, on a terminal only (stderr: the figures
    // on stdout stay clean when piped).
    let bar = indicatif::ProgressBar::with_draw_target(
        Some((end - start) / setup.step_ms + 1),
        indicatif::ProgressDrawTarget::stderr(),
    )
    .with_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {percent:>3}% of the replayed span, {msg} ({elapsed}, ~{eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    )
    .with_prefix(setup.label.to_string());
    while t <= end {
        clock.set(UNIX_EPOCH + Duration::from_millis(t));
        bar.set_position((t - start) / setup.step_ms);
        bar.set_message(format!(
            "{} of {} jobs started",
            jobs.iter().filter(|j| j.start.is_some()).count(),
            jobs.len()
        ));
        // Runs that have lasted their duration report.
        let mut still = Vec::new();
        for r in running.drain(..) {
            if r.start + setup.job_ms > t {
                still.push(r);
                continue;
            }
            let (status, v) = report(c, &nodes[r.node].node, &r, setup, setup.job_ms).await?;
            match status {
                200 => jobs[r.job].finish(r.start, nodes[r.node].trace),
                410 => jobs[r.job].wasted(r.start, t, nodes[r.node].trace),
                _ => bail!("receipt for job {} refused: {status} {v}", r.job),
            }
        }
        running = still;
        // Nodes report their grid now and what they expect; a run their
        // report interrupted (normal SLA) stops here, and the node reports
        // the energy it used until now.
        let mut revoked = Vec::new();
        for n in &nodes {
            let trace = &setup.traces[n.trace];
            let now_value = trace.at(t).unwrap_or(0.0);
            let ahead = match setup.foresight {
                Foresight::Forecast { mean_error, seed } => {
                    forecast::with_error(trace, t, horizon, mean_error, seed ^ n.trace as u64)
                }
                Foresight::History => forecast::from_history(trace, t, horizon),
            };
            let energy = json!({
                "sources": [["grid", 1.0]], "clean_share": 0.0, "carbon_intensity": now_value,
                "forecast": ahead,
            });
            let beat = c
                .signed(
                    &n.node,
                    "PUT",
                    &format!("/api/v1/nodes/{}/heartbeat", n.node.id),
                    json!({ "load": 0.0, "energy": energy })
                        .to_string()
                        .into_bytes(),
                )
                .await
                .with_context(|| {
                    format!(
                        "heartbeat at {}",
                        greenmesh_carbon::civil::format_rfc3339(t)
                    )
                })?;
            for r in beat["revoked"].as_array().into_iter().flatten() {
                revoked.push(r["lease_id"].as_str().unwrap_or_default().to_string());
            }
        }
        for lease_id in revoked {
            let Some(pos) = running.iter().position(|r| r.lease_id == lease_id) else {
                continue;
            };
            let r = running.remove(pos);
            let (status, v) = report(c, &nodes[r.node].node, &r, setup, t - r.start).await?;
            anyhow::ensure!(
                status == 200,
                "stop report for job {} refused: {status} {v}",
                r.job
            );
            jobs[r.job].wasted(r.start, t, nodes[r.node].trace);
        }
        // Jobs due now are submitted.
        while next_job < jobs.len() && jobs[next_job].submit <= t {
            let task = c
                .user(
                    "POST",
                    "/api/v1/tasks",
                    Some(json!({
                        "task_type": "image-filter", "name": format!("job-{next_job}"),
                        "sla": setup.sla, "importance": "normal", "max_price": 1000.0,
                        "requirements": { "max_execution_time_sec": setup.job_ms / 1000 },
                    })),
                )
                .await?;
            by_task.insert(
                task["id"].as_str().unwrap_or_default().to_string(),
                next_job,
            );
            next_job += 1;
        }
        // Nodes fetch what they were leased and start it.
        for (i, n) in nodes.iter().enumerate() {
            let polled = c
                .signed(
                    &n.node,
                    "GET",
                    &format!("/api/v1/nodes/{}/leases?wait=0", n.node.id),
                    Vec::new(),
                )
                .await?;
            for l in polled["leases"].as_array().into_iter().flatten() {
                let lease = l["lease"].clone();
                let task = lease["task_id"].as_str().unwrap_or_default();
                let Some(&job) = by_task.get(task) else {
                    bail!("a lease for unknown task {task}");
                };
                running.push(Running {
                    job,
                    lease_id: lease["lease_id"].as_str().unwrap_or_default().to_string(),
                    lease,
                    node: i,
                    start: t,
                });
            }
        }
        if next_job == jobs.len() && running.is_empty() && jobs.iter().all(|j| j.start.is_some()) {
            break;
        }
        t += setup.step_ms;
    }
    bar.finish_and_clear();
    let ledger = c.user("GET", "/api/v1/ledger?limit=1", None).await?;
    Ok(Run {
        jobs,
        ledger_saved_g: ledger["totals"]["saved_g"].as_f64().unwrap_or(0.0),
        ledger_runs: ledger["totals"]["runs"].as_u64().unwrap_or(0),
    })
}

/// `node` reports run `r` after `ran_ms`: its result once it ran the job's
/// whole duration, else a `stopped` receipt for the energy used so far.
async fn report(
    c: &Coordinator,
    node: &BenchNode,
    r: &Running,
    setup: &Setup<'_>,
    ran_ms: u64,
) -> anyhow::Result<(u16, Value)> {
    let stopped = ran_ms < setup.job_ms;
    let energy_wh = setup.power_w * ran_ms as f64 / 3_600_000.0;
    let receipt = receipt(node, &r.lease, energy_wh, ran_ms, stopped);
    let output = if stopped { "" } else { "done" };
    let body = json!({ "receipt": receipt, "output": output });
    c.signed_status(
        node,
        "POST",
        &format!("/api/v1/leases/{}/result", r.lease_id),
        body.to_string().into_bytes(),
    )
    .await
}

/// A signed receipt for a lease (the replay's nodes "run" nothing: the
/// output is a constant and the energy is power × duration): the run's
/// end after `duration_ms`, or its stop report (`stopped`, no output).
fn receipt(
    node: &BenchNode,
    lease: &Value,
    energy_wh: f64,
    duration_ms: u64,
    stopped: bool,
) -> greenmesh_protocol::Receipt {
    use greenmesh_protocol::ReceiptStatus;
    let s = |k: &str| lease[k].as_str().unwrap_or_default().to_string();
    let output: &[u8] = if stopped { b"" } else { b"done" };
    let mut r = greenmesh_protocol::Receipt {
        lease_id: s("lease_id"),
        task_id: s("task_id"),
        node_id: s("node_id"),
        nonce: s("nonce"),
        status: if stopped {
            ReceiptStatus::Stopped
        } else {
            ReceiptStatus::Succeeded
        },
        kernel_sha256: greenmesh_protocol::sha256_hex(b"replay"),
        input_sha256: s("input_sha256"),
        output_sha256: greenmesh_protocol::sha256_hex(output),
        duration_ms,
        peak_memory_bytes: 0,
        energy_wh,
        error: stopped.then(|| "stopped: the coordinator revoked the lease".to_string()),
        fault: None,
        signature: String::new(),
    };
    r.sign(&node.key.sk);
    r
}
