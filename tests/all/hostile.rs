//! Open-network hardening (issue 21): each test is an attack a stranger on
//! the network could try, named after it, against the real coordinator.

use greenmesh_tests::net::Net;
use greenmesh_tests::node::{NodeOptions, TestNode};
use serde_json::Value;

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
