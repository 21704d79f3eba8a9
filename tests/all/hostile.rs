//! Open-network hardening (issue 21): each test is an attack a stranger on
//! the network could try, named after it, against the real coordinator.

use greenmesh_tests::net::Net;
use greenmesh_tests::node::TestNode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node request signed once and sent twice.
async fn send_signed_twice(node: &TestNode, method: &str, path: &str) -> (u16, u16, String) {
    let ts = node.clock.now_ms();
    let sig = greenmesh_protocol::sign_request(&node.key.sk, method, path, ts, b"");
    let headers = [
        ("x-greenmesh-node", node.id.as_str()),
        ("x-greenmesh-timestamp", &ts.to_string()),
        ("x-greenmesh-signature", sig.as_str()),
    ];
    let first = greenmesh_tests::send_with(node.addr, method, path, bytes::Bytes::new(), &headers)
        .await
        .unwrap();
    let again = greenmesh_tests::send_with(node.addr, method, path, bytes::Bytes::new(), &headers)
        .await
        .unwrap();
    (first.status, again.status, again.text())
}

#[tokio::test]
async fn a_replayed_node_signature_is_refused() {
    let net = Net::start(&[]).await;
    let owner = net.user("owner").await;
    let node = net.node(&owner, 71, &[("image-filter", 1.0)]).await;
    // A captured lease poll, replayed within the skew window, would steal
    // the node's leases and inputs.
    let path = format!("/api/v1/nodes/{}/leases?wait=0", node.id);
    let (first, again, body) = send_signed_twice(&node, "GET", &path).await;
    assert_eq!(first, 200);
    assert_eq!(again, 401, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // Nor in other letters: hex is case-blind to the verifier.
    let ts = node.clock.now_ms();
    let sig = greenmesh_protocol::sign_request(&node.key.sk, "GET", &path, ts, b"");
    let headers = |sig: String| {
        vec![
            ("x-greenmesh-node".to_string(), node.id.clone()),
            ("x-greenmesh-timestamp".to_string(), ts.to_string()),
            ("x-greenmesh-signature".to_string(), sig),
        ]
    };
    for (sig, want) in [(sig.clone(), 200), (sig.to_ascii_uppercase(), 401)] {
        let h = headers(sig);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = greenmesh_tests::send_with(node.addr, "GET", &path, bytes::Bytes::new(), &h)
            .await
            .unwrap();
        assert_eq!(r.status, want, "{}", r.text());
    }
    // The node itself, signing afresh, is still served.
    assert!(node.poll(0).await.is_ok());
}

/// Uploads `bytes` as `token`'s blob: the reply.
async fn upload(net: &Net, token: &str, bytes: Vec<u8>) -> greenmesh_tests::Reply {
    greenmesh_tests::send_with(
        net.app.addr,
        "POST",
        "/api/v1/blobs",
        bytes::Bytes::from(bytes),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap()
}

async fn fetch(net: &Net, token: &str, sha: &str) -> u16 {
    net.call(token, "GET", &format!("/api/v1/blobs/{sha}"), Value::Null)
        .await
        .status
}

#[tokio::test]
async fn another_user_s_blob_is_not_found_and_old_unused_blobs_are_deleted() {
    let net = Net::start(&[("SPIN_VARIABLE_BLOB_QUOTA_MB", "1")]).await;
    let (alice, bob) = (net.user("alice").await, net.user("bob").await);
    let scan = vec![3u8; 600 << 10];
    let up = upload(&net, &alice.token, scan.clone()).await;
    assert_eq!(up.status, 201, "{}", up.text());
    let sha = up.json()["sha256"].as_str().unwrap().to_string();
    assert_eq!(fetch(&net, &alice.token, &sha).await, 200);
    // Knowing the hash is not enough.
    assert_eq!(fetch(&net, &bob.token, &sha).await, 404);
    let task = json!({ "task_type": "image-filter", "max_price": 50.0,
                       "inputs": { "image": { "blob": format!("sha256:{sha}") }, "filter": "grayscale" } });
    let stolen = net
        .call(&bob.token, "POST", "/api/v1/tasks", task.clone())
        .await;
    assert_eq!(stolen.status, 400, "{}", stolen.text());
    assert_eq!(stolen.json()["error"]["field"], "inputs.image.blob");
    // Nor is a node's signature without a lease of a task naming it.
    let node = net.node(&bob, 72, &[("image-filter", 1.0)]).await;
    let by_node = node
        .signed("GET", &format!("/api/v1/blobs/{sha}"), Value::Null)
        .await
        .unwrap();
    assert_eq!(by_node.status, 404);
    // Nor a lease of a task that merely mentions the hash (not as a blob
    // reference, which submission checks).
    let mention = json!({ "task_type": "image-filter", "max_price": 50.0, "sla": "urgent", "importance": "normal",
                          "inputs": { "image": "aGVsbG8=", "filter": "grayscale", "note": format!("sha256:{sha}") } });
    let r = net.call(&bob.token, "POST", "/api/v1/tasks", mention).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        node.poll(0).await.unwrap().len(),
        1,
        "leased to Bob's own node"
    );
    let by_node = node
        .signed("GET", &format!("/api/v1/blobs/{sha}"), Value::Null)
        .await
        .unwrap();
    assert_eq!(by_node.status, 404, "a mention is not a reference");
    // Uploading the same bytes answers as for new bytes (no oracle of what
    // others stored), and then Bob may read his copy.
    assert_eq!(upload(&net, &bob.token, scan.clone()).await.status, 201);
    assert_eq!(fetch(&net, &bob.token, &sha).await, 200);
    // A per-user quota (1 MiB here).
    let more = upload(&net, &alice.token, vec![4u8; 600 << 10]).await;
    assert_eq!(more.status, 429, "{}", more.text());
    assert_eq!(more.json()["error"]["code"], "blob_quota_exhausted");
    // A week later, a blob no unfinished task names is gone.
    net.clock
        .advance(std::time::Duration::from_secs(8 * 24 * 3600));
    node.poll(0).await.unwrap();
    assert_eq!(fetch(&net, &alice.token, &sha).await, 404);
    assert_eq!(
        upload(&net, &alice.token, vec![4u8; 600 << 10])
            .await
            .status,
        201,
        "the quota freed"
    );
}

/// A coordinator with the given instance pool and body timeout.
async fn coordinator(
    dir: &std::path::Path,
    max_instances: u32,
    body_timeout: Duration,
) -> greenmesh_tests::TestApp {
    let mut start = greenmesh_tests::Start::coordinator(&dir.join("state"));
    start.max_instances = max_instances;
    start.limits.body_timeout = body_timeout;
    start.start().await.unwrap()
}

/// Opens a connection and sends `head` (request line and headers) and `body`.
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s
}

/// The status line's code of what `s` answers, within `within`.
async fn status_of(s: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(within, s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// A task no node can take (there are none): it stays queued.
async fn queued_task(app: &greenmesh_tests::TestApp, user: &str) -> String {
    greenmesh_tests::submit_image_filter(app.addr, user).await
}

/// A long-poll of task `id` for `wait` seconds, on a connection of its own.
async fn long_poll(app: &greenmesh_tests::TestApp, user: &str, id: &str, wait: u32) -> TcpStream {
    let head = format!(
        "GET /api/v1/tasks/{id}?wait={wait} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {user}\r\n\r\n"
    );
    raw(app.addr, &head, b"").await
}

#[tokio::test]
async fn three_hundred_slow_clients_do_not_stop_health_answering() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(dir.path(), 32, Duration::from_secs(10)).await;
    // Each declares a 100-byte body and sends one byte (the attack that
    // used to hold an instance each until the pool ran out).
    let mut slow = Vec::new();
    for _ in 0..300 {
        slow.push(
            raw(
                app.addr,
                "POST /api/v1/users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n",
                b"{",
            )
            .await,
        );
    }
    let started = std::time::Instant::now();
    let health = app.get("/api/v1/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(slow);
}

#[tokio::test]
async fn a_slow_body_is_cut_off_with_408() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(dir.path(), 32, Duration::from_millis(500)).await;
    let mut s = raw(
        app.addr,
        "POST /api/v1/users HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n",
        b"{",
    )
    .await;
    assert_eq!(status_of(&mut s, Duration::from_secs(5)).await, Some(408));
}

#[tokio::test]
async fn a_120_mb_upload_is_refused_with_413_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(dir.path(), 32, Duration::from_secs(10)).await;
    let user = greenmesh_tests::node::register_user(app.addr, "uploader")
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/blobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {user}\r\ncontent-length: {}\r\n\r\n",
        120u64 << 20
    );
    // Only the first kilobyte is ever sent.
    let mut s = raw(app.addr, &head, &[0u8; 1024]).await;
    assert_eq!(status_of(&mut s, Duration::from_secs(2)).await, Some(413));
}

#[tokio::test]
async fn a_disconnected_long_poll_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    // Four instance slots.
    let app = coordinator(dir.path(), 4, Duration::from_secs(10)).await;
    let user = greenmesh_tests::node::register_user(app.addr, "waiter")
        .await
        .unwrap();
    let id = queued_task(&app, &user).await;
    // Four clients long-poll the queued task (20 s each), then go away.
    for _ in 0..4 {
        let s = long_poll(&app, &user, &id, 20).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(s);
    }
    // Their instances were cancelled with them: the slots are free.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = app.get("/api/v1/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    let mine = greenmesh_tests::call_as(
        app.addr,
        &user,
        "GET",
        &format!("/api/v1/tasks/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
}

#[tokio::test]
async fn more_requests_than_instances_get_503_with_retry_after_never_500() {
    let dir = tempfile::tempdir().unwrap();
    let app = coordinator(dir.path(), 2, Duration::from_secs(10)).await;
    let user = greenmesh_tests::node::register_user(app.addr, "busy")
        .await
        .unwrap();
    let id = queued_task(&app, &user).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(long_poll(&app, &user, &id, 5).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = raw(
        app.addr,
        "GET /api/v1/health HTTP/1.1\r\nhost: x\r\n\r\n",
        b"",
    )
    .await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    drop(held);
}

#[tokio::test]
async fn a_node_claiming_a_megawatt_hour_for_a_short_run_is_cut_to_the_plausible_and_flagged() {
    let net = Net::start(&[]).await;
    let (alice, bob) = (net.user("alice").await, net.user("bob").await);
    let node = net.node(&bob, 73, &[("image-filter", 1.0)]).await;
    let task = net
        .submit(
            &alice,
            json!({ "task_type": "image-filter", "max_price": 50.0, "sla": "urgent", "importance": "normal",
                    "inputs": { "image": "aGVsbG8=", "filter": "grayscale" } }),
        )
        .await;
    let (lease, _) = node.poll(0).await.unwrap().remove(0);
    let out = json!({ "media_type": "text/plain", "text": "done" }).to_string();
    let mut receipt = node.receipt(&lease, &out);
    receipt.energy_wh = 1_000_000.0; // a megawatt hour in 60 ms
    receipt.sign(&node.key.sk);
    let r = node
        .post_result(&lease.lease_id, &receipt, &out)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let id = task["id"].as_str().unwrap();
    // Counted: at most 1.5 kW for the 60 ms the receipt reports.
    let impact = net
        .call(
            &alice.token,
            "GET",
            &format!("/api/v1/users/{}/impact", alice.id),
            Value::Null,
        )
        .await
        .json();
    let counted =
        impact["energy_clean_wh"].as_f64().unwrap() + impact["energy_dirty_wh"].as_f64().unwrap();
    assert!(
        counted > 0.0 && counted <= 1_500.0 * 60.0 / 3_600_000.0 + 1e-9,
        "{impact}"
    );
    assert_eq!(net.count_events(id, "implausible_energy").await, 1);
}

const ADMIN: &str = "admin-secret-for-tests";

/// Registers `name` with the admin's token (the admin's approval: no
/// per-address count, no invite).
async fn admitted(net: &Net, name: &str) -> greenmesh_tests::net::User {
    let r = net
        .call(ADMIN, "POST", "/api/v1/users", json!({ "name": name }))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    greenmesh_tests::net::User {
        id: v["id"].as_str().unwrap().into(),
        token: v["token"].as_str().unwrap().into(),
    }
}

async fn vote(net: &Net, token: &str, task: &str, importance: &str) -> greenmesh_tests::Reply {
    net.call(
        token,
        "POST",
        &format!("/api/v1/tasks/{task}/votes"),
        json!({ "importance": importance }),
    )
    .await
}

#[tokio::test]
async fn two_hundred_scripted_accounts_cannot_swing_a_vote_or_multiply_quota() {
    let net = Net::start_with(&[("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN)], |dir| {
        greenmesh_tests::Start::coordinator(dir).shipped_identity_rules()
    })
    .await;
    // Three members of a day's standing with a record (a donation each),
    // and a requester.
    let owner = admitted(&net, "owner").await;
    let mut members = Vec::new();
    for name in ["ana", "ben", "cy"] {
        let m = admitted(&net, name).await;
        let r = net
            .call(
                ADMIN,
                "POST",
                &format!("/api/v1/users/{}/donations", m.id),
                json!({ "credits": 5.0 }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        members.push(m);
    }
    net.clock.advance(Duration::from_secs(25 * 3600));

    // The script: 200 registrations from one address.
    let mut sybils = Vec::new();
    for i in 0..200 {
        let r = net
            .call(
                "",
                "POST",
                "/api/v1/users",
                json!({ "name": format!("sybil-{i}") }),
            )
            .await;
        match r.status {
            201 => sybils.push(r.json()["token"].as_str().unwrap().to_string()),
            429 => assert_eq!(
                r.json()["error"]["code"],
                "registration_limited",
                "{}",
                r.text()
            ),
            s => panic!("registration {i}: {s} {}", r.text()),
        }
    }
    assert_eq!(
        sybils.len(),
        5,
        "five accounts per address per day, not 200"
    );
    let governance = net.get("/api/v1/governance").await;
    assert_eq!(governance["registration"]["per_address_per_day"], 5);

    // The members say `low`; every account the script got says `critical`.
    let task = net
        .submit(&owner, json!({ "task_type": "audio-denoise", "inputs": {}, "max_price": 100.0, "importance": "high" }))
        .await;
    let task = greenmesh_tests::net::id(&task);
    for m in &members {
        let r = vote(&net, &m.token, &task, "low").await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    for s in &sybils {
        let r = vote(&net, s, &task, "critical").await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "not_eligible", "{}", r.text());
    }
    // The requester's own ballot does not count either, nor its declared `high`.
    let r = vote(&net, &owner.token, &task, "critical").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "own_task");

    // A day on the script's accounts are old enough but have no record.
    net.clock.advance(Duration::from_secs(25 * 3600));
    let later = greenmesh_tests::net::id(
        &net.submit(
            &owner,
            json!({ "task_type": "audio-denoise", "inputs": {}, "max_price": 100.0 }),
        )
        .await,
    );
    let r = vote(&net, &sybils[0], &later, "critical").await;
    assert_eq!(r.json()["error"]["code"], "not_eligible", "{}", r.text());
    let r = vote(&net, &members[0].token, &later, "low").await;
    assert_eq!(r.status, 201, "{}", r.text());

    // The first poll closed with the members' ballots only.
    let v = net
        .call(
            &owner.token,
            "GET",
            &format!("/api/v1/tasks/{task}/votes"),
            Value::Null,
        )
        .await
        .json();
    let o = &v["poll"]["outcome"];
    assert_eq!(o["closed"], true, "{v}");
    assert_eq!(o["ballots"], 3, "{o}");
    assert_eq!(o["importance"], "low", "{o}");

    // Submitting and cancelling tasks with a declared importance is no
    // ballot, so it does not climb the tiers (10 votes make a supporter).
    let sybil = &sybils[1];
    for _ in 0..10 {
        let r = net
            .call(sybil, "POST", "/api/v1/tasks", json!({ "task_type": "audio-denoise", "inputs": {}, "max_price": 100.0, "importance": "high" }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = net
            .call(sybil, "DELETE", &format!("/api/v1/tasks/{id}"), Value::Null)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let q = net
        .call(sybil, "GET", "/api/v1/users/me/quota", Value::Null)
        .await
        .json();
    assert_eq!(q["tier"], "free", "{q}");
    // And the quota the script holds is five free accounts' worth: the
    // 11th task of a day is refused like anyone's.
    for i in 0..11 {
        let r = net
            .call(
                sybil,
                "POST",
                "/api/v1/tasks",
                json!({ "task_type": "audio-denoise", "inputs": {}, "max_price": 100.0 }),
            )
            .await;
        assert_eq!(r.status, if i < 10 { 201 } else { 429 }, "{}", r.text());
    }
}

#[tokio::test]
async fn an_invite_only_network_refuses_registration_without_a_fresh_invite() {
    let net = Net::start_with(
        &[
            ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
            ("SPIN_VARIABLE_REGISTRATION", "invite"),
        ],
        |dir| greenmesh_tests::Start::coordinator(dir).shipped_identity_rules(),
    )
    .await;
    let r = net
        .call("", "POST", "/api/v1/users", json!({ "name": "stranger" }))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "invite_required");
    let r = net
        .call(
            "",
            "POST",
            "/api/v1/users",
            json!({ "name": "stranger", "invite": "inv_guess" }),
        )
        .await;
    assert_eq!(r.json()["error"]["code"], "invalid_invite", "{}", r.text());
    // Only the admin mints invites.
    let stranger = net
        .call("", "POST", "/api/v1/admin/invites", json!({}))
        .await;
    assert_eq!(stranger.status, 403, "{}", stranger.text());
    let invite = net
        .call(
            ADMIN,
            "POST",
            "/api/v1/admin/invites",
            json!({ "note": "for dana" }),
        )
        .await;
    assert_eq!(invite.status, 201, "{}", invite.text());
    let code = invite.json()["invite"].as_str().unwrap().to_string();
    let r = net
        .call(
            "",
            "POST",
            "/api/v1/users",
            json!({ "name": "dana", "invite": code }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // Single use.
    let r = net
        .call(
            "",
            "POST",
            "/api/v1/users",
            json!({ "name": "eve", "invite": code }),
        )
        .await;
    assert_eq!(r.json()["error"]["code"], "invalid_invite", "{}", r.text());
}

/// The GB trace's value at 10 March, 12:00 (the calendar slot the
/// coordinator replays at 2026-03-10T12:00Z).
fn gb_signal_at_noon_on_10_march(trace: &str) -> f64 {
    trace
        .lines()
        .find(|l| l.contains("-03-10 12:00"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .expect("the trace has 10 March, 12:00")
}

#[tokio::test]
async fn a_node_claiming_cleaner_energy_than_its_grid_is_flagged_and_held_to_the_grid_s_signal() {
    use greenmesh_tests::node::NodeOptions;
    // Eco tasks need 85 % clean energy: more than GB's grid gives that noon.
    let net = Net::start(&[
        ("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN),
        ("SPIN_VARIABLE_ECO_MIN_CLEAN_SHARE", "0.85"),
    ])
    .await;
    net.clock.set(
        std::time::UNIX_EPOCH
            + Duration::from_millis(
                chrono::DateTime::parse_from_rfc3339("2026-03-10T12:05:00Z")
                    .unwrap()
                    .timestamp_millis() as u64,
            ),
    );
    let trace =
        std::fs::read_to_string(greenmesh_tests::tests_dir().join("../data/carbon/gb_ci_2020.csv"))
            .unwrap();
    let signal = gb_signal_at_noon_on_10_march(&trace);
    let (alice, bob) = (net.user("alice").await, net.user("bob").await);
    // Only the admin sets a region's signal.
    let path = "/api/v1/admin/regions/GB/signal";
    let r = greenmesh_tests::send_with(
        net.app.addr,
        "PUT",
        path,
        trace.clone().into(),
        &[("authorization", &format!("Bearer {}", bob.token))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let r = greenmesh_tests::send_with(
        net.app.addr,
        "PUT",
        path,
        trace.into(),
        &[("authorization", &format!("Bearer {ADMIN}"))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["rows"].as_u64().unwrap() > 17_000, "{}", r.text());

    let node = |seed, clean_share, intensity, power| {
        let options = NodeOptions {
            clock: net.clock.clone(),
            clean_share,
            carbon_intensity: intensity,
            power,
            ..NodeOptions::default()
        };
        TestNode::register_with(
            net.app.addr,
            &bob.token,
            seed,
            &[("image-filter", 1.0)],
            options,
        )
    };
    // A node in GB claiming a 5 g/kWh grid and 100 % clean energy, and one
    // reporting its grid as it is, 90 % clean from its own declared panels.
    let liar = node(74, 1.0, 5.0, None).await.unwrap();
    let honest = node(
        75,
        0.9,
        signal as f32,
        Some(json!({ "own_generation_watts": 400.0, "max_watts": 100.0 })),
    )
    .await
    .unwrap();
    let seen = net.get(&format!("/api/v1/nodes/{}", liar.id)).await;
    let grid_clean = (1.0 - signal / 800.0).clamp(0.0, 1.0);
    assert!(
        (seen["energy"]["carbon_intensity"].as_f64().unwrap() - signal).abs() < 0.01,
        "{seen}"
    );
    assert!(
        seen["energy"]["clean_share"].as_f64().unwrap() <= grid_clean + 1e-6,
        "{seen}"
    );
    assert_eq!(seen["energy_check"]["flagged"], true, "{seen}");
    let seen = net.get(&format!("/api/v1/nodes/{}", honest.id)).await;
    assert!(
        (seen["energy"]["clean_share"].as_f64().unwrap() - 0.9).abs() < 1e-6,
        "{seen}"
    );
    assert_eq!(seen["energy_check"]["flagged"], false, "{seen}");
    let events = net.get("/api/v1/events?limit=500").await;
    let flagged: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "implausible_energy_claim")
        .collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0]["node_id"], liar.id.as_str());

    // An eco task needs clean energy: the claim buys the liar nothing.
    let task = net
        .submit(
            &alice,
            json!({ "task_type": "image-filter", "max_price": 50.0, "sla": "eco", "importance": "normal",
                    "inputs": { "image": "aGVsbG8=", "filter": "grayscale" } }),
        )
        .await;
    assert!(
        grid_clean < 0.85,
        "the grid alone is not clean enough: {grid_clean}"
    );
    assert_eq!(task["node_id"], honest.id.as_str(), "{task}");
    // The honest node declared 100 W: a receipt's energy counts at most
    // that over its run time.
    let (lease, _) = honest.poll(0).await.unwrap().remove(0);
    let out = json!({ "media_type": "text/plain", "text": "done" }).to_string();
    let mut receipt = honest.receipt(&lease, &out);
    receipt.energy_wh = 1.0; // 60 kW over the 60 ms it reports
    receipt.sign(&honest.key.sk);
    let r = honest
        .post_result(&lease.lease_id, &receipt, &out)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let id = task["id"].as_str().unwrap();
    let cut: Vec<Value> = net
        .events_of(id)
        .await
        .into_iter()
        .filter(|e| e["event_type"] == "implausible_energy")
        .collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0]["data"]["max_device_watts"], 100.0);

    // A plausible report clears the flag.
    let r = liar
        .report_energy(
            json!({ "sources": [["grid", 1.0]], "clean_share": grid_clean * 0.9,
                               "carbon_intensity": signal }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = net.get(&format!("/api/v1/nodes/{}", liar.id)).await;
    assert_eq!(seen["energy_check"]["flagged"], false, "{seen}");
}

#[tokio::test]
async fn a_client_that_never_reads_its_response_frees_the_instance_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    // One instance slot; the guest's time limit is 1 s (`limits.toml`).
    let mut start = greenmesh_tests::Start::new("limits.toml", dir.path());
    start.max_instances = 1;
    let app = start.start().await.unwrap();
    // 24 MiB asked for and never read: the guest waits to write the rest.
    let reader = raw(app.addr, "GET /big HTTP/1.1\r\nhost: x\r\n\r\n", b"").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The slot stays taken while the body streams (the instance lives,
    // waiting on the reader); the whole-request deadline (1 s) frees it, and
    // the next request, waiting for a slot, gets it then: not at once, and
    // not never (before, a guest blocked on a slow reader lived forever).
    let started = std::time::Instant::now();
    let next = app.get("/ok").await;
    let waited = started.elapsed();
    assert_eq!(next.status, 200, "{}", next.text());
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
        "served after {waited:?}"
    );
    drop(reader);
    app.stop().await;
}

/// `node` takes its next lease and fails it, blaming the requester.
async fn fail_blaming_the_requester(node: &TestNode) {
    let (lease, _) = node.poll(0).await.unwrap().remove(0);
    let mut receipt = node.receipt(&lease, "");
    receipt.status = greenmesh_protocol::ReceiptStatus::Failed;
    receipt.fault = Some(greenmesh_protocol::Fault::Requester);
    receipt.error = Some("invalid input: the requester's module trapped".into());
    receipt.sign(&node.key.sk);
    let r = node
        .post_result(&lease.lease_id, &receipt, "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn one_lying_owner_cannot_throttle_a_requester_alone() {
    let net = Net::start(&[("SPIN_VARIABLE_QUOTAS", "off")]).await;
    let (alice, mallory, bob) = (
        net.user("alice").await,
        net.user("mallory").await,
        net.user("bob").await,
    );
    let task = json!({ "task_type": "image-filter", "max_price": 50.0, "sla": "urgent",
                       "importance": "normal", "inputs": { "image": "aGVsbG8=", "filter": "grayscale" } });
    // Mallory's node fails 25 of Alice's tasks, each time blaming Alice.
    let lying = net.node(&mallory, 76, &[("image-filter", 1.0)]).await;
    for _ in 0..25 {
        net.submit(&alice, task.clone()).await;
        fail_blaming_the_requester(&lying).await;
    }
    // Past the throttle's 20, yet Alice still submits: one owner's word.
    net.submit(&alice, task.clone()).await;
    fail_blaming_the_requester(&lying).await;
    // Reports from another owner's node count too; each owner counts for
    // at most half the limit, so it takes ten of them.
    let r = net
        .call(
            &mallory.token,
            "DELETE",
            &format!("/api/v1/nodes/{}", lying.id),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let other = net.node(&bob, 77, &[("image-filter", 1.0)]).await;
    for _ in 0..9 {
        net.submit(&alice, task.clone()).await;
        fail_blaming_the_requester(&other).await;
    }
    // Nine from Bob and 26 from Mallory make 19 counted: not yet.
    net.submit(&alice, task.clone()).await;
    fail_blaming_the_requester(&other).await;
    let r = net.call(&alice.token, "POST", "/api/v1/tasks", task).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_many_failures");
}

#[tokio::test]
async fn reading_another_operator_s_nodes_and_earnings_is_forbidden() {
    let net = Net::start(&[]).await;
    let (alice, mallory) = (net.user("alice").await, net.user("mallory").await);
    net.node(&alice, 81, &[("image-filter", 1.0)]).await;
    let own = net
        .call(&alice.token, "GET", "/api/v1/users/me/nodes", Value::Null)
        .await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["nodes"].as_array().unwrap().len(), 1);
    // By id, by another user: refused, and nothing of alice's in the body.
    for path in [
        format!("/api/v1/users/{}/nodes", alice.id),
        format!("/api/v1/users/{}/impact", alice.id),
    ] {
        let r = net.call(&mallory.token, "GET", &path, Value::Null).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "forbidden", "{}", r.text());
        assert!(!r.text().contains("credits_earned"), "{}", r.text());
    }
    // With no token at all: 401.
    let r = net
        .call(
            "",
            "GET",
            &format!("/api/v1/users/{}/nodes", alice.id),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
}
