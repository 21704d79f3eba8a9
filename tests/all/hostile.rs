//! Open-network hardening (issue 21): each test is an attack a stranger on
//! the network could try, named after it, against the real coordinator.

use greenmesh_tests::net::Net;
use greenmesh_tests::node::{NodeOptions, TestNode};
use serde_json::{json, Value};

/// A node request signed once and sent twice.
async fn send_signed_twice(node: &TestNode, method: &str, path: &str) -> (u16, u16, String) {
    let ts = node.clock.now_ms();
    let sig = greenmesh_protocol::sign_request(&node.key.sk, method, path, ts, b"");
    let headers = [
        ("x-greenmesh-node", node.id.as_str()),
        ("x-greenmesh-timestamp", &ts.to_string()),
        ("x-greenmesh-signature", sig.as_str()),
    ];
    let first = greenmesh_tests::send_with(node.addr, method, path, bytes::Bytes::new(), &headers)
        .await
        .unwrap();
    let again = greenmesh_tests::send_with(node.addr, method, path, bytes::Bytes::new(), &headers)
        .await
        .unwrap();
    (first.status, again.status, again.text())
}

#[tokio::test]
async fn a_replayed_node_signature_is_refused() {
    let net = Net::start(&[]).await;
    let owner = net.user("owner").await;
    let options = NodeOptions {
        clock: net.clock.clone(),
        ..Default::default()
    };
    let node = TestNode::register_with(
        net.app.addr,
        &owner.token,
        71,
        &[("image-filter", 1.0)],
        options,
    )
    .await
    .unwrap();
    // A captured lease poll, replayed within the skew window, would steal
    // the node's leases and inputs.
    let path = format!("/api/v1/nodes/{}/leases?wait=0", node.id);
    let (first, again, body) = send_signed_twice(&node, "GET", &path).await;
    assert_eq!(first, 200);
    assert_eq!(again, 401, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // The node itself, signing afresh, is still served.
    assert!(node.poll(0).await.is_ok());
}

/// Uploads `bytes` as `token`'s blob: the reply.
async fn upload(net: &Net, token: &str, bytes: Vec<u8>) -> greenmesh_tests::Reply {
    greenmesh_tests::send_with(
        net.app.addr,
        "POST",
        "/api/v1/blobs",
        bytes::Bytes::from(bytes),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap()
}

async fn fetch(net: &Net, token: &str, sha: &str) -> u16 {
    net.call(token, "GET", &format!("/api/v1/blobs/{sha}"), Value::Null)
        .await
        .status
}

#[tokio::test]
async fn another_user_s_blob_is_not_found_and_old_unused_blobs_are_deleted() {
    let net = Net::start(&[("SPIN_VARIABLE_BLOB_QUOTA_MB", "1")]).await;
    let (alice, bob) = (net.user("alice").await, net.user("bob").await);
    let scan = vec![3u8; 600 << 10];
    let up = upload(&net, &alice.token, scan.clone()).await;
    assert_eq!(up.status, 201, "{}", up.text());
    let sha = up.json()["sha256"].as_str().unwrap().to_string();
    assert_eq!(fetch(&net, &alice.token, &sha).await, 200);
    // Knowing the hash is not enough.
    assert_eq!(fetch(&net, &bob.token, &sha).await, 404);
    let task = json!({ "task_type": "image-filter", "max_price": 50.0,
                       "inputs": { "image": { "blob": format!("sha256:{sha}") }, "filter": "grayscale" } });
    let stolen = net
        .call(&bob.token, "POST", "/api/v1/tasks", task.clone())
        .await;
    assert_eq!(stolen.status, 400, "{}", stolen.text());
    assert_eq!(stolen.json()["error"]["field"], "inputs.image.blob");
    // Nor is a node's signature without a lease of a task naming it.
    let options = NodeOptions {
        clock: net.clock.clone(),
        ..Default::default()
    };
    let node = TestNode::register_with(net.app.addr, &bob.token, 72, &[("fl-train", 1.0)], options)
        .await
        .unwrap();
    let by_node = node
        .signed("GET", &format!("/api/v1/blobs/{sha}"), Value::Null)
        .await
        .unwrap();
    assert_eq!(by_node.status, 404);
    // Uploading the same bytes answers as for new bytes (no oracle of what
    // others stored), and then Bob may read his copy.
    assert_eq!(upload(&net, &bob.token, scan.clone()).await.status, 201);
    assert_eq!(fetch(&net, &bob.token, &sha).await, 200);
    // A per-user quota (1 MiB here).
    let more = upload(&net, &alice.token, vec![4u8; 600 << 10]).await;
    assert_eq!(more.status, 429, "{}", more.text());
    assert_eq!(more.json()["error"]["code"], "blob_quota_exhausted");
    // A week later, a blob no unfinished task names is gone.
    net.clock
        .advance(std::time::Duration::from_secs(8 * 24 * 3600));
    node.poll(0).await.unwrap();
    assert_eq!(fetch(&net, &alice.token, &sha).await, 404);
    assert_eq!(
        upload(&net, &alice.token, vec![4u8; 600 << 10])
            .await
            .status,
        201,
        "the quota freed"
    );
}
