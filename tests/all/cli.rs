//! `greenmesh user|task|node`: the command-line client against a live coordinator
//! (`proof get` and `verify` are in `verification.rs`, beside the runs they check).

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

#[tokio::test]
async fn submit_flags_make_a_sharded_proof_group_and_a_bad_shards_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let url = format!("http://{}", app.addr);
    let (ok, out, err) =
        greenmesh_cli(&["user", "register", "rita", "--url", &url, "--json"]).await;
    assert!(ok, "{err}");
    let token = serde_json::from_str::<serde_json::Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let shards = dir.path().join("shards.json");
    std::fs::write(
        &shards,
        r#"[{"scenario": "a"}, {"scenario": "b"}, {"scenario": "c"}]"#,
    )
    .unwrap();
    let submit = |extra: Vec<String>| {
        let mut args: Vec<String> = [
            "task",
            "submit",
            "--type",
            "computation",
            "--url",
            &url,
            "--token",
            &token,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            greenmesh_cli(&args).await
        }
    };
    let (ok, out, err) = submit(
        [
            "--shards-file",
            shards.to_str().unwrap(),
            "--require-proof",
            "--min-nodes",
            "3",
            "--json",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(ok, "{out}{err}");
    let task: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(task["group"]["shards"], 3, "{task}");
    assert_eq!(task["group"]["replicas"], 2, "require_proof: two per shard");
    assert_eq!(task["group"]["members"].as_array().unwrap().len(), 6);
    assert_eq!(task["status"], "queued");
    // The table shows the members.
    let id = task["id"].as_str().unwrap();
    let (ok, out, _) = greenmesh_cli(&["task", "get", id, "--url", &url, "--token", &token]).await;
    assert!(ok && out.matches("member   shard").count() == 6, "{out}");
    // Two shards for three nodes: the API names the field.
    std::fs::write(&shards, r#"[{}, {}]"#).unwrap();
    let (ok, _, err) = submit(
        [
            "--shards-file",
            shards.to_str().unwrap(),
            "--min-nodes",
            "3",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(!ok && err.contains("requirements.min_nodes"), "{err}");
    std::fs::write(&shards, r#"{"not": "a list"}"#).unwrap();
    let (ok, _, err) = submit(vec![
        "--shards-file".into(),
        shards.to_str().unwrap().into(),
    ])
    .await;
    assert!(!ok && err.contains("must hold a JSON array"), "{err}");
    app.stop().await;
}
