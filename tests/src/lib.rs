//! Shared helpers for the end-to-end tests: start the real host in-process
//! on `127.0.0.1:0`, talk to it over loopback HTTP, find the test guests.
//!
//! The guests are built by `cargo xtask build` (or `cargo xtask test`).

use anyhow::Context;
use bytes::Bytes;
use greenmesh_host::app::LoadOptions;
use greenmesh_host::engine::EngineSettings;
use greenmesh_host::sandbox::Limits;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

/// The `tests/` folder.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test manifest under `tests/apps/`.
pub fn app_manifest(name: &str) -> PathBuf {
    tests_dir().join("apps").join(name)
}

/// The built test guest `name` (crate name with underscores).
pub fn guest(name: &str) -> PathBuf {
    let p = tests_dir()
        .join("guests/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build` first",
        p.display()
    );
    p
}

/// The repository's `spin.toml` with absolute paths, written into `dir`,
/// each `(from, to)` of `swaps` replacing one built component file by
/// another (`("pricing.wasm", "pricing_flat.wasm")` swaps the pricing plugin).
pub fn coordinator_manifest_with(dir: &Path, swaps: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(tests_dir().join("../spin.toml")).unwrap();
    let release = "components/target/wasm32-wasip2/release/";
    for (from, to) in swaps {
        text = text.replace(&format!("{release}{from}"), &format!("{release}{to}"));
    }
    let components = tests_dir().join("../components");
    let text = text
        .replace("\"components/", &format!("\"{}/", components.display()))
        .replace(
            "workdir = \"components\"",
            &format!("workdir = \"{}\"", components.display()),
        );
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Tests register many users from one loopback address and vote at once
/// with fresh accounts; every test app starts with these identity rules
/// opened up (`Start::shipped_identity_rules` puts `spin.toml`'s back, for
/// the tests of those rules).
pub const TEST_IDENTITY_RULES: &[(&str, &str)] = &[
    ("SPIN_VARIABLE_REGISTRATIONS_PER_ADDRESS_PER_DAY", "1000000"),
    ("SPIN_VARIABLE_BALLOT_MIN_AGE_HOURS", "0"),
    ("SPIN_VARIABLE_BALLOT_MIN_RECORD", "0"),
];

/// How to start a test app.
#[derive(Clone)]
pub struct Start {
    pub manifest: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_config: Option<PathBuf>,
    pub env: HashMap<String, String>,
    pub limits: Limits,
    /// The wall clock the app's components read; move it to travel in time.
    pub clock: greenmesh_host::clock::VirtualClock,
    /// Instances alive at once (concurrent requests).
    pub max_instances: u32,
    /// Serve HTTPS with this certificate (`greenmesh up --tls-cert/--tls-key`).
    pub tls: Option<greenmesh_host::Tls>,
    /// The Postgres server the coordinator's tables live in, when the
    /// suite runs on Postgres (see [`Start::coordinator`]); kept alive by
    /// every copy of this and every app started from it.
    pub postgres: Option<std::sync::Arc<postgres::Postgres>>,
}

impl Start {
    /// Defaults for `tests/apps/<name>`, with state in `state_dir`.
    pub fn new(name: &str, state_dir: &Path) -> Self {
        // Make sure guests exist before the host reports a less direct error.
        guest("echo");
        Self {
            manifest: app_manifest(name),
            state_dir: state_dir.to_path_buf(),
            runtime_config: None,
            env: TEST_IDENTITY_RULES
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            limits: Limits::default(),
            clock: Default::default(),
            max_instances: 32,
            tls: None,
            postgres: None,
        }
    }

    /// Any manifest, with state in `state_dir`.
    pub fn at(manifest: PathBuf, state_dir: &Path) -> Self {
        Self {
            manifest,
            ..Self::new("unused", state_dir)
        }
    }

    /// The repository's own coordinator (`spin.toml`), with state in
    /// `state_dir`: on SQLite, or with `GREENMESH_TEST_DATABASE=postgres`
    /// on a fresh Postgres server of its own (the one switch that runs the
    /// end-to-end suite against the Postgres backend).
    pub fn coordinator(state_dir: &Path) -> Self {
        let start = Self::at(tests_dir().join("../spin.toml"), state_dir);
        match std::env::var("GREENMESH_TEST_DATABASE").as_deref() {
            Ok("postgres") => start.on_postgres(),
            _ => start,
        }
    }

    /// Rows of `sql` run on this app's coordinator database (its SQLite
    /// file or its Postgres database), every value as text; `?` in `sql`
    /// takes the next of `params` as a text literal. For a test's own
    /// checks of what was stored.
    pub async fn database_texts(&self, sql: &str, params: &[&str]) -> Vec<Vec<Option<String>>> {
        let mut next = params.iter();
        let mut bound = String::new();
        for part in sql.split('?') {
            if !bound.is_empty() || sql.starts_with('?') {
                let p = next.next().expect("a parameter for each ?");
                bound.push_str(&format!("'{}'", p.replace('\'', "''")));
            }
            bound.push_str(part);
        }
        match &self.postgres {
            Some(server) => {
                let (client, conn) =
                    tokio_postgres::connect(&server.url("greenmesh"), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                client
                    .simple_query(&bound)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .collect()
            }
            None => {
                let db = rusqlite::Connection::open(self.state_dir.join("sqlite_db.db")).unwrap();
                let mut stmt = db.prepare(&bound).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    Ok((0..n)
                        .map(|i| match r.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Null => None,
                            rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                            rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                Some(String::from_utf8_lossy(t).into_owned())
                            }
                        })
                        .collect())
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
        }
    }

    /// The coordinator's tables in a fresh Postgres server (skipped where
    /// there is none, except in CI).
    pub fn on_postgres(mut self) -> Self {
        let server = postgres::Postgres::start().expect("a Postgres server for the test");
        let url = server.database("greenmesh");
        self.env.insert("SPIN_VARIABLE_DATABASE_URL".into(), url);
        self.env.insert(
            "SPIN_VARIABLE_DATABASE_HOST".into(),
            format!("127.0.0.1:{}", server.port),
        );
        self.postgres = Some(std::sync::Arc::new(server));
        self
    }

    /// Drops [`TEST_IDENTITY_RULES`]: registration and ballots as shipped.
    pub fn shipped_identity_rules(mut self) -> Self {
        for (k, _) in TEST_IDENTITY_RULES {
            self.env.remove(*k);
        }
        self
    }

    /// Sets a `SPIN_VARIABLE_*` style environment value.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    fn config(&self) -> greenmesh_host::UpConfig {
        self.config_with_build(false)
    }

    fn config_with_build(&self, build: bool) -> greenmesh_host::UpConfig {
        greenmesh_host::UpConfig {
            load: LoadOptions {
                manifest: self.manifest.clone(),
                runtime_config: self.runtime_config.clone(),
                state_dir: Some(self.state_dir.clone()),
                limits: self.limits,
                environment: Some(self.env.clone()),
                clock: self.clock.clone(),
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            engine: EngineSettings {
                max_instances: self.max_instances,
                max_memory_bytes: 256 << 20,
                cache_dir: Some(tests_dir().join("../target/greenmesh-test-cache")),
            },
            build,
            tls: self.tls.clone(),
            http: Default::default(),
        }
    }

    /// Loads the app without serving (to check load errors).
    pub fn load(&self) -> anyhow::Result<()> {
        let config = self.config();
        let engine = greenmesh_host::engine::build(&config.engine)?;
        greenmesh_host::app::App::load(&engine, &config.load).map(|_| ())
    }

    /// Starts serving.
    pub async fn start(&self) -> anyhow::Result<TestApp> {
        self.start_inner(false).await
    }

    async fn start_inner(&self, build: bool) -> anyhow::Result<TestApp> {
        let (tx, rx) = oneshot::channel::<()>();
        let running = greenmesh_host::start(self.config_with_build(build), async move {
            let _ = rx.await;
        })
        .await?;
        Ok(TestApp {
            addr: running.addr,
            stop: Some(tx),
            running: Some(running),
            _postgres: self.postgres.clone(),
        })
    }
}

/// A running host.
pub struct TestApp {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    running: Option<greenmesh_host::Running>,
    /// The database server, while the app may still use it.
    _postgres: Option<std::sync::Arc<postgres::Postgres>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl TestApp {
    /// Sends one request on a fresh connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        send(self.addr, method, path, body.into()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, Bytes::new())
            .await
            .expect("GET failed")
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(r) = self.running.take() {
            let _ = r.task.await;
        }
    }
}

/// Reports that the calling test could not run here and passes without
/// checking anything: a line on stderr, and one in the file named by
/// `GREENMESH_SKIPPED_LOG` (set by `.ci/run`), which counts skipped tests
/// apart from passed ones in its closing line.
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    eprintln!("skipped: {test}: {why}");
    if let Some(log) = std::env::var_os("GREENMESH_SKIPPED_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// Submits a small grayscale image-filter task as the user holding
/// `token` (it must be accepted); its id.
pub async fn submit_image_filter(addr: SocketAddr, token: &str) -> String {
    let task = call_as(
        addr,
        token,
        "POST",
        "/api/v1/tasks",
        serde_json::json!({ "task_type": "image-filter", "max_price": 50.0,
                            "inputs": { "image": "aGVsbG8=", "filter": "grayscale" } }),
    )
    .await;
    assert_eq!(task.status, 201, "{}", task.text());
    task.json()["id"].as_str().unwrap().to_string()
}

pub mod ingress;
pub mod net;
pub mod node;
pub mod postgres;
pub mod process;
pub mod provider;
pub mod tls;

/// One HTTP/1.1 request to `addr`.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
) -> anyhow::Result<Reply> {
    send_with(addr, method, path, body, &[]).await
}

/// One request to `addr` with extra headers, through the client the CLI and
/// the provider use (`greenmesh-client`).
pub async fn send_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> anyhow::Result<Reply> {
    let client = greenmesh_client::Client::new(
        &format!("http://{addr}"),
        &greenmesh_client::ClientOptions::default(),
    )?;
    let mut req = client.request(method, path).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let reply = req.send().await.context("sending request")?;
    Ok(Reply {
        status: reply.status,
        headers: reply.headers,
        body: reply.body.to_vec(),
    })
}

/// A JSON request as the user with `token` (no body when `body` is null).
pub async fn call_as(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Reply {
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    send_with(
        addr,
        method,
        path,
        body,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap()
}

/// Starts like `greenmesh up --build`: build commands run first.
pub async fn start_built(start: &Start) -> anyhow::Result<TestApp> {
    start.start_inner(true).await
}
