//! `spin:postgres/postgres@4.0.0` on a real Postgres server (Debian's
//! `postgresql`, started by the test): statements and types both ways,
//! the pooled connection keeping its session, errors as the WIT words
//! them, and `allowed_outbound_hosts` (a template over a variable) holding.

use greenmesh_tests::postgres::Postgres;
use greenmesh_tests::{Start, TestApp};
use serde_json::{json, Value};

async fn pg(app: &TestApp, path: &str, address: &str, statements: Value) -> greenmesh_tests::Reply {
    let body = json!({ "address": address, "statements": statements }).to_string();
    app.request("POST", path, body).await.unwrap()
}

/// `tests/apps/postgres.toml` (the store guest, granted `server`'s port).
async fn store_app(server: &Postgres) -> (TestApp, tempfile::TempDir) {
    store_app_with(server, &[]).await
}

/// [`store_app`] with `env` set for the host.
async fn store_app_with(server: &Postgres, env: &[(&str, &str)]) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut start = Start::new("postgres.toml", dir.path())
        .env("SPIN_VARIABLE_PG_PORT", &server.port.to_string());
    for (k, v) in env {
        start = start.env(k, v);
    }
    (start.start().await.unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_reads_and_writes_postgres_with_its_types() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.database("app");
    let (app, _dir) = store_app(&server).await;
    let created = pg(
        &app,
        "/pg",
        &url,
        json!([{ "sql": "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, n INTEGER,
                          x DOUBLE PRECISION, ok BOOLEAN, data BYTEA, doc JSONB, amount NUMERIC)",
                 "execute": true }]),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    // An int64 fills an INTEGER and a NUMERIC's placeholder is refused
    // with the reason; a str fills JSONB.
    let inserted = pg(
        &app,
        "/pg",
        &url,
        json!([{ "sql": "INSERT INTO t (name, n, x, ok, data, doc) VALUES ($1, $2, $3, $4, $5, $6), ($7, NULL, NULL, NULL, NULL, NULL)",
                 "params": ["ada", 7, 2.5, true, { "binary": [0, 255] }, "{\"k\": [1, 2]}", "bob"],
                 "execute": true }]),
    )
    .await;
    assert_eq!(
        inserted.json(),
        json!({ "changed": 2 }),
        "{}",
        inserted.text()
    );
    pg(
        &app,
        "/pg",
        &url,
        json!([{ "sql": "UPDATE t SET amount = 12.50 WHERE name = 'ada'", "execute": true }]),
    )
    .await;
    let rows = pg(
        &app,
        "/pg",
        &url,
        json!([{ "sql": "SELECT id, name, n, x, ok, data, doc, amount FROM t ORDER BY id" }]),
    )
    .await;
    assert_eq!(rows.status, 200, "{}", rows.text());
    let v = rows.json();
    assert_eq!(
        v["columns"],
        json!(["id", "name", "n", "x", "ok", "data", "doc", "amount"])
    );
    let ada = &v["rows"][0];
    assert_eq!(ada[0], 1);
    assert_eq!(ada[1], "ada");
    assert_eq!(ada[2], 7);
    assert_eq!(ada[3], 2.5);
    assert_eq!(ada[4], true);
    assert_eq!(ada[5], json!({ "binary": [0, 255] }));
    assert_eq!(ada[6], json!({ "jsonb": "{\"k\": [1, 2]}" }));
    assert!(
        ada[7]["decimal"].as_str().unwrap().contains("12.50"),
        "{ada}"
    );
    assert_eq!(
        v["rows"][1],
        json!([2, "bob", null, null, null, null, null, null])
    );
    // The server saw what the guest wrote.
    assert_eq!(
        server.psql("app", "SELECT doc->'k'->>1 FROM t WHERE name = 'ada'"),
        "2"
    );

    // One connection is one session: a temporary table lives across its
    // statements.
    let session = pg(
        &app,
        "/pg",
        &url,
        json!([
            { "sql": "CREATE TEMP TABLE scratch (v BIGINT)", "execute": true },
            { "sql": "INSERT INTO scratch VALUES ($1)", "params": [41], "execute": true },
            { "sql": "SELECT v + 1 AS answer FROM scratch" },
        ]),
    )
    .await;
    assert_eq!(session.json()["rows"], json!([[42]]), "{}", session.text());

    // Errors as the WIT words them: Postgres's own code and message.
    let wrong = pg(
        &app,
        "/pg",
        &url,
        json!([{ "sql": "INSERT INTO t (name) VALUES (NULL)", "execute": true }]),
    )
    .await;
    assert_eq!(wrong.status, 502);
    let text = wrong.text();
    assert!(
        text.contains("23502") && text.contains("not-null"),
        "{text}"
    );
    let mistyped = pg(
        &app,
        "/pg",
        &url,
        json!([{ "sql": "SELECT name FROM t WHERE id = $1", "params": ["one"] }]),
    )
    .await;
    assert!(
        mistyped.text().contains("str parameter cannot fill a int8"),
        "{}",
        mistyped.text()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_reaching_a_database_outside_its_allowed_hosts_is_refused() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url("postgres");
    let (app, _dir) = store_app(&server).await;
    let select = json!([{ "sql": "SELECT 1 AS one" }]);
    // Granted: answered.
    let ok = pg(&app, "/pg", &url, select.clone()).await;
    assert_eq!(ok.json()["rows"], json!([[1]]), "{}", ok.text());
    // The same guest without the grant, another port, a Unix socket:
    // refused before any connection is made.
    for (path, address) in [
        ("/nogrant/pg", url.clone()),
        (
            "/pg",
            format!(
                "postgres://greenmesh@127.0.0.1:{}/postgres",
                server.port + 1
            ),
        ),
        ("/pg", "host=/var/run/postgresql user=greenmesh".to_string()),
    ] {
        let r = pg(&app, path, &address, select.clone()).await;
        assert!(
            r.status == 403 || r.text().contains("Unix-socket"),
            "{path} {address}: {} {}",
            r.status,
            r.text()
        );
    }
    app.stop().await;
}

/// A component granted one host name names it with a `hostaddr` pointing
/// elsewhere (the name then only names the server for TLS, as libpq has
/// it): where the connection would go is checked too, and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_granted_a_name_pointing_its_hostaddr_elsewhere_is_refused() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (app, _dir) = store_app(&server).await;
    let select = json!([{ "sql": "SELECT 1 AS one" }]);
    let address = format!(
        "host=db.example hostaddr=127.0.0.1 port={} user=greenmesh dbname=postgres",
        server.port
    );
    // Granted `db.example` only: 127.0.0.1 is not.
    let refused = pg(&app, "/named/pg", &address, select.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("hostaddr 127.0.0.1"),
        "{}",
        refused.text()
    );
    // Granted the name and the address: reached.
    let reached = pg(&app, "/aliased/pg", &address, select).await;
    assert_eq!(reached.json()["rows"], json!([[1]]), "{}", reached.text());
    app.stop().await;
}

/// A component opening connection after connection holds one pooled
/// client, not one each (they share its session), and one naming ever
/// new addresses is stopped at the cap: neither drains the app's pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_opening_connections_in_a_loop_holds_one_client() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url("postgres");
    let (app, _dir) = store_app(&server).await;
    // 200 connections (far over the pool's 64) to one address, each
    // asked which server process it is.
    let open: Vec<String> = (0..200).map(|_| url.clone()).collect();
    let statements: Vec<Value> = (0..200)
        .map(|i| json!({ "sql": "SELECT pg_backend_pid() AS pid", "on": i }))
        .collect();
    let body = json!({ "address": url, "open": open, "statements": statements, "all": true });
    let r = app.request("POST", "/pg", body.to_string()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let pids: std::collections::BTreeSet<i64> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rows"][0][0].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 1, "one session for every connection: {pids:?}");
    // Distinct addresses to the same server: four sessions, the fifth
    // refused with the reason.
    let open: Vec<String> = (0..5)
        .map(|i| format!("{url}?application_name=a{i}"))
        .collect();
    let body = json!({ "address": url, "open": open, "statements": [] });
    let r = app.request("POST", "/pg", body.to_string()).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["opening"], 4, "{}", r.text());
    assert!(r.text().contains("4 database addresses"), "{}", r.text());
    // The sessions went back to the pool with the request: the next one
    // is served.
    let ok = pg(&app, "/pg", &url, json!([{ "sql": "SELECT 1 AS one" }])).await;
    assert_eq!(ok.json()["rows"], json!([[1]]), "{}", ok.text());
    // A new address per request (each pool would keep an idle server
    // connection): the app stops making pools at its cap.
    let mut refused = None;
    for i in 0..12 {
        let r = pg(
            &app,
            "/pg",
            &format!("{url}?application_name=b{i}"),
            json!([{ "sql": "SELECT 1" }]),
        )
        .await;
        if r.status != 200 {
            refused = Some(r.text());
            break;
        }
    }
    let refused = refused.expect("refused before 12 new addresses");
    assert!(
        refused.contains("pools for 8 database addresses"),
        "{refused}"
    );
    // The addresses already in use still serve.
    let ok = pg(&app, "/pg", &url, json!([{ "sql": "SELECT 1 AS one" }])).await;
    assert_eq!(ok.json()["rows"], json!([[1]]), "{}", ok.text());
    app.stop().await;
}

/// A request leaves an advisory lock held and a temporary table in its
/// session, hoping to hang or read the next request that gets the pooled
/// client: the client is reset before it serves again (one client in the
/// pool, so the next request has the same server process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_leaving_a_lock_and_a_temporary_table_in_its_session_cannot_reach_the_next() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let url = server.url("postgres");
    let (app, _dir) = store_app_with(&server, &[("GREENMESH_POSTGRES_POOL_SIZE", "1")]).await;
    let left = pg(
        &app,
        "/pg",
        &url,
        json!([
            { "sql": "SELECT pg_advisory_lock(7146032)" },
            { "sql": "CREATE TEMP TABLE left_behind AS SELECT 'secret' AS v", "execute": true },
            { "sql": "SELECT pg_backend_pid() AS pid" },
        ]),
    )
    .await;
    assert_eq!(left.status, 200, "{}", left.text());
    let pid = &left.json()["rows"][0][0];
    let answers = {
        let body = json!({ "address": url, "statements": [
            { "sql": "SELECT pg_backend_pid() AS pid" },
            { "sql": "SELECT pg_try_advisory_lock(7146032) AS got" },
            { "sql": "SELECT to_regclass('pg_temp.left_behind') IS NULL AS gone" },
        ], "all": true });
        app.request("POST", "/pg", body.to_string()).await.unwrap()
    };
    assert_eq!(answers.status, 200, "{}", answers.text());
    let a = answers.json();
    assert_eq!(&a[0]["rows"][0][0], pid, "the same pooled client: {a}");
    assert_eq!(a[1]["rows"][0][0], true, "the lock was released: {a}");
    assert_eq!(
        a[2]["rows"][0][0], true,
        "the temporary table was dropped: {a}"
    );
    app.stop().await;
}

/// Whether the connection `address` opens (through the store guest at
/// `path`) is encrypted, by the server's own account (`pg_stat_ssl`).
async fn encrypted(app: &TestApp, path: &str, address: &str) -> greenmesh_tests::Reply {
    let ssl = json!([{ "sql": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" }]);
    pg(app, path, address, ssl).await
}

/// A database that takes TLS connections only (a managed database's way):
/// `verify-full` reaches it encrypted once the host trusts its CA
/// (`GREENMESH_POSTGRES_CA_CERT`), fails on the certificate without that,
/// and a connection in the clear is refused by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_served_over_tls_is_reached_encrypted_and_its_certificate_checked() {
    let Some(server) = Postgres::start_with_tls() else {
        return;
    };
    let ca = server.ca_cert.clone().unwrap();
    let url = server.url("postgres");
    let mode = |mode: &str| format!("{url}?sslmode={mode}");
    let with_ca = |ca: &std::path::Path| {
        let ca = ca.to_str().unwrap().to_string();
        let server = &server;
        async move { store_app_with(server, &[("GREENMESH_POSTGRES_CA_CERT", &ca)]).await }
    };
    let (app, _dir) = with_ca(&ca).await;
    for m in ["verify-full", "verify-ca", "require"] {
        let r = encrypted(&app, "/pg", &mode(m)).await;
        assert_eq!(r.json()["rows"], json!([[true]]), "{m}: {}", r.text());
    }
    let clear = encrypted(&app, "/pg", &mode("disable")).await;
    assert_eq!(clear.status, 502, "{}", clear.text());
    assert!(clear.text().contains("pg_hba.conf"), "{}", clear.text());
    // Reached by a name its certificate does not carry (`db.example` at
    // 127.0.0.1): `verify-full` refuses the name; `verify-ca` checks the
    // chain only, and `require` with a CA of the host's own is `verify-ca`.
    let aliased = |mode: &str| {
        format!(
            "host=db.example hostaddr=127.0.0.1 port={} user=greenmesh dbname=postgres sslmode={mode}",
            server.port
        )
    };
    let r = encrypted(&app, "/aliased/pg", &aliased("verify-full")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("not valid for name"), "{}", r.text());
    for m in ["verify-ca", "require"] {
        let r = encrypted(&app, "/aliased/pg", &aliased(m)).await;
        assert_eq!(r.json()["rows"], json!([[true]]), "{m}: {}", r.text());
    }
    app.stop().await;

    // A CA of the host's own that did not sign the server's certificate:
    // `verify-ca` and `require` check the chain against it and refuse.
    let other_dir = tempfile::tempdir().unwrap();
    let other = greenmesh_tests::tls::TestPki::new(other_dir.path(), "another CA");
    let (app, _dir) = with_ca(&other.ca_cert).await;
    for m in ["verify-ca", "require"] {
        let r = encrypted(&app, "/pg", &mode(m)).await;
        assert_eq!(r.status, 502, "{m}: {}", r.text());
        assert!(r.text().contains("UnknownIssuer"), "{m}: {}", r.text());
    }
    app.stop().await;

    // Without the private CA: the chain is not trusted, and nothing is sent.
    let (app, _dir) = store_app(&server).await;
    let r = encrypted(&app, "/pg", &mode("verify-full")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("UnknownIssuer"), "{}", r.text());
    // `verify-ca` would accept any public CA's certificate for any name:
    // refused without a CA of the host's own.
    let r = encrypted(&app, "/pg", &mode("verify-ca")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("verify-full"), "{}", r.text());
    // `require` encrypts without checking, as libpq's does.
    let r = encrypted(&app, "/pg", &mode("require")).await;
    assert_eq!(r.json()["rows"], json!([[true]]), "{}", r.text());
    app.stop().await;
}

/// A component names a host file as its root certificate or key, hoping
/// the host will read it: refused before anything is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_naming_a_host_file_as_its_certificate_is_refused() {
    let Some(server) = Postgres::start() else {
        return;
    };
    let (app, _dir) = store_app(&server).await;
    let address = format!(
        "{}?sslmode=verify-full&sslrootcert=/etc/shadow",
        server.url("postgres")
    );
    let r = pg(&app, "/pg", &address, json!([{ "sql": "SELECT 1" }])).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("GREENMESH_POSTGRES_CA_CERT"),
        "{}",
        r.text()
    );
    app.stop().await;
}

/// The coordinator on the Postgres backend: the whole life of a task
/// through every component's tables (users, the marketplace, quotes,
/// quota, leases, reputation, the ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_runs_a_task_to_completion_on_postgres() {
    use greenmesh_tests::node::{register_user, TestNode};
    if greenmesh_tests::postgres::Postgres::start().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = Start::coordinator(dir.path()).on_postgres();
    let app = start.start().await.unwrap();
    let health = greenmesh_tests::send(app.addr, "GET", "/api/v1/health", Default::default())
        .await
        .unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let token = register_user(app.addr, "alice").await.unwrap();
    let node = TestNode::register(app.addr, &token, 51, &[("image-filter", 1.0)])
        .await
        .unwrap();
    let id = greenmesh_tests::submit_image_filter(app.addr, &token).await;
    node.complete_next("done").await;
    let done = greenmesh_tests::call_as(
        app.addr,
        &token,
        "GET",
        &format!("/api/v1/tasks/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(done.json()["status"], "completed", "{}", done.text());
    // Every component kept its tables in Postgres, none in SQLite.
    let server = start.postgres.as_ref().unwrap();
    let tables = server.psql(
        "greenmesh",
        "SELECT string_agg(component || '=' || version, ',' ORDER BY component) FROM storage_versions",
    );
    assert!(
        tables.contains("broker=") && tables.contains("reputation="),
        "{tables}"
    );
    let ledger = greenmesh_tests::send(app.addr, "GET", "/api/v1/ledger", Default::default())
        .await
        .unwrap()
        .json();
    assert_eq!(ledger["totals"]["runs"], 1, "{ledger}");
    assert!(
        !dir.path().join("sqlite_db.db").exists()
            || server.psql("greenmesh", "SELECT count(*) FROM broker_tasks") == "1"
    );
    app.stop().await;
}

/// The database goes away under a running coordinator (a crash, a
/// failover): requests are answered `503` with `Retry-After`, busy rather
/// than broken, never `500`; once it is back, the same coordinator serves
/// again and the task accepted before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_answered_busy_and_what_it_accepted_survives() {
    use greenmesh_tests::node::register_user;
    if greenmesh_tests::postgres::Postgres::start().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = Start::coordinator(dir.path()).on_postgres();
    let app = start.start().await.unwrap();
    let token = register_user(app.addr, "alice").await.unwrap();
    let id = greenmesh_tests::submit_image_filter(app.addr, &token).await;
    let server = start.postgres.as_ref().unwrap();
    let task = |addr, token: String, id: String| async move {
        greenmesh_tests::call_as(
            addr,
            &token,
            "GET",
            &format!("/api/v1/tasks/{id}"),
            Value::Null,
        )
        .await
    };

    server.stop_abruptly();
    let busy = task(app.addr, token.clone(), id.clone()).await;
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert_eq!(
        busy.json()["error"]["code"],
        "database_busy",
        "{}",
        busy.text()
    );
    assert_eq!(
        busy.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "{:?}",
        busy.headers
    );

    server.start_again();
    let back = task(app.addr, token, id.clone()).await;
    assert_eq!(back.status, 200, "{}", back.text());
    assert_eq!(back.json()["id"], id.as_str(), "{}", back.text());
    app.stop().await;
}
