//! `greenmesh provide` settings: a TOML file, then seed 001's `MESH_*`
//! environment variables, then command-line flags (each overrides the last).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a provider node is told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// The coordinator's base URL: `https://` (or `http://` on a trusted
    /// network), optionally with a path prefix (`https://host/mesh`).
    pub coordinator: String,
    /// `GREENMESH_CA_CERT`: a PEM file of extra trusted roots (a private
    /// CA), added to the system's.
    pub ca_cert: Option<PathBuf>,
    /// Most time to open a connection to the coordinator, milliseconds.
    pub connect_timeout_ms: u64,
    /// Most time for one request (a heartbeat, a receipt), milliseconds; a
    /// lease long-poll gets `poll_wait_sec` more.
    pub request_timeout_ms: u64,
    /// API token of the user who owns this node (`greenmesh user register`).
    pub token: Option<String>,
    /// Where the node keeps its key, pinned broker key and journal.
    pub data_dir: PathBuf,
    /// Folder of kernel `.wasm` files; the node advertises exactly these.
    pub kernel_dir: PathBuf,
    /// `MESH_ENABLED`: `false` makes `provide` exit without joining.
    pub enabled: bool,
    /// `MESH_PEER_ID`: names this device's identity (its key file); the
    /// coordinator's node id is derived from that key.
    pub peer_id: String,
    /// `MESH_PEER_NAME`.
    pub name: String,
    /// `MESH_PEER_LOCATION`: sent as the node's region.
    pub location: String,
    /// `MESH_ALLOWED_TASKS`: capabilities this node accepts (`*` = all).
    pub allowed_tasks: Vec<String>,
    /// `MESH_MAX_TASK_DURATION_MS`: leases allowing longer runs are refused.
    pub max_task_duration_ms: u64,
    /// `MESH_TIMEZONE` (IANA name): logged at start; nothing else reads it
    /// yet (a seed 001 setting, accepted so existing configurations load).
    pub timezone: String,
    /// `MESH_CURRENT_ENERGY_TYPE`: solar, wind, hydro, battery or grid.
    pub energy_type: String,
    /// `MESH_CURRENT_ENERGY_PERCENT_CLEAN`: 0–100.
    pub energy_percent_clean: f32,
    /// Carbon intensity of the grid share, gCO2/kWh (average, location-based).
    pub grid_carbon_intensity: f32,
    /// `MESH_CARBON_TRACE`: a `Time,Carbon Intensity` CSV (`data/carbon/`)
    /// replayed on today's calendar instead of `grid_carbon_intensity`; the
    /// node then also reports the trace's next 24 h as a forecast, so a
    /// test mesh sees real grid swings.
    pub carbon_trace: Option<PathBuf>,
    /// Electrical power the device draws while running a task, watts;
    /// receipts report energy as power × duration.
    pub device_power_watts: f64,
    /// `MESH_OWN_GENERATION_WATTS`: the device's own generation (panels,
    /// turbine, battery), declared at registration; where the coordinator
    /// holds the region's grid signal, a clean share beyond the grid's
    /// needs it (ADR 0021).
    pub own_generation_watts: Option<f64>,
    /// Price per task in credits, by kernel name; others cost `default_price`.
    pub prices: BTreeMap<String, f64>,
    pub default_price: f64,
    /// Capacity advertised; `memory_mb` also caps each task's memory.
    pub cpu_cores: u32,
    pub memory_mb: u64,
    /// Tasks run at once.
    pub max_concurrent: usize,
    /// Largest output a kernel may return, bytes.
    pub max_output_bytes: usize,
    /// Run every task in the sandbox's deterministic mode, not only the
    /// leases that ask for it (see the sandbox).
    pub deterministic: bool,
    /// Offer `wasm_execution`: run requester-supplied kernel components.
    pub wasm_execution: bool,
    /// Largest `wasm_execution` module compiled, bytes; larger ones fail
    /// (the requester's fault) before compiling.
    pub max_module_bytes: usize,
    /// Most time compiling one `wasm_execution` module may take,
    /// milliseconds; a compile bomb fails on it (the requester's fault).
    pub compile_budget_ms: u64,
    /// Give kernels the GPU when wgpu finds an adapter.
    pub gpu: bool,
    /// GPU dispatches a task may make (its GPU buffers count against its
    /// memory limit, its GPU waits against its time limit).
    pub gpu_max_dispatches: u32,
    /// Largest input accepted per task, bytes.
    pub max_input_bytes: u64,
    pub heartbeat_interval_ms: u64,
    /// How long each lease long-poll waits, seconds (the coordinator caps it at 25).
    pub poll_wait_sec: u64,
    /// How often the kernel folder is checked for added or removed kernels.
    pub rescan_interval_ms: u64,
    /// Pin the broker's public key (hex); otherwise the first one seen is
    /// pinned in the data folder and any other is refused later.
    pub broker_public_key: Option<String>,
    /// Datasets held for federated training, by name: CSV files whose
    /// rows never leave the node (only their shape is advertised).
    pub datasets: BTreeMap<String, PathBuf>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            coordinator: "http://127.0.0.1:3000".into(),
            ca_cert: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 15_000,
            token: None,
            data_dir: PathBuf::from(".greenmesh/provider"),
            kernel_dir: PathBuf::from("target/kernels"),
            enabled: true,
            peer_id: "default".into(),
            name: "greenmesh provider".into(),
            location: "unknown".into(),
            allowed_tasks: vec!["*".into()],
            max_task_duration_ms: 3_600_000,
            timezone: "UTC".into(),
            energy_type: "grid".into(),
            energy_percent_clean: 0.0,
            grid_carbon_intensity: 400.0,
            carbon_trace: None,
            device_power_watts: 30.0,
            own_generation_watts: None,
            prices: BTreeMap::new(),
            default_price: 1.0,
            cpu_cores: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            memory_mb: 2048,
            max_concurrent: 1,
            max_output_bytes: 16 << 20,
            deterministic: false,
            wasm_execution: true,
            max_module_bytes: 8 << 20,
            compile_budget_ms: 10_000,
            gpu: true,
            gpu_max_dispatches: 10_000,
            max_input_bytes: 16 << 20,
            heartbeat_interval_ms: 10_000,
            poll_wait_sec: 20,
            rescan_interval_ms: 5_000,
            broker_public_key: None,
            datasets: BTreeMap::new(),
        }
    }
}

/// `NAME=FILE` as a dataset's name and file.
pub fn parse_dataset(entry: &str) -> Result<(String, PathBuf), String> {
    match entry.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.trim().is_empty() => {
            Ok((name.trim().to_string(), PathBuf::from(path.trim())))
        }
        _ => Err(format!("{entry:?} is not NAME=FILE.csv")),
    }
}

/// Energy sources the seed names.
const ENERGY_TYPES: &[&str] = &["solar", "wind", "hydro", "battery", "grid"];

/// Flags given on the command line (they win over file and environment).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub coordinator: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub token: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub kernel_dir: Option<PathBuf>,
    pub carbon_trace: Option<PathBuf>,
    /// `--dataset NAME=FILE.csv`, repeatable (added to the file's and the
    /// environment's).
    pub datasets: Vec<(String, PathBuf)>,
}

impl ProviderConfig {
    /// File (if any), then `env`, then `flags`; then validated.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: Overrides,
    ) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        if let Some(v) = flags.coordinator {
            config.coordinator = v;
        }
        if let Some(v) = flags.ca_cert {
            config.ca_cert = Some(v);
        }
        if let Some(v) = flags.token {
            config.token = Some(v);
        }
        if let Some(v) = flags.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = flags.kernel_dir {
            config.kernel_dir = v;
        }
        if let Some(v) = flags.carbon_trace {
            config.carbon_trace = Some(v);
        }
        config.datasets.extend(flags.datasets);
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(
            name: &str,
            value: &str,
            expected: &str,
        ) -> anyhow::Result<T> {
            value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}: expected {expected}, got {value:?}"))
        }
        if let Some(v) = env("GREENMESH_URL") {
            self.coordinator = v;
        }
        if let Some(v) = env("GREENMESH_CA_CERT") {
            self.ca_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("GREENMESH_TOKEN") {
            self.token = Some(v);
        }
        if let Some(v) = env("MESH_ENABLED") {
            self.enabled = parse("MESH_ENABLED", &v, "true or false")?;
        }
        if let Some(v) = env("MESH_PEER_ID") {
            self.peer_id = v;
        }
        if let Some(v) = env("MESH_PEER_NAME") {
            self.name = v;
        }
        if let Some(v) = env("MESH_PEER_LOCATION") {
            self.location = v;
        }
        if let Some(v) = env("MESH_ALLOWED_TASKS") {
            self.allowed_tasks = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = env("MESH_MAX_TASK_DURATION_MS") {
            self.max_task_duration_ms =
                parse("MESH_MAX_TASK_DURATION_MS", &v, "a number of milliseconds")?;
        }
        if let Some(v) = env("MESH_MAX_MODULE_BYTES") {
            self.max_module_bytes = parse("MESH_MAX_MODULE_BYTES", &v, "a number of bytes")?;
        }
        if let Some(v) = env("MESH_COMPILE_BUDGET_MS") {
            self.compile_budget_ms =
                parse("MESH_COMPILE_BUDGET_MS", &v, "a number of milliseconds")?;
        }
        if let Some(v) = env("MESH_OWN_GENERATION_WATTS") {
            self.own_generation_watts =
                Some(parse("MESH_OWN_GENERATION_WATTS", &v, "a number of watts")?);
        }
        if let Some(v) = env("MESH_TIMEZONE") {
            self.timezone = v;
        }
        if let Some(v) = env("MESH_CURRENT_ENERGY_TYPE") {
            self.energy_type = v.trim().to_ascii_lowercase();
        }
        if let Some(v) = env("MESH_CARBON_TRACE") {
            let v = v.trim();
            self.carbon_trace = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = env("MESH_DATASETS") {
            for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (name, path) =
                    parse_dataset(entry).map_err(|e| anyhow::anyhow!("MESH_DATASETS: {e}"))?;
                self.datasets.insert(name, path);
            }
        }
        if let Some(v) = env("MESH_CURRENT_ENERGY_PERCENT_CLEAN") {
            self.energy_percent_clean = parse(
                "MESH_CURRENT_ENERGY_PERCENT_CLEAN",
                &v,
                "a number from 0 to 100",
            )?;
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        use anyhow::ensure;
        ensure!(
            ENERGY_TYPES.contains(&self.energy_type.as_str()),
            "MESH_CURRENT_ENERGY_TYPE / energy_type: {:?} is not one of {}",
            self.energy_type,
            ENERGY_TYPES.join(", ")
        );
        ensure!(
            (0.0..=100.0).contains(&self.energy_percent_clean),
            "MESH_CURRENT_ENERGY_PERCENT_CLEAN / energy_percent_clean: {} is outside 0–100",
            self.energy_percent_clean
        );
        ensure!(
            !self.peer_id.is_empty()
                && self
                    .peer_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "MESH_PEER_ID / peer_id: {:?} must be letters, digits, '-', '_' or '.'",
            self.peer_id
        );
        ensure!(
            self.max_task_duration_ms > 0,
            "MESH_MAX_TASK_DURATION_MS must be positive"
        );
        ensure!(
            self.compile_budget_ms > 0 && self.max_module_bytes > 0,
            "MESH_COMPILE_BUDGET_MS and MESH_MAX_MODULE_BYTES must be positive"
        );
        ensure!(
            self.timezone.split('/').all(|p| !p.is_empty()),
            "MESH_TIMEZONE / timezone: {:?} is not an IANA zone name such as Europe/London",
            self.timezone
        );
        ensure!(
            self.max_concurrent >= 1,
            "max_concurrent must be at least 1"
        );
        ensure!(
            self.device_power_watts >= 0.0 && self.device_power_watts.is_finite(),
            "device_power_watts must be a non-negative number"
        );
        ensure!(
            self.coordinator.starts_with("http://") || self.coordinator.starts_with("https://"),
            "coordinator: {:?} must be an https:// (or http://) URL",
            self.coordinator
        );
        for name in self.datasets.keys() {
            ensure!(
                !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c)),
                "datasets: {name:?} must be lower-case letters, digits, '-' or '_'"
            );
        }
        ensure!(
            self.connect_timeout_ms > 0 && self.request_timeout_ms > 0,
            "connect_timeout_ms and request_timeout_ms must be positive"
        );
        Ok(())
    }

    /// How the node's client connects to the coordinator.
    pub fn client_options(&self) -> greenmesh_client::ClientOptions {
        greenmesh_client::ClientOptions {
            ca_cert: self.ca_cert.clone(),
            connect_timeout: std::time::Duration::from_millis(self.connect_timeout_ms),
            timeout: std::time::Duration::from_millis(self.request_timeout_ms),
        }
    }

    /// Whether this node accepts tasks of `capability`.
    pub fn allows(&self, capability: &str) -> bool {
        self.allowed_tasks
            .iter()
            .any(|t| t == "*" || t == capability)
    }

    /// The node's price for `kernel`.
    pub fn price(&self, kernel: &str) -> f64 {
        self.prices
            .get(kernel)
            .copied()
            .unwrap_or(self.default_price)
    }

    /// Share of the node's power from its own clean source, 0–1 (0 on the
    /// plain grid).
    pub fn clean_share(&self) -> f64 {
        if self.energy_type == "grid" {
            0.0
        } else {
            f64::from(self.energy_percent_clean) / 100.0
        }
    }

    /// The energy state reported to the marketplace: the named source for
    /// the clean share, the grid for the rest; intensity counts only the
    /// grid share (renewables' operational emissions taken as zero).
    /// With a `carbon_trace`, [`super::energy::EnergyReport`] replaces the
    /// intensity and adds a forecast.
    pub fn energy_json(&self) -> serde_json::Value {
        let clean = f64::from(self.energy_percent_clean) / 100.0;
        let mut sources = Vec::new();
        if self.energy_type == "grid" {
            sources.push(serde_json::json!(["grid", 1.0]));
        } else {
            sources.push(serde_json::json!([self.energy_type, clean]));
            if clean < 1.0 {
                sources.push(serde_json::json!(["grid", 1.0 - clean]));
            }
        }
        let clean_share = self.clean_share();
        serde_json::json!({
            "sources": sources,
            "clean_share": clean_share,
            "carbon_intensity": f64::from(self.grid_carbon_intensity) * (1.0 - clean_share),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn seed_variables_override_the_file_and_flags_override_both() {
        let dir = std::env::temp_dir().join(format!("gm-provider-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provider.toml");
        std::fs::write(
            &file,
            "name = \"from file\"\nlocation = \"GB\"\ncoordinator = \"http://127.0.0.1:1\"\n[prices]\nimage-filter = 2.5\n",
        )
        .unwrap();
        let env = env_of(&[
            ("MESH_PEER_NAME", "My Solar Server"),
            ("MESH_ALLOWED_TASKS", "image-filter, audio-denoise"),
            ("MESH_MAX_TASK_DURATION_MS", "60000"),
            ("MESH_CURRENT_ENERGY_TYPE", "Solar"),
            ("MESH_CURRENT_ENERGY_PERCENT_CLEAN", "95"),
            ("MESH_TIMEZONE", "America/Los_Angeles"),
        ]);
        let flags = Overrides {
            coordinator: Some("http://127.0.0.1:2".into()),
            ..Default::default()
        };
        let c = ProviderConfig::load(Some(&file), &env, flags).unwrap();
        assert_eq!(c.name, "My Solar Server");
        assert_eq!(c.location, "GB");
        assert_eq!(c.coordinator, "http://127.0.0.1:2");
        assert_eq!(c.allowed_tasks, ["image-filter", "audio-denoise"]);
        assert!(c.allows("audio-denoise") && !c.allows("wasm_execution"));
        assert_eq!(c.max_task_duration_ms, 60_000);
        assert_eq!(c.price("image-filter"), 2.5);
        assert_eq!(c.price("object-detect"), 1.0);
        let energy = c.energy_json();
        assert_eq!(energy["clean_share"], 0.95);
        assert_eq!(energy["sources"][0][0], "solar");
        assert!((energy["carbon_intensity"].as_f64().unwrap() - 20.0).abs() < 1e-3);
        assert_eq!(c.carbon_trace, None);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn datasets_come_from_file_env_and_flags_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("gm-provider-ds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provider.toml");
        std::fs::write(
            &file,
            "[datasets]
from-file = \"a.csv\"\n",
        )
        .unwrap();
        let env = env_of(&[("MESH_DATASETS", "from-env=b.csv, other=c.csv")]);
        let flags = Overrides {
            datasets: vec![("from-flag".into(), "d.csv".into())],
            ..Default::default()
        };
        let c = ProviderConfig::load(Some(&file), &env, flags).unwrap();
        let names: Vec<&str> = c.datasets.keys().map(String::as_str).collect();
        assert_eq!(names, ["from-env", "from-file", "from-flag", "other"]);
        assert_eq!(c.datasets["other"], PathBuf::from("c.csv"));
        let err = ProviderConfig::load(
            None,
            &env_of(&[("MESH_DATASETS", "nofile")]),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("NAME=FILE.csv"), "{err}");
        let flags = Overrides {
            datasets: vec![("Bad Name".into(), "d.csv".into())],
            ..Default::default()
        };
        let err = ProviderConfig::load(None, &env_of(&[]), flags).unwrap_err();
        assert!(err.to_string().contains("Bad Name"), "{err}");
        assert!(parse_dataset("=x.csv").is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn carbon_trace_comes_from_file_env_or_flag() {
        let dir = std::env::temp_dir().join(format!("gm-provider-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("provider.toml");
        std::fs::write(&file, "carbon_trace = \"data/carbon/gb_ci_2020.csv\"\n").unwrap();
        let none = env_of(&[]);
        let c = ProviderConfig::load(Some(&file), &none, Overrides::default()).unwrap();
        assert_eq!(
            c.carbon_trace,
            Some(PathBuf::from("data/carbon/gb_ci_2020.csv"))
        );
        let env = env_of(&[("MESH_CARBON_TRACE", "de.csv")]);
        let c = ProviderConfig::load(Some(&file), &env, Overrides::default()).unwrap();
        assert_eq!(c.carbon_trace, Some(PathBuf::from("de.csv")));
        let flags = Overrides {
            carbon_trace: Some("flag.csv".into()),
            ..Default::default()
        };
        let c = ProviderConfig::load(Some(&file), &env, flags).unwrap();
        assert_eq!(c.carbon_trace, Some(PathBuf::from("flag.csv")));
        // An empty variable switches a file's trace off.
        let c = ProviderConfig::load(
            Some(&file),
            &env_of(&[("MESH_CARBON_TRACE", "")]),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.carbon_trace, None);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_values_are_named() {
        for (pairs, needle) in [
            (
                &[("MESH_CURRENT_ENERGY_PERCENT_CLEAN", "lots")][..],
                "MESH_CURRENT_ENERGY_PERCENT_CLEAN",
            ),
            (
                &[("MESH_CURRENT_ENERGY_PERCENT_CLEAN", "150")][..],
                "outside 0–100",
            ),
            (&[("MESH_CURRENT_ENERGY_TYPE", "coal")][..], "coal"),
            (&[("MESH_PEER_ID", "a b")][..], "MESH_PEER_ID"),
            (
                &[("MESH_MAX_TASK_DURATION_MS", "-1")][..],
                "MESH_MAX_TASK_DURATION_MS",
            ),
            (&[("MESH_ENABLED", "maybe")][..], "MESH_ENABLED"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = pairs;
            let err = ProviderConfig::load(None, &env_of(pairs), Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
