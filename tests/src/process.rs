//! The `greenmesh` binary as a real process: `greenmesh up` on the
//! repository's `spin.toml` on a fixed loopback port (so it can be killed
//! and restarted where clients expect it), and CLI commands.

use crate::{send, tests_dir};
use bytes::Bytes;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `greenmesh ARGS` (none of the `GREENMESH_*` variables set):
/// whether it succeeded, its stdout and its stderr.
pub async fn greenmesh_cli(args: &[&str]) -> (bool, String, String) {
    let bin = tests_dir().join("../target/debug/greenmesh");
    assert!(bin.exists(), "build the host first (cargo xtask test does)");
    let out = tokio::process::Command::new(bin)
        .args(args)
        .env_remove("GREENMESH_TOKEN")
        .env_remove("GREENMESH_URL")
        .env_remove("GREENMESH_CA_CERT")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A coordinator process, killed when dropped (a failing test leaves none behind).
pub struct CoordinatorProcess {
    pub child: Child,
}

impl CoordinatorProcess {
    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the coordinator on `port` with its state in `state`; `env` adds
/// variables (e.g. `SPIN_VARIABLE_*` overrides).
pub fn spawn_coordinator(state: &Path, port: u16, env: &[(&str, &str)]) -> CoordinatorProcess {
    let bin = tests_dir().join("../target/debug/greenmesh");
    assert!(bin.exists(), "build the host first (cargo xtask test does)");
    let child = Command::new(bin)
        .args(["--log-level", "warn", "up", "-f"])
        .arg(tests_dir().join("../spin.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
        .arg(state)
        .envs(crate::TEST_IDENTITY_RULES.iter().copied())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    CoordinatorProcess { child }
}

/// Waits until `GET /api/v1/health` answers 200.
pub async fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = send(addr, "GET", "/api/v1/health", Bytes::new()).await {
            if r.status == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("coordinator did not become healthy");
}
