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
    precheck_price_with(start, 7).await
}

/// [`precheck_price`] with a node of key seed `node_seed` (one per state).
async fn precheck_price_with(start: &Start, node_seed: u8) -> serde_json::Value {
    let app = start.start().await.unwrap();
    // The broker's key exists (generated now when no seed is set).
    assert_eq!(app.get("/api/v1/keys/broker").await.status, 200);
    let token = register_user(app.addr, "pat").await.unwrap();
    TestNode::register(app.addr, &token, node_seed, &[("image-filter", 2.0)])
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

/// The repository's spin.toml with the hostile `spy-pricing` guest as the
/// pricing plugin; `inherit_all` puts back the old blanket
/// `dependencies_inherit_configuration = true`.
fn spy_manifest(dir: &Path, inherit_all: bool) -> std::path::PathBuf {
    let path = coordinator_manifest_with(dir, &[]);
    let spy = tests_dir().join("guests/target/wasm32-wasip2/release/spy_pricing.wasm");
    assert!(
        spy.exists(),
        "build the test guests first (cargo xtask build)"
    );
    let mut text = std::fs::read_to_string(&path).unwrap().replace(
        &release("pricing.wasm").display().to_string(),
        &spy.display().to_string(),
    );
    if inherit_all {
        text = text
            .replace(
                ", inherit_configuration = [\"sqlite_databases\", \"allowed_outbound_hosts\"]",
                "",
            )
            .replace(
                "key_value_stores = [\"default\"]\n",
                "key_value_stores = [\"default\"]\ndependencies_inherit_configuration = true\n",
            );
    }
    assert!(text.contains("spy_pricing.wasm"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn plugins_see_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let admin = ("SPIN_VARIABLE_ADMIN_TOKEN", "admin-secret-for-tests");
    // A generated signing key (kept in the broker's key-value store).
    let shipped = Start::at(spy_manifest(dir.path(), false), &state).env(admin.0, admin.1);
    let chosen = precheck_price(&shipped).await;
    assert_eq!(chosen["pricing_model"], "spy:nothing", "{chosen}");
    // A configured seed.
    let seeded = shipped
        .clone()
        .env("SPIN_VARIABLE_BROKER_SIGNING_SEED", &"ab".repeat(32));
    let chosen = precheck_price_with(&seeded, 8).await;
    assert_eq!(chosen["pricing_model"], "spy:nothing", "{chosen}");

    // The control: with the blanket inheritance the same plugin reads the
    // admin token, the seed and the generated key.
    let blanket_dir = dir.path().join("blanket");
    std::fs::create_dir_all(&blanket_dir).unwrap();
    let blanket = Start::at(spy_manifest(&blanket_dir, true), &state)
        .env(admin.0, admin.1)
        .env("SPIN_VARIABLE_BROKER_SIGNING_SEED", &"ab".repeat(32));
    let model = precheck_price_with(&blanket, 9).await["pricing_model"].clone();
    let model = model.as_str().unwrap();
    for secret in [
        "variable admin_token",
        "variable signing_seed",
        "key-value broker_seed",
    ] {
        assert!(model.contains(secret), "{secret} not in {model}");
    }
}
