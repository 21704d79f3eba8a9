//! Application and component variables: defaults, env overrides, required.

use greenmesh_tests::Start;

fn var(reply: &serde_json::Value, name: &str) -> serde_json::Value {
    reply["vars"][name].clone()
}

#[tokio::test]
async fn default_and_environment_override() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::new("routes.toml", dir.path()).env("SPIN_VARIABLE_API_KEY", "k1");
    let app = start.start().await.unwrap();
    let reply = app
        .get("/users/42/x?var=message&var=who&var=nope")
        .await
        .json();
    assert_eq!(var(&reply, "message")["ok"], "hello, key k1");
    assert_eq!(var(&reply, "who")["ok"], "users-any");
    assert!(var(&reply, "nope")["err"]
        .as_str()
        .unwrap()
        .contains("Undefined"));
    app.stop().await;

    let app = start
        .env("SPIN_VARIABLE_GREETING", "bonjour")
        .start()
        .await
        .unwrap();
    let reply = app.get("/users/42/x?var=message").await.json();
    assert_eq!(var(&reply, "message")["ok"], "bonjour, key k1");
    app.stop().await;
}

#[tokio::test]
async fn missing_required_variable_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = Start::new("routes.toml", dir.path()).load().unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("variable `api_key` is required but has no value: set SPIN_VARIABLE_API_KEY"),
        "{err:#}"
    );
}

#[test]
fn cli_reports_missing_required_variable() {
    let bin = greenmesh_tests::tests_dir().join("../target/debug/greenmesh");
    assert!(
        bin.exists(),
        "build the host first (cargo test --workspace builds it)"
    );
    let out = std::process::Command::new(bin)
        .args(["up", "-f"])
        .arg(greenmesh_tests::app_manifest("routes.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SPIN_VARIABLE_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("variable `api_key` is required"),
        "{stderr}"
    );
}
