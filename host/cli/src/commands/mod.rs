//! `greenmesh user|task|node|proof ...`: a small client for the
//! coordinator's API (and, in `verify`, the offline check of a proof bundle).
//!
//! The coordinator URL comes from `--url` or `GREENMESH_URL` (default
//! `http://127.0.0.1:3000`), the API token from `--token` or `GREENMESH_TOKEN`.
//! Output is a readable table, or the raw JSON with `--json`. An
//! `https://` URL is verified against the system's roots plus `--ca-cert`.

mod blob;
pub mod fl;
mod table;
pub mod verify;
mod watch;

use anyhow::{bail, Context};
use greenmesh_client::{Client, ClientOptions};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Where and as whom to call.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Coordinator base URL.
    #[arg(
        long,
        env = "GREENMESH_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub url: String,
    /// API token (from `greenmesh user register`).
    #[arg(long, env = "GREENMESH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// A PEM file of extra trusted roots (a private CA) for an https:// URL.
    #[arg(long, env = "GREENMESH_CA_CERT", global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Seconds to wait for an answer (a `--wait` long-poll gets its own
    /// seconds on top).
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(
            &self.url,
            &ClientOptions {
                ca_cert: self.ca_cert.clone(),
                timeout: Duration::from_secs(self.timeout.max(1)),
                ..ClientOptions::default()
            },
        )?)
    }
}

/// `greenmesh user ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Register a user; prints the API token (shown only once).
    Register {
        name: String,
        /// Hex ed25519 public key to record.
        #[arg(long)]
        public_key: Option<String>,
    },
}

/// `greenmesh task ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TaskCommand {
    /// Submit a task: a JSON file (`-` for stdin) or the common fields as flags.
    Submit {
        /// Task JSON as in `POST /api/v1/tasks`.
        #[arg(long, conflicts_with = "task_type")]
        file: Option<String>,
        /// task_type, e.g. image-filter.
        #[arg(long = "type")]
        task_type: Option<String>,
        /// inputs as a JSON object.
        #[arg(long, default_value = "{}")]
        inputs: String,
        #[arg(long)]
        max_price: Option<f64>,
        #[arg(long)]
        sla: Option<String>,
        /// Run on this many nodes: replicas of one input compared by
        /// output, or (with --shards-file) one shard per node.
        #[arg(long)]
        min_nodes: Option<u32>,
        /// A JSON array of input objects, one per node (`inputs.shards`).
        #[arg(long, value_name = "FILE")]
        shards_file: Option<PathBuf>,
        /// Replicate on nodes of distinct owners and return a signed proof
        /// bundle of the agreed output.
        #[arg(long)]
        require_proof: bool,
        /// Only ask what would happen (`/tasks/precheck`).
        #[arg(long)]
        precheck: bool,
        /// Upload FILE as a blob (with a progress bar on a terminal) and
        /// put it in the inputs as `data` (a blob reference) with its
        /// `media_type`, e.g. `--type image-filter --data photo.png`.
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Follow the task until it ends, showing each change (as `task watch`).
        #[arg(long, conflicts_with = "precheck")]
        wait: bool,
    },
    /// Show a task, optionally waiting up to SECONDS for it to finish.
    Get {
        id: String,
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Write the task's output to FILE (decoded: the image, the audio,
        /// the JSON) instead of printing it.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Follow a task until it ends: its state changes and the elapsed time.
    Watch {
        id: String,
        /// Stop following after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// List your tasks.
    List,
    /// Cancel a task.
    Cancel { id: String },
}

/// `greenmesh blob ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BlobCommand {
    /// Upload a file as a blob (a progress bar on a terminal); prints its
    /// reference (`sha256:…`) for a task's `inputs.data`.
    Put { file: PathBuf },
}

/// `greenmesh proof ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ProofCommand {
    /// Fetch a `require_proof` task's proof bundle (its `result.proof_id`).
    Get {
        id: String,
        /// Write it to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `greenmesh node ...`.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// List nodes.
    List,
    /// Show one node.
    Get { id: String },
}

fn token(conn: &Connection) -> anyhow::Result<&str> {
    conn.token
        .as_deref()
        .context("this call needs an API token: pass --token or set GREENMESH_TOKEN (`greenmesh user register NAME`)")
}

fn print(conn: &Connection, value: &Value, table: impl FnOnce(&Value) -> String) {
    if conn.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        println!("{}", table(value));
    }
}

/// Runs a `user` command.
pub async fn user(conn: Connection, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Register { name, public_key } => {
            let body = json!({ "name": name, "public_key": public_key });
            let v = conn
                .client()?
                .call("POST", "/api/v1/users", None, Some(&body))
                .await?;
            print(&conn, &v, |v| {
                format!(
                    "user {}\ntoken {}  (export GREENMESH_TOKEN=…; it is not shown again)",
                    v["id"],
                    v["token"].as_str().unwrap_or("")
                )
            });
            Ok(())
        }
    }
}

/// Runs a `task` command.
pub async fn task(conn: Connection, cmd: TaskCommand) -> anyhow::Result<()> {
    let token = token(&conn)?.to_string();
    let client = conn.client()?;
    match cmd {
        TaskCommand::Submit {
            file,
            task_type,
            inputs,
            max_price,
            sla,
            min_nodes,
            shards_file,
            require_proof,
            precheck,
            data,
            wait,
        } => {
            let mut body: Value = match (file, task_type) {
                (Some(f), _) => {
                    let text = if f == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(&f).with_context(|| format!("reading {f}"))?
                    };
                    serde_json::from_str(&text).with_context(|| format!("{f} is not JSON"))?
                }
                (None, Some(t)) => {
                    let inputs: Value =
                        serde_json::from_str(&inputs).context("--inputs must be a JSON object")?;
                    let mut v = json!({ "task_type": t, "inputs": inputs });
                    if let Some(p) = max_price {
                        v["max_price"] = json!(p);
                    }
                    if let Some(s) = sla {
                        v["sla"] = json!(s);
                    }
                    v
                }
                (None, None) => bail!("give --file or --type"),
            };
            if let Some(n) = min_nodes {
                body["requirements"]["min_nodes"] = json!(n);
            }
            if require_proof {
                body["requirements"]["require_proof"] = json!(true);
            }
            if let Some(f) = shards_file {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                let shards: Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", f.display()))?;
                if !shards.is_array() {
                    bail!("{} must hold a JSON array of input objects", f.display());
                }
                if !body["inputs"].is_object() {
                    body["inputs"] = json!({});
                }
                body["inputs"]["shards"] = shards;
            }
            if let Some(file) = data {
                let blob = blob::put(&client, &token, &file, upload_timeout(&conn)).await?;
                if !body["inputs"].is_object() {
                    body["inputs"] = json!({});
                }
                body["inputs"]["data"] = json!({ "blob": blob["reference"] });
                body["inputs"]["media_type"] = json!(blob::media_type(&file));
            }
            let path = if precheck {
                "/api/v1/tasks/precheck"
            } else {
                "/api/v1/tasks"
            };
            let v = client.call("POST", path, Some(&token), Some(&body)).await?;
            if wait {
                let id = v["id"]
                    .as_str()
                    .context("the coordinator answered no task id")?;
                if !conn.json {
                    println!("submitted {id}");
                }
                watch::follow(&conn, &client, &token, id, Duration::from_secs(3600)).await?;
                return Ok(());
            }
            print(
                &conn,
                &v,
                if precheck {
                    table::decision
                } else {
                    table::task
                },
            );
        }
        TaskCommand::Get { id, wait, output } => {
            let v = client
                .request("GET", &format!("/api/v1/tasks/{id}?wait={wait}"))
                .bearer(&token)
                .timeout(Duration::from_secs(conn.timeout.max(1) + wait))
                .send()
                .await?
                .into_result()?;
            match output {
                Some(file) => {
                    let (bytes, media_type) = table::output_bytes(&v)?;
                    std::fs::write(&file, &bytes)
                        .with_context(|| format!("writing {}", file.display()))?;
                    println!(
                        "wrote {} bytes of {media_type} to {}",
                        bytes.len(),
                        file.display()
                    );
                }
                None => print(&conn, &v, table::task),
            }
        }
        TaskCommand::Watch { id, timeout } => {
            watch::follow(&conn, &client, &token, &id, Duration::from_secs(timeout)).await?;
        }
        TaskCommand::List => {
            let v = client
                .call("GET", "/api/v1/tasks", Some(&token), None)
                .await?;
            print(&conn, &v, table::tasks);
        }
        TaskCommand::Cancel { id } => {
            let v = client
                .call("DELETE", &format!("/api/v1/tasks/{id}"), Some(&token), None)
                .await?;
            print(&conn, &v, table::task);
        }
    }
    Ok(())
}

/// An upload's limit: the usual answer timeout, at least ten minutes.
fn upload_timeout(conn: &Connection) -> Duration {
    Duration::from_secs(conn.timeout.max(600))
}

/// Runs a `blob` command.
pub async fn blob(conn: Connection, cmd: BlobCommand) -> anyhow::Result<()> {
    let token = token(&conn)?.to_string();
    let client = conn.client()?;
    match cmd {
        BlobCommand::Put { file } => {
            let v = blob::put(&client, &token, &file, upload_timeout(&conn)).await?;
            print(&conn, &v, |v| {
                v["reference"].as_str().unwrap_or_default().to_string()
            });
        }
    }
    Ok(())
}

/// Runs a `node` command.
pub async fn node(conn: Connection, cmd: NodeCommand) -> anyhow::Result<()> {
    let client = conn.client()?;
    match cmd {
        NodeCommand::List => {
            let v = client.call("GET", "/api/v1/nodes", None, None).await?;
            print(&conn, &v, table::nodes);
        }
        NodeCommand::Get { id } => {
            let v = client
                .call("GET", &format!("/api/v1/nodes/{id}"), None, None)
                .await?;
            print(&conn, &v, |n| table::nodes(&json!({ "nodes": [n] })));
        }
    }
    Ok(())
}

/// Runs a `proof` command.
pub async fn proof(conn: Connection, cmd: ProofCommand) -> anyhow::Result<()> {
    let token = token(&conn)?.to_string();
    match cmd {
        ProofCommand::Get { id, out } => {
            let v = conn
                .client()?
                .call("GET", &format!("/api/v1/proofs/{id}"), Some(&token), None)
                .await?;
            let text = serde_json::to_string_pretty(&v)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text + "\n")
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("proof {id} written to {}", path.display());
                }
                None => println!("{text}"),
            }
        }
    }
    Ok(())
}
