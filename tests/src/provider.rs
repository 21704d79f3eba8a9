//! `greenmesh provide` as a real process for the end-to-end tests: a kernel
//! folder, a data folder, a settings file with short intervals, and helpers
//! to wait for its registration and read its log.

use crate::tests_dir;
use bytes::Bytes;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A built kernel installed by `cargo xtask build` (`target/kernels/<name>.wasm`).
pub fn kernel(name: &str) -> PathBuf {
    let p = tests_dir()
        .join("../target/kernels")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build` first",
        p.display()
    );
    p
}

/// A running provider process.
pub struct Provider {
    pub child: tokio::process::Child,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

/// How to start one.
pub struct ProviderSpec {
    pub addr: SocketAddr,
    pub token: String,
    pub kernel_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Extra `MESH_*` (or other) variables.
    pub env: Vec<(String, String)>,
    /// Extra lines for the settings file.
    pub settings: String,
    /// The coordinator URL given to `--url` (default `http://{addr}`).
    pub url: Option<String>,
}

impl ProviderSpec {
    pub fn new(addr: SocketAddr, token: &str, kernel_dir: &Path, data_dir: &Path) -> Self {
        Self {
            addr,
            token: token.to_string(),
            kernel_dir: kernel_dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            env: Vec::new(),
            settings: String::new(),
            url: None,
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Joins through `url` (an https:// or prefixed URL) instead.
    pub fn url(mut self, url: &str) -> Self {
        self.url = Some(url.to_string());
        self
    }

    pub fn setting(mut self, line: &str) -> Self {
        self.settings.push_str(line);
        self.settings.push('\n');
        self
    }

    /// Spawns `target/debug/greenmesh provide`; its log goes to `provider.log`
    /// in the data folder.
    pub fn spawn(self) -> Provider {
        let bin = tests_dir().join("../target/debug/greenmesh");
        assert!(bin.exists(), "build the host first (cargo xtask test does)");
        std::fs::create_dir_all(&self.data_dir).unwrap();
        let settings = self.data_dir.join("provider.toml");
        std::fs::write(
            &settings,
            format!(
                "heartbeat_interval_ms = 300\npoll_wait_sec = 2\nrescan_interval_ms = 300\n{}",
                self.settings
            ),
        )
        .unwrap();
        let log = self.data_dir.join("provider.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = tokio::process::Command::new(bin)
            .args(["--log-level", "info", "provide", "-c"])
            .arg(&settings)
            .args([
                "--url",
                &self
                    .url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", self.addr)),
                "--token",
                &self.token,
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--kernels")
            .arg(&self.kernel_dir)
            .envs(self.env)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Provider {
            child,
            data_dir: self.data_dir,
            log,
        }
    }
}

impl Provider {
    /// The provider's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("provider log never showed {needle:?}:\n{}", self.log());
    }

    /// The node's key as the provider stored it (`keys/<peer>.seed`).
    pub fn key(&self, peer_id: &str) -> greenmesh_protocol::ed25519_compact::KeyPair {
        let seed =
            std::fs::read_to_string(self.data_dir.join("keys").join(format!("{peer_id}.seed")))
                .unwrap();
        greenmesh_protocol::key_pair_from_seed_hex(seed.trim()).unwrap()
    }

    /// Kills the process outright (SIGKILL), as a power cut would.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill the provider");
    }

    /// Stops the process with SIGINT (Ctrl-C) and waits for it.
    pub async fn interrupt(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("provider did not stop within 30 s of SIGINT")
            .unwrap()
    }
}

/// Waits until an online node offers every one of `capabilities`; returns it.
pub async fn wait_for_node(addr: SocketAddr, capabilities: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(r) = crate::send(addr, "GET", "/api/v1/nodes", Bytes::new()).await {
            last = r.json();
            for node in last["nodes"].as_array().cloned().unwrap_or_default() {
                let offered: Vec<&str> = node["capabilities"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
                    .unwrap_or_default();
                if node["status"] == "online" && capabilities.iter().all(|c| offered.contains(c)) {
                    return node;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no online node offering {capabilities:?} within {within:?}; nodes: {last}");
}

/// A kernel folder holding copies of `files`.
pub fn kernel_dir(root: &Path, files: &[(&Path, &str)]) -> PathBuf {
    let dir = root.join("kernels");
    std::fs::create_dir_all(&dir).unwrap();
    for (from, name) in files {
        std::fs::copy(from, dir.join(name)).unwrap();
    }
    dir
}

/// Submits a task as the user with `token`; answers its id.
pub async fn submit(addr: SocketAddr, token: &str, body: Value) -> String {
    let r = crate::send_with(
        addr,
        "POST",
        "/api/v1/tasks",
        Bytes::from(body.to_string()),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

/// Long-polls a task until it ends (up to two minutes; then returns it as it is).
pub async fn finished(addr: SocketAddr, token: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..6 {
        let r = crate::send_with(
            addr,
            "GET",
            &format!("/api/v1/tasks/{id}?wait=20"),
            Bytes::new(),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
        .unwrap();
        let v = r.json();
        if ["completed", "failed", "cancelled"].contains(&v["status"].as_str().unwrap_or("")) {
            return v;
        }
        last = v;
    }
    last
}
