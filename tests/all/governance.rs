//! Governance through the real coordinator (`spin.toml`, broker + voting +
//! quota components on SQLite), each rule at its boundary: consensus at
//! exactly 60 %, the public-health override, weighting-scheme switches,
//! quota tiers and their local-midnight reset across DST, promotion,
//! permission grants and vetoed delegations. The wall clock the components
//! read is the host's virtual clock, moved by the tests.

use bytes::Bytes;
use greenmesh_tests::net::{id, User};
use greenmesh_tests::node::{NodeOptions, TestNode};
use greenmesh_tests::{Reply, Start};
use serde_json::{json, Value};
use std::time::{Duration, UNIX_EPOCH};

const ADMIN: &str = "admin-secret-for-tests";

/// A coordinator with a movable clock and an admin token.
/// The shared test coordinator (`greenmesh_tests::net`) with an admin
/// token, and the governance calls these tests make.
struct Net(greenmesh_tests::net::Net);

impl std::ops::Deref for Net {
    type Target = greenmesh_tests::net::Net;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Net {
    async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, Start::coordinator).await
    }

    async fn start_with(
        env: &[(&str, &str)],
        start: impl FnOnce(&std::path::Path) -> Start,
    ) -> Self {
        let mut env = env.to_vec();
        env.push(("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN));
        Self(greenmesh_tests::net::Net::start_with(&env, start).await)
    }

    async fn register(&self, body: Value) -> Reply {
        self.call("", "POST", "/api/v1/users", body).await
    }

    async fn user(&self, name: &str) -> User {
        self.user_in(name, None).await
    }

    async fn user_in(&self, name: &str, timezone: Option<&str>) -> User {
        let mut body = json!({ "name": name });
        if let Some(tz) = timezone {
            body["timezone"] = json!(tz);
        }
        let r = self.register(body).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let v = r.json();
        User {
            id: v["id"].as_str().unwrap().to_string(),
            token: v["token"].as_str().unwrap().to_string(),
        }
    }

    /// Submits a task named `name` (no node offers `audio-denoise` unless a
    /// test registers one, so it stays queued).
    async fn submit(&self, user: &User, extra: Value) -> Reply {
        let mut body = json!({ "task_type": "audio-denoise", "inputs": {}, "max_price": 100.0 });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        self.call(&user.token, "POST", "/api/v1/tasks", body).await
    }

    async fn submitted(&self, user: &User, extra: Value) -> Value {
        let r = self.submit(user, extra).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    async fn vote(&self, user: &User, task: &str, importance: &str) -> Reply {
        self.call(
            &user.token,
            "POST",
            &format!("/api/v1/tasks/{task}/votes"),
            json!({ "importance": importance }),
        )
        .await
    }

    async fn votes(&self, user: &User, task: &str) -> Value {
        let r = self
            .call(
                &user.token,
                "GET",
                &format!("/api/v1/tasks/{task}/votes"),
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    async fn quota(&self, user: &User) -> Value {
        let r = self
            .call(
                &user.token,
                "GET",
                &format!("/api/v1/users/{}/quota", user.id),
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    async fn events(&self, event_type: &str) -> Vec<Value> {
        let r = self.app.get("/api/v1/events?limit=500").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"] == event_type)
            .cloned()
            .collect()
    }

    /// Moves the clock past the default 5-minute voting window.
    fn close_polls(&self) {
        self.clock.advance(Duration::from_secs(5 * 60 + 1));
    }
}

fn ms(rfc3339_utc: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339_utc)
        .unwrap()
        .timestamp_millis() as u64
}

fn at(rfc3339_utc: &str) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms(rfc3339_utc))
}

// ---------------------------------------------------------------- voting

#[tokio::test]
async fn exactly_sixty_percent_decides_below_is_normal_unanimous_is_very_high_and_silence_is_eco() {
    let net = Net::start(&[]).await;
    let owner = net.user("owner").await;
    let voters = [
        net.user("v1").await,
        net.user("v2").await,
        net.user("v3").await,
        net.user("v4").await,
        net.user("v5").await,
    ];
    let sixty = id(&net
        .submitted(&owner, json!({ "name": "nightly-report" }))
        .await);
    let split = id(&net
        .submitted(&owner, json!({ "name": "index-rebuild" }))
        .await);
    let same = id(&net
        .submitted(&owner, json!({ "name": "log-rotation" }))
        .await);
    let silent = id(&net
        .submitted(&owner, json!({ "name": "cache-warmup" }))
        .await);

    for (v, level) in voters.iter().zip(["high", "high", "high", "normal", "low"]) {
        assert_eq!(net.vote(v, &sixty, level).await.status, 201);
    }
    for (v, level) in voters
        .iter()
        .zip(["high", "high", "normal", "low", "critical"])
    {
        assert_eq!(net.vote(v, &split, level).await.status, 201);
    }
    for v in &voters[..3] {
        assert_eq!(net.vote(v, &same, "low").await.status, 201);
    }
    // Still open: the tally so far is visible, not final.
    let open = net.votes(&owner, &sixty).await;
    assert_eq!(open["poll"]["outcome"]["closed"], false);
    assert_eq!(open["policy"]["importance_source"], "pending_vote");

    net.close_polls();
    let v = net.votes(&owner, &sixty).await;
    let o = &v["poll"]["outcome"];
    assert_eq!(o["closed"], true);
    assert_eq!(o["importance"], "high", "3 of 5 is exactly 60 %: {o}");
    assert_eq!(o["decided_by"], "consensus");
    assert!((o["confidence"].as_f64().unwrap() - 0.6).abs() < 1e-9);
    assert_eq!(v["policy"]["importance"], "high");
    assert_eq!(v["policy"]["sla"], "high");

    let v = net.votes(&owner, &split).await;
    assert_eq!(
        v["poll"]["outcome"]["decided_by"], "no_consensus",
        "2 of 5 is 40 %"
    );
    assert_eq!(v["policy"]["importance"], "normal");
    assert!((v["policy"]["confidence"].as_f64().unwrap() - 0.4).abs() < 1e-9);

    let v = net.votes(&owner, &same).await;
    assert_eq!(v["poll"]["outcome"]["decided_by"], "unanimous");
    assert_eq!(v["poll"]["outcome"]["very_high_confidence"], true);
    assert_eq!(v["policy"]["confidence"], 1.0);
    assert_eq!(
        v["policy"]["sla"], "eco",
        "low importance waits for clean energy"
    );

    let v = net.votes(&owner, &silent).await;
    assert_eq!(v["policy"]["importance_source"], "no_votes");
    assert_eq!(v["policy"]["importance"], Value::Null);
    assert_eq!(v["policy"]["sla"], "eco", "no votes by the close: eco");
    assert_eq!(v["policy"]["confidence"], 0.0);

    // Each outcome is logged once, with its confidence.
    let reached = net.events("consensus_reached").await;
    assert_eq!(reached.len(), 2, "{reached:?}");
    assert!(reached.iter().all(|e| e["data"]["confidence"].is_number()));
    assert_eq!(net.events("consensus_failed").await.len(), 1);
    assert_eq!(net.events("no_votes").await.len(), 1);
    // The task itself shows its governance.
    let task = net
        .call(
            &owner.token,
            "GET",
            &format!("/api/v1/tasks/{sixty}"),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(task["governance"]["importance"], "high");
}

#[tokio::test]
async fn a_second_vote_replaces_the_first_and_votes_after_the_close_change_nothing() {
    let net = Net::start(&[("SPIN_VARIABLE_VOTING_WINDOW_MS", "60000")]).await;
    let owner = net.user("owner").await;
    let alice = net.user("alice").await;
    let task = id(&net.submitted(&owner, json!({ "name": "reindex" })).await);

    assert_eq!(net.vote(&alice, &task, "low").await.status, 201);
    let second = net.vote(&alice, &task, "high").await;
    assert_eq!(second.status, 200, "a replacement is not a new ballot");
    assert_eq!(second.json()["replaced"], true);
    let o = &second.json()["poll"]["outcome"];
    assert_eq!(o["ballots"], 1);
    assert_eq!(o["weights"], json!({ "high": 1.0 }));

    // The configured one-minute window, not the default five.
    net.clock.advance(Duration::from_secs(61));
    let late = net.vote(&alice, &task, "critical").await;
    assert_eq!(late.status, 409, "{}", late.text());
    assert_eq!(late.json()["error"]["code"], "voting_closed");
    let v = net.votes(&owner, &task).await;
    assert_eq!(
        v["poll"]["outcome"]["ballots"], 1,
        "the late vote was not counted"
    );
    assert_eq!(v["policy"]["importance"], "high");
}

#[tokio::test]
async fn bad_votes_get_clear_errors() {
    let net = Net::start(&[]).await;
    let owner = net.user("owner").await;
    let task = id(&net.submitted(&owner, json!({ "name": "reindex" })).await);

    let r = net.vote(&owner, "task-0000000000000000", "high").await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = net.vote(&owner, &task, "extremely").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "importance");
    let r = net
        .call(
            &owner.token,
            "POST",
            &format!("/api/v1/tasks/{task}/votes"),
            json!({ "level": "high" }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = net
        .vote(
            &User {
                id: String::new(),
                token: "gm_nope".into(),
            },
            &task,
            "high",
        )
        .await;
    assert_eq!(r.status, 401);
    let v = net.votes(&owner, &task).await;
    assert_eq!(v["poll"]["outcome"]["ballots"], 0, "nothing was recorded");
}

#[tokio::test]
async fn public_health_keywords_override_the_vote_as_whole_words_and_are_logged() {
    let net = Net::start(&[]).await;
    let u = net.user("city").await;

    let water = net
        .submitted(
            &u,
            json!({ "name": "water-treatment-safety-check", "sla": "eco" }),
        )
        .await;
    assert_eq!(water["governance"]["importance"], "critical");
    assert_eq!(water["governance"]["importance_source"], "public_health");
    assert_eq!(water["governance"]["public_health_keyword"], "water");
    assert_eq!(
        water["governance"]["sla"], "urgent",
        "critical and urgent whatever was asked"
    );
    let r = net.vote(&u, &id(&water), "low").await;
    assert_eq!(r.status, 409, "no vote on an overridden task");
    assert_eq!(r.json()["error"]["code"], "not_voted");

    let by_description = net
        .submitted(
            &u,
            json!({ "name": "nightly-batch", "description": "Recompute SEWAGE flow models" }),
        )
        .await;
    assert_eq!(
        by_description["governance"]["public_health_keyword"],
        "sewage"
    );

    let firewall = net
        .submitted(&u, json!({ "name": "firewall-update" }))
        .await;
    assert_eq!(
        firewall["governance"]["importance_source"], "pending_vote",
        "fire ⊄ firewall"
    );
    let neighbour = net.user("neighbour").await;
    assert_eq!(
        net.vote(&neighbour, &id(&firewall), "low").await.status,
        201
    );

    // A requester's own CRITICAL skips the vote too (seed 001, scenario 2).
    let declared = net
        .submitted(
            &u,
            json!({ "name": "db-migration", "importance": "critical" }),
        )
        .await;
    assert_eq!(declared["governance"]["importance_source"], "requester");
    assert_eq!(declared["governance"]["sla"], "urgent");
    // Any other declared level is no ballot: nobody votes on their own
    // task (issue 21, ADR 0021).
    let high = net
        .submitted(
            &u,
            json!({ "name": "quarterly-close", "importance": "high" }),
        )
        .await;
    let v = net.votes(&u, &id(&high)).await;
    assert_eq!(v["poll"]["outcome"]["ballots"], 0, "{v}");
    assert_eq!(v["poll"]["outcome"]["weights"], json!({}));
    // It stands when nobody else votes; one ballot from someone else wins.
    let overruled = net
        .submitted(
            &u,
            json!({ "name": "quarterly-audit", "importance": "high" }),
        )
        .await;
    assert_eq!(
        net.vote(&neighbour, &id(&overruled), "low").await.status,
        201
    );
    net.close_polls();
    let v = net.votes(&u, &id(&high)).await;
    assert_eq!(
        (
            v["policy"]["importance"].as_str(),
            v["policy"]["importance_source"].as_str()
        ),
        (Some("high"), Some("declared")),
        "{v}"
    );
    let v = net.votes(&u, &id(&overruled)).await;
    assert_eq!(v["policy"]["importance"], "low", "{v}");

    let overrides = net.events("public_health_override").await;
    assert_eq!(overrides.len(), 2);
    assert!(overrides.iter().any(|e| e["data"]["keyword"] == "water"));
}

#[tokio::test]
async fn switching_the_weighting_scheme_mid_window_reweighs_ballots_already_cast() {
    let net = Net::start(&[]).await;
    let owner = net.user("owner").await;
    let (a, b, patron) = (
        net.user("a").await,
        net.user("b").await,
        net.user("patron").await,
    );
    let r = net
        .call(
            ADMIN,
            "POST",
            &format!("/api/v1/users/{}/donations", patron.id),
            json!({ "credits": 40.0 }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let task = id(&net.submitted(&owner, json!({ "name": "reindex" })).await);
    net.vote(&a, &task, "normal").await;
    net.vote(&b, &task, "normal").await;
    net.vote(&patron, &task, "high").await;
    let o = net.votes(&owner, &task).await["poll"]["outcome"].clone();
    assert_eq!(
        (o["scheme"].as_str(), o["importance"].as_str()),
        (Some("one-per-user"), Some("normal"))
    );

    // Bad switches change nothing.
    let r = net
        .call(
            &a.token,
            "PUT",
            "/api/v1/governance/voting-scheme",
            json!({ "scheme": "stake" }),
        )
        .await;
    assert_eq!(r.status, 403, "only the admin switches: {}", r.text());
    let r = net
        .call(
            ADMIN,
            "PUT",
            "/api/v1/governance/voting-scheme",
            json!({ "scheme": "plutocracy" }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "scheme");
    assert_eq!(
        net.app.get("/api/v1/governance").await.json()["voting"]["scheme"],
        "one-per-user"
    );

    let r = net
        .call(
            ADMIN,
            "PUT",
            "/api/v1/governance/voting-scheme",
            json!({ "scheme": "stake" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let o = net.votes(&owner, &task).await["poll"]["outcome"].clone();
    assert_eq!(o["scheme"], "stake");
    assert_eq!(o["importance"], "high", "only the patron has stake: {o}");
    assert_eq!(o["weights"]["high"], 40.0);

    // Hybrid: months·0.5 + tasks·0.3 + donations·0.2. Everyone joined
    // moments ago and ran nothing, so only the patron's 40 credits weigh: 8.
    let r = net
        .call(
            ADMIN,
            "PUT",
            "/api/v1/governance/voting-scheme",
            json!({ "scheme": "hybrid" }),
        )
        .await;
    assert_eq!(r.status, 200);
    net.close_polls();
    let o = net.votes(&owner, &task).await["poll"]["outcome"].clone();
    assert_eq!(o["closed"], true);
    assert_eq!(o["scheme"], "hybrid");
    assert!(
        (o["weights"]["high"].as_f64().unwrap() - 8.0).abs() < 0.01,
        "{o}"
    );
    assert_eq!(o["importance"], "high");
    assert_eq!(net.events("voting_scheme_changed").await.len(), 2);
}

#[tokio::test]
async fn quadratic_and_committee_voting_drop_in_by_a_spin_toml_change() {
    let dir = tempfile::tempdir().unwrap();
    let quadratic = greenmesh_tests::coordinator_manifest_with(
        dir.path(),
        &[("voting.wasm", "voting_quadratic.wasm")],
    );
    let net = Net::start_with(&[], |state| Start::at(quadratic, state)).await;
    assert_eq!(
        net.app.get("/api/v1/governance").await.json()["voting"]["scheme"],
        "quadratic"
    );
    let owner = net.user("owner").await;
    let (rich, poor) = (net.user("rich").await, net.user("poor").await);
    let task = id(&net.submitted(&owner, json!({ "name": "reindex" })).await);
    let r = net
        .call(
            &rich.token,
            "POST",
            &format!("/api/v1/tasks/{task}/votes"),
            json!({ "importance": "high", "credits": 9 }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    net.vote(&poor, &task, "low").await;
    let o = r.json()["poll"]["outcome"].clone();
    assert_eq!(
        o["weights"]["high"], 3.0,
        "9 voice credits buy 3 votes: {o}"
    );
    let r = net
        .call(
            &poor.token,
            "POST",
            &format!("/api/v1/tasks/{task}/votes"),
            json!({ "importance": "low", "credits": 101 }),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "credits");
    net.0.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let committee = greenmesh_tests::coordinator_manifest_with(
        dir.path(),
        &[("voting.wasm", "voting_committee.wasm")],
    );
    // The committee is named by user id, so register first, then restart with it.
    let state = dir.path().join("state");
    let first = Start::at(committee.clone(), &state).start().await.unwrap();
    let reg = greenmesh_tests::send(
        first.addr,
        "POST",
        "/api/v1/users",
        Bytes::from(json!({ "name": "member" }).to_string()),
    )
    .await
    .unwrap()
    .json();
    let outsider = greenmesh_tests::send(
        first.addr,
        "POST",
        "/api/v1/users",
        Bytes::from(json!({ "name": "outsider" }).to_string()),
    )
    .await
    .unwrap()
    .json();
    first.stop().await;
    let member_id = reg["id"].as_str().unwrap().to_string();
    let net = Net::start_with(&[("SPIN_VARIABLE_VOTING_COMMITTEE", &member_id)], |_| {
        Start::at(committee, &state)
    })
    .await;
    let member = User {
        id: member_id,
        token: reg["token"].as_str().unwrap().into(),
    };
    let outsider = User {
        id: outsider["id"].as_str().unwrap().into(),
        token: outsider["token"].as_str().unwrap().into(),
    };
    let requester = net.user("requester").await;
    let task = id(&net
        .submitted(&requester, json!({ "name": "reindex" }))
        .await);
    let r = net.vote(&outsider, &task, "critical").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(net.vote(&member, &task, "low").await.status, 201);
    net.close_polls();
    assert_eq!(
        net.votes(&member, &task).await["policy"]["importance"],
        "low"
    );
}

// ---------------------------------------------------------------- quota

#[tokio::test]
async fn the_eleventh_task_of_a_free_user_is_refused_until_one_is_given_back() {
    let net = Net::start(&[]).await;
    let u = net.user("free").await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let t = net
            .submitted(&u, json!({ "name": format!("job-{i}") }))
            .await;
        assert_eq!(t["quota"]["remaining"], 9 - i);
        tasks.push(id(&t));
    }
    let eleventh = net.submit(&u, json!({ "name": "job-10" })).await;
    assert_eq!(eleventh.status, 429, "{}", eleventh.text());
    let e = eleventh.json()["error"].clone();
    assert_eq!(e["code"], "quota_exhausted");
    assert_eq!(e["details"]["quota"]["tier"], "free");
    assert_eq!(e["details"]["quota"]["used_today"], 10);
    assert!(e["details"]["retry_after_s"].as_u64().unwrap() > 0);
    let listed = net
        .call(&u.token, "GET", "/api/v1/tasks", Value::Null)
        .await
        .json();
    assert_eq!(
        listed["tasks"].as_array().unwrap().len(),
        10,
        "the refused task was not stored"
    );

    let q = net.quota(&u).await;
    assert_eq!(
        (q["used_today"].as_u64(), q["remaining"].as_u64()),
        (Some(10), Some(0))
    );
    assert_eq!(
        q["limits"],
        json!({ "tasks_per_day": 10, "max_duration_sec": 600, "max_memory_mb": 100 })
    );

    // Cancelled before any node ran it: the count is given back.
    let r = net
        .call(
            &u.token,
            "DELETE",
            &format!("/api/v1/tasks/{}", tasks[0]),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(net.quota(&u).await["remaining"], 1);
    assert_eq!(
        net.submit(&u, json!({ "name": "job-10" })).await.status,
        201
    );
    assert_eq!(
        net.submit(&u, json!({ "name": "job-11" })).await.status,
        429
    );

    // Someone else's quota is not readable.
    let other = net.user("other").await;
    let r = net
        .call(
            &other.token,
            "GET",
            &format!("/api/v1/users/{}/quota", u.id),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn tier_limits_bound_requirements_and_become_the_lease_limits() {
    let net = Net::start(&[]).await;
    let u = net.user("free").await;
    let node = TestNode::register_with(
        net.app.addr,
        &u.token,
        31,
        &[("image-filter", 1.0)],
        NodeOptions {
            clock: net.clock.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let task = |secs: u32, mb: u64| json!({ "task_type": "image-filter", "requirements": { "max_execution_time_sec": secs, "max_memory_mb": mb } });
    let r = net.submit(&u, task(601, 100)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.json()["error"]["field"],
        "requirements.max_execution_time_sec"
    );
    let r = net.submit(&u, task(600, 101)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["field"], "requirements.max_memory_mb");
    assert_eq!(
        net.quota(&u).await["used_today"],
        0,
        "refused tasks use no quota"
    );

    let t = net.submitted(&u, task(600, 100)).await;
    assert_eq!(t["status"], "leased", "{t}");
    let leases = node.poll(1).await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        leases[0].0.timeout_ms, 600_000,
        "the tier's duration is the sandbox's time limit"
    );
    assert_eq!(
        leases[0].0.max_memory_mb, 100,
        "the tier's memory is the sandbox's memory limit"
    );
    // Defaults fit the free tier.
    assert_eq!(
        net.submit(&u, json!({ "task_type": "image-filter" }))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_task_that_fails_before_any_node_ran_it_gives_its_quota_back() {
    let net = Net::start(&[]).await;
    let u = net.user("unlucky").await;
    let mut nodes = Vec::new();
    for seed in 71..74 {
        let opts = NodeOptions {
            clock: net.clock.clone(),
            ..Default::default()
        };
        nodes.push(
            TestNode::register_with(net.app.addr, &u.token, seed, &[("image-filter", 1.0)], opts)
                .await
                .unwrap(),
        );
    }
    let t = id(&net
        .submitted(&u, json!({ "task_type": "image-filter" }))
        .await);
    assert_eq!(net.quota(&u).await["used_today"], 1);
    // Every node refuses it in turn: after the third attempt it fails,
    // never having run, and the day's count is given back.
    for _ in 0..3 {
        let mut refused = false;
        for node in &nodes {
            for (lease, _) in node.poll(0).await.unwrap() {
                let r = node.refuse(&lease.lease_id, "busy").await.unwrap();
                assert_eq!(r.status, 200, "{}", r.text());
                refused = true;
            }
        }
        assert!(refused, "some node held the lease");
    }
    let task = net
        .call(&u.token, "GET", &format!("/api/v1/tasks/{t}"), Value::Null)
        .await
        .json();
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(net.quota(&u).await["used_today"], 0);
    assert_eq!(net.events("quota_released").await.len(), 1);
}

#[tokio::test]
async fn quota_resets_at_local_midnight_across_the_march_dst_change() {
    let net = Net::start(&[]).await;
    // Saturday 2026-03-07, 23:30 in Los Angeles (PST, UTC-8).
    net.clock.set(at("2026-03-08T07:30:00Z"));
    let la = net.user_in("angeleno", Some("America/Los_Angeles")).await;
    let utc = net.user("londoner").await;

    let q = net.quota(&la).await;
    assert_eq!(q["timezone"], "America/Los_Angeles");
    assert_eq!(
        q["next_reset_at"].as_u64(),
        Some(ms("2026-03-08T08:00:00Z"))
    );
    assert_eq!(
        net.quota(&utc).await["next_reset_at"].as_u64(),
        Some(ms("2026-03-09T00:00:00Z"))
    );
    for i in 0..10 {
        net.submitted(&la, json!({ "name": format!("job-{i}") }))
            .await;
    }
    assert_eq!(
        net.submit(&la, json!({ "name": "one-more" })).await.status,
        429
    );

    // 00:00:01 PST on Sunday: a new day. Clocks spring forward at 02:00, so
    // this day is 23 hours long and ends at 07:00Z, not 08:00Z.
    net.clock.set(at("2026-03-08T08:00:01Z"));
    let q = net.quota(&la).await;
    assert_eq!(q["used_today"], 0);
    assert_eq!(
        q["next_reset_at"].as_u64(),
        Some(ms("2026-03-09T07:00:00Z"))
    );
    assert_eq!(
        q["next_reset_at"].as_u64().unwrap() - q["day_started_at"].as_u64().unwrap(),
        23 * 3_600_000
    );
    net.submitted(&la, json!({ "name": "sunday-job" })).await;

    // 23:59 PDT on Sunday is still Sunday; 00:00 PDT (07:00Z) is Monday.
    net.clock.set(at("2026-03-09T06:59:00Z"));
    assert_eq!(net.quota(&la).await["used_today"], 1);
    net.clock.set(at("2026-03-09T07:00:01Z"));
    assert_eq!(net.quota(&la).await["used_today"], 0);
}

#[tokio::test]
async fn a_bad_timezone_is_refused_and_changes_nothing() {
    let net = Net::start(&[]).await;
    let r = net
        .register(json!({ "name": "martian", "timezone": "Mars/Olympus_Mons" }))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "timezone");
    let u = net.user_in("earthling", Some("Europe/Berlin")).await;
    let r = net
        .call(
            &u.token,
            "PATCH",
            "/api/v1/users/me",
            json!({ "timezone": "Europe/Atlantis" }),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(net.quota(&u).await["timezone"], "Europe/Berlin");
    let r = net
        .call(
            &u.token,
            "PATCH",
            "/api/v1/users/me",
            json!({ "timezone": "Asia/Tokyo" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A change applies from the next reset of the day in force.
    let q = net.quota(&u).await;
    assert_eq!(q["timezone"], "Europe/Berlin");
    assert_eq!(r.json()["timezone_applies_from"], q["next_reset_at"]);
    net.clock.set(
        std::time::SystemTime::UNIX_EPOCH
            + Duration::from_millis(q["next_reset_at"].as_u64().unwrap() + 1),
    );
    assert_eq!(net.quota(&u).await["timezone"], "Asia/Tokyo");
}

#[tokio::test]
async fn hopping_timezones_does_not_reset_the_day_s_count() {
    let net = Net::start(&[]).await;
    // 20:00 UTC: ten tasks used, the day ends at midnight UTC.
    net.clock.set(at("2026-05-04T20:00:00Z"));
    let u = net.user("hopper").await;
    for i in 0..10 {
        net.submitted(&u, json!({ "name": format!("job-{i}") }))
            .await;
    }
    assert_eq!(
        net.submit(&u, json!({ "name": "one-more" })).await.status,
        429
    );
    // Where it is already tomorrow (UTC+14) a new day would have begun:
    // the switch waits for midnight UTC, so the count stands.
    let r = net
        .call(
            &u.token,
            "PATCH",
            "/api/v1/users/me",
            json!({ "timezone": "Pacific/Kiritimati" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["timezone_in_force"], "UTC");
    assert_eq!(
        r.json()["timezone_applies_from"].as_u64(),
        Some(ms("2026-05-05T00:00:00Z"))
    );
    let q = net.quota(&u).await;
    assert_eq!(
        (q["timezone"].as_str(), q["used_today"].as_u64()),
        (Some("UTC"), Some(10))
    );
    assert_eq!(
        net.submit(&u, json!({ "name": "still-no" })).await.status,
        429
    );
    // From midnight UTC the new zone is in force. There it is 14:00, in a
    // day that began at 10:00 UTC yesterday: the ten tasks fall in it, so
    // the move added no day; the count resets at its midnight (10:00 UTC).
    net.clock.set(at("2026-05-05T00:00:01Z"));
    let q = net.quota(&u).await;
    assert_eq!(q["timezone"], "Pacific/Kiritimati", "{q}");
    assert_eq!(q["used_today"], 10, "{q}");
    assert_eq!(
        q["next_reset_at"].as_u64(),
        Some(ms("2026-05-05T10:00:00Z"))
    );
    net.clock.set(at("2026-05-05T10:00:01Z"));
    assert_eq!(net.quota(&u).await["used_today"], 0);
    net.submitted(&u, json!({ "name": "new-day" })).await;
}

#[tokio::test]
async fn ten_votes_or_a_donation_promote_a_free_user_to_supporter() {
    let net = Net::start(&[]).await;
    let owner = net.user("owner").await;
    let voter = net.user("voter").await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        tasks.push(id(&net
            .submitted(&owner, json!({ "name": format!("job-{i}") }))
            .await));
    }
    for t in &tasks[..9] {
        assert_eq!(net.vote(&voter, t, "normal").await.status, 201);
    }
    // Re-voting on a task does not count twice.
    assert_eq!(net.vote(&voter, &tasks[0], "low").await.status, 200);
    let q = net.quota(&voter).await;
    assert_eq!(q["tier"], "free", "9 votes: {q}");
    assert!(q["next_tier"].as_str().unwrap().contains("supporter"));
    net.vote(&voter, &tasks[9], "normal").await;
    let q = net.quota(&voter).await;
    assert_eq!(q["tier"], "supporter");
    assert_eq!(q["limits"]["tasks_per_day"], 50);

    let donor = net.user("donor").await;
    assert_eq!(net.quota(&donor).await["tier"], "free");
    let r = net
        .call(
            &donor.token,
            "POST",
            &format!("/api/v1/users/{}/donations", donor.id),
            json!({ "credits": 5.0 }),
        )
        .await;
    assert_eq!(r.status, 403, "donations are recorded by the admin");
    let r = net
        .call(
            ADMIN,
            "POST",
            &format!("/api/v1/users/{}/donations", donor.id),
            json!({ "credits": -5.0 }),
        )
        .await;
    assert_eq!(r.status, 400);
    net.call(
        ADMIN,
        "POST",
        &format!("/api/v1/users/{}/donations", donor.id),
        json!({ "credits": 5.0 }),
    )
    .await;
    let q = net.quota(&donor).await;
    assert_eq!(
        (q["tier"].as_str(), q["limits"]["max_memory_mb"].as_u64()),
        (Some("supporter"), Some(500))
    );
    let promoted = net.events("tier_promoted").await;
    assert_eq!(promoted.len(), 2, "{promoted:?}");
}

// ------------------------------------------------------- grants and veto

/// Signs and posts a grant of `node` to `user` by `granter` (key seed `seed`).
async fn grant(
    net: &Net,
    granter: &User,
    seed: u8,
    node: &str,
    user: &User,
    pattern: &str,
    expires_at: Option<u64>,
) -> Reply {
    let key = greenmesh_protocol::key_pair_from_seed([seed; 32]);
    let g = greenmesh_protocol::Grant {
        node_id: node.into(),
        user_id: user.id.clone(),
        task_pattern: pattern.into(),
        expires_at,
        issued_at: net.clock.now_ms(),
    };
    net.call(
        &granter.token,
        "POST",
        "/api/v1/grants",
        json!({
            "node_id": g.node_id, "user_id": g.user_id, "task_pattern": g.task_pattern,
            "expires_at": g.expires_at, "issued_at": g.issued_at, "signature": g.sign(&key.sk),
        }),
    )
    .await
}

#[tokio::test]
async fn grants_open_a_node_beyond_its_allow_list_until_they_expire() {
    let net = Net::start(&[]).await;
    let (bob, alice) = (net.user("bob").await, net.user("alice").await);
    let node = TestNode::register_with(
        net.app.addr,
        &bob.token,
        41,
        &[("image-filter", 1.0)],
        NodeOptions {
            allowed_tasks: vec!["log-rotation".into()],
            clock: net.clock.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let image = json!({ "task_type": "image-filter" });
    let t = net.submitted(&alice, image.clone()).await;
    assert_eq!(t["status"], "queued");
    assert!(
        t["decision"]["declined"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("allow-list"),
        "{t}"
    );

    // Bad grants change nothing.
    let r = grant(&net, &bob, 42, &node.id, &alice, "*", None).await;
    assert_eq!(r.status, 409, "no public key registered yet: {}", r.text());
    let bob_key = greenmesh_protocol::key_pair_from_seed([42; 32]);
    let r = net
        .call(
            &bob.token,
            "PATCH",
            "/api/v1/users/me",
            json!({ "public_key": greenmesh_protocol::public_key_hex(&bob_key.pk) }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = grant(&net, &bob, 43, &node.id, &alice, "image-*", None).await;
    assert_eq!(r.status, 403, "signed by the wrong key: {}", r.text());
    assert_eq!(r.json()["error"]["code"], "bad_signature");
    let r = grant(&net, &alice, 42, &node.id, &alice, "*", None).await;
    assert_eq!(r.status, 403, "alice does not own the node");
    let r = grant(
        &net,
        &bob,
        42,
        &node.id,
        &alice,
        "image-*",
        Some(net.clock.now_ms() - 1),
    )
    .await;
    assert_eq!(r.status, 400, "already expired");
    let listed = net
        .call(&bob.token, "GET", "/api/v1/grants", Value::Null)
        .await
        .json();
    assert_eq!(listed["grants"], json!([]));

    // A good grant, valid one hour: the queued task is leased on the next poll.
    let expires = net.clock.now_ms() + 3_600_000;
    let r = grant(&net, &bob, 42, &node.id, &alice, "image-*", Some(expires)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let leases = node.poll(2).await.unwrap();
    assert_eq!(leases.len(), 1, "the grant made the node eligible");
    assert_eq!(leases[0].0.task_id, id(&t));
    // Only for alice: another user's task still does not get through.
    let carol = net.user("carol").await;
    assert_eq!(
        net.submitted(&carol, image.clone()).await["status"],
        "queued"
    );

    // An hour later the grant has expired.
    net.clock.advance(Duration::from_secs(3601));
    node.heartbeat(0.0).await.unwrap();
    let late = net.submitted(&alice, image).await;
    assert_eq!(
        late["status"], "queued",
        "expired grants stop working: {late}"
    );
    let listed = net
        .call(&alice.token, "GET", "/api/v1/grants", Value::Null)
        .await
        .json();
    assert_eq!(listed["grants"][0]["active"], false);
}

#[tokio::test]
async fn a_vetoed_delegation_stays_home_in_eco_mode() {
    let net = Net::start(&[]).await;
    let (alice, bob) = (net.user("alice").await, net.user("bob").await);
    let opts = |clean| NodeOptions {
        clean_share: clean,
        clock: net.clock.clone(),
        ..Default::default()
    };
    // Alice's own node is dearer and on a dirty grid; Bob's is cheap.
    let home = TestNode::register_with(
        net.app.addr,
        &alice.token,
        51,
        &[("image-filter", 5.0)],
        opts(0.3),
    )
    .await
    .unwrap();
    let away = TestNode::register_with(
        net.app.addr,
        &bob.token,
        52,
        &[("image-filter", 1.0)],
        opts(0.9),
    )
    .await
    .unwrap();
    let t = net
        .submitted(&alice, json!({ "task_type": "image-filter" }))
        .await;
    assert_eq!(t["node_id"], away.id.as_str());
    let delegation = t["lease_id"].as_str().unwrap().to_string();
    // Bob's node fetches it: it may be running when the veto arrives.
    let (lease, _) = away.poll(1).await.unwrap().remove(0);

    let r = net
        .call(
            &bob.token,
            "POST",
            &format!("/api/v1/delegations/{delegation}/veto"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404, "only the task's owner vetoes");
    let r = net
        .call(
            &alice.token,
            "POST",
            &format!("/api/v1/delegations/{delegation}/veto"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "vetoed");
    assert_eq!(
        v["task"]["status"], "queued",
        "home is not clean enough yet: {v}"
    );
    assert_eq!(v["task"]["governance"]["owner_only"], true);
    assert_eq!(v["task"]["governance"]["sla"], "eco");
    let declined = v["task"]["decision"]["declined"].to_string();
    assert!(declined.contains("eco mode: 30 % clean"), "{declined}");
    assert!(
        declined.contains("not one of the requester's own nodes"),
        "{declined}"
    );

    // The running delegation's receipt is refused; nothing is recorded.
    let r = away
        .post_result(&lease.lease_id, &away.receipt(&lease, "out"), "out")
        .await
        .unwrap();
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "lease_vetoed");
    let r = net
        .call(
            &alice.token,
            "POST",
            &format!("/api/v1/delegations/{delegation}/veto"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 409, "already vetoed");

    // Bob's node stays out even while free; Alice's runs it once her energy is clean.
    assert!(away.poll(1).await.unwrap().is_empty());
    home.report_clean_share(0.95).await.unwrap();
    let leases = home.poll(2).await.unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].0.task_id, id(&t));
    let own = net
        .call(
            &alice.token,
            "POST",
            &format!("/api/v1/delegations/{}/veto", leases[0].0.lease_id),
            Value::Null,
        )
        .await;
    assert_eq!(
        own.status,
        409,
        "a task on one's own node is no delegation: {}",
        own.text()
    );
    let vetoes = net.events("delegation_vetoed").await;
    assert_eq!(vetoes.len(), 1);
    assert_eq!(vetoes[0]["data"]["was"], "delivered");
}
