//! A coordinator killed with SIGKILL during a burst of submissions loses no
//! task it had answered 201 for (the real binary, as a process).

use bytes::Bytes;
use greenmesh_tests::process::{free_port, spawn_coordinator, wait_healthy};
use greenmesh_tests::send_with;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// The burst is far above the default per-user limit.
const NO_RATE_LIMIT: &[(&str, &str)] = &[("SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE", "100000000")];

#[tokio::test]
async fn sigkill_mid_burst_loses_no_acknowledged_task() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = spawn_coordinator(dir.path(), port, NO_RATE_LIMIT);
    wait_healthy(addr).await;
    let token = greenmesh_tests::node::register_user(addr, "burst")
        .await
        .unwrap();

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (acknowledged, token) = (acknowledged.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let body = json!({ "task_type": "computation", "inputs": { "n": 1 } }).to_string();
            loop {
                let auth = format!("Bearer {token}");
                match send_with(
                    addr,
                    "POST",
                    "/api/v1/tasks",
                    Bytes::from(body.clone()),
                    &[("authorization", &auth)],
                )
                .await
                {
                    Ok(r) if r.status == 201 => {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(r.json()["id"].as_str().unwrap().to_string());
                    }
                    Ok(_) => {}
                    Err(_) => break, // the coordinator is gone
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill(); // SIGKILL
    for w in workers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 5,
        "too few submissions before the kill: {}",
        acknowledged.len()
    );

    let mut child = spawn_coordinator(dir.path(), port, NO_RATE_LIMIT);
    wait_healthy(addr).await;
    let auth = format!("Bearer {token}");
    for id in &acknowledged {
        let r = send_with(
            addr,
            "GET",
            &format!("/api/v1/tasks/{id}"),
            Bytes::new(),
            &[("authorization", &auth)],
        )
        .await
        .unwrap();
        assert_eq!(
            r.status,
            200,
            "task {id} answered 201 before the kill is gone: {}",
            r.text()
        );
    }
    child.kill();
}
