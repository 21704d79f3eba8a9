//! The coordinator's composition seams: swapping the pricing plugin by one
//! line of `spin.toml`, and composing the same `.wasm` files offline the way
//! `wac plug` does.

use bytes::Bytes;
use greenmesh_tests::node::{register_user, TestNode};
use greenmesh_tests::{coordinator_manifest_with, send_with, tests_dir, Start};
use serde_json::json;
use std::path::Path;

fn release(name: &str) -> std::path::PathBuf {
    tests_dir()
        .join("../components/target/wasm32-wasip2/release")
        .join(name)
}

/// The repository's spin.toml with the pricing plugin `pricing`, in `dir`.
fn manifest_copy(dir: &Path, pricing: &str) -> std::path::PathBuf {
    coordinator_manifest_with(dir, &[("pricing.wasm", pricing)])
}

async fn precheck_price(start: &Start) -> serde_json::Value {
    let app = start.start().await.unwrap();
    let token = register_user(app.addr, "pat").await.unwrap();
    TestNode::register(app.addr, &token, 7, &[("image-filter", 2.0)])
        .await
        .unwrap();
    let task = json!({ "task_type": "image-filter", "inputs": {}, "max_price": 100.0 });
    let r = send_with(
        app.addr,
        "POST",
        "/api/v1/tasks/precheck",
        Bytes::from(task.to_string()),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    app.stop().await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["decision"]["chosen"].clone()
}

#[tokio::test]
async fn one_line_swaps_online_pricing_for_flat_rate() {
    let dir = tempfile::tempdir().unwrap();
    let online = Start::at(
        manifest_copy(dir.path(), "pricing.wasm"),
        &dir.path().join("online"),
    );
    let chosen = precheck_price(&online).await;
    assert_eq!(chosen["pricing_model"], "online-v1", "{chosen}");

    let flat_dir = dir.path().join("flat");
    std::fs::create_dir_all(&flat_dir).unwrap();
    let flat = Start::at(
        manifest_copy(&flat_dir, "pricing_flat.wasm"),
        &flat_dir.join("state"),
    );
    let chosen = precheck_price(&flat).await;
    assert_eq!(chosen["pricing_model"], "flat", "{chosen}");
    assert_eq!(chosen["price"], 2.0);
}

#[tokio::test]
async fn broker_composes_offline_like_wac_plug() {
    use wac_graph::{types::Package, CompositionGraph, EncodeOptions};
    let mut graph = CompositionGraph::new();
    let register = |graph: &mut CompositionGraph, name: &str, file: &str| {
        let pkg = Package::from_file(name, None, release(file), graph.types_mut()).unwrap();
        graph.register_package(pkg).unwrap()
    };
    let broker = register(&mut graph, "greenmesh:broker", "broker.wasm");
    let plugs = vec![
        register(&mut graph, "greenmesh:marketplace", "marketplace.wasm"),
        register(&mut graph, "greenmesh:pricing", "pricing.wasm"),
        register(&mut graph, "greenmesh:reputation", "reputation.wasm"),
        register(&mut graph, "greenmesh:voting", "voting.wasm"),
        register(&mut graph, "greenmesh:quota", "quota.wasm"),
    ];
    wac_graph::plug(&mut graph, plugs, broker).unwrap();
    let bytes = graph.encode(EncodeOptions::default()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coordinator.wasm"), bytes).unwrap();
    let manifest = r#"spin_manifest_version = 2
[application]
name = "composed-offline"
[[trigger.http]]
route = "/api/v1/..."
component = "coordinator"
[component.coordinator]
source = "coordinator.wasm"
sqlite_databases = ["default"]
"#;
    std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
    let start = Start::at(dir.path().join("spin.toml"), &dir.path().join(".spin"));
    let app = start.start().await.unwrap();
    let token = register_user(app.addr, "offline").await.unwrap();
    let node = TestNode::register(app.addr, &token, 8, &[("image-filter", 1.0)])
        .await
        .unwrap();
    let listed = app.get(&format!("/api/v1/nodes/{}", node.id)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["status"], "online");
    app.stop().await;
}
