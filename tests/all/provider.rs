//! `greenmesh provide` as a real process against the coordinator on
//! loopback: kernels run in the sandbox and return signed results; hostile
//! modules fail only their own task; a node killed mid-task loses its lease
//! to another node; a receipt outlives a coordinator killed mid-task; Ctrl-C
//! hands unstarted leases back; dropping a kernel in adds a capability.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use greenmesh_protocol::Receipt;
use greenmesh_tests::node::register_user;
use greenmesh_tests::process::{free_port, spawn_coordinator, wait_healthy};
use greenmesh_tests::provider::{
    finished, kernel, kernel_dir, submit, wait_for_node, Provider, ProviderSpec,
};
use greenmesh_tests::{guest, send_with, Start, TestApp};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn coordinator(state: &Path) -> TestApp {
    // Expired leases come back quickly in the kill test.
    coordinator_with_grace(state, 500).await
}

/// The coordinator with leases that outlive their time limit by `grace_ms`.
async fn coordinator_with_grace(state: &Path, grace_ms: u64) -> TestApp {
    Start::coordinator(state)
        .env("SPIN_VARIABLE_LEASE_GRACE_MS", &grace_ms.to_string())
        .env("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "5000")
        // The huge-output case needs 256 MB, beyond the free tier's 100 MB;
        // tier limits have their own tests (governance.rs).
        .env("SPIN_VARIABLE_QUOTAS", "off")
        .start()
        .await
        .unwrap()
}

/// A provider with no kernels, offering `wasm_execution`, owned by a new
/// user: (the owner's token, the provider, the node as listed).
async fn wasm_node(app: &TestApp, dir: &Path) -> (String, Provider, Value) {
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir, &[]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.join("node")).spawn();
    let node = wait_for_node(app.addr, &["wasm_execution"], WAIT).await;
    (token, provider, node)
}

fn wasm_task(module: &Path, params: Value, seconds: u32, memory_mb: u32) -> Value {
    json!({
        "task_type": "wasm_execution",
        "inputs": { "data": BASE64.encode(b"ping"), "params": params },
        "wasm_module": BASE64.encode(std::fs::read(module).unwrap()),
        "requirements": { "max_execution_time_sec": seconds, "max_memory_mb": memory_mb },
        "max_price": 100.0,
    })
}

/// The decoded output bytes of a completed task.
fn output_bytes(task: &Value) -> Vec<u8> {
    let output: Value = serde_json::from_str(task["result"]["output"].as_str().unwrap()).unwrap();
    BASE64.decode(output["base64"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_provider_advertises_its_kernels_and_returns_signed_results() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&kernel("noop"), "noop.wasm")]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node"))
        .env("MESH_PEER_ID", "solar-1")
        .env("MESH_PEER_NAME", "My Solar Server")
        .env("MESH_PEER_LOCATION", "San Francisco, CA")
        .env("MESH_CURRENT_ENERGY_TYPE", "solar")
        .env("MESH_CURRENT_ENERGY_PERCENT_CLEAN", "95")
        .env("MESH_TIMEZONE", "America/Los_Angeles")
        .setting("device_power_watts = 36000.0")
        .spawn();
    let node = wait_for_node(app.addr, &["noop", "wasm_execution"], WAIT).await;
    assert_eq!(node["name"], "My Solar Server");
    assert_eq!(node["region"], "San Francisco, CA");
    assert!((node["energy"]["clean_share"].as_f64().unwrap() - 0.95).abs() < 1e-6);
    let names: Vec<&str> = node["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "exactly the kernel folder plus wasm_execution: {names:?}"
    );
    let noop = node["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "noop")
        .unwrap();
    assert_eq!(
        noop["sha256"],
        greenmesh_protocol::sha256_hex(&std::fs::read(kernel("noop")).unwrap()),
        "the node advertises the hash of the kernel it installed"
    );

    let id = submit(
        app.addr,
        &token,
        json!({ "task_type": "computation", "capability": "noop", "inputs": { "text": "hello, mesh" }, "max_price": 10.0 }),
    )
    .await;
    let task = finished(app.addr, &token, &id).await;
    assert_eq!(task["status"], "completed", "{task}\n{}", provider.log());
    assert_eq!(output_bytes(&task), b"hello, mesh");
    let receipt: Receipt = serde_json::from_value(task["result"]["receipt"].clone()).unwrap();
    let key = provider.key("solar-1");
    assert_eq!(
        receipt.verify(&key.pk),
        Ok(()),
        "signed by the node's own key"
    );
    assert_eq!(
        receipt.kernel_sha256,
        greenmesh_protocol::sha256_hex(&std::fs::read(kernel("noop")).unwrap())
    );
    let expected_wh = 36000.0 * receipt.duration_ms as f64 / 3_600_000.0;
    assert!(
        (receipt.energy_wh - expected_wh).abs() <= 36000.0 / 3_600_000.0,
        "energy = power × duration: {} Wh for {} ms",
        receipt.energy_wh,
        receipt.duration_ms
    );
    assert!(receipt.peak_memory_bytes > 0);
    assert_eq!(provider.interrupt().await.code(), Some(0));
}

#[tokio::test]
async fn hostile_modules_fail_only_their_own_task() {
    let dir = tempfile::tempdir().unwrap();
    // The node compiles each module before the time limit starts: on a
    // loaded machine with a cold compile cache that alone can outlast a
    // half-second grace, and the lease would expire before its receipt.
    let app = coordinator_with_grace(&dir.path().join("state"), 10_000).await;
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node"))
        .setting("max_output_bytes = 1048576")
        .spawn();
    wait_for_node(app.addr, &["wasm_execution"], WAIT).await;
    let hostile = guest("hostile_kernel");
    let cases = [
        (
            wasm_task(&hostile, json!({"mode": "loop"}), 1, 64),
            "time limit",
        ),
        (
            wasm_task(&hostile, json!({"mode": "bomb"}), 10, 32),
            "memory limit",
        ),
        (
            wasm_task(&hostile, json!({"mode": "huge"}), 10, 256),
            "output limit",
        ),
        (
            wasm_task(&hostile, json!({"mode": "stack"}), 10, 64),
            "stack overflow",
        ),
        (
            wasm_task(&hostile, json!({"mode": "panic"}), 10, 64),
            "panicked on purpose",
        ),
        (
            wasm_task(&guest("fs_kernel"), json!({}), 10, 64),
            "wasi:filesystem",
        ),
    ];
    for (task, reason) in cases {
        let id = submit(app.addr, &token, task).await;
        let done = finished(app.addr, &token, &id).await;
        assert_eq!(done["status"], "failed", "{done}\n{}", provider.log());
        let why = done["reason"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "expected {reason:?} in {why:?}");
        if reason == "wasi:filesystem" {
            assert!(why.contains("refused at admission"), "{why}");
        }
    }
    // The node is still serving.
    let id = submit(
        app.addr,
        &token,
        wasm_task(&hostile, json!({"mode": "echo"}), 10, 64),
    )
    .await;
    let done = finished(app.addr, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", provider.log());
    assert_eq!(output_bytes(&done), b"ping");
    assert_eq!(provider.interrupt().await.code(), Some(0));
}

#[tokio::test]
async fn a_kernel_that_sleeps_forever_fails_on_its_time_limit_and_the_node_serves_the_next_task() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    // One slot (the default): a parked worker would be a dead node.
    let (token, provider, _) = wasm_node(&app, dir.path()).await;
    let hostile = guest("hostile_kernel");
    let started = std::time::Instant::now();
    let id = submit(
        app.addr,
        &token,
        wasm_task(&hostile, json!({ "mode": "sleep" }), 2, 64),
    )
    .await;
    let done = finished(app.addr, &token, &id).await;
    assert_eq!(done["status"], "failed", "{done}\n{}", provider.log());
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.contains("time limit"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The node is free again.
    let id = submit(
        app.addr,
        &token,
        wasm_task(&hostile, json!({ "mode": "echo" }), 10, 64),
    )
    .await;
    let done = finished(app.addr, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", provider.log());
    // And a node asked to stop while a kernel sleeps stops at once.
    let id = submit(
        app.addr,
        &token,
        wasm_task(&hostile, json!({ "mode": "sleep" }), 60, 64),
    )
    .await;
    while provider.log().matches("running on").count() < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = std::time::Instant::now();
    assert_eq!(provider.interrupt().await.code(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
    let _ = id;
}

#[tokio::test]
async fn a_hundred_trapping_modules_from_one_requester_sink_the_requester_not_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    // The one honest provider stands for the network here: its reports
    // alone may throttle (two owners by default; hostile.rs shows why).
    let app = Start::coordinator(&dir.path().join("state"))
        .env("SPIN_VARIABLE_LEASE_GRACE_MS", "500")
        .env("SPIN_VARIABLE_QUOTAS", "off")
        .env("SPIN_VARIABLE_FAULT_CONFIRMING_OWNERS", "1")
        .start()
        .await
        .unwrap();
    let (owner, provider, node) = wasm_node(&app, dir.path()).await;
    let attacker = register_user(app.addr, "attacker").await.unwrap();
    let node_id = node["id"].as_str().unwrap().to_string();
    let hostile = guest("hostile_kernel");
    let mut failed = 0;
    let mut refused = None;
    for _ in 0..100 {
        let r = send_with(
            app.addr,
            "POST",
            "/api/v1/tasks",
            Bytes::from(wasm_task(&hostile, json!({ "mode": "panic" }), 10, 64).to_string()),
            &[("authorization", &format!("Bearer {attacker}"))],
        )
        .await
        .unwrap();
        if r.status != 201 {
            refused = Some(r);
            break;
        }
        let id = r.json()["id"].as_str().unwrap().to_string();
        let done = finished(app.addr, &attacker, &id).await;
        assert_eq!(done["status"], "failed", "{done}\n{}", provider.log());
        failed += 1;
    }
    // The provider signed each failure as the requester's module's fault.
    let refused = refused.expect("the requester is throttled before a hundred");
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "too_many_failures");
    assert_eq!(failed, 20, "the default throttle");
    let node = send_with(
        app.addr,
        "GET",
        &format!("/api/v1/nodes/{node_id}"),
        Bytes::new(),
        &[],
    )
    .await
    .unwrap()
    .json();
    assert_eq!(node["reputation"]["failures"], 0.0, "{node}");
    assert_eq!(node["reputation"]["value"], 0.5, "where it was: {node}");
    let me = send_with(
        app.addr,
        "GET",
        "/api/v1/users/me",
        Bytes::new(),
        &[("authorization", &format!("Bearer {attacker}"))],
    )
    .await
    .unwrap()
    .json();
    assert!(me["reputation"]["value"].as_f64().unwrap() < 0.5, "{me}");
    assert!(
        me["reputation"]["failures"].as_f64().unwrap() > 10.0,
        "{me}"
    );
    // Someone else's tasks still run there.
    let id = submit(
        app.addr,
        &owner,
        wasm_task(&hostile, json!({ "mode": "echo" }), 10, 64),
    )
    .await;
    assert_eq!(finished(app.addr, &owner, &id).await["status"], "completed");
}

#[tokio::test]
async fn deterministic_leases_freeze_the_clock_seed_randomness_and_canonicalise_nans() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let (token, provider, _) = wasm_node(&app, dir.path()).await;
    let node = &provider;
    let run = |mode: &'static str, deterministic: bool| {
        let token = token.clone();
        async move {
            let mut task = wasm_task(&guest("hostile_kernel"), json!({ "mode": mode }), 10, 64);
            task["requirements"]["deterministic"] = json!(deterministic);
            let id = submit(app.addr, &token, task).await;
            let done = finished(app.addr, &token, &id).await;
            assert_eq!(done["status"], "completed", "{done}\n{}", node.log());
            done
        }
    };
    let json_output = |done: Value| -> Value {
        let output: Value =
            serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
        output["json"].clone()
    };
    let mut randoms = Vec::new();
    for _ in 0..2 {
        let output = json_output(run("clock", true).await);
        assert_eq!(output["now_ms"], 0, "the wall clock stands at the epoch");
        randoms.push(output["random"].clone());
    }
    // Two tasks have two seeds: randomness differs between tasks but is a
    // function of the task's signed seed (not of the machine).
    assert_ne!(randoms[0], randoms[1]);
    let output = json_output(run("clock", false).await);
    assert!(
        output["now_ms"].as_u64().unwrap() > 1_700_000_000_000,
        "a task that does not ask runs on the real clock: {output}"
    );

    // 0/0 computed at run time: the canonical NaN when deterministic, the
    // hardware's own otherwise (x86's "real indefinite" has the sign set).
    assert_eq!(output_bytes(&run("nan", true).await), b"7fc00000");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(output_bytes(&run("nan", false).await), b"ffc00000");
    }
    provider.interrupt().await;
}

#[tokio::test]
async fn dropping_a_kernel_into_the_folder_adds_a_capability() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&kernel("noop"), "noop.wasm")]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node"))
        .env("MESH_ALLOWED_TASKS", "noop,hostile")
        .spawn();
    let node = wait_for_node(app.addr, &["noop", "wasm_execution"], WAIT).await;
    assert_eq!(
        node["allowed_tasks"],
        json!(["noop", "hostile"]),
        "MESH_ALLOWED_TASKS is the allow-list; wasm_execution is offered only to grantees: {node}"
    );
    std::fs::copy(guest("hostile_kernel"), kernels.join("hostile.wasm")).unwrap();
    let node = wait_for_node(app.addr, &["noop", "hostile"], WAIT).await;
    // A file that is not a kernel is reported, not advertised.
    std::fs::copy(guest("fs_kernel"), kernels.join("snoop.wasm")).unwrap();
    provider.wait_log("refused at admission", WAIT).await;
    let again = wait_for_node(app.addr, &["noop", "hostile"], WAIT).await;
    assert_eq!(again["capabilities"].as_array().unwrap().len(), 3, "{node}");
    provider.interrupt().await;
}

#[tokio::test]
async fn a_node_killed_mid_task_loses_the_lease_to_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&guest("hostile_kernel"), "hostile.wasm")]);
    let first = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("first"))
        .env("MESH_PEER_ID", "first")
        .spawn();
    let first_node = wait_for_node(app.addr, &["hostile"], WAIT).await;
    // Long enough to be killed in the middle, short enough to expire soon.
    let task = json!({
        "task_type": "computation",
        "capability": "hostile",
        "inputs": { "data": BASE64.encode(b"work"), "params": { "mode": "spin", "iterations": 300_000_000u64 } },
        "requirements": { "max_execution_time_sec": 5 },
        "max_price": 100.0,
    });
    let id = submit(app.addr, &token, task).await;
    first.wait_log("running on", WAIT).await;
    let mut first = first;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();

    let second = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("second"))
        .env("MESH_PEER_ID", "second")
        .spawn();
    let done = finished(app.addr, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", second.log());
    assert_ne!(
        done["node_id"], first_node["id"],
        "served by the second node"
    );

    // The first node's receipt for its expired lease arrives late: refused.
    let events = app
        .get(&format!("/api/v1/events?task_id={id}"))
        .await
        .json();
    let leased: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "task_delegated")
        .collect();
    let first_lease = leased
        .iter()
        .find(|e| e["node_id"] == first_node["id"])
        .expect("the first node held a lease")["data"]["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let node = greenmesh_tests::node::TestNode {
        addr: app.addr,
        key: first.key("first"),
        id: first_node["id"].as_str().unwrap().to_string(),
        clock: Default::default(),
    };
    let mut late = node.receipt(
        &greenmesh_protocol::Lease {
            lease_id: first_lease.clone(),
            task_id: id.clone(),
            node_id: node.id.clone(),
            capability: "hostile".into(),
            price: 0.0,
            timeout_ms: 0,
            max_memory_mb: 0,
            fuel: 0,
            input_sha256: done["result"]["receipt"]["input_sha256"]
                .as_str()
                .unwrap()
                .into(),
            expires_at: 0,
            nonce: String::new(),
            grant: None,
            deterministic: false,
            kernel_sha256: None,
            seed: None,
            signature: String::new(),
        },
        "late",
    );
    late.sign(&node.key.sk);
    let r = node.post_result(&first_lease, &late, "late").await.unwrap();
    assert_eq!(r.status, 410, "late receipt refused: {}", r.text());

    // Restarted on its data folder, the first node does not run the task
    // again: it hands the interrupted lease back, and nothing is reported twice.
    let restarted = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("first"))
        .env("MESH_PEER_ID", "first")
        .spawn();
    restarted.wait_log("registered with", WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = app
        .get(&format!("/api/v1/events?task_id={id}"))
        .await
        .json();
    let completions = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "task_completed")
        .count();
    assert_eq!(completions, 1);
    // One log for both runs of the first node: the task started once.
    assert_eq!(
        restarted.log().matches("running on").count(),
        1,
        "{}",
        restarted.log()
    );
    second.interrupt().await;
    restarted.interrupt().await;
}

#[tokio::test]
async fn ctrl_c_hands_back_unstarted_leases_and_finishes_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&guest("hostile_kernel"), "hostile.wasm")]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node")).spawn();
    wait_for_node(app.addr, &["hostile"], WAIT).await;
    let task = json!({
        "task_type": "computation",
        "capability": "hostile",
        "inputs": { "data": BASE64.encode(b"work"), "params": { "mode": "spin", "iterations": 2_000_000_000u64 } },
        "requirements": { "max_execution_time_sec": 30 },
        "max_price": 100.0,
    });
    let a = submit(app.addr, &token, task.clone()).await;
    let b = submit(app.addr, &token, task).await;
    provider.wait_log("running on", WAIT).await;
    // Both leases are with the node (one running, one waiting its turn).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = provider.interrupt().await;
    assert_eq!(status.code(), Some(0));
    let a = finished(app.addr, &token, &a).await;
    assert_eq!(a["status"], "completed", "the running task finished: {a}");
    let events = app.get(&format!("/api/v1/events?task_id={b}")).await.json();
    let refused = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "lease_refused")
        .unwrap_or_else(|| panic!("no refusal: {events}"));
    assert!(refused["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("handed back unstarted"));
}

#[tokio::test]
async fn a_receipt_outlives_a_coordinator_killed_mid_task_and_the_task_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut coordinator = spawn_coordinator(&state, port, &[]);
    wait_healthy(addr).await;
    let token = register_user(addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&guest("hostile_kernel"), "hostile.wasm")]);
    let provider = ProviderSpec::new(addr, &token, &kernels, &dir.path().join("node")).spawn();
    wait_for_node(addr, &["hostile"], WAIT).await;
    let task = json!({
        "task_type": "computation",
        "capability": "hostile",
        "inputs": { "data": BASE64.encode(b"work"), "params": { "mode": "spin", "iterations": 2_000_000_000u64 } },
        "requirements": { "max_execution_time_sec": 60 },
        "max_price": 100.0,
    });
    let id = submit(addr, &token, task).await;
    provider.wait_log("running on", WAIT).await;
    coordinator.kill(); // SIGKILL while the node runs the task
    provider.wait_log("will retry", WAIT).await;

    let _coordinator = spawn_coordinator(&state, port, &[]);
    wait_healthy(addr).await;
    let done = finished(addr, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", provider.log());
    assert_eq!(output_bytes(&done), b"work");
    assert_eq!(
        provider.log().matches("running on").count(),
        1,
        "{}",
        provider.log()
    );
    provider.wait_log("receipt accepted", WAIT).await;
    provider.interrupt().await;
}

#[tokio::test]
async fn a_lease_beyond_the_node_s_limits_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let token = register_user(app.addr, "owner").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&kernel("noop"), "noop.wasm")]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node"))
        .env("MESH_MAX_TASK_DURATION_MS", "1000")
        .spawn();
    wait_for_node(app.addr, &["noop"], WAIT).await;
    let id = submit(
        app.addr,
        &token,
        json!({
            "task_type": "computation", "capability": "noop", "inputs": { "text": "x" },
            "requirements": { "max_execution_time_sec": 5 }, "max_price": 10.0,
        }),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    let refusal = loop {
        let events = app
            .get(&format!("/api/v1/events?task_id={id}"))
            .await
            .json();
        if let Some(e) = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_type"] == "lease_refused")
        {
            break e.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal: {events}\n{}",
            provider.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = refusal["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("at most 1000 ms"), "{reason}");
    // The task went back to the queue, saying why, and was never run.
    let task = send_with(
        app.addr,
        "GET",
        &format!("/api/v1/tasks/{id}"),
        Bytes::new(),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap()
    .json();
    assert_eq!(task["status"], "queued", "{task}");
    assert!(!provider.log().contains("running on"));
    provider.interrupt().await;
}

#[tokio::test]
async fn a_grant_lets_a_node_run_a_task_outside_its_allow_list_and_the_node_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(&dir.path().join("state")).await;
    let owner = register_user(app.addr, "owner").await.unwrap();
    let as_user = |token: &str, method: &'static str, path: &str, body: Value| {
        let (token, path) = (token.to_string(), path.to_string());
        let addr = app.addr;
        async move {
            send_with(
                addr,
                method,
                &path,
                Bytes::from(body.to_string()),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await
            .unwrap()
        }
    };
    let owner_key = greenmesh_protocol::key_pair_from_seed([61; 32]);
    let key_hex = greenmesh_protocol::public_key_hex(&owner_key.pk);
    let r = as_user(
        &owner,
        "PATCH",
        "/api/v1/users/me",
        json!({ "public_key": key_hex }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let kernels = kernel_dir(dir.path(), &[(&kernel("noop"), "noop.wasm")]);
    let provider = ProviderSpec::new(app.addr, &owner, &kernels, &dir.path().join("node"))
        .env("MESH_ALLOWED_TASKS", "image-filter")
        .spawn();
    let node = wait_for_node(app.addr, &["noop"], WAIT).await;
    let node_id = node["id"].as_str().unwrap().to_string();

    let requester = register_user(app.addr, "requester").await.unwrap();
    let requester_id = as_user(&requester, "GET", "/api/v1/users/me", Value::Null)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let noop = json!({
        "task_type": "computation", "capability": "noop", "inputs": { "text": "granted" },
        "requirements": { "max_execution_time_sec": 5 }, "max_price": 10.0,
    });
    let id = submit(app.addr, &requester, noop).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = as_user(
        &requester,
        "GET",
        &format!("/api/v1/tasks/{id}"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(
        waiting["status"], "queued",
        "the allow-list leaves noop out: {waiting}"
    );

    let grant = greenmesh_protocol::Grant {
        node_id: node_id.clone(),
        user_id: requester_id,
        task_pattern: "noop".into(),
        expires_at: None,
        issued_at: 1,
    };
    let r = as_user(
        &owner,
        "POST",
        "/api/v1/grants",
        json!({
            "node_id": grant.node_id, "user_id": grant.user_id, "task_pattern": grant.task_pattern,
            "issued_at": grant.issued_at, "signature": grant.sign(&owner_key.sk),
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The lease carries the grant; the node checks its owner signed it, then runs the task.
    let done = finished(app.addr, &requester, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", provider.log());
    assert_eq!(done["node_id"], node_id.as_str());
    assert_eq!(output_bytes(&done), b"granted");
}
