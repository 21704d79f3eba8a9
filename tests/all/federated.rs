//! Federated learning through the real coordinator (issue 20, in
//! progress): nodes declare datasets by name and shape, never rows; a
//! federated task must name one and is matched only to nodes holding it;
//! the `fl-train` kernel trains on the node's rows, through the host's
//! dataset import, and returns parameters, never rows.

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
    // No (fractional) value of any row reached the coordinator.
    let stored = greenmesh_tests::send(app.addr, "GET", "/api/v1/nodes", bytes::Bytes::new())
        .await
        .unwrap()
        .json();
    let mut numbers = Vec::new();
    numbers_in(&stored, &mut numbers);
    for row in &rows {
        for value in row.split(',').take(30) {
            let v: f64 = value.parse().unwrap();
            if v.fract() != 0.0 {
                assert!(
                    !numbers.contains(&v),
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

#[tokio::test]
async fn the_fl_train_kernel_trains_on_the_node_s_rows_and_returns_parameters_not_rows() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let owner = greenmesh_tests::node::register_user(app.addr, "hospital-b")
        .await
        .unwrap();
    let all =
        std::fs::read_to_string(greenmesh_tests::tests_dir().join("../data/ml/breast_cancer.csv"))
            .unwrap();
    let rows: Vec<&str> = all.lines().skip(1).take(200).collect();
    let part = dir.path().join("part-b.csv");
    std::fs::write(&part, rows.join("\n")).unwrap();
    let kernels = kernel_dir(dir.path(), &[(&kernel("fl-train"), "fl-train.wasm")]);
    let provider = ProviderSpec::new(app.addr, &owner, &kernels, &dir.path().join("node"))
        .env(
            "MESH_DATASETS",
            &format!("breast-cancer={}", part.display()),
        )
        .spawn();
    wait_for_node(app.addr, &["fl-train"], Duration::from_secs(60)).await;
    let requester = greenmesh_tests::node::register_user(app.addr, "researcher")
        .await
        .unwrap();
    // Raw features are unscaled: a scaler the requester knows (here the
    // first rows' range, a stand-in for a federated statistics round).
    let task = json!({
        "task_type": "federated_learning", "sla": "urgent", "importance": "normal", "max_price": 50.0,
        "inputs": { "dataset": "breast-cancer", "model": { "kind": "softmax" },
                    "training": { "learning_rate": 0.5, "steps": 40, "sampling_rate": 0.5, "clip": 1.0, "noise_multiplier": 1.0 },
                    "scaler": scaler(&rows) },
    });
    let id = greenmesh_tests::provider::submit(app.addr, &requester, task).await;
    let done = greenmesh_tests::provider::finished(app.addr, &requester, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", provider.log());
    let output: Value = serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
    let trained = &output["json"];
    assert_eq!(trained["params"].as_array().unwrap().len(), 62, "{trained}");
    assert_eq!(trained["samples"], 160, "200 rows, every fifth held out");
    let h = &trained["holdout"];
    let accuracy = h["correct"].as_f64().unwrap() / h["total"].as_f64().unwrap();
    assert!(accuracy > 0.85, "{trained}");
    // The result carries parameters, not rows: no number in the node's
    // output is a (fractional) feature value of any row.
    let mut numbers = Vec::new();
    numbers_in(trained, &mut numbers);
    assert!(numbers.len() > 62);
    for row in &rows {
        for value in row.split(',').take(30) {
            let v: f64 = value.parse().unwrap();
            if v.fract() != 0.0 {
                assert!(!numbers.contains(&v), "{value} of a row left the node");
            }
        }
    }
}

/// Every number in `v`.
fn numbers_in(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Array(a) => a.iter().for_each(|x| numbers_in(x, out)),
        Value::Object(o) => o.values().for_each(|x| numbers_in(x, out)),
        Value::String(s) => {
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                if inner.is_object() || inner.is_array() {
                    numbers_in(&inner, out);
                }
            }
        }
        _ => {}
    }
}

/// Per-feature mean and standard deviation of CSV `rows`.
fn scaler(rows: &[&str]) -> Value {
    let data: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.split(',').take(30).map(|v| v.parse().unwrap()).collect())
        .collect();
    let n = data.len() as f64;
    let mean: Vec<f64> = (0..30)
        .map(|j| data.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let std: Vec<f64> = (0..30)
        .map(|j| (data.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt())
        .collect();
    json!({ "mean": mean, "std": std })
}
