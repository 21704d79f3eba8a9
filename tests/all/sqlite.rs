//! `fermyon:spin/sqlite`: persistence, grants, default location, runtime config.

use greenmesh_tests::{guest, Start, TestApp};
use serde_json::json;

async fn sql(app: &TestApp, path: &str, db: &str, sql: &str) -> greenmesh_tests::Reply {
    let body = json!({ "db": db, "sql": sql, "params": [] }).to_string();
    app.request("POST", path, body).await.unwrap()
}

#[tokio::test]
async fn rows_survive_a_host_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::new("store.toml", dir.path());
    let app = start.start().await.unwrap();
    let r = sql(
        &app,
        "/sql",
        "default",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body =
        json!({ "db": "default", "sql": "INSERT INTO t (name) VALUES (?)", "params": ["ada"] });
    assert_eq!(
        app.request("POST", "/sql", body.to_string())
            .await
            .unwrap()
            .status,
        200
    );
    app.stop().await;
    assert!(dir.path().join("sqlite_db.db").exists());

    let app = start.start().await.unwrap();
    let r = sql(&app, "/sql", "default", "SELECT id, name FROM t").await;
    assert_eq!(
        r.json(),
        json!({ "columns": ["id", "name"], "rows": [[1, "ada"]] })
    );
    app.stop().await;
}

#[tokio::test]
async fn ungranted_label_is_access_denied_not_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("store.toml", dir.path()).start().await.unwrap();
    let other = sql(&app, "/sql", "other", "SELECT 1").await;
    assert_eq!(
        (other.status, other.json()["error"].clone()),
        (403, json!("access-denied"))
    );
    let nogrant = sql(&app, "/nogrant/sql", "default", "SELECT 1").await;
    assert_eq!(
        (nogrant.status, nogrant.json()["error"].clone()),
        (403, json!("access-denied"))
    );
    // The instance did not trap: the same component keeps answering.
    assert_eq!(sql(&app, "/sql", "default", "SELECT 1").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn sql_errors_come_back_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("store.toml", dir.path()).start().await.unwrap();
    let r = sql(&app, "/sql", "default", "SELEC nonsense").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"], "io");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("syntax error"));
    app.stop().await;
}

/// Writes a manifest with absolute guest paths into `dir` (so `.spin/` lands there).
fn standalone_manifest(dir: &std::path::Path, databases: &str) -> std::path::PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "standalone"
[[trigger.http]]
route = "/..."
component = "store"
[component.store]
source = {source:?}
sqlite_databases = {databases}
"#,
        source = guest("store").display().to_string()
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

#[tokio::test]
async fn default_database_lives_under_dot_spin_and_runtime_config_places_others() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = standalone_manifest(dir.path(), r#"["default", "archive"]"#);
    let mut start = Start::at(manifest, dir.path());

    // Without a runtime-config entry, a non-default label is a startup error.
    let err = start.load().unwrap_err();
    assert!(
        format!("{err:#}").contains("[sqlite_database.archive]"),
        "{err:#}"
    );

    std::fs::write(
        dir.path().join("runtime-config.toml"),
        "[sqlite_database.archive]\ntype = \"spin\"\npath = \"data/archive.db\"\n",
    )
    .unwrap();
    start.runtime_config = Some(dir.path().join("runtime-config.toml"));
    start.state_dir = dir.path().join(".spin");
    let app = start.start().await.unwrap();
    assert_eq!(
        sql(&app, "/sql", "default", "CREATE TABLE a (x)")
            .await
            .status,
        200
    );
    assert_eq!(
        sql(&app, "/sql", "archive", "CREATE TABLE b (x)")
            .await
            .status,
        200
    );
    app.stop().await;
    assert!(dir.path().join(".spin/sqlite_db.db").exists());
    assert!(dir.path().join("data/archive.db").exists());
}

#[tokio::test]
async fn sqlite3_interface_reports_rowid_and_changes() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("store.toml", dir.path()).start().await.unwrap();
    let run = |sql: &str, params: serde_json::Value| {
        let body = json!({ "db": "default", "sql": sql, "params": params }).to_string();
        app.request("POST", "/sql3", body)
    };
    assert_eq!(
        run(
            "CREATE TABLE v3 (id INTEGER PRIMARY KEY, name TEXT)",
            json!([])
        )
        .await
        .unwrap()
        .status,
        200
    );
    run("INSERT INTO v3 (name) VALUES (?)", json!(["a"]))
        .await
        .unwrap();
    let second = run("INSERT INTO v3 (name) VALUES (?)", json!(["b"]))
        .await
        .unwrap()
        .json();
    assert_eq!(
        (
            second["last_insert_rowid"].clone(),
            second["changes"].clone()
        ),
        (json!(2), json!(1))
    );
    let updated = run("UPDATE v3 SET name = 'z'", json!([]))
        .await
        .unwrap()
        .json();
    assert_eq!(updated["changes"], 2);
    let denied = app
        .request(
            "POST",
            "/nogrant/sql3",
            json!({"db": "default", "sql": "SELECT 1"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(denied.status, 403);
    app.stop().await;
}
