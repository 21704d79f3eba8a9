//! Task groups through the real coordinator with test nodes of several
//! owners: replicas on distinct owners agree by output hash and the odd
//! node is marked, a disagreement adds a replica, shards come back in
//! order, too few owners keeps a group queued saying so, an expired
//! replica is replaced, a cancel reaches every member, and a proof bundle
//! verifies offline and fails when tampered with.

use greenmesh_protocol::{Lease, ProofBundle};
use greenmesh_tests::net::{id, Net, User};
use greenmesh_tests::node::{NodeOptions, TestNode};
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn filter_task(requirements: Value) -> Value {
    json!({ "task_type": "image-filter", "inputs": { "text": "x" }, "max_price": 50.0,
            "sla": "urgent", "importance": "normal", "requirements": requirements })
}

async fn used_today(net: &Net, user: &User) -> u64 {
    net.call(&user.token, "GET", "/api/v1/users/me/quota", Value::Null)
        .await
        .json()["used_today"]
        .as_u64()
        .unwrap()
}

/// The one lease `node` has waiting (with its input), if any.
pub(crate) async fn lease_of(node: &TestNode) -> Option<(Lease, String)> {
    node.poll(0).await.unwrap().into_iter().next()
}

/// Every node of `nodes` with a lease waiting, and that lease.
async fn leases_on(nodes: &[TestNode]) -> Vec<(&TestNode, Lease)> {
    let mut leased = Vec::new();
    for node in nodes {
        if let Some((lease, _)) = lease_of(node).await {
            leased.push((node, lease));
        }
    }
    leased
}

/// `node` runs its lease and reports `output`; answers the lease.
async fn answer(node: &TestNode, output: &str) -> Lease {
    let (lease, _) = lease_of(node)
        .await
        .unwrap_or_else(|| panic!("{} has no lease", node.id));
    let r = node
        .post_result(&lease.lease_id, &node.receipt(&lease, output), output)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    lease
}

/// A reputation's (decaying) count of wrong results.
pub(crate) fn wrong_results(reputation: &Value) -> f64 {
    reputation["wrong_results"].as_f64().unwrap()
}

pub(crate) async fn provider_reputation(net: &Net, node: &TestNode) -> Value {
    net.get(&format!("/api/v1/nodes/{}", node.id)).await["reputation"].clone()
}

/// Three owners with one image-filter node each.
pub(crate) async fn three_owners(net: &Net) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for (i, name) in ["bob", "carol", "dave"].into_iter().enumerate() {
        let owner = net.user(name).await;
        nodes.push(
            net.node(&owner, 60 + i as u8, &[("image-filter", 1.0)])
                .await,
        );
    }
    nodes
}

#[tokio::test]
async fn three_replicas_agree_the_odd_node_is_marked_and_the_bundle_verifies() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net
        .submit(
            &alice,
            filter_task(json!({ "min_nodes": 3, "require_proof": true })),
        )
        .await;
    assert_eq!(used_today(&net, &alice).await, 1, "a group is one task");
    assert_eq!(task["status"], "leased", "{task}");
    let members = task["group"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{task}");
    let mut owners: Vec<&str> = members
        .iter()
        .map(|m| m["node_owner"].as_str().unwrap())
        .collect();
    owners.sort_unstable();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners.len(), 3, "replicas on distinct owners: {task}");

    let honest = answer(&nodes[0], "blurred").await;
    assert!(honest.deterministic, "replicas run deterministic");
    let odd = answer(&nodes[1], "garbage").await;
    assert_eq!(odd.seed, honest.seed, "replicas share one seed");
    assert_eq!(odd.input_sha256, honest.input_sha256);
    let pending = net.task(&alice, &id(&task)).await;
    assert_eq!(
        pending["status"], "leased",
        "waits for every replica: {pending}"
    );
    answer(&nodes[2], "blurred").await;

    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["output"], "blurred", "the majority wins");
    let shard = &done["result"]["shards"][0];
    assert_eq!(shard["agreeing"].as_array().unwrap().len(), 2, "{shard}");
    assert_eq!(shard["minority"][0]["node_id"], nodes[1].id.as_str());
    // Every execution is paid: the group's price is its members'.
    let paid: f64 = done["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["price"].as_f64().unwrap())
        .sum();
    assert!(
        (done["price"].as_f64().unwrap() - paid).abs() < 1e-9,
        "{done}"
    );
    assert!(paid > 0.0);

    let odd_rep = provider_reputation(&net, &nodes[1]).await;
    assert!(wrong_results(&odd_rep) > 0.99, "{odd_rep}");
    let honest_rep = provider_reputation(&net, &nodes[0]).await;
    assert_eq!(wrong_results(&honest_rep), 0.0, "{honest_rep}");
    assert!(
        honest_rep["successes"].as_f64().unwrap() > 0.99,
        "{honest_rep}"
    );
    assert!(
        honest_rep["value"].as_f64() > odd_rep["value"].as_f64(),
        "{honest_rep} vs {odd_rep}"
    );
    assert_eq!(net.count_events(&id(&task), "wrong_result").await, 1);
    assert_eq!(net.count_events(&id(&task), "task_completed").await, 1);

    // The bundle verifies offline against the broker's key.
    let proof_id = done["result"]["proof_id"].as_str().unwrap();
    let r = net
        .call(
            &alice.token,
            "GET",
            &format!("/api/v1/proofs/{proof_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bundle: ProofBundle = serde_json::from_value(r.json()).unwrap();
    let key = net.get("/api/v1/keys/broker").await;
    let broker = greenmesh_protocol::public_key(key["public_key"].as_str().unwrap()).unwrap();
    let v = bundle.verify(Some(&broker)).unwrap();
    assert_eq!((v.shards, v.runs, v.owners), (1, 2, 2));
    assert_eq!(bundle.shards[0].reported, 3);
    assert_eq!(
        bundle.shards[0].output_sha256,
        greenmesh_protocol::sha256_hex(b"blurred")
    );
    // Someone else's proof is not found.
    let r = net
        .call(
            &net.user("mallory").await.token,
            "GET",
            &format!("/api/v1/proofs/{proof_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn a_tampered_bundle_fails_verification_saying_why() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let run = |requirements: Value| {
        let net = &net;
        let alice = &alice;
        let nodes = &nodes;
        async move {
            let task = net.submit(alice, filter_task(requirements)).await;
            for node in nodes {
                if let Some((lease, _)) = lease_of(node).await {
                    let receipt = node.receipt(&lease, "blurred");
                    let r = node
                        .post_result(&lease.lease_id, &receipt, "blurred")
                        .await
                        .unwrap();
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            }
            let done = net.task(alice, &id(&task)).await;
            assert_eq!(done["status"], "completed", "{done}");
            let proof_id = done["result"]["proof_id"].as_str().unwrap().to_string();
            let r = net
                .call(
                    &alice.token,
                    "GET",
                    &format!("/api/v1/proofs/{proof_id}"),
                    Value::Null,
                )
                .await;
            serde_json::from_value::<ProofBundle>(r.json()).unwrap()
        }
    };
    let bundle = run(json!({ "require_proof": true })).await;
    let other = run(json!({ "require_proof": true })).await;
    let key = net.get("/api/v1/keys/broker").await;
    let broker = greenmesh_protocol::public_key(key["public_key"].as_str().unwrap()).unwrap();
    assert!(bundle.verify(Some(&broker)).is_ok());

    // One character of an output hash.
    let mut b = bundle.clone();
    let h = &mut b.shards[0].output_sha256;
    let flipped = if h.ends_with('0') { '1' } else { '0' };
    h.pop();
    h.push(flipped);
    let e = b.verify(Some(&broker)).unwrap_err();
    assert!(e.0.contains("broker's signature"), "{e}");

    // A receipt (and its lease) swapped in from another task, re-signed
    // by a forger who has the broker key would still fail: here the broker
    // signature already does, and with it fixed the binding does.
    let mut b = bundle.clone();
    b.shards[0].runs[0] = other.shards[0].runs[0].clone();
    assert!(b.verify(Some(&broker)).is_err());
    let mut b = bundle.clone();
    b.shards[0].runs[0].receipt = other.shards[0].runs[0].receipt.clone();
    let e = b.verify(Some(&broker)).unwrap_err();
    assert!(
        e.0.contains("broker's signature") || e.0.contains("receipt"),
        "{e}"
    );

    // A lease signed by another broker key, in a bundle signed by it too.
    let forger = greenmesh_protocol::key_pair_from_seed([99; 32]);
    let mut b = bundle.clone();
    b.shards[0].runs[0].lease.sign(&forger.sk);
    b.broker_public_key = greenmesh_protocol::public_key_hex(&forger.pk);
    b.sign(&forger.sk);
    let e = b.verify(Some(&broker)).unwrap_err();
    assert!(e.0.contains("another broker key"), "{e}");
    // Checked against the key the bundle names, the honest lease now fails.
    let e = b.verify(None).unwrap_err();
    assert!(e.0.contains("not signed by the broker key"), "{e}");
}

#[tokio::test]
async fn a_disagreement_adds_a_replica_and_the_majority_settles() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net
        .submit(&alice, filter_task(json!({ "require_proof": true })))
        .await;
    assert_eq!(task["group"]["replicas"], 2, "{task}");
    // Two replicas, on two of the three owners; they disagree.
    let leased = leases_on(&nodes).await;
    assert_eq!(leased.len(), 2);
    for ((node, lease), output) in leased.iter().zip(["right", "wrong"]) {
        let r = node
            .post_result(&lease.lease_id, &node.receipt(lease, output), output)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(net.count_events(&id(&task), "replica_added").await, 1);
    // The third owner's node gets the added replica (the others may not).
    let third = nodes
        .iter()
        .find(|n| !leased.iter().any(|(l, _)| l.id == n.id))
        .unwrap();
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["group"]["members"].as_array().unwrap().len(), 3, "{t}");
    answer(third, "right").await;
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["output"], "right");
    let wrong = leased[1].0;
    assert!(wrong_results(&provider_reputation(&net, wrong).await) > 0.99);
}

#[tokio::test]
async fn shards_run_on_distinct_nodes_and_come_back_in_shard_order() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let mut nodes = Vec::new();
    for seed in 70..73 {
        nodes.push(net.node(&bob, seed, &[("image-filter", 1.0)]).await);
    }
    let body = json!({ "task_type": "image-filter", "max_price": 50.0, "sla": "urgent", "importance": "normal",
                       "inputs": { "mode": "blur", "shards": [{ "text": "a" }, { "text": "b" }, { "text": "c" }] } });
    let task = net.submit(&alice, body).await;
    assert_eq!(task["status"], "leased", "{task}");
    let mut seen = Vec::new();
    for node in &nodes {
        let (lease, input) = lease_of(node).await.expect("one shard per node");
        let input: Value = serde_json::from_str(&input).unwrap();
        assert_eq!(
            input["inputs"]["mode"], "blur",
            "shared inputs reach every shard"
        );
        let text = input["inputs"]["text"].as_str().unwrap().to_string();
        let out = format!("out-{text}");
        let r = node
            .post_result(&lease.lease_id, &node.receipt(&lease, &out), &out)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        seen.push(text);
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["outputs"],
        json!(["out-a", "out-b", "out-c"])
    );
    assert!(
        done["result"]["proof_id"].is_null(),
        "no proof was asked for"
    );
}

#[tokio::test]
async fn too_few_owners_keeps_a_group_queued_saying_so_until_another_registers() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    // Two owners, three nodes: bob's two nodes count as one owner.
    let mut nodes = vec![
        net.node(&bob, 80, &[("image-filter", 1.0)]).await,
        net.node(&bob, 81, &[("image-filter", 1.0)]).await,
    ];
    let carol = net.user("carol").await;
    nodes.push(net.node(&carol, 82, &[("image-filter", 1.0)]).await);
    let task = net
        .submit(&alice, filter_task(json!({ "min_nodes": 3 })))
        .await;
    assert_eq!(task["status"], "queued", "{task}");
    let why = task["reason"].as_str().unwrap();
    assert!(
        why.contains("2 of 3 member(s) placed") && why.contains("3 distinct owners"),
        "{why}"
    );
    assert!(why.contains("already running part of this task"), "{why}");
    // A third owner registers: the waiting replica goes to it.
    let dave = net.user("dave").await;
    let late = net.node(&dave, 83, &[("image-filter", 1.0)]).await;
    late.heartbeat(0.0).await.unwrap();
    let (lease, _) = lease_of(&late)
        .await
        .expect("the third owner's node is leased");
    assert!(lease.task_id.starts_with(&id(&task)));
    assert_eq!(net.task(&alice, &id(&task)).await["status"], "leased");
}

#[tokio::test]
async fn an_expired_replica_is_replaced_and_the_group_completes() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net
        .submit(&alice, filter_task(json!({ "min_nodes": 2 })))
        .await;
    let leased = leases_on(&nodes).await;
    assert_eq!(leased.len(), 2);
    // The first replica's node dies; the other answers.
    let (dead, dead_lease) = &leased[0];
    let (alive, alive_lease) = &leased[1];
    let r = alive
        .post_result(
            &alive_lease.lease_id,
            &alive.receipt(alive_lease, "ok"),
            "ok",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    net.clock.advance(Duration::from_millis(
        dead_lease.expires_at - net.clock.now_ms() + 1_000,
    ));
    // The expiry re-leases the member elsewhere: not to the dead node, not
    // to the owner that already answered.
    let spare = nodes
        .iter()
        .find(|n| n.id != dead.id && n.id != alive.id)
        .unwrap();
    spare.heartbeat(0.0).await.unwrap();
    answer(spare, "ok").await;
    let done = net.task(&alice, &id(&task)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["output"], "ok");
    assert_eq!(net.count_events(&id(&task), "task_completed").await, 1);
}

#[tokio::test]
async fn cancelling_a_group_revokes_every_member_and_a_member_cannot_be_cancelled_alone() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net
        .submit(&alice, filter_task(json!({ "min_nodes": 3 })))
        .await;
    let mut leases = Vec::new();
    for node in &nodes {
        leases.push(lease_of(node).await.unwrap().0);
    }
    let member = leases[0].task_id.clone();
    let r = net
        .call(
            &alice.token,
            "DELETE",
            &format!("/api/v1/tasks/{member}"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains(&id(&task)), "{}", r.text());

    let r = net
        .call(
            &alice.token,
            "DELETE",
            &format!("/api/v1/tasks/{}", id(&task)),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "cancelled");
    for (node, lease) in nodes.iter().zip(&leases) {
        let hb = node.heartbeat(0.0).await.unwrap().json();
        let revoked: Vec<&str> = hb["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["lease_id"].as_str())
            .collect();
        assert_eq!(revoked, [lease.lease_id.as_str()], "{hb}");
    }
    assert_eq!(net.count_events(&id(&task), "task_cancelled").await, 1);
    // Fetched members may have run: the group stays counted.
    assert_eq!(used_today(&net, &alice).await, 1);
}

#[tokio::test]
async fn group_shapes_that_cannot_run_are_refused_naming_the_field() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let cases = [
        (
            json!({ "task_type": "computation", "inputs": { "shards": [{}, {}] }, "requirements": { "min_nodes": 3 } }),
            "requirements.min_nodes",
        ),
        (
            json!({ "task_type": "computation", "requirements": { "min_nodes": 2 }, "sla": "solar_only" }),
            "sla",
        ),
        (
            json!({ "task_type": "computation", "inputs": { "shards": [{ "blob": "sha256:00" }] } }),
            "inputs.shards[0].blob",
        ),
        (
            json!({ "task_type": "computation", "inputs": { "shards": [{ "text": "x" }, 7] } }),
            "inputs.shards[1]",
        ),
    ];
    for (body, field) in cases {
        let r = net
            .call(&alice.token, "POST", "/api/v1/tasks", body.clone())
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["error"]["field"], field, "{}", r.text());
    }
    assert_eq!(used_today(&net, &alice).await, 0, "nothing was accepted");
}

#[tokio::test]
async fn replicas_stay_on_distinct_owners_while_one_owner_s_nodes_register_at_once() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let bob = net.user("bob").await;
    let carol = net.user("carol").await;
    net.node(&bob, 110, &[("rare-filter", 1.0)]).await;
    let mut body = filter_task(json!({ "min_nodes": 3 }));
    body["capability"] = json!("rare-filter");
    let task = net.submit(&alice, body).await;
    let placed = |t: &Value| {
        t["group"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] == "leased")
            .count()
    };
    assert_eq!(placed(&task), 1, "only bob's node so far: {task}");
    // Carol's four nodes register at once, and bob's node heartbeats: each
    // request runs a dispatch pass that may decide both waiting replicas,
    // each of which would pick one of carol's nodes.
    let mut racers = Vec::new();
    for seed in 111..115u8 {
        let (addr, token, clock) = (net.app.addr, carol.token.clone(), net.clock.clone());
        racers.push(tokio::spawn(async move {
            let options = NodeOptions {
                clock,
                ..Default::default()
            };
            TestNode::register_with(addr, &token, seed, &[("rare-filter", 1.0)], options)
                .await
                .map(|_| ())
        }));
    }
    for r in racers {
        r.await.unwrap().unwrap();
    }
    let t = net.task(&alice, &id(&task)).await;
    let mut owners: Vec<&str> = t["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "leased")
        .map(|m| m["node_owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners.len(), 2, "bob's and one of carol's: {t}");
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners.len(), 2, "two owners, not one twice: {t}");
    assert_eq!(
        t["status"], "queued",
        "the third replica waits for a third owner"
    );
}
