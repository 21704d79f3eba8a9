//! `greenmesh bench soak`: a long mixed load on loopback against the real
//! coordinator served in-process. Requesters submit and poll tasks, nodes
//! long-poll leases and post signed receipts, a junk client sends bad
//! requests and slow clients trickle bodies that never finish. Every answer
//! is tallied by kind and status; anything but the expected statuses (a
//! `5xx`, a refused connection, a `400` to a good request) is an error.
//! Resident memory is sampled throughout and printed as a curve.

use super::harness::{BenchNode, Coordinator};
use greenmesh_protocol::Lease;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers by (client kind, status); status 0 is a transport error.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<(&'static str, u16), u64>>);

impl Tally {
    fn count(&self, kind: &'static str, status: u16) {
        *self
            .0
            .lock()
            .expect("tally lock")
            .entry((kind, status))
            .or_default() += 1;
    }
}

/// The statuses each kind of client expects.
fn expected(kind: &str, status: u16) -> bool {
    match kind {
        "submit" => status == 201,
        "poll" | "node-poll" | "receipt" => status == 200,
        // A receipt for a lease that ended meanwhile is refused, as it should be.
        "receipt-late" => matches!(status, 200 | 409 | 410),
        "junk" => matches!(status, 400 | 404 | 405),
        // The body never completes: 408 at the body timeout.
        "slow" => status == 408,
        _ => false,
    }
}

/// A `/proc/self/status` figure of this process, bytes (Linux; 0 elsewhere).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One memory sample: all resident memory, and its anonymous part (the
/// heap and the instances' memories; file-backed pages are SQLite's
/// memory-mapped database, which grows with the file by design).
#[derive(Clone, Copy)]
struct Sample {
    rss: u64,
    anon: u64,
    db: u64,
}

fn sample(state: &std::path::Path) -> Sample {
    let db = std::fs::read_dir(state)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    Sample {
        rss: status_bytes("VmRSS:"),
        anon: status_bytes("RssAnon:"),
        db,
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// Runs the soak for `duration`, sampling memory every `sample`.
pub async fn run(
    manifest: PathBuf,
    duration: Duration,
    sample_every: Duration,
) -> anyhow::Result<()> {
    let c = Arc::new(Coordinator::start(manifest).await?);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut nodes = Vec::new();
    for seed in 0..4 {
        nodes.push(Arc::new(
            c.register_node(9_000 + seed, "computation", 1.0).await?,
        ));
    }
    let addr: std::net::SocketAddr = c.base.trim_start_matches("http://").parse()?;
    let started = Instant::now();
    let mut workers = Vec::new();

    for _ in 0..2 {
        let (c, tally, stop) = (c.clone(), tally.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let task =
                json!({ "task_type": "computation", "inputs": { "n": 1 }, "max_price": 100.0 });
            while !stop.load(Ordering::Relaxed) {
                let reply = c
                    .client
                    .request("POST", "/api/v1/tasks")
                    .header("authorization", &c.auth)
                    .json(&task)
                    .send()
                    .await;
                let status = reply.as_ref().map_or(0, |r| r.status);
                tally.count("submit", status);
                if let Ok(r) = reply {
                    if let Some(id) = r.json()["id"].as_str() {
                        let got = c
                            .client
                            .request("GET", &format!("/api/v1/tasks/{id}"))
                            .header("authorization", &c.auth)
                            .send()
                            .await;
                        tally.count("poll", got.map_or(0, |r| r.status));
                    }
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
    }
    for node in &nodes {
        let (c, tally, stop, node) = (c.clone(), tally.clone(), stop.clone(), node.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                serve_leases(&c, &tally, &node).await;
            }
        }));
    }
    {
        let (c, tally, stop) = (c.clone(), tally.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let paths = [
                "/api/v1/queue",
                "/api/v1/nodes",
                "/api/v1/ledger?limit=20",
                "/api/v1/tasks?status=completed",
            ];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let got = c
                    .client
                    .request("GET", paths[i % paths.len()])
                    .header("authorization", &c.auth)
                    .send()
                    .await;
                tally.count("poll", got.map_or(0, |r| r.status));
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    {
        let (c, tally, stop) = (c.clone(), tally.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let reply = match i % 3 {
                    0 => {
                        c.client
                            .request("POST", "/api/v1/tasks")
                            .header("authorization", &c.auth)
                            .header("content-type", "application/json")
                            .body(b"{not json".to_vec())
                            .send()
                            .await
                    }
                    1 => {
                        c.client
                            .request("GET", "/api/v1/no-such-thing")
                            .send()
                            .await
                    }
                    _ => c
                        .client
                        .request("POST", "/api/v1/tasks")
                        .header("authorization", &c.auth)
                        .json(&json!({ "task_type": "computation", "inputs": 7, "max_price": -1 }))
                        .send()
                        .await,
                };
                tally.count("junk", reply.map_or(0, |r| r.status));
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    {
        let (tally, stop) = (tally.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut slow = tokio::task::JoinSet::new();
            while !stop.load(Ordering::Relaxed) {
                let tally = tally.clone();
                slow.spawn(async move {
                    tally.count("slow", slow_client(addr).await);
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            while slow.join_next().await.is_some() {}
        }));
    }

    let mut curve: Vec<Sample> = Vec::new();
    let state = c.state_dir().to_path_buf();
    println!("soak: {} s of mixed load on {}", duration.as_secs(), c.base);
    println!(
        "{:>6} {:>10} {:>11} {:>10} {:>9}",
        "t (s)", "RSS (MiB)", "anon (MiB)", "DB (MiB)", "answers"
    );
    while started.elapsed() < duration {
        let s = sample(&state);
        let answers: u64 = tally.0.lock().expect("tally lock").values().sum();
        println!(
            "{:>6.0} {:>10.1} {:>11.1} {:>10.1} {:>9}",
            started.elapsed().as_secs_f64(),
            mib(s.rss),
            mib(s.anon),
            mib(s.db),
            answers
        );
        curve.push(s);
        tokio::time::sleep(sample_every.min(duration.saturating_sub(started.elapsed()))).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    curve.push(sample(&state));

    let tally = tally.0.lock().expect("tally lock").clone();
    let mut unexpected = 0;
    println!("\n{:<14} {:>6} {:>10}  ", "client", "status", "answers");
    for ((kind, status), n) in &tally {
        let ok = expected(kind, *status);
        if !ok {
            unexpected += n;
        }
        println!(
            "{kind:<14} {status:>6} {n:>10}  {}",
            if ok { "" } else { "UNEXPECTED" }
        );
    }
    // The first third includes warm-up (caches and the instance pool
    // filling): compare the middle third with the last.
    let third = (curve.len() / 3).max(1);
    let mean = |f: fn(&Sample) -> u64, from: usize, to: usize| {
        let part = &curve[from.min(curve.len() - 1)..to.clamp(from + 1, curve.len())];
        mib(part.iter().map(f).sum::<u64>() / part.len() as u64)
    };
    let n = curve.len();
    let mut anon_growth = 0.0;
    for (name, f) in [
        ("RSS", (|s: &Sample| s.rss) as fn(&Sample) -> u64),
        ("anonymous", |s: &Sample| s.anon),
    ] {
        let (middle, last) = (mean(f, third, 2 * third), mean(f, n - third, n));
        if name == "anonymous" {
            anon_growth = last / middle - 1.0;
        }
        println!(
            "{name}: min {:.1} MiB, max {:.1} MiB; middle third {middle:.1} MiB, last third {last:.1} MiB ({:+.1} %)",
            mib(curve.iter().map(f).min().unwrap_or(0)),
            mib(curve.iter().map(f).max().unwrap_or(0)),
            (last / middle - 1.0) * 100.0
        );
    }
    println!(
        "database files: {:.1} MiB at the end (SQLite maps up to 256 MiB of it and caches 64 MiB: file-backed RSS grows with it)",
        mib(curve.last().map_or(0, |s| s.db))
    );
    println!("unexpected answers: {unexpected}");
    if let Ok(c) = Arc::try_unwrap(c) {
        c.stop().await;
    }
    anyhow::ensure!(unexpected == 0, "{unexpected} unexpected answers");
    // Flat: the heap (anonymous memory; file-backed RSS follows the
    // database file) grows by less than MAX_ANON_GROWTH from the middle
    // third to the last. Only a run long enough to be past its warm-up
    // (about four minutes) by its middle third is judged.
    if duration >= Duration::from_secs(JUDGED_FROM_SECS) && n >= 6 {
        anyhow::ensure!(
            anon_growth < MAX_ANON_GROWTH,
            "anonymous memory grew {:+.1} % from the middle third to the last (at most {:+.0} % is flat)",
            anon_growth * 100.0,
            MAX_ANON_GROWTH * 100.0
        );
    }
    Ok(())
}

/// Growth of anonymous memory from the middle third of a soak to the last
/// that still counts as flat.
const MAX_ANON_GROWTH: f64 = 0.05;
/// The shortest soak whose memory curve is judged, s.
const JUDGED_FROM_SECS: u64 = 450;

/// One long-poll of `node`'s leases and a signed receipt for each.
async fn serve_leases(c: &Coordinator, tally: &Tally, node: &BenchNode) {
    let polled = c
        .signed_status(
            node,
            "GET",
            &format!("/api/v1/nodes/{}/leases?wait=2", node.id),
            Vec::new(),
        )
        .await;
    let Ok((status, body)) = polled else {
        tally.count("node-poll", 0);
        return;
    };
    tally.count("node-poll", status);
    for entry in body["leases"].as_array().cloned().unwrap_or_default() {
        let Ok(lease) = serde_json::from_value::<Lease>(entry["lease"].clone()) else {
            continue;
        };
        let body = node.result_body(&lease, "42");
        let path = format!("/api/v1/leases/{}/result", lease.lease_id);
        let status = c
            .signed_status(node, "POST", &path, body)
            .await
            .map_or(0, |(s, _)| s);
        tally.count(
            if status == 200 {
                "receipt"
            } else {
                "receipt-late"
            },
            status,
        );
    }
}

/// A client that declares a 100-byte body, sends one byte and waits:
/// answers the status it finally gets (0 if none).
async fn slow_client(addr: std::net::SocketAddr) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let head = "POST /api/v1/tasks HTTP/1.1\r\nhost: soak\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    if s.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = vec![0u8; 1024];
    match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 12 => std::str::from_utf8(&buf[9..12])
            .ok()
            .and_then(|code| code.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}
