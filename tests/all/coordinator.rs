//! The coordinator (the repository's `spin.toml`): users, nodes, tasks,
//! signed leases and receipts, end to end through `greenmesh up` on loopback.

use bytes::Bytes;
use greenmesh_tests::node::{register_user, NodeOptions, TestNode};
use greenmesh_tests::{send_with, Reply, Start, TestApp};
use serde_json::{json, Value};

/// A coordinator (with `env` overrides), a user, and one node offering
/// image-filter at 1 credit. The node's clock is the coordinator's: a test
/// moves time with `node.clock.advance`.
async fn with_node(
    env: &[(&str, &str)],
    user: &str,
    seed: u8,
) -> (tempfile::TempDir, TestApp, String, TestNode) {
    let dir = tempfile::tempdir().unwrap();
    let mut start = Start::coordinator(dir.path());
    for (k, v) in env {
        start = start.env(k, v);
    }
    let clock = start.clock.clone();
    let app = start.start().await.unwrap();
    let token = register_user(app.addr, user).await.unwrap();
    let options = NodeOptions {
        clock,
        ..Default::default()
    };
    let node = TestNode::register_with(app.addr, &token, seed, &[("image-filter", 1.0)], options)
        .await
        .unwrap();
    (dir, app, token, node)
}

async fn as_user(app: &TestApp, token: &str, method: &str, path: &str, body: Value) -> Reply {
    greenmesh_tests::call_as(app.addr, token, method, path, body).await
}

fn image_task(max_price: f64) -> Value {
    json!({
        "task_type": "image-filter",
        "inputs": { "filter": "grayscale", "image": "aGVsbG8=" },
        "requirements": { "max_execution_time_sec": 10, "max_memory_mb": 64 },
        "max_price": max_price,
    })
}

#[tokio::test]
async fn coordinator_manifest_serves_health() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::coordinator(dir.path());
    let app = start.start().await.unwrap();
    let health = app.get("/api/v1/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["database"], "ok");
    assert_eq!(app.get("/api/v1/nope").await.status, 404);
    app.stop().await;
    // The broker's tables are in the backend's database (the SQLite file
    // or Postgres).
    let broker = start
        .database_texts(
            "SELECT version FROM storage_versions WHERE component = ?",
            &["broker"],
        )
        .await;
    assert_eq!(broker.len(), 1, "{broker:?}");
}

#[tokio::test]
async fn submit_lease_receipt_result_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::coordinator(dir.path());
    let app = start.start().await.unwrap();
    let token = register_user(app.addr, "alice").await.unwrap();
    let node = TestNode::register(app.addr, &token, 1, &[("image-filter", 1.0)])
        .await
        .unwrap();

    let submitted = as_user(&app, &token, "POST", "/api/v1/tasks", image_task(50.0)).await;
    assert_eq!(submitted.status, 201, "{}", submitted.text());
    let task = submitted.json();
    assert_eq!(task["status"], "leased");
    assert_eq!(task["decision"]["chosen"]["node_id"], node.id.as_str());
    assert!(task["decision"]["chosen"]["why"]
        .as_str()
        .unwrap()
        .contains("only eligible offer"));
    let task_id = task["id"].as_str().unwrap().to_string();

    let leases = node.poll(5).await.unwrap();
    assert_eq!(leases.len(), 1);
    let (lease, input) = &leases[0];
    // The lease is signed by the broker's published key and carries the input's hash.
    let broker_key = app.get("/api/v1/keys/broker").await.json()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let key = greenmesh_protocol::public_key(&broker_key).unwrap();
    lease.verify(&key, greenmesh_tests::node::now_ms()).unwrap();
    assert_eq!(
        lease.input_sha256,
        greenmesh_protocol::sha256_hex(input.as_bytes())
    );
    assert_eq!(lease.timeout_ms, 10_000);

    let receipt = node.receipt(lease, "filtered!");
    let posted = node
        .post_result(&lease.lease_id, &receipt, "filtered!")
        .await
        .unwrap();
    assert_eq!(posted.status, 200, "{}", posted.text());

    let done = as_user(
        &app,
        &token,
        "GET",
        &format!("/api/v1/tasks/{task_id}?wait=5"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["output"], "filtered!");
    app.stop().await;

    // Everything is in SQLite: a restarted host still knows the task.
    let app = start.start().await.unwrap();
    let again = as_user(
        &app,
        &token,
        "GET",
        &format!("/api/v1/tasks/{task_id}"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(again["status"], "completed");
    let events = app
        .get(&format!("/api/v1/events?task_id={task_id}"))
        .await
        .json();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "task_submitted",
            "task_delegated",
            "carbon_saved",
            "task_completed"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn unaffordable_or_unserved_tasks_stay_queued_with_a_reason_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let token = register_user(app.addr, "bob").await.unwrap();
    TestNode::register(app.addr, &token, 2, &[("image-filter", 5.0)])
        .await
        .unwrap();

    let cheap = as_user(&app, &token, "POST", "/api/v1/tasks", image_task(0.5))
        .await
        .json();
    assert_eq!(cheap["status"], "queued");
    assert!(
        cheap["decision"]["declined"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("exceeds max_price"),
        "{cheap}"
    );

    // No node offers the zk-prover kernel that zk_proof tasks run on.
    let zk = json!({ "task_type": "zk_proof",
                     "inputs": { "statement": "vdf", "seed": "3", "steps": 64 } });
    let unserved = as_user(&app, &token, "POST", "/api/v1/tasks", zk)
        .await
        .json();
    assert_eq!(unserved["status"], "queued", "{unserved}");
    assert_eq!(unserved["reason"], "no node offers zk-prover");

    let precheck = as_user(
        &app,
        &token,
        "POST",
        "/api/v1/tasks/precheck",
        image_task(0.5),
    )
    .await
    .json();
    assert_eq!(precheck["eligible"], false);

    let id = cheap["id"].as_str().unwrap();
    let cancelled = as_user(
        &app,
        &token,
        "DELETE",
        &format!("/api/v1/tasks/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (cancelled.status, cancelled.json()["status"].clone()),
        (200, json!("cancelled"))
    );
    let again = as_user(
        &app,
        &token,
        "DELETE",
        &format!("/api/v1/tasks/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(again.status, 409);
    app.stop().await;
}

#[tokio::test]
async fn forged_tampered_replayed_and_late_receipts_are_refused() {
    let (_dir, app, token, node) =
        with_node(&[("SPIN_VARIABLE_LEASE_GRACE_MS", "0")], "carol", 3).await;
    let mut task = image_task(50.0);
    task["requirements"]["max_execution_time_sec"] = json!(2);
    let task_id = as_user(&app, &token, "POST", "/api/v1/tasks", task.clone())
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (lease, _) = node.poll(5).await.unwrap().remove(0);

    // Output that does not match the receipt's hash.
    let receipt = node.receipt(&lease, "real output");
    let r = node
        .post_result(&lease.lease_id, &receipt, "other output")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["field"].clone()),
        (400, json!("output"))
    );

    // A receipt signed by another key.
    let impostor = TestNode {
        addr: app.addr,
        key: greenmesh_protocol::key_pair_from_seed([99; 32]),
        id: node.id.clone(),
        clock: Default::default(),
    };
    let forged = impostor.receipt(&lease, "x");
    let r = node
        .post_result(&lease.lease_id, &forged, "x")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!("bad_signature"))
    );

    // A tampered receipt (duration changed after signing).
    let mut tampered = node.receipt(&lease, "x");
    tampered.duration_ms += 1;
    assert_eq!(
        node.post_result(&lease.lease_id, &tampered, "x")
            .await
            .unwrap()
            .status,
        400
    );

    // The genuine receipt lands once; its replay is refused.
    let good = node.receipt(&lease, "ok");
    assert_eq!(
        node.post_result(&lease.lease_id, &good, "ok")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        node.post_result(&lease.lease_id, &good, "ok")
            .await
            .unwrap()
            .status,
        409
    );
    let done = as_user(
        &app,
        &token,
        "GET",
        &format!("/api/v1/tasks/{task_id}"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(done["status"], "completed");

    // A late receipt: the 2 s lease expires, the task is re-queued.
    let late_id = as_user(&app, &token, "POST", "/api/v1/tasks", task)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (late, _) = node.poll(5).await.unwrap().remove(0);
    node.clock.advance(std::time::Duration::from_millis(2300));
    let r = node
        .post_result(&late.lease_id, &node.receipt(&late, "slow"), "slow")
        .await
        .unwrap();
    assert_eq!(r.status, 410, "{}", r.text());
    let requeued = as_user(
        &app,
        &token,
        "GET",
        &format!("/api/v1/tasks/{late_id}"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(requeued["status"], "queued", "{requeued}");
    assert!(requeued["reason"].as_str().unwrap().contains("expired"));

    // A request signed by the wrong key is not the node.
    let r = impostor.heartbeat(0.1).await.unwrap();
    assert_eq!(r.status, 401);
    app.stop().await;
}

/// Submits `body` as `token`'s user: `(status, error code, error field)`.
async fn submit_error(app: &TestApp, token: &str, body: Bytes) -> (u16, Value, Value) {
    let auth = format!("Bearer {token}");
    let r = send_with(
        app.addr,
        "POST",
        "/api/v1/tasks",
        body,
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let e = if r.status >= 400 {
        r.json()["error"].clone()
    } else {
        Value::Null
    };
    (r.status, e["code"].clone(), e["field"].clone())
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let alice = register_user(app.addr, "alice").await.unwrap();
    let mallory = register_user(app.addr, "mallory").await.unwrap();
    let body = |v: Value| Bytes::from(v.to_string());

    let cases = [
        (
            Bytes::from("{not json"),
            (400, json!("bad_request"), Value::Null),
        ),
        (
            body(
                json!({ "task_type": "image-filter", "requirements": { "max_memory_mb": "lots" } }),
            ),
            (
                400,
                json!("invalid_field"),
                json!("requirements.max_memory_mb"),
            ),
        ),
        (
            body(json!({ "task_type": "mine-bitcoin" })),
            (400, json!("invalid_field"), json!("task_type")),
        ),
        (
            body(
                json!({ "task_type": "computation", "inputs": { "blob": "x".repeat(300 * 1024) } }),
            ),
            (413, json!("payload_too_large"), Value::Null),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(submit_error(&app, &alice, request).await, expected);
    }

    // Unauthenticated, or with a token nobody holds.
    let r = send_with(
        app.addr,
        "POST",
        "/api/v1/tasks",
        body(image_task(1.0)),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        as_user(&app, "gm_wrong", "GET", "/api/v1/tasks", Value::Null)
            .await
            .status,
        401
    );

    // Another user's task is indistinguishable from a missing one.
    let id = as_user(&app, &alice, "POST", "/api/v1/tasks", image_task(1.0))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for method in ["GET", "DELETE"] {
        let r = as_user(
            &app,
            &mallory,
            method,
            &format!("/api/v1/tasks/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(r.status, 404, "{method}");
    }
    let listed = as_user(&app, &mallory, "GET", "/api/v1/tasks", Value::Null)
        .await
        .json();
    assert_eq!(listed["tasks"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn per_user_rate_limit_answers_429() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path())
        .env("SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE", "3")
        .start()
        .await
        .unwrap();
    let token = register_user(app.addr, "eager").await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            as_user(&app, &token, "GET", "/api/v1/tasks", Value::Null)
                .await
                .status,
            200
        );
    }
    let limited = as_user(&app, &token, "GET", "/api/v1/tasks", Value::Null).await;
    assert_eq!(
        (limited.status, limited.json()["error"]["code"].clone()),
        (429, json!("rate_limited"))
    );
    // Another user is not affected.
    let other = register_user(app.addr, "calm").await.unwrap();
    assert_eq!(
        as_user(&app, &other, "GET", "/api/v1/tasks", Value::Null)
            .await
            .status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn large_inputs_go_through_content_addressed_blobs() {
    let (_dir, app, token, node) = with_node(&[], "erin", 4).await;
    let auth = format!("Bearer {token}");
    let image = vec![7u8; 300 * 1024];
    let sha = greenmesh_protocol::sha256_hex(&image);

    let up = send_with(
        app.addr,
        "POST",
        "/api/v1/blobs",
        Bytes::from(image.clone()),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!((up.status, up.json()["sha256"].clone()), (201, json!(sha)));
    let again = send_with(
        app.addr,
        "POST",
        "/api/v1/blobs",
        Bytes::from(image.clone()),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    assert_eq!(again.status, 200);

    let mut task = image_task(50.0);
    task["inputs"]["image"] = json!({ "blob": format!("sha256:{sha}") });
    let submitted = as_user(&app, &token, "POST", "/api/v1/tasks", task.clone()).await;
    assert_eq!(submitted.status, 201, "{}", submitted.text());

    task["inputs"]["image"] = json!({ "blob": format!("sha256:{}", "0".repeat(64)) });
    let missing = as_user(&app, &token, "POST", "/api/v1/tasks", task).await;
    assert_eq!(
        (missing.status, missing.json()["error"]["field"].clone()),
        (400, json!("inputs.image.blob"))
    );

    // The node fetches the blob with a signed request; anonymous callers cannot.
    let fetched = node
        .signed("GET", &format!("/api/v1/blobs/{sha}"), Value::Null)
        .await
        .unwrap();
    assert_eq!((fetched.status, fetched.body.len()), (200, image.len()));
    assert_eq!(app.get(&format!("/api/v1/blobs/{sha}")).await.status, 401);
    app.stop().await;
}

#[tokio::test]
async fn silent_nodes_go_offline_and_heartbeats_bring_them_back() {
    let (_dir, app, token, node) =
        with_node(&[("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "1500")], "fay", 5).await;
    let path = format!("/api/v1/nodes/{}", node.id);
    assert_eq!(app.get(&path).await.json()["status"], "online");
    node.clock.advance(std::time::Duration::from_millis(2000));
    assert_eq!(app.get(&path).await.json()["status"], "offline");

    // An offline node is declined with the reason, not silently skipped.
    let pre = as_user(
        &app,
        &token,
        "POST",
        "/api/v1/tasks/precheck",
        image_task(50.0),
    )
    .await
    .json();
    assert!(
        pre["decision"]["declined"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("offline"),
        "{pre}"
    );

    assert_eq!(node.heartbeat(0.1).await.unwrap().status, 200);
    assert_eq!(app.get(&path).await.json()["status"], "online");
    app.stop().await;
}

#[tokio::test]
async fn network_latency_is_priced_and_reputation_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let token = register_user(app.addr, "gus").await.unwrap();
    let far = TestNode::register(app.addr, &token, 11, &[("image-filter", 1.0)])
        .await
        .unwrap();
    let near = TestNode::register(app.addr, &token, 12, &[("image-filter", 1.0)])
        .await
        .unwrap();
    far.signed(
        "PUT",
        &format!("/api/v1/nodes/{}/heartbeat", far.id),
        json!({ "load": 0.0, "latency_ms": 400.0 }),
    )
    .await
    .unwrap();
    near.signed(
        "PUT",
        &format!("/api/v1/nodes/{}/heartbeat", near.id),
        json!({ "load": 0.0, "latency_ms": 5.0 }),
    )
    .await
    .unwrap();

    let pre = as_user(
        &app,
        &token,
        "POST",
        "/api/v1/tasks/precheck",
        image_task(50.0),
    )
    .await
    .json();
    let chosen = &pre["decision"]["chosen"];
    assert_eq!(chosen["node_id"], near.id.as_str(), "{pre}");
    let loser = &pre["decision"]["runners_up"][0];
    let latency_factor = |c: &Value| {
        c["price_factors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f[0] == "latency")
            .map(|f| f[1].as_f64().unwrap())
            .unwrap()
    };
    assert!(latency_factor(loser) > latency_factor(chosen), "{pre}");
    assert!(loser["price"].as_f64().unwrap() > chosen["price"].as_f64().unwrap());

    // A completed delegation raises both sides' reputation above neutral.
    let id = as_user(&app, &token, "POST", "/api/v1/tasks", image_task(50.0))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (lease, _) = near.poll(5).await.unwrap().remove(0);
    near.post_result(&lease.lease_id, &near.receipt(&lease, "ok"), "ok")
        .await
        .unwrap();
    let done = as_user(
        &app,
        &token,
        "GET",
        &format!("/api/v1/tasks/{id}?wait=5"),
        Value::Null,
    )
    .await
    .json();
    assert_eq!(done["status"], "completed");
    let node_rep =
        app.get(&format!("/api/v1/nodes/{}", near.id)).await.json()["reputation"].clone();
    assert!(
        node_rep["value"].as_f64().unwrap() > 0.5 && node_rep["successes"].as_f64().unwrap() > 0.99,
        "{node_rep}"
    );
    let me = as_user(&app, &token, "GET", "/api/v1/users/me", Value::Null)
        .await
        .json();
    assert!(me["reputation"]["value"].as_f64().unwrap() > 0.5, "{me}");
    app.stop().await;
}
