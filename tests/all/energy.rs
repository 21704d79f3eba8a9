//! Energy-aware SLAs and carbon accounting through the real coordinator,
//! with the host's virtual clock: patient tasks wait for a cleaner forecast
//! slot and still start by their deadline, urgent ones never wait, eco and
//! solar_only wait for clean energy on the right node, interruptible tasks
//! are stopped when energy gets worse, and every run is accounted with
//! hand-checkable arithmetic.

use greenmesh_host::clock::VirtualClock;
use greenmesh_tests::net::id;
use greenmesh_tests::node::{NodeOptions, TestNode};
use serde_json::{json, Value};
use std::time::Duration;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// The shared test coordinator (`greenmesh_tests::net`), with the calls
/// these tests make: users as `(id, token)`, an image-filter node per call,
/// tasks by SLA and time limit.
struct Net(greenmesh_tests::net::Net);

impl std::ops::Deref for Net {
    type Target = greenmesh_tests::net::Net;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Net {
    async fn start() -> Self {
        // Nodes here heartbeat only when a test says so.
        Self(
            greenmesh_tests::net::Net::start(&[
                ("SPIN_VARIABLE_LIVENESS_WINDOW_MS", "604800000"),
                ("SPIN_VARIABLE_LEASE_GRACE_MS", "604800000"),
            ])
            .await,
        )
    }

    async fn user(&self, name: &str) -> (String, String) {
        let u = self.0.user(name).await;
        (u.id, u.token)
    }

    async fn node(&self, token: &str, seed: u8, price: f64, energy: Value) -> TestNode {
        let opts = NodeOptions {
            clock: self.clock.clone(),
            ..Default::default()
        };
        let node =
            TestNode::register_with(self.app.addr, token, seed, &[("image-filter", price)], opts)
                .await
                .unwrap();
        let r = node.report_energy(energy).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        node
    }

    async fn submit(&self, token: &str, sla: &str, seconds: u32) -> Value {
        let r = self
            .call(
                token,
                "POST",
                "/api/v1/tasks",
                // A declared importance stands when nobody votes: without it
                // the vote's silence would turn the task eco.
                json!({ "task_type": "image-filter", "sla": sla, "importance": "normal",
                        "requirements": { "max_execution_time_sec": seconds } }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    async fn task(&self, token: &str, id: &str) -> Value {
        self.call(token, "GET", &format!("/api/v1/tasks/{id}"), Value::Null)
            .await
            .json()
    }
}

/// Energy JSON: `now` g/kWh with `clean` share and a forecast of
/// `(minutes ahead, g/kWh)` half-hour points.
fn grid(clock: &VirtualClock, now: f32, clean: f32, ahead: &[(u64, f32)]) -> Value {
    let t = clock.now_ms();
    json!({
        "sources": [["wind", clean], ["grid", 1.0 - clean]],
        "clean_share": clean,
        "carbon_intensity": now,
        "forecast": ahead.iter().map(|(m, v)| json!({ "timestamp": t + m * MINUTE, "duration": 30, "value": v })).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn a_high_task_waits_for_a_cleaner_forecast_slot_and_an_urgent_one_never_waits() {
    let net = Net::start().await;
    let (_, token) = net.user("u").await;
    let node = net
        .node(
            &token,
            81,
            1.0,
            grid(
                &net.clock,
                300.0,
                0.2,
                &[(30, 290.0), (60, 280.0), (120, 100.0), (150, 250.0)],
            ),
        )
        .await;
    let high = net.submit(&token, "high", 600).await;
    assert_eq!(high["status"], "queued", "{high}");
    assert_eq!(high["decision"]["deferred"], true);
    let why = high["reason"].as_str().unwrap();
    assert!(
        why.contains("300 gCO2/kWh now") && why.contains("100 forecast"),
        "{why}"
    );

    let urgent = net.submit(&token, "urgent", 600).await;
    assert_eq!(
        urgent["status"], "leased",
        "urgent: any energy, at once: {urgent}"
    );

    // Two hours later the forecast slot has come: the grid is at 100.
    net.clock.advance(Duration::from_millis(2 * HOUR));
    node.report_energy(grid(&net.clock, 100.0, 0.6, &[(30, 250.0)]))
        .await
        .unwrap();
    let t = net.task(&token, &id(&high)).await;
    assert_eq!(t["status"], "leased", "{t}");
    assert_eq!(t["decision"]["chosen"]["carbon_intensity"], 100.0);
}

#[tokio::test]
async fn a_patient_task_always_starts_by_its_deadline() {
    let net = Net::start().await;
    let (_, token) = net.user("u").await;
    // The forecast keeps promising a much cleaner hour, always an hour away.
    let promise = |clock: &VirtualClock| grid(clock, 300.0, 0.2, &[(60, 50.0), (90, 300.0)]);
    let node = net.node(&token, 82, 1.0, promise(&net.clock)).await;
    let task = net.submit(&token, "high", 600).await;
    let created = task["created_at"].as_u64().unwrap();
    // Re-decided every ten minutes for a day: it waits while the promised
    // slot is before the 24 h deadline, then starts rather than miss it.
    let mut leased_at = None;
    for _ in 0..(24 * 6) {
        net.clock.advance(Duration::from_millis(10 * MINUTE));
        node.report_energy(promise(&net.clock)).await.unwrap();
        let t = net.task(&token, &id(&task)).await;
        if t["status"] == "leased" {
            leased_at = Some(net.clock.now_ms());
            break;
        }
    }
    let leased_at = leased_at.expect("started before the deadline");
    assert!(
        leased_at <= created + 24 * HOUR,
        "started {} min late",
        (leased_at - created) / MINUTE
    );
    assert!(
        leased_at >= created + 22 * HOUR,
        "it should have waited for the promised slot"
    );
}

#[tokio::test]
async fn eco_waits_for_clean_energy_and_solar_or_wind_only_stay_home_for_their_source() {
    let net = Net::start().await;
    let (_, alice) = net.user("alice").await;
    let (_, bob) = net.user("bob").await;
    let home = net
        .node(&alice, 83, 5.0, grid(&net.clock, 400.0, 0.3, &[]))
        .await;
    let sunny = json!({ "sources": [["solar", 0.9], ["grid", 0.1]], "clean_share": 0.9, "carbon_intensity": 40.0 });
    let _bobs = net.node(&bob, 84, 1.0, sunny.clone()).await;

    // Eco goes to Bob's clean node at once; Alice's 30 % node would not do.
    let eco = net.submit(&alice, "eco", 60).await;
    assert_eq!(eco["status"], "leased");
    assert_ne!(eco["node_id"], home.id.as_str());

    // solar_only never leaves Alice's own node, and waits for its sun.
    let solar = net.submit(&alice, "solar_only", 60).await;
    assert_eq!(solar["status"], "queued", "{solar}");
    let declined = solar["decision"]["declined"].to_string();
    assert!(declined.contains("solar is under 50 %"), "{declined}");
    home.report_energy(sunny).await.unwrap();
    let t = net.task(&alice, &id(&solar)).await;
    assert_eq!(
        (t["status"].as_str(), t["node_id"].as_str()),
        (Some("leased"), Some(home.id.as_str()))
    );

    // wind_only waits through the sunny spell, and runs when the wind rises.
    let wind = net.submit(&alice, "wind_only", 60).await;
    assert_eq!(wind["status"], "queued", "{wind}");
    let windy = json!({ "sources": [["wind", 0.7], ["grid", 0.3]], "clean_share": 0.7, "carbon_intensity": 90.0 });
    home.report_energy(windy).await.unwrap();
    let t = net.task(&alice, &id(&wind)).await;
    assert_eq!(
        (t["status"].as_str(), t["node_id"].as_str()),
        (Some("leased"), Some(home.id.as_str())),
        "{t}"
    );
}

#[tokio::test]
async fn normal_tasks_are_interrupted_when_energy_gets_worse_and_high_ones_run_on() {
    let net = Net::start().await;
    let (_, token) = net.user("u").await;
    let node = net
        .node(&token, 85, 1.0, grid(&net.clock, 100.0, 0.7, &[]))
        .await;
    let normal = net.submit(&token, "normal", 600).await;
    let high = net.submit(&token, "high", 600).await;
    assert_eq!(
        (normal["status"].as_str(), high["status"].as_str()),
        (Some("leased"), Some("leased"))
    );
    let leases = node.poll(0).await.unwrap();
    assert_eq!(leases.len(), 2);

    // The grid doubles: the interruptible task is stopped and re-queued.
    node.report_energy(grid(&net.clock, 200.0, 0.3, &[]))
        .await
        .unwrap();
    let n = net.task(&token, &id(&normal)).await;
    let h = net.task(&token, &id(&high)).await;
    assert_eq!(h["status"], "leased", "high is not interruptible: {h}");
    assert_ne!(n["lease_id"], normal["lease_id"], "{n}");
    assert!(
        n["status"] == "queued" || n["lease_id"] != normal["lease_id"],
        "interrupted and re-queued (or re-leased): {n}"
    );
    let (lease, _) = leases
        .iter()
        .find(|(l, _)| l.task_id == id(&normal))
        .unwrap();
    let r = node
        .post_result(&lease.lease_id, &node.receipt(lease, "x"), "x")
        .await
        .unwrap();
    assert_eq!(r.status, 410, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "lease_interrupted");
    let events = net.app.get("/api/v1/events?limit=200").await.json();
    assert!(events["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event_type"] == "task_interrupted"));
}

#[tokio::test]
async fn every_run_is_accounted_with_the_right_carbon_arithmetic() {
    let net = Net::start().await;
    let (alice_id, alice) = net.user("alice").await;
    let (_, bob) = net.user("bob").await;
    // Alice's own node sits on a 450 g/kWh grid; Bob's runs on 50 g/kWh, 80 % clean.
    let _home = net
        .node(&alice, 86, 1.0, grid(&net.clock, 450.0, 0.1, &[]))
        .await;
    let bobs = net
        .node(&bob, 87, 1.0, grid(&net.clock, 50.0, 0.8, &[]))
        .await;
    let task = net.submit(&alice, "high", 600).await;
    assert_eq!(
        task["node_id"],
        bobs.id.as_str(),
        "clean energy wins the score: {task}"
    );

    let (lease, _) = bobs.poll(0).await.unwrap().remove(0);
    let mut receipt = bobs.receipt(&lease, "done");
    receipt.energy_wh = 200.0;
    receipt.duration_ms = 600_000; // ten minutes at 1.2 kW
    receipt.sign(&bobs.key.sk);
    let r = bobs
        .post_result(&lease.lease_id, &receipt, "done")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    // 200 Wh × 50 g/kWh = 10 g emitted; at home 200 × 450 = 90 g; 80 g saved.
    let ledger = net.app.get("/api/v1/ledger").await.json();
    let e = &ledger["entries"][0];
    assert_eq!(e["task_id"], id(&task).as_str());
    assert_eq!(e["to_node"], bobs.id.as_str());
    assert_eq!(e["emitted_g"], 10.0);
    assert_eq!(e["baseline_g_per_kwh"], 450.0);
    assert_eq!(e["saved_g"], 80.0);
    assert!(ledger["signal"]
        .as_str()
        .unwrap()
        .contains("average, location-based"));

    let impact = net
        .call(&alice, "GET", "/api/v1/users/me/impact", Value::Null)
        .await
        .json();
    assert_eq!(impact["user_id"], alice_id.as_str());
    assert_eq!(impact["tasks_executed"], 1);
    assert_eq!(impact["carbon_saved_g"], 80.0);
    assert_eq!(impact["energy_clean_wh"], 160.0);
    assert_eq!(impact["energy_dirty_wh"], 40.0);
    assert_eq!(impact["renewable_share"], 0.8);
    assert_eq!(impact["this_month"]["tasks_executed"], 1);
    let other = net
        .call(
            &bob,
            "GET",
            &format!("/api/v1/users/{alice_id}/impact"),
            Value::Null,
        )
        .await;
    assert_eq!(other.status, 403);
    let events = net.app.get("/api/v1/events?limit=200").await.json();
    let saved = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "carbon_saved")
        .cloned();
    assert_eq!(saved.unwrap()["data"]["g_co2"], 80.0);
}

#[tokio::test]
async fn a_forecast_with_a_bad_timestamp_is_refused_and_changes_nothing() {
    let net = Net::start().await;
    let (_, token) = net.user("u").await;
    let node = net
        .node(&token, 88, 1.0, grid(&net.clock, 120.0, 0.5, &[]))
        .await;
    // Words, a date that does not exist, and a multi-byte character where a
    // digit belongs (which once made the parser slice inside it: a 500).
    for bad in ["tomorrow", "2026-02-31T07:00:00Z", "2026-03-0€T07:00:00Z"] {
        let r = node
            .report_energy(json!({ "clean_share": 0.5, "carbon_intensity": 10.0,
                                   "forecast": [{ "timestamp": bad, "duration": 30, "value": 5.0 }] }))
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["field"], "energy.forecast[0].timestamp");
    }
    let n = net
        .app
        .get(&format!("/api/v1/nodes/{}", node.id))
        .await
        .json();
    assert_eq!(n["energy"]["carbon_intensity"], 120.0);
    let r = node
        .report_energy(json!({ "clean_share": 0.5, "carbon_intensity": 10.0,
                               "forecast": [{ "timestamp": "2026-03-08T07:00:00Z", "duration": 30, "value": 5.0 }] }))
        .await
        .unwrap();
    assert_eq!(
        r.status,
        200,
        "RFC 3339 timestamps, as the Carbon Aware SDK sends them: {}",
        r.text()
    );
    let n = net
        .app
        .get(&format!("/api/v1/nodes/{}", node.id))
        .await
        .json();
    assert_eq!(
        n["energy"]["forecast"][0]["timestamp"],
        "2026-03-08T07:00:00Z"
    );
}
