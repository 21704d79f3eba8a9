//! The repository's own `spin.toml` (the coordinator) loads and answers.

use greenmesh_tests::{tests_dir, Start};

#[tokio::test]
async fn coordinator_manifest_serves_health() {
    let dir = tempfile::tempdir().unwrap();
    let mut start = Start::new("unused", dir.path());
    start.manifest = tests_dir().join("../spin.toml");
    let app = start.start().await.unwrap();
    let health = app.get("/api/v1/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["database"], "ok");
    let missing = app.get("/api/v1/nope").await;
    assert_eq!(missing.status, 404);
    app.stop().await;
    assert!(dir.path().join("sqlite_db.db").exists());
}
