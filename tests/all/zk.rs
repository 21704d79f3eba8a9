//! `zk_proof` tasks (issue 24): real `greenmesh provide` nodes prove a VDF
//! and a Rescue hash chain in their sandboxes, and the broker verifies
//! every proof before it accepts the receipt; proofs of another input,
//! truncated proofs and proofs below the security floor are refused, the
//! node marked and the task given to another node.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use greenmesh_tests::net::Net;
use greenmesh_tests::node::{register_user, TestNode};
use greenmesh_tests::provider::{
    finished, kernel, kernel_dir, submit, wait_for_node, ProviderSpec,
};
use greenmesh_tests::Start;
use greenmesh_zk::Statement;
use serde_json::{json, Value};
use std::time::Duration;

fn vdf(seed: &str, steps: u64) -> Value {
    json!({ "statement": "vdf", "seed": seed, "steps": steps })
}

fn task(inputs: Value) -> Value {
    json!({ "task_type": "zk_proof", "inputs": inputs, "max_price": 50.0,
            "sla": "urgent", "importance": "normal" })
}

#[tokio::test]
async fn a_vdf_and_a_hash_chain_are_proven_on_real_nodes_and_verified_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .env("SPIN_VARIABLE_QUOTAS", "off")
        .start()
        .await
        .unwrap();
    let token = register_user(app.addr, "prover").await.unwrap();
    let kernels = kernel_dir(dir.path(), &[(&kernel("zk-prover"), "zk-prover.wasm")]);
    let _provider = ProviderSpec::new(app.addr, &token, &kernels, &dir.path().join("node")).spawn();
    wait_for_node(app.addr, &["zk-prover"], Duration::from_secs(60)).await;
    let chain = json!({ "statement": "hash_chain", "seed": ["7", "11"], "length": 64 });
    for inputs in [vdf("123456789", 1024), chain] {
        let id = submit(app.addr, &token, task(inputs.clone())).await;
        let done = finished(app.addr, &token, &id).await;
        assert_eq!(done["status"], "completed", "{done}");
        let zk = &done["zk"];
        // The figures docs/benchmarks.md reports (`-- --nocapture`).
        println!("{}: {zk}", inputs["statement"]);
        assert_eq!(zk["verified"], true, "{done}");
        assert!(zk["security_bits"].as_u64().unwrap() >= 96, "{zk}");
        assert!(zk["proof_bytes"].as_u64().unwrap() > 1_000, "{zk}");
        assert!(zk["verify_ms"].as_f64().unwrap() > 0.0, "{zk}");
        assert_eq!(zk["zero_knowledge"], false);
        // The result is what the statement computes, and the proof in the
        // task's result checks offline too.
        let statement: Statement = serde_json::from_value(inputs).unwrap();
        let output: Value =
            serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
        let result: Vec<String> = serde_json::from_value(output["json"]["result"].clone()).unwrap();
        assert_eq!(result, statement.evaluate().unwrap());
        let proof = BASE64
            .decode(output["json"]["proof"].as_str().unwrap())
            .unwrap();
        greenmesh_zk::verify(&statement, &result, &proof, 96).unwrap();
        // `greenmesh verify` checks it offline from the task's JSON, and
        // refuses the same task with its result changed.
        let file = dir.path().join(format!("{id}.json"));
        std::fs::write(&file, done.to_string()).unwrap();
        let (ok, out, err) =
            greenmesh_tests::process::greenmesh_cli(&["verify", file.to_str().unwrap()]).await;
        assert!(ok, "{out}{err}");
        assert!(out.contains("the proof verifies"), "{out}");
        let mut tampered = done.clone();
        let mut o = output.clone();
        o["json"]["result"][0] = json!("5");
        tampered["result"]["output"] = json!(o.to_string());
        std::fs::write(&file, tampered.to_string()).unwrap();
        let (ok, _, err) =
            greenmesh_tests::process::greenmesh_cli(&["verify", file.to_str().unwrap()]).await;
        assert!(!ok && err.contains("does not verify"), "{err}");
    }
    // A statement the prover cannot take is refused at submission.
    let r = greenmesh_tests::call_as(
        app.addr,
        &token,
        "POST",
        "/api/v1/tasks",
        task(vdf("1", 1000)),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "inputs.steps");
    // Proofs are verified for zk-prover: a zk_proof task may not name
    // another capability to skip that.
    let mut other = task(vdf("1", 64));
    other["capability"] = json!("noop");
    let r = greenmesh_tests::call_as(app.addr, &token, "POST", "/api/v1/tasks", other).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "capability");
    app.stop().await;
}

/// The provider's output for a proven statement, as a lying node might
/// send it: `result` and `proof` as given.
fn output(statement: &Value, result: &[String], proof: &[u8]) -> String {
    json!({ "media_type": "application/json", "json": {
        "statement": statement, "result": result, "proof": BASE64.encode(proof),
    } })
    .to_string()
}

/// `node` takes its next lease and answers it with `out`: the status and body.
async fn answer(node: &TestNode, out: &str) -> (u16, Value, String) {
    let (lease, _) = node.poll(0).await.unwrap().remove(0);
    let receipt = node.receipt(&lease, out);
    let r = node
        .post_result(&lease.lease_id, &receipt, out)
        .await
        .unwrap();
    (r.status, r.json(), lease.task_id)
}

#[tokio::test]
async fn forged_truncated_and_weak_proofs_are_refused_and_the_task_goes_to_another_node() {
    let net = Net::start(&[("SPIN_VARIABLE_QUOTAS", "off")]).await;
    let (alice, mallory, bob) = (
        net.user("alice").await,
        net.user("mallory").await,
        net.user("bob").await,
    );
    let asked = vdf("1000", 64);
    let statement: Statement = serde_json::from_value(asked.clone()).unwrap();
    let honest = greenmesh_zk::prove(&statement, greenmesh_zk::proof_options()).unwrap();
    // A real proof, but of another input (seed 1001) with its own result.
    let other: Statement = serde_json::from_value(vdf("1001", 64)).unwrap();
    let forged = greenmesh_zk::prove(&other, greenmesh_zk::proof_options()).unwrap();
    // The right result, proven with 4 queries and no grinding.
    let weak = greenmesh_zk::prove(&statement, greenmesh_zk::proof_options_with(4, 8, 0)).unwrap();
    let truncated = &honest.proof[..honest.proof.len() / 2];
    let cases: [(&str, String); 3] = [
        (
            "another input",
            output(&asked, &forged.result, &forged.proof),
        ),
        ("truncated", output(&asked, &honest.result, truncated)),
        ("weak", output(&asked, &weak.result, &weak.proof)),
    ];
    for (i, (what, out)) in cases.iter().enumerate() {
        let liar = net
            .node(&mallory, 80 + i as u8, &[("zk-prover", 1.0)])
            .await;
        let task = net.submit(&alice, task(asked.clone())).await;
        let id = greenmesh_tests::net::id(&task);
        let (status, body, leased) = answer(&liar, out).await;
        assert_eq!(leased, id);
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["error"]["code"], "proof_rejected", "{what}: {body}");
        // Marked: a wrong result on the node's record.
        let node = net.get(&format!("/api/v1/nodes/{}", liar.id)).await;
        let wrong = node["reputation"]["wrong_results"].as_f64().unwrap();
        assert!((wrong - 1.0).abs() < 1e-3, "{what}: {node}");
        // The task is not the liar's any more: with the liar still online,
        // it is not offered to it again; another node gets it, and an
        // honest proof completes it.
        assert!(liar.poll(0).await.unwrap().is_empty(), "{what}");
        let fair = net.node(&bob, 90 + i as u8, &[("zk-prover", 1.0)]).await;
        net.call(
            &alice.token,
            "GET",
            &format!("/api/v1/tasks/{id}"),
            Value::Null,
        )
        .await;
        let (status, body, leased) =
            answer(&fair, &output(&asked, &honest.result, &honest.proof)).await;
        assert_eq!(
            (status, leased.as_str()),
            (200, id.as_str()),
            "{what}: {body}"
        );
        let done = net.task(&alice, &id).await;
        assert_eq!(done["status"], "completed", "{what}: {done}");
        assert_eq!(done["zk"]["verified"], true);
        let r = net
            .call(
                &mallory.token,
                "DELETE",
                &format!("/api/v1/nodes/{}", liar.id),
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = net
            .call(
                &bob.token,
                "DELETE",
                &format!("/api/v1/nodes/{}", fair.id),
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}
