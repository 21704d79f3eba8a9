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

/// A first run reads well: at the default log level, `greenmesh up` says
/// where it serves, then nothing per request (heartbeats and polls arrive
/// every few seconds); request lines are debug.
#[tokio::test]
async fn up_logs_no_line_per_request_at_the_default_level() {
    use std::process::{Command, Stdio};
    let bin = greenmesh_tests::tests_dir().join("../target/debug/greenmesh");
    assert!(bin.exists(), "build the host first (cargo xtask test does)");
    let run = |level: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let port = greenmesh_tests::process::free_port();
        let mut cmd = Command::new(&bin);
        if let Some(level) = level {
            cmd.args(["--log-level", level]);
        }
        let child = cmd
            .args(["up", "-f"])
            .arg(greenmesh_tests::app_manifest("routes.toml"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
            .arg(dir.path())
            .env("SPIN_VARIABLE_API_KEY", "k")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, dir, log, port)
    };
    for level in [None, Some("debug")] {
        let (mut child, _dir, log, port) = run(level);
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut answered = 0;
        while answered < 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "greenmesh up did not answer"
            );
            match greenmesh_tests::send(addr, "GET", "/anything", Default::default()).await {
                Ok(_) => answered += 1,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("serving"), "{text}");
        let request_lines = text.lines().filter(|l| l.contains("request")).count();
        if level.is_none() {
            assert_eq!(
                request_lines, 0,
                "a line per request at the default level:\n{text}"
            );
            assert!(text.lines().count() < 10, "a chatty start:\n{text}");
        } else {
            assert!(request_lines >= 20, "debug shows each request:\n{text}");
        }
    }
}

/// util-linux `script`, which runs a command in a pseudo-terminal; `None`
/// skips, except in CI.
fn script() -> Option<&'static std::path::Path> {
    let script = std::path::Path::new("/usr/bin/script");
    if script.exists() {
        return Some(script);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no util-linux script in CI"
    );
    greenmesh_tests::skip("no `script` for a pseudo-terminal");
    None
}

/// What `command` printed in a pseudo-terminal (it must succeed).
async fn in_terminal(script: &std::path::Path, command: &str, env: &[(&str, &str)]) -> String {
    let shown = tokio::process::Command::new(script)
        .args(["-qfec", command, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.status.success(), "{command}: {text}");
    text
}

/// `task submit --wait` in a pseudo-terminal (util-linux `script`) shows
/// the task's changes as they happen, with a progress display; piped,
/// `task watch` prints plain lines; `task get -o FILE` writes the decoded
/// output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_submit_wait_in_a_terminal_shows_the_changes_as_they_happen() {
    use greenmesh_tests::node::{register_user, TestNode};
    use serde_json::json;
    let Some(script) = script() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let url = format!("http://{}", app.addr);
    let token = register_user(app.addr, "erin").await.unwrap();
    let node = TestNode::register(app.addr, &token, 41, &[("image-filter", 1.0)])
        .await
        .unwrap();
    let bin = greenmesh_tests::tests_dir().join("../target/debug/greenmesh");
    let cmd = format!(
        "{} task submit --type image-filter --max-price 50 --wait \
         --inputs '{{\"image\":\"aGVsbG8=\",\"filter\":\"grayscale\"}}'",
        bin.display()
    );
    let child = tokio::process::Command::new(script)
        .args(["-qfec", &cmd, "/dev/null"])
        .env("GREENMESH_URL", &url)
        .env("GREENMESH_TOKEN", &token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The node answers after a while, so the terminal shows the wait.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (lease, _) = node.poll(10).await.unwrap().remove(0);
    let out = json!({ "media_type": "text/plain", "text": "done" }).to_string();
    let r = node
        .post_result(&lease.lease_id, &node.receipt(&lease, &out), &out)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let done = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("task submit --wait did not end")
        .unwrap();
    let text = String::from_utf8_lossy(&done.stdout).to_string();
    assert!(done.status.success(), "{text}");
    let id = lease.task_id.clone();
    assert!(text.contains(&format!("submitted {id}")), "{text}");
    let delegated = text.find("task delegated on").expect(&text);
    let completed = text.find("task completed").expect(&text);
    assert!(delegated < completed, "{text}");
    assert!(text.contains("s] task completed"), "elapsed time: {text}");
    assert!(text.contains("status   completed"), "{text}");
    // On a terminal the spinner draws (and clears) with escape codes.
    assert!(text.contains("\u{1b}["), "no progress display: {text:?}");

    // Piped: plain lines, one per change, no escape codes.
    let (ok, watched, err) =
        greenmesh_cli(&["task", "watch", &id, "--url", &url, "--token", &token]).await;
    assert!(ok, "{err}");
    assert!(
        watched.contains("] task submitted") && watched.contains("] task completed"),
        "{watched}"
    );
    assert!(!watched.contains('\u{1b}'), "{watched:?}");
    // --json: one event per line, then the task.
    let (ok, json_lines, err) = greenmesh_cli(&[
        "task", "watch", &id, "--url", &url, "--token", &token, "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let last: serde_json::Value = serde_json::from_str(json_lines.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "completed", "{json_lines}");

    // The output to a file, decoded, rather than printed.
    let file = dir.path().join("out.txt");
    let (ok, said, err) = greenmesh_cli(&[
        "task",
        "get",
        &id,
        "--url",
        &url,
        "--token",
        &token,
        "-o",
        file.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{err}");
    assert!(said.contains("wrote 4 bytes of text/plain"), "{said}");
    assert_eq!(std::fs::read(&file).unwrap(), b"done");
    app.stop().await;
}

/// `blob put` in a pseudo-terminal draws a progress bar of the bytes sent;
/// piped, it prints the reference alone. The stored blob is the file, and
/// `task submit --data FILE` puts the file in a task as a blob reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_upload_shows_its_progress_in_a_terminal_and_only_the_reference_when_piped() {
    use greenmesh_tests::node::register_user;
    let Some(script) = script() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(dir.path()).start().await.unwrap();
    let url = format!("http://{}", app.addr);
    let token = register_user(app.addr, "frank").await.unwrap();
    // 3 MiB that do not compress to nothing.
    let bytes: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &bytes).unwrap();
    let sha = greenmesh_protocol::sha256_hex(&bytes);
    let bin = greenmesh_tests::tests_dir().join("../target/debug/greenmesh");

    let text = in_terminal(
        script,
        &format!("{} blob put {}", bin.display(), file.display()),
        &[("GREENMESH_URL", &url), ("GREENMESH_TOKEN", &token)],
    )
    .await;
    assert!(
        text.contains("uploading big.bin") && text.contains("3.00 MiB/3.00 MiB"),
        "no progress bar: {text:?}"
    );
    assert!(text.contains(&format!("sha256:{sha}")), "{text:?}");

    // Piped: the reference alone on stdout, no bar anywhere.
    let (ok, out, err) = greenmesh_cli(&[
        "blob",
        "put",
        file.to_str().unwrap(),
        "--url",
        &url,
        "--token",
        &token,
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, format!("sha256:{sha}\n"));
    assert!(!err.contains("uploading"), "{err}");
    let stored = greenmesh_tests::call_as(
        app.addr,
        &token,
        "GET",
        &format!("/api/v1/blobs/{sha}"),
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(stored.status, 200);
    assert!(
        stored.body[..] == bytes[..],
        "the stored blob differs from the file"
    );

    // A task's input uploaded the same way: the node's lease names the blob.
    let node =
        greenmesh_tests::node::TestNode::register(app.addr, &token, 43, &[("image-filter", 1.0)])
            .await
            .unwrap();
    let picture = dir.path().join("photo.png");
    std::fs::write(&picture, &bytes[..200_000]).unwrap();
    let (ok, out, err) = greenmesh_cli(&[
        "task",
        "submit",
        "--type",
        "image-filter",
        "--max-price",
        "50",
        "--data",
        picture.to_str().unwrap(),
        "--url",
        &url,
        "--token",
        &token,
        "--json",
    ])
    .await;
    assert!(ok, "{err}");
    let task: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (lease, input) = node.poll(5).await.unwrap().remove(0);
    assert_eq!(task["id"], lease.task_id.as_str());
    let input: serde_json::Value = serde_json::from_str(&input).unwrap();
    let picture_sha = greenmesh_protocol::sha256_hex(&bytes[..200_000]);
    assert_eq!(
        input["inputs"]["data"]["blob"],
        format!("sha256:{picture_sha}").as_str(),
        "{input}"
    );
    assert_eq!(input["inputs"]["media_type"], "image/png", "{input}");
    app.stop().await;
}

/// `greenmesh simulate` in a pseudo-terminal shows how much of the span it
/// has replayed; piped, it prints its figures and no bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_in_a_terminal_shows_the_replayed_span_as_a_bar() {
    let Some(script) = script() else { return };
    let root = greenmesh_tests::tests_dir().join("..");
    let bin = root.join("target/debug/greenmesh");
    let args = format!(
        "simulate --carbon-trace {} --jobs 6 --days 1 --foresight forecast -f {}",
        root.join("data/carbon/gb_ci_2020.csv").display(),
        root.join("spin.toml").display()
    );
    let text = in_terminal(
        script,
        &format!("{} --log-level warn {args}", bin.display()),
        &[],
    )
    .await;
    assert!(
        text.contains("% of the replayed span") && text.contains("jobs started"),
        "no progress bar: {text:?}"
    );
    assert!(text.contains("saving vs run-now"), "{text:?}");

    let piped: Vec<&str> = ["--log-level", "warn"]
        .into_iter()
        .chain(args.split(' '))
        .collect();
    let (ok, out, err) = greenmesh_cli(&piped).await;
    assert!(ok, "{err}");
    assert!(out.contains("saving vs run-now"), "{out}");
    assert!(
        !out.contains("replayed span") && !err.contains("replayed span"),
        "{err}"
    );
}
