//! Federated learning through the real coordinator (issue 20): nodes
//! declare datasets by name and shape, never rows; a federated task must
//! name one and is matched only to nodes holding it; the `fl-train` kernel
//! trains on the node's rows, through the host's dataset import, and
//! returns parameters, never rows; rounds are securely aggregated (signed
//! rosters, masked updates, one sum) and re-run when a member is lost after
//! masking; five real providers train a differentially private model end
//! to end, also with one of them killed mid-training.

use greenmesh_protocol::{Contribution, Lease, Masked, Roster};
use greenmesh_tests::net::{id, Net};
use greenmesh_tests::node::{NodeOptions, TestNode};
use greenmesh_tests::provider::{kernel, kernel_dir, wait_for_node, ProviderSpec};
use greenmesh_tests::Start;
use serde_json::{json, Value};
use std::time::Duration;

/// A hospital: a provider owned by a new user `name`, holding `rows` (CSV
/// lines of the breast-cancer data) as dataset `breast-cancer`, with
/// `kernel` installed.
pub(crate) async fn hospital(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    name: &str,
    rows: &[&str],
    kernel_name: &str,
) -> greenmesh_tests::provider::Provider {
    let token = greenmesh_tests::node::register_user(addr, name)
        .await
        .unwrap();
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    let part = root.join("part.csv");
    std::fs::write(&part, rows.join("\n")).unwrap();
    let kernels = kernel_dir(
        &root,
        &[(&kernel(kernel_name), &format!("{kernel_name}.wasm"))],
    );
    ProviderSpec::new(addr, &token, &kernels, &root.join("node"))
        .env(
            "MESH_DATASETS",
            &format!("breast-cancer={}", part.display()),
        )
        .spawn()
}

/// The breast-cancer data as shipped (`data/ml/`).
pub(crate) fn breast_cancer_lines() -> String {
    std::fs::read_to_string(greenmesh_tests::tests_dir().join("../data/ml/breast_cancer.csv"))
        .unwrap()
}

/// Five hospitals of five owners, each holding a fifth of the breast-cancer
/// training rows (shuffled by `seed`); the requester keeps the test rows
/// and the scaler (fitted on the training rows: it stands in for a
/// federated statistics round, not built).
struct Hospitals {
    providers: Vec<greenmesh_tests::provider::Provider>,
    data: greenmesh_fl::data::Dataset,
    lines: Vec<String>,
    test: Vec<usize>,
    scaler: greenmesh_fl::data::Scaler,
    researcher: String,
}

async fn five_hospitals(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    seed: u64,
    name: &str,
) -> Hospitals {
    use greenmesh_fl::data::{Dataset, Scaler};
    use greenmesh_fl::random::{shuffled, SplitMix64};
    let text = breast_cancer_lines();
    let data = Dataset::parse_csv(&text).unwrap();
    let lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    let order = shuffled(lines.len(), &mut SplitMix64(seed));
    let (train, test) = order.split_at(lines.len() * 4 / 5);
    let mut providers = Vec::new();
    for h in 0..5 {
        let part: Vec<&str> = train
            .iter()
            .skip(h)
            .step_by(5)
            .map(|&i| lines[i].as_str())
            .collect();
        providers.push(hospital(dir, addr, &format!("{name}-{h}"), &part, "fl-train").await);
    }
    for _ in 0..600 {
        let nodes = greenmesh_tests::send(addr, "GET", "/api/v1/nodes", bytes::Bytes::new())
            .await
            .unwrap()
            .json();
        if nodes["nodes"].as_array().map_or(0, Vec::len) == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Hospitals {
        providers,
        scaler: Scaler::fit(&data.subset(train)),
        data,
        lines,
        test: test.to_vec(),
        researcher: greenmesh_tests::node::register_user(addr, "researcher")
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn a_provider_advertises_its_dataset_by_shape_and_never_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    // A fifth of the breast-cancer rows, as one hospital would hold them.
    let all = breast_cancer_lines();
    let rows: Vec<&str> = all.lines().skip(1).take(114).collect();
    let provider = hospital(dir.path(), app.addr, "hospital-a", &rows, "noop").await;
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
    // Own-source energy runs only on the requester's nodes: no rounds of
    // distinct owners can run under it.
    let mut solar = task(json!("breast-cancer"));
    solar["sla"] = json!("solar_only");
    solar["importance"] = Value::Null;
    solar["requirements"] = json!({ "min_nodes": 3 });
    let r = net.call(&alice.token, "POST", "/api/v1/tasks", solar).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "sla");
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
    let all = breast_cancer_lines();
    let rows: Vec<&str> = all.lines().skip(1).take(200).collect();
    let provider = hospital(dir.path(), app.addr, "hospital-b", &rows, "fl-train").await;
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

/// The round's roster for `lease`, as a node fetches it: `None` while the
/// broker waits for the round's members to hold leases.
async fn roster(node: &TestNode, lease: &Lease) -> Option<Roster> {
    let r = node
        .signed(
            "GET",
            &format!("/api/v1/leases/{}/roster", lease.lease_id),
            Value::Null,
        )
        .await
        .unwrap();
    match r.status {
        200 => Some(serde_json::from_value(r.json()["roster"].clone()).unwrap()),
        202 => None,
        s => panic!("roster: {s} {}", r.text()),
    }
}

/// A node's answer to a training round, masked against the round's roster
/// as a provider masks it: the output it reports.
fn masked(
    node: &TestNode,
    roster: &Roster,
    params: &[f64],
    samples: u64,
    correct: u64,
    total: u64,
) -> String {
    let c = Contribution {
        params: params.to_vec(),
        samples: samples as f64,
        loss: 0.5,
        correct: correct as f64,
        total: total as f64,
    };
    let m = Masked::of(&c, &node.key, &node.id, roster).unwrap();
    json!({ "media_type": "application/json", "json": { "masked": m } }).to_string()
}

/// Fetches the roster and reports a masked answer; the reply's status.
async fn answer(
    node: &TestNode,
    lease: &Lease,
    params: &[f64],
    samples: u64,
    correct: u64,
    total: u64,
) -> u16 {
    let roster = roster(node, lease).await.expect("the roster is fixed");
    let out = masked(node, &roster, params, samples, correct, total);
    node.post_result(&lease.lease_id, &node.receipt(lease, &out), &out)
        .await
        .unwrap()
        .status
}

/// Three owners' nodes holding dataset `d` and offering `fl-train`.
async fn three_holders(net: &Net) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for (i, name) in ["h1", "h2", "h3"].into_iter().enumerate() {
        let owner = net.user(name).await;
        let options = NodeOptions {
            clock: net.clock.clone(),
            datasets: vec![("d".into(), 2, 2, 100)],
            ..Default::default()
        };
        nodes.push(
            TestNode::register_with(
                net.app.addr,
                &owner.token,
                95 + i as u8,
                &[("fl-train", 1.0)],
                options,
            )
            .await
            .unwrap(),
        );
    }
    nodes
}

/// A coordinator, Alice, three holders of dataset `d`, and Alice's urgent
/// federated task with `requirements` and `inputs`, as submitted.
async fn three_holders_train(
    requirements: Value,
    inputs: Value,
) -> (Net, greenmesh_tests::net::User, Vec<TestNode>, Value) {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_holders(&net).await;
    let task = net
        .submit(
            &alice,
            json!({ "task_type": "federated_learning", "sla": "urgent", "importance": "normal",
                    "max_price": 50.0, "requirements": requirements, "inputs": inputs }),
        )
        .await;
    (net, alice, nodes, task)
}

#[tokio::test]
async fn rounds_average_members_by_rows_and_each_starts_from_the_last_average() {
    let (net, alice, nodes, task) = three_holders_train(
        json!({ "min_nodes": 3 }),
        json!({ "dataset": "d", "model_name": "diagnosis", "rounds": 2 }),
    )
    .await;
    assert_eq!(task["group"]["kind"], "federated", "{task}");
    assert_eq!(quota_used(&net, &alice).await, 1, "one task");
    // Round 1: three members on three owners' nodes, from the kernel's start.
    let mut expected_global = vec![0.0; 6];
    let mut weight = 0.0;
    let answers = [
        (vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 10u64),
        (vec![0.0; 6], 30),
        (vec![2.0; 6], 60),
    ];
    let mut leases = Vec::new();
    for node in &nodes {
        let (lease, input) = node.poll(0).await.unwrap().remove(0);
        let input: Value = serde_json::from_str(&input).unwrap();
        assert!(input["inputs"]["global"].is_null(), "{input}");
        assert_eq!(input["inputs"]["dataset"], "d");
        assert_eq!(input["inputs"]["secure_aggregation"], true);
        assert!(
            !lease.deterministic,
            "training draws the node's own randomness"
        );
        leases.push(lease);
    }
    for ((node, lease), (params, samples)) in nodes.iter().zip(&leases).zip(&answers) {
        assert_eq!(answer(node, lease, params, *samples, 9, 10).await, 200);
        for (g, p) in expected_global.iter_mut().zip(params) {
            *g += p * *samples as f64;
        }
        weight += *samples as f64;
    }
    expected_global.iter_mut().for_each(|g| *g /= weight);
    assert_eq!(net.count_events(&id(&task), "round_closed").await, 1);
    // Round 2 starts from the row-weighted average.
    let mut leases = Vec::new();
    for node in &nodes {
        let (lease, input) = node.poll(0).await.unwrap().remove(0);
        let input: Value = serde_json::from_str(&input).unwrap();
        let global: Vec<f64> = serde_json::from_value(input["inputs"]["global"].clone()).unwrap();
        assert!(
            close(&global, &expected_global),
            "{global:?} vs {expected_global:?}"
        );
        leases.push(lease);
    }
    for (node, lease) in nodes.iter().zip(&leases) {
        answer(node, lease, &[7.0; 6], 50, 45, 50).await;
    }
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let result = &done["result"];
    let model: Vec<f64> = serde_json::from_value(result["model"]["params"].clone()).unwrap();
    assert!(model.iter().all(|p| (p - 7.0).abs() < 1e-6), "{model:?}");
    assert_eq!(result["model"]["name"], "diagnosis");
    assert_eq!(result["rounds"].as_array().unwrap().len(), 2);
    assert_eq!(
        result["rounds"][0]["holdout_accuracy"], 0.9,
        "pooled: 27 of 30"
    );
    assert_eq!(result["rounds"][1]["samples"], 150);
    // Each round's runs are in the carbon ledger: 3 runs × 0.01 Wh.
    let carbon = &result["rounds"][0]["carbon"];
    assert!(
        (carbon["energy_wh"].as_f64().unwrap() - 0.03).abs() < 1e-9,
        "{carbon}"
    );
    assert!(carbon["emitted_g"].as_f64().unwrap() > 0.0, "{carbon}");
    assert!(result["privacy"].is_null(), "no ε asked: no DP");
}

#[tokio::test]
async fn a_round_short_of_its_quorum_fails_the_task_naming_the_lost_members() {
    let (net, alice, nodes, task) = three_holders_train(
        json!({ "min_nodes": 3 }),
        json!({ "dataset": "d", "rounds": 1, "epsilon": 1.0, "delta": 0.001 }),
    )
    .await;
    // Two of three members fail before the round's roster is fixed.
    for (i, node) in nodes.iter().enumerate() {
        let (lease, input) = node.poll(0).await.unwrap().remove(0);
        let input: Value = serde_json::from_str(&input).unwrap();
        assert!(
            input["inputs"]["training"]["noise_multiplier"]
                .as_f64()
                .unwrap()
                > 1.0,
            "{input}"
        );
        if i > 0 {
            let mut receipt = node.receipt(&lease, "");
            receipt.status = greenmesh_protocol::ReceiptStatus::Failed;
            receipt.error = Some("out of memory".into());
            receipt.sign(&node.key.sk);
            node.post_result(&lease.lease_id, &receipt, "")
                .await
                .unwrap();
        }
    }
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "failed", "{done}");
    let why = done["reason"].as_str().unwrap();
    assert!(
        why.contains("1 of 3 members still at work") && why.contains("a round needs 2"),
        "{why}"
    );
    assert!(why.contains("out of memory"), "{why}");
}

#[tokio::test]
async fn a_member_lost_after_masking_spoils_the_sum_so_the_round_is_re_run_without_its_update() {
    let (net, alice, nodes, task) = three_holders_train(
        json!({ "min_nodes": 3 }),
        json!({ "dataset": "d", "rounds": 1 }),
    )
    .await;
    let mut leases = Vec::new();
    for node in &nodes {
        leases.push(node.poll(0).await.unwrap().remove(0).0);
    }
    // Two members mask against the roster and report; the third fails
    // after the roster was fixed, so their masks can never cancel.
    for (node, lease) in nodes.iter().zip(&leases).take(2) {
        assert_eq!(answer(node, lease, &[100.0; 6], 10, 1, 1).await, 200);
    }
    let third = roster(&nodes[2], &leases[2]).await.unwrap();
    assert_eq!(third.members.len(), 3);
    let mut receipt = nodes[2].receipt(&leases[2], "");
    receipt.status = greenmesh_protocol::ReceiptStatus::Failed;
    receipt.error = Some("power cut".into());
    receipt.sign(&nodes[2].key.sk);
    nodes[2]
        .post_result(&leases[2].lease_id, &receipt, "")
        .await
        .unwrap();
    assert_eq!(net.count_events(&id(&task), "round_rerun").await, 1);
    // The round runs again from the same start, under a new roster.
    let mut again = Vec::new();
    for node in &nodes {
        let (lease, input) = node.poll(0).await.unwrap().remove(0);
        assert!(
            lease.task_id.contains("-s1-"),
            "attempt 2 is shard 1: {}",
            lease.task_id
        );
        let input: Value = serde_json::from_str(&input).unwrap();
        assert!(input["inputs"]["global"].is_null(), "{input}");
        again.push(lease);
    }
    let second = roster(&nodes[0], &again[0]).await.unwrap();
    assert_eq!((second.round, second.attempt), (0, 1));
    assert_ne!(second.sha256(), third.sha256(), "fresh masks");
    for (node, lease) in nodes.iter().zip(&again) {
        assert_eq!(answer(node, lease, &[2.0; 6], 20, 1, 2).await, 200);
    }
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let model: Vec<f64> =
        serde_json::from_value(done["result"]["model"]["params"].clone()).unwrap();
    assert!(
        model.iter().all(|p| (p - 2.0).abs() < 1e-6),
        "no trace of the spoilt attempt: {model:?}"
    );
    let round = &done["result"]["rounds"][0];
    assert_eq!(
        (round["attempt"].as_u64(), round["samples"].as_u64()),
        (Some(2), Some(60)),
        "{round}"
    );
    assert_eq!(done["result"]["secure_aggregation"]["attempts"], 2);
}

/// Equal to within secure aggregation's fixed point (2⁻²⁴).
fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
}

async fn quota_used(net: &Net, user: &greenmesh_tests::net::User) -> u64 {
    net.call(&user.token, "GET", "/api/v1/users/me/quota", Value::Null)
        .await
        .json()["used_today"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn five_hospitals_train_ten_rounds_at_epsilon_one_and_the_model_predicts_the_held_out_set() {
    use greenmesh_fl::model::Model;
    let dir = tempfile::tempdir().unwrap();
    let mut start = Start::coordinator(&dir.path().join("state"));
    start.max_instances = 96; // five nodes long-poll at once
    let app = start.start().await.unwrap();
    // The requester keeps a fifth of the rows to test on; the rest is
    // split over five hospitals of five owners.
    let Hospitals {
        providers,
        data,
        lines,
        test,
        scaler,
        researcher,
    } = five_hospitals(dir.path(), app.addr, 11, "hospital").await;
    let task = json!({
        "task_type": "federated_learning", "sla": "urgent", "importance": "normal", "max_price": 50.0,
        "requirements": { "min_nodes": 5, "max_execution_time_sec": 60, "require_proof": true },
        "inputs": { "dataset": "breast-cancer", "model_name": "diagnosis", "rounds": 10,
                    "epsilon": 1.0, "delta": 0.001,
                    "scaler": { "mean": scaler.mean, "std": scaler.std } },
    });
    let id = greenmesh_tests::provider::submit(app.addr, &researcher, task).await;
    let done = greenmesh_tests::provider::finished(app.addr, &researcher, &id).await;
    let logs = providers
        .iter()
        .map(|p| p.log())
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert_eq!(done["status"], "completed", "{done}\n{logs}");
    let result = &done["result"];
    assert_eq!(result["rounds"].as_array().unwrap().len(), 10, "{result}");
    let spent = result["privacy"]["epsilon_spent"].as_f64().unwrap();
    assert!(spent <= 1.0 && spent > 0.99, "{spent}");
    // The requester scores the model on rows no node saw.
    let params: Vec<f64> = serde_json::from_value(result["model"]["params"].clone()).unwrap();
    let model = Model::Softmax {
        features: 30,
        classes: 2,
    };
    let accuracy = model.accuracy(&params, &scaler.apply(&data.subset(&test)));
    println!("five hospitals, 10 rounds, ε = 1: test accuracy {accuracy:.3}, ε spent {spent:.3}");
    // The CLI applies the same model (with its scaler) to the raw rows.
    let task_file = dir.path().join("task.json");
    std::fs::write(&task_file, done.to_string()).unwrap();
    let rows_file = dir.path().join("test.csv");
    let test_rows: Vec<&str> = test.iter().map(|&i| lines[i].as_str()).collect();
    std::fs::write(&rows_file, test_rows.join("\n")).unwrap();
    let (ok, out, err) = greenmesh_tests::process::greenmesh_cli(&[
        "fl",
        "predict",
        task_file.to_str().unwrap(),
        rows_file.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let predicted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        predicted["predictions"].as_array().unwrap().len(),
        test.len()
    );
    assert!(
        (predicted["accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-9,
        "{out}"
    );
    // Secure aggregation: everything the coordinator stored for a round
    // (each member's masked update, the roster) unmasks nothing short of
    // the whole round, and the whole round sums to its reported totals.
    let stored_rounds = unmask_attempts(&stored_rounds(&start, &id).await);
    assert_eq!(stored_rounds.len(), 10);
    for (r, (masked, whole)) in stored_rounds.iter().enumerate() {
        // A member late under load may be left out of a round (the
        // protocol fixes the roster at a quorum); every update of the
        // round's roster is stored.
        assert_eq!(
            Some(masked.len() as u64),
            result["rounds"][r]["members"].as_u64(),
            "round {r}"
        );
        assert!(
            masked.len() >= 4,
            "round {r}: {} members, below the quorum of 4",
            masked.len()
        );
        assert_eq!(
            Some(whole.samples as u64),
            result["rounds"][r]["samples"].as_u64(),
            "round {r}: the whole round sums to its reported rows"
        );
    }
    // With require_proof, the rounds' signed contributions check offline
    // and sum to the model.
    let broker_key =
        greenmesh_tests::send(app.addr, "GET", "/api/v1/keys/broker", bytes::Bytes::new())
            .await
            .unwrap()
            .json()["public_key"]
            .as_str()
            .unwrap()
            .to_string();
    let args = [
        "verify",
        task_file.to_str().unwrap(),
        "--broker-key",
        broker_key.as_str(),
    ];
    let verify = || greenmesh_tests::process::greenmesh_cli(&args);
    let (ok, out, err) = verify().await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("round 10") && out.contains("the model is the last round's masked sum"),
        "{out}"
    );
    // One masked update swapped for another's: the receipt no longer signs it.
    let mut forged = done.clone();
    let runs = &mut forged["result"]["contributions"][3]["runs"];
    runs[0]["output"] = runs[1]["output"].clone();
    std::fs::write(&task_file, forged.to_string()).unwrap();
    let (ok, _, err) = verify().await;
    assert!(
        !ok && err.contains("round 4") && err.contains("not the one the receipt signs"),
        "{err}"
    );
    // Node noise is the nodes' own randomness, so runs differ (0.88–0.95
    // measured): the bar is the centralised DP anchor at ε = 1 (80 %); a
    // model that learned nothing scores about 63 % (the benign share).
    assert!(
        accuracy >= 0.80,
        "{accuracy}: below the centralised DP anchor"
    );
}

#[tokio::test]
async fn a_hospital_killed_mid_training_is_left_out_and_the_model_still_reaches_the_target() {
    use greenmesh_fl::model::Model;
    let dir = tempfile::tempdir().unwrap();
    let mut start = Start::coordinator(&dir.path().join("state"));
    start.max_instances = 96;
    // Short leases and liveness, so the dead node is noticed in seconds.
    for (k, v) in [
        ("SPIN_VARIABLE_LEASE_GRACE_MS", "2000"),
        ("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "3000"),
    ] {
        start.env.insert(k.into(), v.into());
    }
    let app = start.start().await.unwrap();
    let Hospitals {
        mut providers,
        data,
        test,
        scaler,
        researcher,
        ..
    } = five_hospitals(dir.path(), app.addr, 5, "clinic").await;
    let id = greenmesh_tests::provider::submit(
        app.addr,
        &researcher,
        json!({ "task_type": "federated_learning", "sla": "urgent", "importance": "normal", "max_price": 50.0,
                "requirements": { "min_nodes": 5, "max_execution_time_sec": 4 },
                "inputs": { "dataset": "breast-cancer", "rounds": 10, "epsilon": 1.0, "delta": 0.001,
                            "scaler": { "mean": scaler.mean, "std": scaler.std } } }),
    )
    .await;
    // Once round 3 has started training, one hospital loses power.
    let victim = providers.remove(2);
    victim.wait_log("running on", Duration::from_secs(60)).await;
    loop {
        let t = greenmesh_tests::send_with(
            app.addr,
            "GET",
            &format!("/api/v1/tasks/{id}"),
            bytes::Bytes::new(),
            &[("authorization", &format!("Bearer {researcher}"))],
        )
        .await
        .unwrap()
        .json();
        if t["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("round 3 "))
            || t["status"] != "leased" && t["status"] != "queued"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    victim.kill().await;
    let done = greenmesh_tests::provider::finished(app.addr, &researcher, &id).await;
    let logs = providers
        .iter()
        .map(|p| p.log())
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert_eq!(done["status"], "completed", "{done}\n{logs}");
    let rounds = done["result"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 10);
    // Its round either lost it after masking and was re-run without it,
    // or fixed its roster without it (its member left out); from then on
    // the rounds closed with the four that were left.
    let events = greenmesh_tests::send(
        app.addr,
        "GET",
        &format!("/api/v1/events?task_id={id}&limit=500"),
        bytes::Bytes::new(),
    )
    .await
    .unwrap()
    .json();
    let reruns = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "round_rerun")
        .count();
    let left_out = done["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["reason"].as_str().is_some_and(|r| r.contains("left out")))
        .count();
    assert!(reruns + left_out >= 1, "{events}\n{done}");
    println!("the dead hospital cost {reruns} re-run(s) and was left out of {left_out} round(s)");
    assert_eq!(rounds[9]["members"], 4, "{rounds:?}");
    let params: Vec<f64> =
        serde_json::from_value(done["result"]["model"]["params"].clone()).unwrap();
    let model = Model::Softmax {
        features: 30,
        classes: 2,
    };
    let accuracy = model.accuracy(&params, &scaler.apply(&data.subset(&test)));
    println!("one of five hospitals killed in round 3: test accuracy {accuracy:.3}");
    assert!(
        accuracy >= 0.80,
        "{accuracy}: below the centralised DP anchor at ε = 1"
    );
}

#[tokio::test]
async fn an_eco_round_waits_for_its_members_clean_power_and_reports_the_grams_it_saved() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_holders(&net).await;
    let dirty =
        json!({ "sources": [["grid", 1.0]], "clean_share": 0.2, "carbon_intensity": 450.0 });
    for node in &nodes {
        assert_eq!(node.report_energy(dirty.clone()).await.unwrap().status, 200);
    }
    let task = net
        .submit(
            &alice,
            json!({ "task_type": "federated_learning", "sla": "eco", "importance": "normal", "max_price": 50.0,
                    "requirements": { "min_nodes": 3 },
                    "inputs": { "dataset": "d", "rounds": 1 } }),
        )
        .await;
    // No member is leased on dirty power: the round waits.
    assert_eq!(net.task(&alice, &id(&task)).await["status"], "queued");
    for node in &nodes {
        assert!(node.poll(0).await.unwrap().is_empty());
    }
    let sunny = json!({ "sources": [["solar", 0.9], ["grid", 0.1]], "clean_share": 0.9, "carbon_intensity": 40.0 });
    for node in &nodes {
        node.report_energy(sunny.clone()).await.unwrap();
    }
    let mut leases = Vec::new();
    for node in &nodes {
        leases.push(node.poll(0).await.unwrap().remove(0).0);
    }
    for (node, lease) in nodes.iter().zip(&leases) {
        assert_eq!(answer(node, lease, &[1.0; 6], 30, 3, 4).await, 200);
    }
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let carbon = &done["result"]["rounds"][0]["carbon"];
    let (emitted, saved) = (
        carbon["emitted_g"].as_f64().unwrap(),
        carbon["saved_g"].as_f64().unwrap(),
    );
    assert!(
        emitted > 0.0 && saved > emitted,
        "ran at 40 g/kWh instead of 450: {carbon}"
    );
}

/// What someone holding the coordinator's database can make of each
/// closed round: every member's stored masked update is tried alone and in
/// every partial sum, and none decodes to a plausible update (whole row
/// and hold-out counts); only the whole roster's sum does. Answers, per
/// round, the masked updates and the whole sum's totals.
/// Each closed round's roster and its members' stored results, as the
/// coordinator's database holds them.
async fn stored_rounds(start: &Start, task_id: &str) -> Vec<(Roster, Vec<String>)> {
    let rosters = start
        .database_texts(
            "SELECT body FROM broker_rosters WHERE group_id = ? AND outcome IS NOT NULL ORDER BY round",
            &[task_id],
        )
        .await;
    let mut out = Vec::new();
    for row in rosters {
        let roster: Roster = serde_json::from_str(row[0].as_deref().unwrap()).unwrap();
        let mut results = Vec::new();
        for m in &roster.members {
            let rows = start
                .database_texts(
                    "SELECT result FROM broker_tasks WHERE lease_id = ?",
                    &[&m.lease_id],
                )
                .await;
            results.push(rows[0][0].clone().unwrap());
        }
        out.push((roster, results));
    }
    out
}

fn unmask_attempts(stored: &[(Roster, Vec<String>)]) -> Vec<(Vec<Masked>, Contribution)> {
    let mut out = Vec::new();
    for (roster, results) in stored {
        let mut masked = Vec::new();
        for result in results {
            let result: Value = serde_json::from_str(result).unwrap();
            let output: Value = serde_json::from_str(result["output"].as_str().unwrap()).unwrap();
            assert!(
                output["json"].get("params").is_none(),
                "a plain update was stored: {output}"
            );
            masked
                .push(serde_json::from_value::<Masked>(output["json"]["masked"].clone()).unwrap());
        }
        let n = masked.len();
        for subset in 1..(1u32 << n) - 1 {
            let part: Vec<Masked> = (0..n)
                .filter(|i| subset & (1 << i) != 0)
                .map(|i| masked[i].clone())
                .collect();
            let sum = greenmesh_protocol::secure_sum::sum(&part).unwrap();
            assert_eq!(
                Contribution::of_sum(&sum),
                None,
                "round {}: members {subset:b} unmasked without the others",
                roster.round + 1
            );
        }
        let whole = Contribution::of_sum(&greenmesh_protocol::secure_sum::sum(&masked).unwrap())
            .expect("the whole roster's sum decodes");
        out.push((masked, whole));
    }
    out
}

#[tokio::test]
async fn a_silent_member_is_left_out_and_its_round_re_run_without_it() {
    let (net, alice, nodes, task) = three_holders_train(
        json!({ "min_nodes": 3, "max_execution_time_sec": 10 }),
        json!({ "dataset": "d", "rounds": 2 }),
    )
    .await;
    // Patience: twice (10 s + the 30 s lease grace).
    let patience = Duration::from_secs(81);
    let (alive, silent) = nodes.split_at(2);
    let silent_lease = silent[0].poll(0).await.unwrap().remove(0).0;
    assert!(silent_lease.task_id.starts_with(&id(&task)));
    // Attempt 1: the silent node is on the roster and never reports.
    for node in alive {
        let (lease, _) = node.poll(0).await.unwrap().remove(0);
        assert_eq!(answer(node, &lease, &[9.0; 6], 40, 8, 10).await, 200);
    }
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["status"], "leased", "{t}");
    net.clock.advance(patience);
    for node in alive {
        node.heartbeat(0.0).await.unwrap();
    }
    // Past its patience the attempt is re-run; the silent node is offline
    // now, so each later attempt waits half a member's time limit for it,
    // then fixes its roster with the two that hold leases.
    for round in 0..2 {
        let mut leases = Vec::new();
        for node in alive {
            leases.push(node.poll(0).await.unwrap().remove(0).0);
        }
        assert!(
            roster(&alive[0], &leases[0]).await.is_none(),
            "waits for its third member"
        );
        net.clock.advance(Duration::from_secs(6));
        let r = roster(&alive[0], &leases[0])
            .await
            .expect("fixed with a quorum");
        assert_eq!(r.members.len(), 2);
        for (node, lease) in alive.iter().zip(&leases) {
            assert_eq!(
                answer(node, lease, &[round as f64; 6], 40, 8, 10).await,
                200
            );
        }
    }
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let rounds = done["result"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert!(rounds.iter().all(|r| r["members"] == 2), "{rounds:?}");
    let model: Vec<f64> =
        serde_json::from_value(done["result"]["model"]["params"].clone()).unwrap();
    assert!(model.iter().all(|p| (p - 1.0).abs() < 1e-6), "{model:?}");
    // The silent member was revoked when its attempt was re-run, and the
    // later rounds left their third member out, saying so.
    let reasons: Vec<&str> = done["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "cancelled")
        .filter_map(|m| m["reason"].as_str())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("re-run")), "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| r.contains("left out")).count(),
        2,
        "{reasons:?}"
    );
}
