//! Scale-out (issue 23): three `greenmesh up` replicas of `spin.toml` on one
//! real Postgres server, two real `greenmesh provide` nodes, tasks
//! submitted round-robin while one replica is killed with SIGKILL and
//! started again. Every task answered `201` completes exactly once: one
//! completed lease, one receipt, one ledger run, one completion event.
//! And two replicas allow a requester what one would: the rate limit and
//! the daily quota are shared rows, counted by compare-and-set.

use greenmesh_tests::postgres::Postgres;
use greenmesh_tests::process::free_port;
use greenmesh_tests::provider::{kernel, kernel_dir, ProviderSpec};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How many tasks the test submits (`GREENMESH_REPLICA_TASKS` to change).
fn tasks() -> usize {
    std::env::var("GREENMESH_REPLICA_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

const SEED: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

/// Replica processes, killed when the test ends (passing or not).
struct Replicas(Vec<std::process::Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for r in &mut self.0 {
            let _ = r.kill();
            let _ = r.wait();
        }
    }
}

/// One `greenmesh up` of the repository's `spin.toml` on the database.
fn replica(pg: &Postgres, database: &str, port: u16, state: &Path) -> std::process::Child {
    replica_with(pg, database, port, state, &[])
}

/// [`replica`] with `env` over its settings.
fn replica_with(
    pg: &Postgres,
    database: &str,
    port: u16,
    state: &Path,
    env: &[(&str, &str)],
) -> std::process::Child {
    let bin = greenmesh_tests::tests_dir().join("../target/debug/greenmesh");
    assert!(bin.exists(), "build the host first (cargo xtask test does)");
    std::fs::create_dir_all(state).unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["--log-level", "warn", "up", "-f"])
        .arg(greenmesh_tests::tests_dir().join("../spin.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(state)
        .env("SPIN_VARIABLE_DATABASE_URL", database)
        .env(
            "SPIN_VARIABLE_DATABASE_HOST",
            format!("127.0.0.1:{}", pg.port),
        )
        // One signing key for every replica (their key-value stores differ).
        .env("SPIN_VARIABLE_BROKER_SIGNING_SEED", SEED)
        .env("SPIN_VARIABLE_QUOTAS", "off")
        .env("SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE", "1000000")
        .env("SPIN_VARIABLE_DISPATCH_TICK_MS", "200")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(state.join("stderr.log")).unwrap());
    for (k, v) in greenmesh_tests::TEST_IDENTITY_RULES {
        cmd.env(k, v);
    }
    cmd.envs(env.iter().copied());
    cmd.spawn().unwrap()
}

/// `n` free loopback ports for replicas, and their addresses.
fn loopback_ports(n: usize) -> (Vec<u16>, Vec<SocketAddr>) {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let addrs = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    (ports, addrs)
}

async fn healthy(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) =
            greenmesh_tests::send(addr, "GET", "/api/v1/health", Default::default()).await
        {
            if r.status == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "replica {addr} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_postgres_complete_every_accepted_task_once_through_a_sigkill() {
    let Some(pg) = Postgres::start() else { return };
    let database = pg.database("greenmesh");
    let dir = tempfile::tempdir().unwrap();
    let (ports, addrs) = loopback_ports(3);
    let state = |i: usize| dir.path().join(format!("replica-{i}"));
    // Started together: their migrations take turns on the advisory lock.
    let mut replicas = Replicas(
        (0..3)
            .map(|i| replica(&pg, &database, ports[i], &state(i)))
            .collect(),
    );
    for addr in &addrs {
        healthy(*addr, Duration::from_secs(60)).await;
    }
    // One account, seen by every replica.
    let token = greenmesh_tests::node::register_user(addrs[0], "requester")
        .await
        .unwrap();
    let me =
        greenmesh_tests::call_as(addrs[2], &token, "GET", "/api/v1/users/me", Value::Null).await;
    assert_eq!(
        me.status,
        200,
        "a user made on one replica is known to another: {}",
        me.text()
    );
    // Two real nodes, each long-polling a different replica.
    let kernels = kernel_dir(dir.path(), &[(&kernel("noop"), "noop.wasm")]);
    let providers: Vec<_> = [1usize, 2]
        .iter()
        .map(|&i| {
            ProviderSpec::new(
                addrs[i],
                &token,
                &kernels,
                &dir.path().join(format!("node-{i}")),
            )
            .env("MESH_PEER_ID", &format!("node-{i}"))
            .spawn()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = greenmesh_tests::send(addrs[0], "GET", "/api/v1/nodes", Default::default())
            .await
            .unwrap()
            .json();
        let online = nodes["nodes"]
            .as_array()
            .map_or(0, |n| n.iter().filter(|n| n["status"] == "online").count());
        if online == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not come online: {nodes}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Round-robin submissions; replica 1 is killed a third of the way in
    // and started again at half-way.
    let n = tasks();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..n {
        if i == n / 3 {
            replicas.0[1].kill().unwrap(); // SIGKILL
            replicas.0[1].wait().unwrap();
        }
        if i == n / 2 {
            replicas.0[1] = replica(&pg, &database, ports[1], &state(1));
            healthy(addrs[1], Duration::from_secs(60)).await;
        }
        let body = json!({ "task_type": "computation", "capability": "noop", "max_price": 10.0,
                           "inputs": { "text": format!("task {i}") } });
        match greenmesh_tests::send_with(
            addrs[i % 3],
            "POST",
            "/api/v1/tasks",
            bytes::Bytes::from(body.to_string()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
        {
            Ok(r) if r.status == 201 => accepted.push(r.json()["id"].as_str().unwrap().to_string()),
            Ok(r) => panic!("submission {i} answered {}: {}", r.status, r.text()),
            // The killed replica: nothing accepted, nothing to complete.
            Err(_) => refused += 1,
        }
    }
    assert!(
        refused > 0 && refused < n / 3,
        "{refused} submissions met the dead replica"
    );

    // Every accepted task completes.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done: usize = pg
            .psql(
                "greenmesh",
                "SELECT count(*) FROM broker_tasks WHERE status = 'completed'",
            )
            .parse()
            .unwrap();
        if done == accepted.len() {
            break;
        }
        let logs: Vec<String> = providers.iter().map(|p| p.log()).collect();
        assert!(
            Instant::now() < deadline,
            "{done} of {} completed\n{}",
            accepted.len(),
            logs.join("\n")
                .chars()
                .rev()
                .take(4000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let total: usize = pg
        .psql("greenmesh", "SELECT count(*) FROM broker_tasks")
        .parse()
        .unwrap();
    assert_eq!(
        total,
        accepted.len(),
        "a task exists that no one was told of"
    );
    // Exactly once: one completed lease and one completion event per task,
    // one ledger run per task, and the ledger's totals say the same.
    let twice = pg.psql(
        "greenmesh",
        "SELECT count(*) FROM (SELECT task_id FROM broker_leases WHERE status = 'completed'
                               GROUP BY task_id HAVING count(*) > 1) AS d",
    );
    assert_eq!(twice, "0", "a task completed on two leases");
    let leases: usize = pg
        .psql(
            "greenmesh",
            "SELECT count(*) FROM broker_leases WHERE status = 'completed'",
        )
        .parse()
        .unwrap();
    assert_eq!(leases, accepted.len());
    let runs: usize = pg
        .psql(
            "greenmesh",
            "SELECT count(*) FROM broker_carbon WHERE status = 'completed'",
        )
        .parse()
        .unwrap();
    assert_eq!(runs, accepted.len(), "one ledger run per task");
    let events: usize = pg
        .psql(
            "greenmesh",
            "SELECT count(DISTINCT task_id) FROM broker_events WHERE event_type = 'task_completed'",
        )
        .parse()
        .unwrap();
    let event_rows: usize = pg
        .psql(
            "greenmesh",
            "SELECT count(*) FROM broker_events WHERE event_type = 'task_completed'",
        )
        .parse()
        .unwrap();
    assert_eq!(
        (events, event_rows),
        (accepted.len(), accepted.len()),
        "one completion event per task"
    );
    let ledger = greenmesh_tests::send(
        addrs[1],
        "GET",
        "/api/v1/ledger?limit=1",
        Default::default(),
    )
    .await
    .unwrap()
    .json();
    assert_eq!(ledger["totals"]["runs"], accepted.len(), "{ledger}");
    drop(replicas);
    drop(providers);
}

/// A requester spreads bursts of requests over two replicas, hoping each
/// keeps its own count or that racing requests all see room: the rate
/// limit, the free tier's daily quota and the registrations per address
/// are rows in the shared database, counted by compare-and-set or one at
/// a time, so two replicas together allow exactly what one would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_spreading_bursts_over_replicas_gets_no_more_than_one_replica_allows() {
    let Some(pg) = Postgres::start() else { return };
    let database = pg.database("greenmesh");
    let dir = tempfile::tempdir().unwrap();
    let (ports, addrs) = loopback_ports(2);
    let env = [
        ("SPIN_VARIABLE_QUOTAS", "on"),
        ("SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE", "40"),
        ("SPIN_VARIABLE_REGISTRATIONS_PER_ADDRESS_PER_DAY", "5"),
    ];
    let _replicas = Replicas(
        (0..2)
            .map(|i| {
                let state = dir.path().join(format!("replica-{i}"));
                replica_with(&pg, &database, ports[i], &state, &env)
            })
            .collect(),
    );
    for addr in &addrs {
        healthy(*addr, Duration::from_secs(60)).await;
    }
    let call = |i: usize, token: &str, method: &'static str, path: &'static str, body: Value| {
        let (addr, token) = (addrs[i % 2], token.to_string());
        async move { greenmesh_tests::call_as(addr, &token, method, path, body).await }
    };
    // How many of `replies` had each (status, error code).
    let tally = |replies: &[greenmesh_tests::Reply]| {
        let mut seen = std::collections::BTreeMap::<(u16, String), usize>::new();
        for r in replies {
            let code = r.json()["error"]["code"].as_str().unwrap_or("").to_string();
            *seen.entry((r.status, code)).or_default() += 1;
        }
        seen
    };
    let expect = |pairs: &[(u16, &str, usize)]| {
        pairs
            .iter()
            .map(|&(s, c, n)| ((s, c.to_string()), n))
            .collect::<std::collections::BTreeMap<_, _>>()
    };

    // Rate limit: 40 a minute for the user; 60 requests at once, half to
    // each replica.
    let spreader = greenmesh_tests::node::register_user(addrs[0], "spreader")
        .await
        .unwrap();
    let burst = futures::future::join_all(
        (0..60).map(|i| call(i, &spreader, "GET", "/api/v1/tasks", Value::Null)),
    )
    .await;
    assert_eq!(
        tally(&burst),
        expect(&[(200, "", 40), (429, "rate_limited", 20)]),
        "exactly the rate limit passes"
    );
    for i in 0..2 {
        let r = call(i, &spreader, "GET", "/api/v1/tasks", Value::Null).await;
        assert_eq!(r.status, 429, "replica {i}: {}", r.text());
    }

    // Quota: a free user's 10 tasks a day; 30 submissions at once, after
    // 8 one by one (the race is for the last rooms).
    let hoarder = greenmesh_tests::node::register_user(addrs[1], "hoarder")
        .await
        .unwrap();
    let task = json!({ "task_type": "computation", "inputs": { "n": 1 }, "max_price": 10.0 });
    for i in 0..8 {
        let r = call(i, &hoarder, "POST", "/api/v1/tasks", task.clone()).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let burst = futures::future::join_all(
        (0..30).map(|i| call(i, &hoarder, "POST", "/api/v1/tasks", task.clone())),
    )
    .await;
    assert_eq!(
        tally(&burst),
        expect(&[(201, "", 2), (429, "quota_exhausted", 28)]),
        "exactly the quota is accepted"
    );
    let quota = call(0, &hoarder, "GET", "/api/v1/users/me/quota", Value::Null)
        .await
        .json();
    assert_eq!(quota["used_today"], 10, "{quota}");
    let stored = pg.psql(
        "greenmesh",
        "SELECT count(*) FROM broker_tasks t JOIN broker_users u ON u.id = t.owner WHERE u.name = 'hoarder'",
    );
    assert_eq!(stored, "10", "exactly the accepted tasks exist");

    // Registrations: 5 a day from one address (two made above); 8 at once.
    let burst = futures::future::join_all((0..8).map(|i| {
        let body = bytes::Bytes::from(json!({ "name": format!("sybil-{i}") }).to_string());
        let addr = addrs[i % 2];
        async move {
            greenmesh_tests::send(addr, "POST", "/api/v1/users", body)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        tally(&burst),
        expect(&[(201, "", 3), (429, "registration_limited", 5)]),
        "exactly the registrations left pass"
    );
}
