//! Federated learning through the real coordinator (issue 20, in
//! progress): nodes declare datasets by name and shape, never rows; a
//! federated task must name one and is matched only to nodes holding it.

use greenmesh_tests::net::{id, Net};
use greenmesh_tests::node::{NodeOptions, TestNode};
use greenmesh_tests::provider::{kernel, kernel_dir, wait_for_node, ProviderSpec};
use greenmesh_tests::Start;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn a_provider_advertises_its_dataset_by_shape_and_never_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let token = greenmesh_tests::node::register_user(app.addr, "hospital-a")
        .await
        .unwrap();
    // A fifth of the breast-cancer rows, as one hospital would hold them.
    let all =
        std::fs::read_to_string(greenmesh_tests::tests_dir().join("../data/ml/breast_cancer.csv"))
            .unwrap();
    let rows: Vec<&str> = all.lines().skip(1).take(114).collect();
    let part = dir.path().join("part-a.csv");
    std::fs::write(&part, rows.join("\n")).unwrap();
    let kernels = kernel_dir(dir.path(), &[(&kernel("noop"), "noop.wasm")]);
    let provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node"))
        .env(
            "MESH_DATASETS",
            &format!("breast-cancer={}", part.display()),
        )
        .spawn();
    let node = wait_for_node(app.addr, &["noop"], Duration::from_secs(60)).await;
    assert_eq!(
        node["datasets"],
        json!([{ "name": "breast-cancer", "features": 30, "classes": 2, "rows": 114 }]),
        "{node}\n{}",
        provider.log()
    );
    // No value of any row reached the coordinator.
    let stored = greenmesh_tests::send(app.addr, "GET", "/api/v1/nodes", bytes::Bytes::new())
        .await
        .unwrap()
        .text();
    for row in &rows[..5] {
        for value in row.split(',').take(30) {
            if value.len() > 3 {
                assert!(
                    !stored.contains(value),
                    "{value} of a row reached the coordinator"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_federated_task_names_its_dataset_and_goes_only_to_nodes_holding_it() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let with = |datasets: Vec<(String, u32, u32, u64)>| NodeOptions {
        clock: net.clock.clone(),
        datasets,
        ..Default::default()
    };
    let holder = TestNode::register_with(
        net.app.addr,
        &bob.token,
        91,
        &[("fl-train", 1.0)],
        with(vec![("breast-cancer".into(), 30, 2, 114)]),
    )
    .await
    .unwrap();
    let other = TestNode::register_with(
        net.app.addr,
        &bob.token,
        92,
        &[("fl-train", 0.5)],
        with(Vec::new()),
    )
    .await
    .unwrap();
    let task = |dataset: Value| {
        json!({ "task_type": "federated_learning", "sla": "urgent", "importance": "normal", "max_price": 50.0,
                "inputs": { "model_name": "diagnosis", "rounds": 1, "dataset": dataset } })
    };
    // No dataset named: refused, naming the field.
    let r = net
        .call(&alice.token, "POST", "/api/v1/tasks", task(Value::Null))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "inputs.dataset");
    // The cheaper node lacks the dataset: the holder gets it.
    let t = net.submit(&alice, task(json!("breast-cancer"))).await;
    assert_eq!(t["capability"], "fl-train");
    assert_eq!(t["node_id"], holder.id.as_str(), "{t}");
    let declined = t["decision"]["declined"].to_string();
    assert!(
        declined.contains(&other.id) && declined.contains("does not hold dataset breast-cancer"),
        "{declined}"
    );
    // Across several nodes it runs in rounds, not yet dispatched: it
    // parks saying so (and is not run as replicas).
    let mut multi = task(json!("breast-cancer"));
    multi["requirements"] = json!({ "min_nodes": 5 });
    let t = net.submit(&alice, multi).await;
    assert_eq!(t["status"], "queued");
    assert!(t["group"].is_null(), "{t}");
    assert!(t["reason"].as_str().unwrap().contains("rounds"), "{t}");
    // A dataset nobody holds parks the task saying so.
    let t = net.submit(&alice, task(json!("digits"))).await;
    assert_eq!(t["status"], "queued");
    assert!(
        net.task(&alice, &id(&t)).await["reason"]
            .as_str()
            .unwrap()
            .contains("declined"),
        "{t}"
    );
}
