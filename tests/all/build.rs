//! `greenmesh up --build` runs `[component.<id>.build] command` first.

use greenmesh_tests::{guest, Start};

#[tokio::test]
async fn build_command_runs_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "built"
[[trigger.http]]
route = "/..."
component = "hello"
[component.hello]
source = "out/hello.wasm"
[component.hello.build]
command = ["mkdir -p out", "cp {src} out/hello.wasm"]
"#,
        src = guest("hello").display()
    );
    std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
    let start = Start::at(dir.path().join("spin.toml"), dir.path());
    assert!(
        start.load().is_err(),
        "source does not exist before the build"
    );

    let mut config_start = start.clone();
    config_start.state_dir = dir.path().join(".spin");
    let app = greenmesh_tests::start_built(&config_start).await.unwrap();
    assert_eq!(app.get("/").await.text(), "hello");
    app.stop().await;
}
