//! The lease lifecycle and the fair queue through the real coordinator:
//! cancels and revocations reach the node (a test node, and a real
//! `greenmesh provide` whose kernel is stopped), receipts and dispatches
//! that race count once, a crash between the steps of a state change is
//! repaired on restart, unplaceable tasks park without holding anyone up,
//! interrupted runs stay in the ledger, deadlines end queued tasks, and one
//! requester's backlog does not starve another's.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use greenmesh_protocol::{ReceiptStatus, Revocation};
use greenmesh_tests::net::{id, Net, User};
use greenmesh_tests::node::{NodeOptions, TestNode};
use greenmesh_tests::provider::{wait_for_node, ProviderSpec};
use greenmesh_tests::{coordinator_manifest_with, guest, Start};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

fn image_task() -> Value {
    json!({ "task_type": "image-filter", "inputs": { "text": "x" }, "max_price": 50.0,
            "sla": "urgent", "importance": "normal" })
}

async fn broker_key(net: &Net) -> greenmesh_protocol::ed25519_compact::PublicKey {
    let k = net.get("/api/v1/keys/broker").await;
    greenmesh_protocol::public_key(k["public_key"].as_str().unwrap()).unwrap()
}

async fn reputation(net: &Net, node: &TestNode) -> Value {
    net.get(&format!("/api/v1/nodes/{}", node.id)).await["reputation"].clone()
}

async fn used_today(net: &Net, user: &User) -> u64 {
    net.call(&user.token, "GET", "/api/v1/users/me/quota", Value::Null)
        .await
        .json()["used_today"]
        .as_u64()
        .unwrap()
}

/// The signed revocations a heartbeat of `node` answers with.
async fn revocations(node: &TestNode) -> Vec<Revocation> {
    let r = node.heartbeat(0.0).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_value(r.json()["revoked"].clone()).unwrap()
}

#[tokio::test]
async fn a_cancelled_task_stays_cancelled_and_its_node_is_told_to_stop() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let node = net.node(&bob, 41, &[("image-filter", 1.0)]).await;
    let task = net.submit(&alice, image_task()).await;
    assert_eq!(task["status"], "leased", "{task}");
    let before = used_today(&net, &alice).await;
    let (lease, _) = node.poll(0).await.unwrap().remove(0);

    let r = net
        .call(
            &alice.token,
            "DELETE",
            &format!("/api/v1/tasks/{}", id(&task)),
            Value::Null,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("cancelled"))
    );
    // The node fetched the lease, so it may have run: the day's count stays.
    assert_eq!(used_today(&net, &alice).await, before);

    // The node learns it on its next heartbeat, signed by the broker.
    let revoked = revocations(&node).await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(
        (revoked[0].lease_id.as_str(), revoked[0].status.as_str()),
        (lease.lease_id.as_str(), "cancelled")
    );
    assert_eq!(revoked[0].verify(&broker_key(&net).await), Ok(()));

    // Its receipt is refused; the task stays cancelled; nobody is paid.
    let mut receipt = node.receipt(&lease, "done");
    receipt.energy_wh = 0.25;
    receipt.duration_ms = 1_000;
    receipt.sign(&node.key.sk);
    let r = node
        .post_result(&lease.lease_id, &receipt, "done")
        .await
        .unwrap();
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "lease_cancelled");
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["status"], "cancelled", "{t}");
    assert_eq!(reputation(&net, &node).await["successes"], 0.0);

    // The energy it burned stays in the ledger, as an interrupted run.
    let ledger = net.get("/api/v1/ledger").await;
    let entry = &ledger["entries"][0];
    assert_eq!(
        (
            entry["task_id"].as_str(),
            entry["run"].as_str(),
            entry["energy_wh"].as_f64()
        ),
        (Some(id(&task).as_str()), Some("interrupted"), Some(0.25))
    );
    assert_eq!(ledger["totals"]["interrupted_runs"], 1);
    assert_eq!(ledger["totals"]["runs"], 0);
    // Reported: the revocation is no longer listed.
    assert!(revocations(&node).await.is_empty());
    assert_eq!(net.count_events(&id(&task), "lease_cancelled").await, 1);
}

#[tokio::test]
async fn a_cancel_reaches_the_provider_which_stops_the_kernel_and_reports_stopped() {
    let net = Net::start(&[("SPIN_VARIABLE_QUOTAS", "off")]).await;
    let owner = net.user("owner").await;
    let dir = tempfile::tempdir().unwrap();
    let kernels = dir.path().join("kernels");
    std::fs::create_dir_all(&kernels).unwrap();
    let provider = ProviderSpec::new(
        net.app.addr,
        &owner.token,
        &kernels,
        &dir.path().join("node"),
    )
    .spawn();
    wait_for_node(net.app.addr, &["wasm_execution"], Duration::from_secs(60)).await;
    let hostile = std::fs::read(guest("hostile_kernel")).unwrap();
    let task = |mode: &str, seconds: u32| {
        json!({
            "task_type": "wasm_execution",
            "inputs": { "data": BASE64.encode(b"ping"), "params": { "mode": mode } },
            "wasm_module": BASE64.encode(&hostile),
            "requirements": { "max_execution_time_sec": seconds, "max_memory_mb": 64 },
            "max_price": 100.0,
        })
    };
    // A kernel that would spin for its whole 60 s.
    let spinning = net.submit(&owner, task("loop", 60)).await;
    provider
        .wait_log("running on", Duration::from_secs(30))
        .await;
    let cancelled_at = Instant::now();
    let r = net
        .call(
            &owner.token,
            "DELETE",
            &format!("/api/v1/tasks/{}", id(&spinning)),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The provider stops it and reports `stopped` with the energy used.
    let stopped = loop {
        let events = net.events_of(&id(&spinning)).await;
        if let Some(e) = events.iter().find(|e| e["event_type"] == "lease_stopped") {
            break e.clone();
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(20),
            "no stop report:\n{}",
            provider.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stopped["data"]["receipt_status"], "stopped", "{stopped}");
    assert_eq!(stopped["data"]["revoked"], "cancelled");
    let ran_ms = stopped["data"]["duration_ms"].as_u64().unwrap();
    assert!(
        ran_ms < 20_000,
        "stopped long before its 60 s limit: {ran_ms} ms"
    );
    assert!(
        stopped["data"]["energy_wh"].as_f64().unwrap() > 0.0,
        "{stopped}"
    );
    assert!(
        provider
            .log()
            .contains("lease cancelled by the coordinator"),
        "{}",
        provider.log()
    );
    let t = net.task(&owner, &id(&spinning)).await;
    assert_eq!(t["status"], "cancelled");
    let ledger = net.get("/api/v1/ledger").await;
    assert_eq!(ledger["totals"]["interrupted_runs"], 1, "{ledger}");

    // The node is free again: the next task runs to the end.
    let echo = net.submit(&owner, task("echo", 10)).await;
    let r = net
        .call(
            &owner.token,
            "GET",
            &format!("/api/v1/tasks/{}?wait=20", id(&echo)),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(r["status"], "completed", "{r}\n{}", provider.log());
    assert_eq!(provider.interrupt().await.code(), Some(0));
}

#[tokio::test]
async fn twenty_concurrent_copies_of_one_receipt_are_accepted_once() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let node = Arc::new(net.node(&bob, 42, &[("image-filter", 1.0)]).await);
    let task = net.submit(&alice, image_task()).await;
    let (lease, _) = node.poll(0).await.unwrap().remove(0);
    let receipt = node.receipt(&lease, "out");
    let mut posts = Vec::new();
    for _ in 0..20 {
        let (node, receipt, lease_id) = (node.clone(), receipt.clone(), lease.lease_id.clone());
        posts.push(tokio::spawn(async move {
            node.post_result(&lease_id, &receipt, "out")
                .await
                .unwrap()
                .status
        }));
    }
    let mut statuses = Vec::new();
    for p in posts {
        statuses.push(p.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let rep = reputation(&net, &node).await;
    let successes = rep["successes"].as_f64().unwrap();
    assert!((0.99..=1.0).contains(&successes), "one success: {rep}");
    assert_eq!(net.count_events(&id(&task), "task_completed").await, 1);
    assert_eq!(net.get("/api/v1/ledger").await["totals"]["runs"], 1);
    assert_eq!(net.task(&alice, &id(&task)).await["status"], "completed");
}

#[tokio::test]
async fn a_receipt_for_other_kernel_bytes_than_advertised_or_submitted_is_refused() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let advertised = greenmesh_protocol::sha256_hex(b"image-filter as installed");
    let options = NodeOptions {
        clock: net.clock.clone(),
        kernel_sha256: Some(advertised.clone()),
        ..Default::default()
    };
    let node = TestNode::register_with(
        net.app.addr,
        &bob.token,
        42,
        &[("image-filter", 1.0), ("wasm_execution", 1.0)],
        options,
    )
    .await
    .unwrap();
    let shown = net.get(&format!("/api/v1/nodes/{}", node.id)).await;
    assert_eq!(
        shown["capabilities"][0]["sha256"],
        advertised.as_str(),
        "{shown}"
    );
    let signed_for = |lease: &greenmesh_protocol::Lease, kernel: &str| {
        let mut r = node.receipt(lease, "out");
        r.kernel_sha256 = kernel.to_string();
        r.sign(&node.key.sk);
        r
    };

    // A named kernel: the hash the node advertised when the lease was
    // made (the lease pins it, signed), nothing else, even after the node
    // re-registers other kernel bytes.
    let task = net.submit(&alice, image_task()).await;
    let (lease, _) = node.poll(0).await.unwrap().remove(0);
    assert_eq!(lease.kernel_sha256.as_deref(), Some(advertised.as_str()));
    let updated = NodeOptions {
        clock: net.clock.clone(),
        kernel_sha256: Some(greenmesh_protocol::sha256_hex(b"image-filter v2")),
        ..Default::default()
    };
    TestNode::register_with(
        net.app.addr,
        &bob.token,
        42,
        &[("image-filter", 1.0), ("wasm_execution", 1.0)],
        updated,
    )
    .await
    .unwrap();
    let other = node.receipt(&lease, "out"); // signed, for other kernel bytes
    let r = node
        .post_result(&lease.lease_id, &other, "out")
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "kernel_mismatch", "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "receipt.kernel_sha256");
    assert_eq!(net.count_events(&id(&task), "kernel_mismatch").await, 1);
    let rep = reputation(&net, &node).await;
    assert!(
        (0.99..=1.0).contains(&rep["wrong_results"].as_f64().unwrap()),
        "one wrong result: {rep}"
    );
    // The same mismatched receipt again is refused again, and counted once.
    let r = node
        .post_result(&lease.lease_id, &other, "out")
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    let rep = reputation(&net, &node).await;
    assert!(rep["wrong_results"].as_f64().unwrap() < 1.01, "{rep}");
    let r = node
        .post_result(&lease.lease_id, &signed_for(&lease, &advertised), "out")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(net.task(&alice, &id(&task)).await["status"], "completed");

    // wasm_execution: the submitted module's hash, not the node's.
    let module = b"\0asm a requester's component".to_vec();
    let task = net
        .submit(
            &alice,
            json!({ "task_type": "wasm_execution", "inputs": {}, "wasm_module": BASE64.encode(&module),
                    "max_price": 50.0, "sla": "urgent", "importance": "normal" }),
        )
        .await;
    let (lease, _) = node.poll(0).await.unwrap().remove(0);
    assert_eq!(lease.task_id, id(&task));
    let module_sha = greenmesh_protocol::sha256_hex(&module);
    assert_eq!(lease.kernel_sha256.as_deref(), Some(module_sha.as_str()));
    let r = node
        .post_result(&lease.lease_id, &signed_for(&lease, &advertised), "out")
        .await
        .unwrap();
    assert_eq!(r.json()["error"]["code"], "kernel_mismatch", "{}", r.text());
    let r = node
        .post_result(&lease.lease_id, &signed_for(&lease, &module_sha), "out")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    // A module that is not base64 is refused at submission, and a
    // registration's hash must be one.
    let r = net
        .call(
            &alice.token,
            "POST",
            "/api/v1/tasks",
            json!({ "task_type": "wasm_execution", "inputs": {}, "wasm_module": "not base64!" }),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("wasm_module")),
        "{}",
        r.text()
    );
    let bad = NodeOptions {
        kernel_sha256: Some("ABC".into()),
        ..Default::default()
    };
    let err = TestNode::register_with(net.app.addr, &bob.token, 43, &[("image-filter", 1.0)], bad)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("sha256"), "{err}");
}

#[tokio::test]
async fn a_deterministic_task_keeps_one_seed_across_its_leases() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let first = net.node(&bob, 42, &[("image-filter", 1.0)]).await;
    let mut task = image_task();
    task["requirements"] = json!({ "deterministic": true });
    let task = net.submit(&alice, task).await;
    let (lease, _) = first.poll(0).await.unwrap().remove(0);
    let seed = lease
        .seed
        .clone()
        .expect("a deterministic lease carries a seed");
    // The first node refuses it; the second node's lease of the same task
    // has a new nonce but the same seed, so its run draws the same numbers.
    let r = first.refuse(&lease.lease_id, "busy").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let second = net.node(&bob, 43, &[("image-filter", 1.0)]).await;
    let (again, _) = second.poll(0).await.unwrap().remove(0);
    assert_eq!(again.task_id, id(&task));
    assert_ne!(again.nonce, lease.nonce);
    assert_eq!(again.seed.as_deref(), Some(seed.as_str()));
    // Another task has another seed; a task that does not ask has none.
    let next_lease = || async {
        for node in [&first, &second] {
            if let Some((lease, _)) = node.poll(0).await.unwrap().into_iter().next() {
                return lease;
            }
        }
        panic!("no node was leased the task");
    };
    let mut other = image_task();
    other["requirements"] = json!({ "deterministic": true });
    net.submit(&alice, other).await;
    let other = next_lease().await;
    assert!(other.seed.is_some() && other.seed != again.seed);
    net.submit(&alice, image_task()).await;
    assert_eq!(next_lease().await.seed, None);
}

#[tokio::test]
async fn concurrent_dispatch_of_one_task_leases_it_once() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let mut others = Vec::new();
    for i in 0..6 {
        others.push(Arc::new(
            net.node(&bob, 50 + i, &[("image-filter", 1.0)]).await,
        ));
    }
    // Nobody offers the task's capability yet: it parks.
    let mut body = image_task();
    body["capability"] = json!("rare-capability");
    let task = net.submit(&alice, body).await;
    assert_eq!(task["queue"]["state"], "parked", "{task}");
    // Three nodes offering it register at once, while six others heartbeat
    // twice each: every one of those requests runs a dispatch pass.
    let mut registrations = Vec::new();
    for seed in 60..63u8 {
        let (addr, token, clock) = (net.app.addr, bob.token.clone(), net.clock.clone());
        registrations.push(tokio::spawn(async move {
            let options = NodeOptions {
                clock,
                ..Default::default()
            };
            TestNode::register_with(addr, &token, seed, &[("rare-capability", 1.0)], options)
                .await
                .unwrap()
        }));
    }
    let mut beats = Vec::new();
    for n in others.iter().chain(others.iter()) {
        let n = n.clone();
        beats.push(tokio::spawn(async move {
            let r = n.heartbeat(0.0).await.unwrap();
            (r.status, r.text())
        }));
    }
    for b in beats {
        let (status, body) = b.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let mut leases = 0;
    for r in registrations {
        leases += r.await.unwrap().poll(0).await.unwrap().len();
    }
    assert_eq!(leases, 1, "one lease for one task");
    assert_eq!(net.count_events(&id(&task), "task_delegated").await, 1);
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(
        (t["status"].as_str(), t["attempts"].as_i64()),
        (Some("leased"), Some(1))
    );
}

/// `spin.toml` whose broker crashes at `point` (the `GREENMESH_FAULT_POINT`
/// environment variable).
fn crashing_at(dir: &std::path::Path, point: &str) -> std::path::PathBuf {
    let manifest = coordinator_manifest_with(dir, &[]);
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "[component.broker]\n",
        &format!("[component.broker]\nenvironment = {{ GREENMESH_FAULT_POINT = \"{point}\" }}\n"),
    );
    std::fs::write(&manifest, text).unwrap();
    manifest
}

#[tokio::test]
async fn a_crash_between_the_steps_of_completing_a_lease_is_repaired_on_restart() {
    // Right after the receipt ended the lease; after the task took the
    // result; after every effect, before the lease is marked settled.
    for point in ["receipt_recorded", "task_finished", "lease_end_applied"] {
        let manifests = tempfile::tempdir().unwrap();
        let faulty = crashing_at(manifests.path(), point);
        let net = Net::start_with(&[], |dir| Start::at(faulty.clone(), dir)).await;
        let alice = net.user("alice").await;
        let bob = net.user("bob").await;
        let node = net.node(&bob, 43, &[("image-filter", 1.0)]).await;
        let task = net.submit(&alice, image_task()).await;
        let (lease, _) = node.poll(0).await.unwrap().remove(0);
        let receipt = node.receipt(&lease, "out");
        let r = node
            .post_result(&lease.lease_id, &receipt, "out")
            .await
            .unwrap();
        assert_eq!(r.status, 500, "{point}: the request crashed: {}", r.text());

        // Restarted without the fault, the next request repairs the state.
        let net = net.restart_as_shipped().await;
        let node = node.moved_to(net.app.addr);
        let t = net.task(&alice, &id(&task)).await;
        assert_eq!(t["status"], "completed", "{point}: {t}");
        assert_eq!(t["result"]["output"], "out", "{point}");
        let r = node
            .post_result(&lease.lease_id, &receipt, "out")
            .await
            .unwrap();
        assert_eq!(r.status, 409, "{point}: the receipt was kept: {}", r.text());
        assert_eq!(
            net.count_events(&id(&task), "task_completed").await,
            1,
            "{point}"
        );
        assert_eq!(
            net.get("/api/v1/ledger").await["totals"]["runs"],
            1,
            "{point}"
        );
        let successes = reputation(&net, &node).await["successes"].as_f64().unwrap();
        assert!((0.99..=1.0).contains(&successes), "{point}: {successes}");
    }
}

#[tokio::test]
async fn a_crash_while_leasing_or_cancelling_leaves_nothing_stuck() {
    // Leasing: the lease row is written, the task not yet pointed at it.
    let manifests = tempfile::tempdir().unwrap();
    let faulty = crashing_at(manifests.path(), "lease_inserted");
    let net = Net::start_with(&[], |dir| Start::at(faulty.clone(), dir)).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let node = net.node(&bob, 44, &[("image-filter", 1.0)]).await;
    let r = net
        .call(&alice.token, "POST", "/api/v1/tasks", image_task())
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    let net = net.restart_as_shipped().await;
    let node = node.moved_to(net.app.addr);
    // The stored task is leased afresh; the half-made lease is never handed out.
    let leases = node.poll(0).await.unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let (lease, _) = &leases[0];
    let r = node
        .post_result(&lease.lease_id, &node.receipt(lease, "ok"), "ok")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let tasks = net
        .call(&alice.token, "GET", "/api/v1/tasks", Value::Null)
        .await
        .json();
    assert_eq!(tasks["tasks"][0]["status"], "completed", "{tasks}");

    // Cancelling: the task is cancelled, its lease not yet revoked.
    let manifests = tempfile::tempdir().unwrap();
    let faulty = crashing_at(manifests.path(), "task_cancelled");
    let net = net
        .restart(|s| Start::at(faulty.clone(), &s.state_dir))
        .await;
    let task = net.submit(&alice, image_task()).await;
    let before = used_today(&net, &alice).await;
    let r = net
        .call(
            &alice.token,
            "DELETE",
            &format!("/api/v1/tasks/{}", id(&task)),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    let net = net.restart_as_shipped().await;
    let node = node.moved_to(net.app.addr);
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["status"], "cancelled");
    // Never fetched: the lease is gone for good and the quota given back.
    assert!(node.poll(0).await.unwrap().is_empty());
    assert_eq!(used_today(&net, &alice).await, before - 1);
    assert_eq!(net.count_events(&id(&task), "task_cancelled").await, 1);
}

#[tokio::test]
async fn sixty_unplaceable_tasks_from_six_users_do_not_hold_up_a_normal_task() {
    let net = Net::start(&[]).await;
    let mut unplaceable = Vec::new();
    for u in 0..6 {
        let user = net.user(&format!("user{u}")).await;
        for _ in 0..10 {
            let mut body = image_task();
            body["capability"] = json!("nobody-offers-this");
            let t = net.submit(&user, body).await;
            unplaceable.push((user.clone(), id(&t)));
        }
    }
    let carol = net.user("carol").await;
    let normal = net.submit(&carol, image_task()).await;
    assert_eq!(normal["queue"]["state"], "parked", "no node yet: {normal}");

    let dave = net.user("dave").await;
    let node = net.node(&dave, 45, &[("image-filter", 1.0)]).await;
    // Leased by the registration itself (the wake and its dispatch pass).
    let t = net.task(&carol, &id(&normal)).await;
    assert_eq!(
        (t["status"].as_str(), t["node_id"].as_str()),
        (Some("leased"), Some(node.id.as_str()))
    );

    // The sixty stay parked with their reason, and heartbeats do not rescan them.
    for _ in 0..5 {
        node.heartbeat(0.2).await.unwrap();
    }
    let queue = net.get("/api/v1/queue").await;
    assert_eq!(
        (queue["parked"].as_u64(), queue["ready"].as_u64()),
        (Some(60), Some(0)),
        "{queue}"
    );
    assert_eq!(
        queue["parked_by_capability"][0]["capability"],
        "nobody-offers-this"
    );
    for (user, task) in &unplaceable {
        let t = net.task(user, task).await;
        assert_eq!(t["reason"], "no node offers nobody-offers-this", "{t}");
        assert_eq!(t["queue"]["state"], "parked");
        assert_eq!(
            t["queue"]["decisions"], 1,
            "decided once, at submission: {t}"
        );
    }

    // A node offering their capability registers: they wake and are leased.
    let other = net.node(&dave, 46, &[("nobody-offers-this", 1.0)]).await;
    let queue = net.get("/api/v1/queue").await;
    assert_eq!(queue["queued"], 0, "{queue}");
    for (user, task) in &unplaceable {
        let t = net.task(user, task).await;
        assert_eq!(
            (t["status"].as_str(), t["node_id"].as_str()),
            (Some("leased"), Some(other.id.as_str()))
        );
    }
}

#[tokio::test]
async fn an_interrupted_run_s_energy_stays_in_the_ledger_and_its_node_does_not_get_it_back() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let node = net.node(&bob, 47, &[("image-filter", 1.0)]).await;
    let grid = |intensity: f32| json!({ "sources": [["wind", 0.5], ["grid", 0.5]], "clean_share": 0.5, "carbon_intensity": intensity });
    node.report_energy(grid(100.0)).await.unwrap();
    let mut body = image_task();
    body["sla"] = json!("normal");
    body["requirements"] = json!({ "max_execution_time_sec": 600 });
    let task = net.submit(&alice, body).await;
    assert_eq!(task["status"], "leased", "{task}");
    let (lease, _) = node.poll(0).await.unwrap().remove(0);

    // Bob's grid doubles: the normal-SLA lease is revoked in the answer.
    let r = node.report_energy(grid(200.0)).await.unwrap();
    let revoked: Vec<Revocation> = serde_json::from_value(r.json()["revoked"].clone()).unwrap();
    assert_eq!(revoked.len(), 1, "{}", r.text());
    assert_eq!(revoked[0].status, "interrupted");
    assert_eq!(revoked[0].verify(&broker_key(&net).await), Ok(()));

    // Bob's node stops and reports what it used: it stays in the ledger.
    let mut stopped = node.receipt(&lease, "");
    stopped.status = ReceiptStatus::Stopped;
    stopped.energy_wh = 2.0;
    stopped.duration_ms = 6_000;
    stopped.error = Some("stopped: lease interrupted".into());
    stopped.sign(&node.key.sk);
    let r = node
        .post_result(&lease.lease_id, &stopped, "")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, json!("stopped")),
        "{}",
        r.text()
    );
    let ledger = net.get("/api/v1/ledger").await;
    let e = &ledger["entries"][0];
    // 2 Wh at the 100 g/kWh it was leased at: 0.2 g, all of it wasted.
    assert_eq!(
        (
            e["run"].as_str(),
            e["emitted_g"].as_f64(),
            e["saved_g"].as_f64()
        ),
        (Some("interrupted"), Some(0.2), Some(-0.2)),
        "{ledger}"
    );
    assert_eq!(ledger["totals"]["emitted_g"], 0.2);
    let impact = net
        .call(&alice.token, "GET", "/api/v1/users/me/impact", Value::Null)
        .await
        .json();
    assert_eq!(impact["runs_interrupted"], 1, "{impact}");

    // Its energy recovers, but the task is not Bob's to hold hostage.
    node.report_energy(grid(90.0)).await.unwrap();
    assert!(node.poll(0).await.unwrap().is_empty());
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["status"], "queued", "{t}");
    assert!(
        t["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted this task"),
        "{t}"
    );
    // Another node takes it.
    let carol = net.user("carol").await;
    let other = net.node(&carol, 48, &[("image-filter", 1.0)]).await;
    assert_eq!(other.poll(0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_task_still_queued_at_its_sla_deadline_fails_with_its_quota_back() {
    let net = Net::start(&[]).await;
    // Noon UTC: the quota day does not turn over while the test moves the clock.
    net.clock
        .set(UNIX_EPOCH + Duration::from_millis(1_772_971_200_000));
    let alice = net.user("alice").await;
    let mut body = image_task();
    body["capability"] = json!("nobody-offers-this");
    let task = net.submit(&alice, body).await;
    assert_eq!(used_today(&net, &alice).await, 1);
    let deadline = task["queue"]["deadline_at"].as_u64().unwrap();
    assert_eq!(
        deadline - task["created_at"].as_u64().unwrap(),
        30 * 60_000,
        "urgent: 30 min"
    );

    net.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(net.task(&alice, &id(&task)).await["status"], "queued");
    net.clock.advance(Duration::from_secs(2 * 60));
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["status"], "failed", "{t}");
    let why = t["reason"].as_str().unwrap();
    assert!(
        why.contains("not started by its deadline") && why.contains("no node offers"),
        "{why}"
    );
    assert_eq!(used_today(&net, &alice).await, 0, "quota given back");
    assert_eq!(net.count_events(&id(&task), "task_failed").await, 1);
}

#[tokio::test]
async fn one_requester_s_backlog_does_not_starve_another_s() {
    let net = Net::start(&[("SPIN_VARIABLE_QUOTAS", "off")]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let mut body = image_task();
    body["capability"] = json!("late-capability");
    let mut backlog = Vec::new();
    for _ in 0..100 {
        backlog.push(id(&net.submit(&alice, body.clone()).await));
    }
    let bobs = net.submit(&bob, body.clone()).await;
    // One dispatch pass (64 decisions) runs when the node registers: Bob's
    // one task is among them although 100 of Alice's were queued first.
    let carol = net.user("carol").await;
    let node = net.node(&carol, 49, &[("late-capability", 1.0)]).await;
    // (`/queue` is read without running a pass; a task read runs one.)
    let queue = net.get("/api/v1/queue").await;
    assert_eq!(
        queue["ready"].as_u64(),
        Some(101 - 64),
        "one bounded pass ran: {queue}"
    );
    let first_pass = node.poll(0).await.unwrap();
    assert!(
        first_pass
            .iter()
            .take(64)
            .any(|(l, _)| l.task_id == id(&bobs)),
        "Bob's task is in the first pass"
    );
    assert_eq!(net.task(&bob, &id(&bobs)).await["status"], "leased");
    assert_eq!(backlog.len(), 100);
}

#[tokio::test]
async fn racing_heartbeats_and_a_re_registration_of_one_node_all_succeed() {
    // A node's heartbeats may overlap (a slow answer, a retry), and a
    // re-registration (its kernel folder changed) may land among them:
    // every one must be answered, and the new offer must stick.
    let net = Net::start_with(&[], |dir| Start {
        max_instances: 128,
        ..Start::coordinator(dir)
    })
    .await;
    let bob = net.user("bob").await;
    let node = Arc::new(net.node(&bob, 91, &[("image-filter", 1.0)]).await);
    let mut beats = Vec::new();
    for i in 0..100 {
        let n = node.clone();
        beats.push(tokio::spawn(async move {
            let energy = json!({ "sources": [["grid", 1.0]], "clean_share": 0.0,
                                 "carbon_intensity": 100.0 + i as f32 });
            // A busy server answers 503 with Retry-After: a node retries
            // (the overlap is the point here, not the capacity).
            loop {
                let r = n.report_energy(energy.clone()).await.unwrap();
                if r.status != 503 {
                    return (r.status, r.text());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }));
    }
    let (addr, token, clock) = (net.app.addr, bob.token.clone(), net.clock.clone());
    let reregister = tokio::spawn(async move {
        let options = NodeOptions {
            clock,
            ..Default::default()
        };
        loop {
            match TestNode::register_with(
                addr,
                &token,
                91,
                &[("image-filter", 1.0), ("audio-denoise", 2.0)],
                options.clone(),
            )
            .await
            {
                Ok(node) => return node,
                Err(e) if e.to_string().contains(" 503 ") => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    for b in beats {
        let (status, body) = b.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    reregister.await.unwrap();
    let v = net.get(&format!("/api/v1/nodes/{}", node.id)).await;
    let offers: Vec<&str> = v["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(offers, ["image-filter", "audio-denoise"], "{v}");
    // The offers index agrees: a task for the new capability finds the node.
    let alice = net.user("alice").await;
    let t = net
        .submit(
            &alice,
            json!({ "task_type": "audio-denoise", "max_price": 50.0, "sla": "urgent", "importance": "normal" }),
        )
        .await;
    assert_eq!(t["node_id"], node.id.as_str(), "{t}");
}
