//! Verifiable results end to end: a `require_proof` image-filter task on
//! three real `greenmesh provide` nodes of three owners, one of which runs
//! a lying kernel of the same name. The honest majority wins, the liar is
//! marked, and the proof bundle verifies with `greenmesh verify` (and its
//! `--rerun` reproduces the output here); a tampered bundle does not.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use greenmesh_tests::node::register_user;
use greenmesh_tests::process::greenmesh_cli;
use greenmesh_tests::provider::{finished, kernel, kernel_dir, submit, Provider, ProviderSpec};
use greenmesh_tests::{guest, send, Start};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `greenmesh proof get` of `proof_id` into `bundle`, as its task's owner.
async fn fetch_bundle(url: &str, token: &str, proof_id: &str, bundle: &std::path::Path) {
    let (ok, out, err) = greenmesh_cli(&[
        "proof",
        "get",
        proof_id,
        "--out",
        bundle.to_str().unwrap(),
        "--url",
        url,
        "--token",
        token,
    ])
    .await;
    assert!(ok, "{out}{err}");
}

/// Waits until `n` nodes offering image-filter are online.
async fn wait_for_nodes(addr: SocketAddr, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let nodes = send(addr, "GET", "/api/v1/nodes", Bytes::new())
            .await
            .unwrap()
            .json()["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let online: Vec<Value> = nodes
            .into_iter()
            .filter(|n| n["status"] == "online")
            .collect();
        if online.len() >= n {
            return online;
        }
        assert!(
            Instant::now() < deadline,
            "only {} node(s) online",
            online.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The providers' logs, for a failure message.
fn logs(providers: &[Provider]) -> String {
    providers
        .iter()
        .map(|p| p.log())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test]
async fn a_lying_kernel_is_outvoted_and_the_bundle_verifies_and_reruns_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .env("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "5000")
        .start()
        .await
        .unwrap();
    let honest = kernel("image-filter");
    let liar = guest("liar_kernel");
    let mut providers = Vec::new();
    for (name, file) in [("bob", &honest), ("carol", &honest), ("mallory", &liar)] {
        let token = register_user(app.addr, name).await.unwrap();
        let root = dir.path().join(name);
        let kernels = kernel_dir(&root, &[(file, "image-filter.wasm")]);
        providers.push(ProviderSpec::new(app.addr, &token, &kernels, &root.join("node")).spawn());
    }
    let nodes = wait_for_nodes(app.addr, 3).await;
    let liar_node = nodes
        .iter()
        .find(|n| {
            let sha = n["capabilities"][0]["sha256"].as_str();
            sha == Some(&greenmesh_protocol::sha256_hex(
                &std::fs::read(&liar).unwrap(),
            ))
        })
        .expect("the liar advertises its own kernel bytes")["id"]
        .as_str()
        .unwrap()
        .to_string();

    let alice = register_user(app.addr, "alice").await.unwrap();
    let png = image_filter::testdata::png_payload(&image_filter::testdata::scene(32, 24, 6));
    // CPU only: a GPU's float order may differ from the verifier's CPU.
    let inputs = json!({ "data": BASE64.encode(&png.bytes), "media_type": "image/png",
                         "params": { "filter": "gaussian_blur", "sigma": 1.0, "device": "cpu" } });
    let task = json!({ "task_type": "image-filter", "inputs": inputs, "max_price": 50.0,
                       "sla": "urgent", "importance": "normal",
                       "requirements": { "min_nodes": 3, "require_proof": true, "max_execution_time_sec": 30 } });
    let id = submit(app.addr, &alice, task).await;
    let done = finished(app.addr, &alice, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", logs(&providers));
    let shard = &done["result"]["shards"][0];
    assert_eq!(shard["agreeing"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(
        shard["minority"][0]["node_id"],
        liar_node.as_str(),
        "{done}"
    );
    let output: Value = serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
    let filtered = BASE64.decode(output["base64"].as_str().unwrap()).unwrap();
    assert_ne!(
        filtered, png.bytes,
        "the honest output is the blurred image"
    );
    // The group's end is committed before its members' records are
    // settled (ADR 0015): the liar's mark follows within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let node = send(
            app.addr,
            "GET",
            &format!("/api/v1/nodes/{liar_node}"),
            Bytes::new(),
        )
        .await
        .unwrap()
        .json();
        if node["reputation"]["wrong_results"].as_f64().unwrap() > 0.99 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{node}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The requester fetches the bundle and checks it offline.
    let url = format!("http://{}", app.addr);
    let proof_id = done["result"]["proof_id"].as_str().unwrap();
    let bundle = dir.path().join("bundle.json");
    fetch_bundle(&url, &alice, proof_id, &bundle).await;
    let broker_key = send(app.addr, "GET", "/api/v1/keys/broker", Bytes::new())
        .await
        .unwrap()
        .json()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let input_file = dir.path().join("inputs.json");
    std::fs::write(&input_file, serde_json::to_string_pretty(&inputs).unwrap()).unwrap();
    let verify = |bundle: &std::path::Path, kernel: &std::path::Path| {
        let args: Vec<String> = [
            "verify",
            bundle.to_str().unwrap(),
            "--broker-key",
            &broker_key,
            "--rerun",
            "--kernel",
            kernel.to_str().unwrap(),
            "--input",
            input_file.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            greenmesh_cli(&args).await
        }
    };
    let (ok, out, err) = verify(&bundle, &honest).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("verifies") && out.contains("2 distinct owner(s)"),
        "{out}"
    );
    assert!(out.contains("reproduces output"), "{out}");

    // The liar's kernel does not pass for the one the majority ran.
    let (ok, out, err) = verify(&bundle, &liar).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("but the runs in the bundle ran kernel"),
        "{err}"
    );

    // One character of the agreed output hash changed: refused, saying why.
    let mut tampered: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let hash = tampered["shards"][0]["output_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if hash.starts_with('0') { "1" } else { "0" };
    tampered["shards"][0]["output_sha256"] = json!(format!("{flipped}{}", &hash[1..]));
    let tampered_file = dir.path().join("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string()).unwrap();
    let (ok, out, err) = verify(&tampered_file, &honest).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("does not verify") && err.contains("broker's signature"),
        "{err}"
    );
}

#[tokio::test]
async fn seed_002_s_climate_run_splits_ten_scenarios_over_ten_nodes_of_four_owners_with_proof() {
    let dir = tempfile::tempdir().unwrap();
    let mut start = Start::coordinator(&dir.path().join("state"))
        .env("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "10000")
        // The seed's 1800 s is beyond the free tier's 600 s (tiers have
        // their own tests, governance.rs).
        .env("SPIN_VARIABLE_QUOTAS", "off");
    // Ten nodes long-poll at once: more instances than the tests' default.
    start.max_instances = 128;
    let app = start.start().await.unwrap();
    let computation = kernel("computation");
    let mut owners = Vec::new();
    for name in ["uni-a", "uni-b", "lab-c", "lab-d"] {
        owners.push(register_user(app.addr, name).await.unwrap());
    }
    let mut providers = Vec::new();
    for i in 0..10 {
        let root = dir.path().join(format!("node-{i}"));
        let kernels = kernel_dir(&root, &[(&computation, "computation.wasm")]);
        providers.push(
            ProviderSpec::new(app.addr, &owners[i % 4], &kernels, &root.join("data")).spawn(),
        );
    }
    wait_for_nodes(app.addr, 10).await;

    // Ten scenarios, one per node, each checked by a second owner's node.
    let (m, k, n) = (12u32, 9u32, 7u32);
    let scenarios: Vec<Vec<f32>> = (0..10)
        .map(|i| {
            let mut v = computation::testdata::values((m * k) as usize, 100 + i);
            v.extend(computation::testdata::values((k * n) as usize, 200 + i));
            v
        })
        .collect();
    let shards: Vec<Value> = scenarios
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({ "scenario": format!("climate_2050_run_{i}"),
                    "data": BASE64.encode(greenmesh_kernel::gpu::f32_bytes(v)) })
        })
        .collect();
    let researcher = register_user(app.addr, "climate-lab").await.unwrap();
    let task = json!({
        "task_type": "computation",
        "inputs": { "media_type": "application/octet-stream",
                    "params": { "op": "matmul", "m": m, "k": k, "n": n, "device": "cpu" },
                    "shards": shards },
        "requirements": { "min_nodes": 10, "max_execution_time_sec": 1800, "require_gpu": false, "require_proof": true },
        "max_price": 50.0, "sla": "urgent", "importance": "normal",
    });
    let id = submit(app.addr, &researcher, task).await;
    let done = finished(app.addr, &researcher, &id).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", logs(&providers));

    // Outputs in scenario order, each the product of its own matrices.
    let outputs = done["result"]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 10);
    for (i, (out, v)) in outputs.iter().zip(&scenarios).enumerate() {
        let out: Value = serde_json::from_str(out.as_str().unwrap()).unwrap();
        let got = BASE64.decode(out["base64"].as_str().unwrap()).unwrap();
        let (a, b) = v.split_at((m * k) as usize);
        let want = computation::cpu::matmul(a, b, m as usize, k as usize, n as usize);
        assert_eq!(got, greenmesh_kernel::gpu::f32_bytes(&want), "scenario {i}");
    }
    // Twenty runs on ten nodes: the shards' first replicas on ten distinct
    // nodes (what min_nodes promises), each shard's two on distinct owners.
    let members = done["group"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 20, "{done}");
    let mut firsts: Vec<&str> = members
        .iter()
        .filter(|m| m["task_id"].as_str().unwrap().ends_with("-r0"))
        .map(|m| m["node_id"].as_str().unwrap())
        .collect();
    firsts.sort_unstable();
    firsts.dedup();
    assert_eq!(firsts.len(), 10, "{done}");
    for shard in 0..10 {
        let owners: Vec<&str> = members
            .iter()
            .filter(|m| m["shard"] == shard)
            .map(|m| m["node_owner"].as_str().unwrap())
            .collect();
        assert_eq!(owners.len(), 2);
        assert_ne!(owners[0], owners[1], "shard {shard}");
    }
    // The bundle covers every scenario.
    let url = format!("http://{}", app.addr);
    let bundle = dir.path().join("climate.json");
    let proof_id = done["result"]["proof_id"].as_str().unwrap();
    fetch_bundle(&url, &researcher, proof_id, &bundle).await;
    let (ok, out, err) = greenmesh_cli(&["verify", bundle.to_str().unwrap()]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("10 shard(s), 20 agreeing run(s)"), "{out}");
    assert!(out.contains("named by the bundle"), "{out}");
}
