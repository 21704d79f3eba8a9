//! How providers and the CLI reach a coordinator: over HTTPS with a private
//! CA (`greenmesh up --tls-cert/--tls-key`, `--ca-cert`), under a path
//! prefix behind an ingress, and through a coordinator that stops answering
//! mid-request (timeouts, then recovery). Plain http:// on loopback is what
//! every other test uses.

use greenmesh_client::{Client, ClientOptions};
use greenmesh_tests::ingress::Ingress;
use greenmesh_tests::process::greenmesh_cli;
use greenmesh_tests::provider::{kernel, ProviderSpec};
use greenmesh_tests::tls::TestPki;
use greenmesh_tests::Start;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn client(url: &str, ca: Option<&Path>) -> Client {
    Client::new(
        url,
        &ClientOptions {
            ca_cert: ca.map(Path::to_path_buf),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

fn noop_kernels(root: &Path) -> std::path::PathBuf {
    let dir = root.join("kernels");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(kernel("noop"), dir.join("noop.wasm")).unwrap();
    dir
}

async fn register(c: &Client, name: &str) -> String {
    let v = c
        .call(
            "POST",
            "/api/v1/users",
            None,
            Some(&json!({ "name": name })),
        )
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// The coordinator served over HTTPS with `pki`'s server certificate.
async fn coordinator_over_tls(dir: &Path, pki: &TestPki) -> greenmesh_tests::TestApp {
    let mut start = Start::coordinator(&dir.join("state"));
    start.tls = Some(pki.server_tls());
    start.start().await.unwrap()
}

/// Waits until an online node offers `noop`, asking through `c`.
async fn wait_for_noop_node(c: &Client) -> Value {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(v) = c.call("GET", "/api/v1/nodes", None, None).await {
            for node in v["nodes"].as_array().cloned().unwrap_or_default() {
                let offers_noop = node["capabilities"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c["name"] == "noop"));
                if node["status"] == "online" && offers_noop {
                    return node;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no online node offering noop within {WAIT:?}");
}

/// Submits a noop task through `c` and long-polls it to its end.
async fn run_noop_task(c: &Client, token: &str, text: &str) -> Value {
    let body = json!({
        "task_type": "computation", "capability": "noop",
        "inputs": { "text": text }, "max_price": 10.0,
    });
    let task = c
        .call("POST", "/api/v1/tasks", Some(token), Some(&body))
        .await
        .unwrap();
    let id = task["id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for _ in 0..6 {
        last = c
            .request("GET", &format!("/api/v1/tasks/{id}?wait=20"))
            .bearer(token)
            .timeout(Duration::from_secs(40))
            .send()
            .await
            .unwrap()
            .into_result()
            .unwrap();
        if last["status"] == "completed" || last["status"] == "failed" {
            break;
        }
    }
    last
}

#[tokio::test]
async fn a_provider_and_the_cli_work_against_a_coordinator_served_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"), "greenmesh test CA");
    let app = coordinator_over_tls(dir.path(), &pki).await;
    let url = format!("https://localhost:{}", app.addr.port());
    let https = client(&url, Some(&pki.ca_cert));

    // The certificate is checked: without the CA it is refused, and plain
    // HTTP to the TLS port gets no answer.
    let untrusted = client(&url, None)
        .call("GET", "/api/v1/health", None, None)
        .await
        .unwrap_err();
    assert!(
        untrusted.to_string().contains("certificate"),
        "an unknown CA is refused: {untrusted}"
    );
    let plain = client(&format!("http://{}", app.addr), None)
        .call("GET", "/api/v1/health", None, None)
        .await;
    assert!(plain.is_err(), "plain HTTP on the TLS port: {plain:?}");

    let token = register(&https, "owner").await;
    let provider = ProviderSpec::new(
        app.addr,
        &token,
        &noop_kernels(dir.path()),
        &dir.path().join("node"),
    )
    .url(&url)
    .env("GREENMESH_CA_CERT", pki.ca_cert.to_str().unwrap())
    .spawn();
    wait_for_noop_node(&https).await;
    let task = run_noop_task(&https, &token, "over TLS").await;
    assert_eq!(task["status"], "completed", "{task}\n{}", provider.log());
    assert!(
        provider.log().contains(&format!("registered with {url}")),
        "{}",
        provider.log()
    );

    // The CLI: refused without the CA, then submits and waits with it.
    let ca = pki.ca_cert.to_str().unwrap();
    let (ok, _, err) = greenmesh_cli(&["node", "list", "--url", &url]).await;
    assert!(!ok && err.contains("certificate"), "{err}");
    let task_file = dir.path().join("task.json");
    std::fs::write(
        &task_file,
        json!({
            "task_type": "computation", "capability": "noop",
            "inputs": { "text": "from the CLI" }, "max_price": 10.0,
        })
        .to_string(),
    )
    .unwrap();
    let over_tls = ["--url", &url, "--ca-cert", ca, "--token", &token, "--json"];
    let submit = [
        &["task", "submit", "--file", task_file.to_str().unwrap()][..],
        &over_tls,
    ]
    .concat();
    let (ok, out, err) = greenmesh_cli(&submit).await;
    assert!(ok, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let get = [&["task", "get", &id, "--wait", "30"][..], &over_tls].concat();
    let (ok, out, err) = greenmesh_cli(&get).await;
    assert!(ok, "{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["status"], "completed", "{got}\n{}", provider.log());
    app.stop().await;
}

#[tokio::test]
async fn behind_an_ingress_with_a_path_prefix_a_stalled_coordinator_times_out_heartbeats_and_the_node_recovers(
) {
    let dir = tempfile::tempdir().unwrap();
    let app = Start::coordinator(&dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let ingress = Ingress::start(app.addr, "/mesh").await;
    let url = ingress.url("/mesh");
    let mesh = client(&url, None);
    let token = register(&mesh, "owner").await;
    let provider = ProviderSpec::new(
        app.addr,
        &token,
        &noop_kernels(dir.path()),
        &dir.path().join("node"),
    )
    .url(&format!("{url}/"))
    .setting("request_timeout_ms = 700")
    .setting("connect_timeout_ms = 700")
    .spawn();
    wait_for_noop_node(&mesh).await;
    // Registration, signed heartbeats, the long-poll and the receipt all
    // go through the prefix.
    let task = run_noop_task(&mesh, &token, "under a prefix").await;
    assert_eq!(task["status"], "completed", "{task}\n{}", provider.log());

    // The coordinator stops answering mid-request: the node's heartbeat
    // times out and says so, instead of hanging.
    ingress.stall(true);
    provider
        .wait_log("heartbeat failed", Duration::from_secs(30))
        .await;
    let log = provider.log();
    let line = log
        .lines()
        .find(|l| l.contains("heartbeat failed"))
        .unwrap();
    assert!(line.contains("timed out"), "{line}");
    assert!(ingress.held() > 0, "requests reached the stalled ingress");

    // Back: the node runs the next task.
    ingress.stall(false);
    let task = run_noop_task(&mesh, &token, "after the stall").await;
    assert_eq!(task["status"], "completed", "{task}\n{}", provider.log());
    let status = provider.interrupt().await;
    assert!(status.success(), "the node stops cleanly: {status}");
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_tls_handshake_does_not_hold_up_others() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"), "greenmesh test CA");
    let app = coordinator_over_tls(dir.path(), &pki).await;
    // Connections that say nothing, or half a ClientHello.
    let mut silent = Vec::new();
    for i in 0..40 {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        if i % 2 == 1 {
            use tokio::io::AsyncWriteExt;
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
        }
        silent.push(s);
    }
    let https = client(
        &format!("https://127.0.0.1:{}", app.addr.port()),
        Some(&pki.ca_cert),
    );
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        https.call("GET", "/api/v1/health", None, None),
    )
    .await
    .expect("answered while 40 handshakes stall")
    .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    drop(silent);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_startup_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(&dir.path().join("pki"), "greenmesh test CA");
    let other = TestPki::new(&dir.path().join("other"), "another CA");
    let cases = [
        (
            dir.path().join("missing.pem"),
            pki.server_key.clone(),
            "--tls-cert",
        ),
        (pki.server_key.clone(), pki.server_key.clone(), "--tls-cert"),
        (
            pki.server_cert.clone(),
            pki.server_cert.clone(),
            "--tls-key",
        ),
        (
            pki.server_cert.clone(),
            other.server_key.clone(),
            "do not make a usable pair",
        ),
    ];
    for (cert, key, says) in cases {
        let mut start = Start::coordinator(&dir.path().join("state"));
        start.tls = Some(greenmesh_host::Tls { cert, key });
        let err = match start.start().await {
            Ok(_) => panic!("started with a bad TLS pair ({says})"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(says), "{says}: {err}");
    }
}
