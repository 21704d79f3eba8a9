//! Traps, time limit and memory limit: each fails its own request with a
//! 500 that says why, and the next request is served normally.

use greenmesh_tests::{Start, TestApp};

async fn fails_then_recovers(app: &TestApp, path: &str, reason: &str) {
    let r = app.get(path).await;
    assert_eq!(r.status, 500, "{path}: {}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains(reason),
        "{path}: expected {reason:?} in {error:?}"
    );
    assert!(r.json()["request_id"].is_string());
    let ok = app.get("/ok").await;
    assert_eq!((ok.status, ok.text().as_str()), (200, "ok"), "after {path}");
}

#[tokio::test]
async fn trap_gives_500_then_normal_service() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("limits.toml", dir.path()).start().await.unwrap();
    fails_then_recovers(&app, "/trap", "component trapped").await;
    // Rust guests keep their stack in linear memory: unbounded recursion runs
    // off its bottom and traps as an out-of-bounds access.
    fails_then_recovers(&app, "/stack", "out of bounds memory access").await;
    app.stop().await;
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("limits.toml", dir.path()).start().await.unwrap();
    let started = std::time::Instant::now();
    // While the loop runs, other requests are still served.
    let looping = tokio::spawn({
        let addr = app.addr;
        async move {
            greenmesh_tests::send(addr, "GET", "/loop", bytes::Bytes::new())
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(app.get("/ok").await.status, 200);
    let r = looping.await.unwrap();
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("time limit of 1000 ms exceeded"),
        "{}",
        r.text()
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000));
    fails_then_recovers(&app, "/loop", "time limit").await;
    app.stop().await;
}

#[tokio::test]
async fn memory_bomb_is_stopped_by_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::new("limits.toml", dir.path()).start().await.unwrap();
    fails_then_recovers(&app, "/bomb", "memory limit of 32 MiB exceeded").await;
    app.stop().await;
}
