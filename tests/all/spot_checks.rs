//! Spot checks (adaptive replication) through the real coordinator: a
//! deterministic result is rerun unannounced on another owner's node; a
//! mismatch is disputed at once and a third owner breaks the tie; the Spin
//! variables set the rate.

use crate::groups::{filter_task, lease_of, provider_reputation, three_owners, wrong_results};
use greenmesh_protocol::Lease;
use greenmesh_tests::net::{id, Net};
use greenmesh_tests::node::TestNode;
use serde_json::{json, Value};

/// Polls `nodes` until one has a lease: that node and the lease.
async fn leased(nodes: &[TestNode]) -> (&TestNode, Lease) {
    for node in nodes {
        if let Some((lease, _)) = lease_of(node).await {
            return (node, lease);
        }
    }
    panic!("no node has a lease");
}

async fn post(node: &TestNode, lease: &Lease, output: &str) {
    let r = node
        .post_result(&lease.lease_id, &node.receipt(lease, output), output)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn deterministic_task() -> Value {
    filter_task(json!({ "deterministic": true }))
}

#[tokio::test]
async fn a_deterministic_result_is_rerun_unannounced_on_another_owner_s_node() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net.submit(&alice, deterministic_task()).await;
    let (first, lease) = leased(&nodes).await;
    post(first, &lease, "blurred").await;
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(
        t["status"], "completed",
        "the requester is not kept waiting: {t}"
    );
    assert_eq!(t["verification"]["status"], "checking", "{t}");
    // A new node is on probation: its result is rerun elsewhere, under a
    // task id that does not reveal what it checks, with the same seed.
    let (checker, check) = leased(&nodes).await;
    assert_ne!(checker.id, first.id);
    assert!(!check.task_id.contains(&id(&task)), "{}", check.task_id);
    assert_eq!(check.seed, lease.seed);
    assert_eq!(check.input_sha256, lease.input_sha256);
    post(checker, &check, "blurred").await;
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["verification"]["status"], "verified", "{t}");
    let record = net.get(&format!("/api/v1/nodes/{}", first.id)).await["verification"].clone();
    assert_eq!(record["agreed_since_last_mismatch"], 1, "{record}");
    assert_eq!(record["checked"], 1);
    // The check is the broker's: not in the requester's list, not theirs to cancel.
    let list = net
        .call(&alice.token, "GET", "/api/v1/tasks", Value::Null)
        .await
        .json();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 1, "{list}");
    let r = net
        .call(
            &alice.token,
            "DELETE",
            &format!("/api/v1/tasks/{}", check.task_id),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
}

#[tokio::test]
async fn a_wrong_result_caught_by_a_spot_check_is_disputed_and_a_third_owner_breaks_the_tie() {
    let net = Net::start(&[]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net.submit(&alice, deterministic_task()).await;
    let (cheat, lease) = leased(&nodes).await;
    post(cheat, &lease, "garbage").await;
    let (checker, check) = leased(&nodes).await;
    post(checker, &check, "blurred").await;
    // The requester hears of the mismatch at once.
    let t = net.task(&alice, &id(&task)).await;
    assert_eq!(t["verification"]["status"], "disputed", "{t}");
    assert_eq!(net.count_events(&id(&task), "spot_check_mismatch").await, 1);
    // The third owner's node decides.
    let third = nodes
        .iter()
        .find(|n| n.id != cheat.id && n.id != checker.id)
        .unwrap();
    let (tie, lease3) = leased(std::slice::from_ref(third)).await;
    assert_eq!(lease3.seed, lease.seed);
    post(tie, &lease3, "blurred").await;
    let t = net.task(&alice, &id(&task)).await;
    let v = &t["verification"];
    assert_eq!(v["status"], "disputed", "{t}");
    assert_eq!(v["result_agreed"], false, "{t}");
    assert_eq!(
        v["agreed_output_sha256"],
        greenmesh_protocol::sha256_hex(b"blurred").as_str()
    );
    assert!(wrong_results(&provider_reputation(&net, cheat).await) > 0.99);
    assert_eq!(
        wrong_results(&provider_reputation(&net, checker).await),
        0.0
    );
    assert_eq!(net.count_events(&id(&task), "wrong_result").await, 1);
    let record = net.get(&format!("/api/v1/nodes/{}", cheat.id)).await["verification"].clone();
    assert_eq!(record["mismatched"], 1, "{record}");
    assert_eq!(record["agreed_since_last_mismatch"], 0);
    assert_eq!(record["check_rate"], 1.0, "caught: back to the ceiling");
}

#[tokio::test]
async fn spot_checks_follow_their_spin_variables() {
    // A ceiling of 0 turns them off.
    let net = Net::start(&[("SPIN_VARIABLE_SPOT_CHECK_CEILING", "0")]).await;
    let alice = net.user("alice").await;
    let nodes = three_owners(&net).await;
    let task = net.submit(&alice, deterministic_task()).await;
    let (node, lease) = leased(&nodes).await;
    post(node, &lease, "blurred").await;
    let t = net.task(&alice, &id(&task)).await;
    assert!(t["verification"].is_null(), "{t}");
    for n in &nodes {
        assert!(lease_of(n).await.is_none(), "no check was opened");
    }
}
