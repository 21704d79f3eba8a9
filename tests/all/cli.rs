//! `greenmesh user|task|node`: the command-line client against a live coordinator.

use greenmesh_tests::process::greenmesh_cli;
use greenmesh_tests::Start;

#[tokio::test]
async fn register_submit_get_cancel_and_list_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let start = Start::coordinator(dir.path());
    let app = start.start().await.unwrap();
    let url = format!("http://{}", app.addr);

    let (ok, out, err) =
        greenmesh_cli(&["user", "register", "dana", "--url", &url, "--json"]).await;
    assert!(ok, "{err}");
    let token = serde_json::from_str::<serde_json::Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let (ok, out, err) = greenmesh_cli(&[
        "task",
        "submit",
        "--type",
        "computation",
        "--inputs",
        "{\"n\": 3}",
        "--url",
        &url,
        "--token",
        &token,
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let task: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(task["status"], "queued");
    let id = task["id"].as_str().unwrap();

    let (ok, out, _) = greenmesh_cli(&["task", "get", id, "--url", &url, "--token", &token]).await;
    assert!(ok);
    assert!(
        out.contains("status   queued") && out.contains("no node offers computation"),
        "{out}"
    );

    let (ok, out, _) =
        greenmesh_cli(&["task", "cancel", id, "--url", &url, "--token", &token]).await;
    assert!(ok && out.contains("status   cancelled"), "{out}");

    // API errors come back as readable failures, naming the field.
    let (ok, _, err) = greenmesh_cli(&[
        "task", "submit", "--type", "nonsense", "--url", &url, "--token", &token,
    ])
    .await;
    assert!(!ok && err.contains("field task_type"), "{err}");
    let (ok, _, err) = greenmesh_cli(&["task", "list", "--url", &url]).await;
    assert!(!ok && err.contains("GREENMESH_TOKEN"), "{err}");

    let (ok, out, _) = greenmesh_cli(&["node", "list", "--url", &url]).await;
    assert!(ok && out.starts_with("ID"), "{out}");
    app.stop().await;
}
