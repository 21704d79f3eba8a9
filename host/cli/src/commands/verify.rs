//! `greenmesh verify BUNDLE.json`: checks a proof bundle offline (every
//! signature, each receipt against its lease, the quorum rule) against the
//! broker's public key, and with `--rerun` re-executes one shard's kernel
//! in the local deterministic sandbox and compares the output hash.
//!
//! Given a finished `federated_learning` task (its JSON, from `greenmesh
//! task get`) that asked for `require_proof`, it checks each round's
//! contribution bundle instead: the broker-signed roster, every member's
//! lease and signed receipt over its masked update, and that the masked
//! updates sum to the round's totals and, for the last round, to the model.
//!
//! Given a finished `zk_proof` task, it verifies the STARK in its result
//! against the task's statement (`docs/zk.md`).

use anyhow::{bail, Context};
use greenmesh_protocol::ProofBundle;
use serde_json::Value;
use std::path::PathBuf;

/// `greenmesh verify` arguments.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle (from `greenmesh proof get`).
    pub bundle: PathBuf,
    /// The broker's public key (hex, from `GET /api/v1/keys/broker`) to
    /// check against; without it, the key the bundle names is used, which
    /// shows the bundle is consistent but not who issued it.
    #[arg(long, value_name = "HEX")]
    pub broker_key: Option<String>,
    /// Also re-execute a shard's kernel here and compare its output hash.
    #[arg(long, requires_all = ["kernel", "input"])]
    pub rerun: bool,
    /// The kernel component (e.g. target/kernels/image-filter.wasm); its
    /// SHA-256 must be the one the bundle's receipts name.
    #[arg(long, value_name = "K.wasm")]
    pub kernel: Option<PathBuf>,
    /// The shard's input: the task's `inputs` object as submitted (for a
    /// sharded task, that shard's inputs merged over the others), or the
    /// exact input text a node received.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Which shard to rerun.
    #[arg(long, default_value_t = 0)]
    pub shard: u32,
    /// A `zk_proof` task's proof must have at least this many bits of
    /// conjectured security.
    #[arg(long, default_value_t = greenmesh_zk::DEFAULT_MIN_SECURITY_BITS)]
    pub min_security_bits: u32,
}

/// Checks a finished `zk_proof` task's proof offline: that its result is
/// what the task's statement computes, at the security floor.
fn zk(task: &Value, min_security_bits: u32) -> anyhow::Result<()> {
    use base64::Engine as _;
    let id = task["id"].as_str().unwrap_or("the task");
    let statement: greenmesh_zk::Statement =
        serde_json::from_value(task["zk"]["statement"].clone()).with_context(|| {
            format!("{id} has no verified statement (zk.statement): is it finished?")
        })?;
    let output: Value = task["result"]["output"]
        .as_str()
        .and_then(|o| serde_json::from_str(o).ok())
        .with_context(|| format!("{id} has no result output"))?;
    let answer = &output["json"];
    let claimed: greenmesh_zk::Statement = serde_json::from_value(answer["statement"].clone())
        .context("the output names no statement")?;
    if claimed != statement {
        bail!("{id}'s proof is of {claimed:?}, not the task's {statement:?}");
    }
    let result: Vec<String> =
        serde_json::from_value(answer["result"].clone()).context("the output has no result")?;
    let proof = answer["proof"]
        .as_str()
        .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
        .context("the output has no base64 proof")?;
    let started = std::time::Instant::now();
    let verified = greenmesh_zk::verify(&statement, &result, &proof, min_security_bits)
        .map_err(|e| anyhow::anyhow!("{id}'s proof does not verify: {e}"))?;
    println!(
        "{id}: the proof verifies in {:.1} ms: {statement:?} computes {} ({} trace rows, {} bytes, {} bits of conjectured security; not zero-knowledge: the inputs are public)",
        started.elapsed().as_secs_f64() * 1000.0,
        result.join(", "),
        verified.trace_rows,
        proof.len(),
        verified.security_bits
    );
    Ok(())
}

/// Runs `greenmesh verify`; an error says why the bundle does not hold.
pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    if let Ok(task) = serde_json::from_str::<Value>(&text) {
        if task["result"].get("contributions").is_some() {
            return federated(&task, args.broker_key.as_deref());
        }
        if task["task_type"] == "zk_proof" {
            return zk(&task, args.min_security_bits);
        }
    }
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", args.bundle.display()))?;
    let pinned = args
        .broker_key
        .as_deref()
        .map(greenmesh_protocol::public_key)
        .transpose()
        .context("--broker-key")?;
    let verified = bundle
        .verify(pinned.as_ref())
        .map_err(|e| anyhow::anyhow!("proof {} does not verify: {e}", bundle.proof_id))?;
    println!(
        "proof {} verifies: task {}, {} shard(s), {} agreeing run(s) on nodes of {} distinct owner(s)",
        bundle.proof_id, bundle.task_id, verified.shards, verified.runs, verified.owners
    );
    match &pinned {
        Some(_) => println!("broker key {} (pinned)", bundle.broker_public_key),
        None => println!(
            "broker key {} (named by the bundle: pass --broker-key to check who issued it)",
            bundle.broker_public_key
        ),
    }
    if args.rerun {
        rerun(&bundle, &args)?;
    }
    Ok(())
}

/// Checks a federated task's contribution bundles against the broker key.
fn federated(task: &Value, broker_key: Option<&str>) -> anyhow::Result<()> {
    let Some(key) = broker_key else {
        bail!("a federated task's contributions are checked against the broker's key: pass --broker-key (GET /api/v1/keys/broker)");
    };
    let broker = greenmesh_protocol::public_key(key).context("--broker-key")?;
    let rounds: Vec<greenmesh_protocol::RoundContributions> =
        serde_json::from_value(task["result"]["contributions"].clone())
            .context("result.contributions is not a list of round contributions")?;
    let id = task["id"].as_str().unwrap_or("the task");
    let mut last = None;
    for r in &rounds {
        if r.roster.task_id != id {
            bail!(
                "round {}: its roster is for task {}, not {id}",
                r.roster.round + 1,
                r.roster.task_id
            );
        }
        let totals = r
            .verify(&broker)
            .map_err(|e| anyhow::anyhow!("{id}'s contributions do not verify: {e}"))?;
        println!(
            "round {} (attempt {}): {} signed contributions, {} rows, hold-out {}/{}",
            r.roster.round + 1,
            r.roster.attempt + 1,
            r.runs.len(),
            totals.samples,
            totals.correct,
            totals.total
        );
        last = Some(totals);
    }
    let model: Vec<f64> = serde_json::from_value(task["result"]["model"]["params"].clone())
        .context("result.model.params")?;
    let Some(last) = last else {
        bail!("{id} has no round contributions");
    };
    let same = last.params.len() == model.len()
        && last
            .params
            .iter()
            .zip(&model)
            .all(|(a, b)| (a - b).abs() < 1e-6);
    if !same {
        bail!("{id}'s model is not the average its last round's contributions sum to");
    }
    println!(
        "{id}: the model is the last round's masked sum, averaged by rows ({} parameters)",
        model.len()
    );
    Ok(())
}

fn rerun(bundle: &ProofBundle, args: &VerifyArgs) -> anyhow::Result<()> {
    let shard = bundle
        .shards
        .iter()
        .find(|s| s.shard == args.shard)
        .with_context(|| format!("the bundle has no shard {}", args.shard))?;
    let run = shard.runs.first().context("the shard has no runs")?;
    let kernel_path = args.kernel.as_ref().context("--rerun needs --kernel")?;
    let kernel =
        std::fs::read(kernel_path).with_context(|| format!("reading {}", kernel_path.display()))?;
    let input_path = args.input.as_ref().context("--rerun needs --input")?;
    let given = std::fs::read_to_string(input_path)
        .with_context(|| format!("reading {}", input_path.display()))?;
    let input = input_text(&given, &shard.input_sha256).with_context(|| {
        format!(
            "{} is not shard {}'s input (SHA-256 {})",
            input_path.display(),
            shard.shard,
            shard.input_sha256
        )
    })?;
    let out = greenmesh_provider::rerun::rerun(&kernel, &input, &run.lease)?;
    if out.kernel_sha256 != shard.kernel_sha256 {
        bail!(
            "{} is kernel {}, but the runs in the bundle ran kernel {}",
            kernel_path.display(),
            out.kernel_sha256,
            shard.kernel_sha256
        );
    }
    if out.output_sha256 != shard.output_sha256 {
        bail!(
            "the rerun gave output {}, but the bundle's runs agreed on {}",
            out.output_sha256,
            shard.output_sha256
        );
    }
    println!(
        "rerun of shard {} reproduces output {} with kernel {}",
        shard.shard, out.output_sha256, out.kernel_sha256
    );
    Ok(())
}

/// The input text hashing to `sha256`: the file as given, or the text the
/// coordinator made of a task's `inputs` object (`{"inputs": …,
/// "wasm_module": …}`, keys in sorted order, no spaces).
fn input_text(given: &str, sha256: &str) -> anyhow::Result<String> {
    if greenmesh_protocol::sha256_hex(given.as_bytes()) == sha256 {
        return Ok(given.to_string());
    }
    let trimmed = given.trim_end();
    if greenmesh_protocol::sha256_hex(trimmed.as_bytes()) == sha256 {
        return Ok(trimmed.to_string());
    }
    let v: Value = serde_json::from_str(given).context("it is not JSON either")?;
    let (inputs, module) = match v.get("inputs") {
        Some(inputs) if v.get("wasm_module").is_some() => {
            (inputs.clone(), v["wasm_module"].clone())
        }
        _ => (v, Value::Null),
    };
    let text = format!(
        "{{\"inputs\":{},\"wasm_module\":{}}}",
        canonical(&inputs),
        canonical(&module)
    );
    if greenmesh_protocol::sha256_hex(text.as_bytes()) == sha256 {
        return Ok(text);
    }
    bail!("neither it nor the coordinator's text of it has that hash")
}

/// JSON text with object keys sorted (how the coordinator writes it).
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inputs_object_is_hashed_as_the_coordinator_writes_it() {
        let text = r#"{"inputs":{"a":1,"b":{"c":[1,2],"d":"x"}},"wasm_module":null}"#;
        let sha = greenmesh_protocol::sha256_hex(text.as_bytes());
        assert_eq!(input_text(text, &sha).unwrap(), text);
        let pretty = "{ \"b\": { \"d\": \"x\", \"c\": [1, 2] },\n  \"a\": 1 }\n";
        assert_eq!(input_text(pretty, &sha).unwrap(), text);
        assert!(input_text("{\"a\": 2}", &sha).is_err());
    }
}
