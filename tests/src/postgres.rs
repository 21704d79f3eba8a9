//! A real Postgres server for a test: Debian's `postgresql` package
//! (`.ci/run` installs it), a cluster made with `initdb` in a temporary
//! folder and served by `pg_ctl` on a free loopback port, stopped when
//! dropped. Trust authentication for the `greenmesh` superuser, on
//! 127.0.0.1 only.
//!
//! Postgres refuses to run as root: when the tests run as root (CI
//! containers) the server runs as the `postgres` user the package creates.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running Postgres cluster.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    pub port: u16,
    /// With [`Postgres::start_with_tls`]: the PEM certificate of the
    /// private CA that signed the server's (for `localhost`, `127.0.0.1`).
    pub ca_cert: Option<PathBuf>,
    /// The server's settings (`pg_ctl -o`), for starting it again.
    options: String,
}

/// The newest installed server's `bin` folder.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether this process runs as root (`/proc/self` belongs to its user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl Postgres {
    /// Starts a fresh cluster; `None` (the test skips) where Postgres is
    /// not installed, except in CI, where that fails the test.
    pub fn start() -> Option<Postgres> {
        Self::launch(false)
    }

    /// [`Postgres::start`] serving TLS only: a certificate from a private
    /// CA ([`Postgres::ca_cert`]), and `hostssl` the only way in, so a
    /// connection in the clear is refused.
    pub fn start_with_tls() -> Option<Postgres> {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Option<Postgres> {
        let Some(bin) = server_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "no Postgres in CI: .ci/run installs Debian's postgresql"
            );
            crate::skip("no Postgres server (apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            // The server's own user must own its folder.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown for the postgres user");
        }
        let mut pg = Postgres {
            bin,
            data,
            port: crate::process::free_port(),
            ca_cert: None,
            options: String::new(),
            _dir: dir,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-U",
                "greenmesh",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories='' -c fsync=off -c max_connections=300",
            pg.port
        );
        if tls {
            pg.ca_cert = Some(pg.serve_tls_only());
            options.push_str(" -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key");
        }
        pg.options = options;
        pg.start_again();
        Some(pg)
    }

    /// Stops the server at once, as a crash or a failover would (clients
    /// lose their connections; committed rows stay).
    pub fn stop_abruptly(&self) {
        self.run(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }

    /// Starts the server (again) on its port with its settings.
    pub fn start_again(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &self.options,
                "-l",
                self.data.join("server.log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Puts a certificate and key (from a fresh private CA) in the data
    /// folder and allows only TLS connections; the CA's certificate.
    fn serve_tls_only(&self) -> PathBuf {
        let pki =
            crate::tls::TestPki::new(&self._dir.path().join("pki"), "greenmesh test database CA");
        std::fs::copy(&pki.server_cert, self.data.join("server.pem")).unwrap();
        std::fs::copy(&pki.server_key, self.data.join("server.key")).unwrap();
        std::fs::write(
            self.data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let key = self.data.join("server.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            for file in ["server.pem", "server.key", "pg_hba.conf"] {
                let status = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(self.data.join(file))
                    .status()
                    .unwrap();
                assert!(status.success(), "chown {file}");
            }
        }
        pki.ca_cert
    }

    /// Runs one of the server's programs (as `postgres` when root).
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    /// The address of database `name` (`postgres` exists from the start).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://greenmesh@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` and answers its address.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Runs `sql` in database `db` with `psql`, answering its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .args(["-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Where the cluster's files are.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
