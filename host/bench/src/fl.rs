//! `greenmesh bench fl`: federated learning's figures.
//!
//! 1. **The accountant against `dp-accounting`**: ε for published settings
//!    (the DP-SGD MNIST setting of Abadi et al. among them), ours beside
//!    Google's `dp-accounting` 0.6.0.
//! 2. **Privacy against utility**: mean test accuracy over five random
//!    splits for ε ∈ {0.5, 1, 2, 4, 8, ∞}. It runs on breast cancer
//!    (softmax) and digits (an MLP), with rows spread evenly (IID) or
//!    label-skewed (each node holds two label-sorted shards, McMahan et
//!    al.'s non-IID split). The centralised DP anchor the issue names sits
//!    beside them.
//! 3. **The sandbox against native code**: the same rounds, each member's
//!    training run by the `fl-train` kernel in the provider's sandbox
//!    (reading its rows through the dataset import) and natively with
//!    `greenmesh-fl`. Both wall times and accuracies are printed.
//! 4. **Against Flower** (`--flower PYTHON`, outside CI): the same splits
//!    and model trained by Flower's FedAvg simulation
//!    (`host/bench/flower/fedavg.py`, clients with the same local DP-SGD),
//!    beside greenmesh's sandboxed kernel and plain FedAvg natively.
//!
//! Everything runs in one process on the CPU. The coordinator's part
//! (leases, rounds) is covered by `tests/all/federated.rs`.

use greenmesh_fl::accountant;
use greenmesh_fl::data::Dataset;
use greenmesh_fl::model::Model;
use greenmesh_fl::random::SplitMix64;
use greenmesh_fl::train::{fedavg, local_train, Training};
use greenmesh_provider::executor::{RunLimits, Sandbox};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What the benchmark runs (`greenmesh bench fl` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Setup {
    /// Folder with `breast_cancer.csv` and `digits.csv.gz`.
    #[arg(long, default_value = "data/ml")]
    pub data: PathBuf,
    /// Folder with `fl-train.wasm` (installed by `cargo xtask build`).
    #[arg(long, default_value = "target/kernels")]
    pub kernels: PathBuf,
    /// Random splits averaged per figure.
    #[arg(long, default_value_t = 5)]
    pub splits: u64,
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// A Python with `flwr[simulation]` installed: also run Flower's FedAvg
    /// simulation on the same splits (`host/bench/flower/fedavg.py`).
    #[arg(long, value_name = "PYTHON")]
    pub flower: Option<PathBuf>,
}

/// `dp-accounting` 0.6.0's ε (default orders) for (σ, q, steps, δ).
const REFERENCE: &[(f64, f64, u64, f64, f64)] = &[
    (1.1, 0.01, 10_000, 1e-5, 5.632010670081592),
    (4.0, 0.01, 10_000, 1e-5, 1.0354900660362436),
    (2.0, 0.2, 250, 1e-3, 6.944422672518567),
    (5.0, 1.0, 10, 1e-3, 2.040847162237852),
];

/// One dataset and the model trained on it.
struct Case {
    name: &'static str,
    data: Dataset,
    model: fn(usize, usize) -> Model,
    /// The centralised DP anchor by ε, when there is one.
    anchor: &'static [(f64, f64)],
}

fn load(setup: &Setup) -> anyhow::Result<Vec<Case>> {
    let cancer = std::fs::read_to_string(setup.data.join("breast_cancer.csv"))?;
    let mut digits = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(setup.data.join("digits.csv.gz"))?),
        &mut digits,
    )?;
    Ok(vec![
        Case {
            name: "breast cancer, softmax",
            data: Dataset::parse_csv(&cancer).map_err(anyhow::Error::msg)?,
            model: |features, classes| Model::Softmax { features, classes },
            anchor: &[
                (0.5, 0.72),
                (1.0, 0.80),
                (4.0, 0.90),
                (8.0, 0.93),
                (f64::INFINITY, 0.98),
            ],
        },
        Case {
            name: "digits, MLP 32",
            data: Dataset::parse_csv(&digits).map_err(anyhow::Error::msg)?,
            model: |features, classes| Model::Mlp {
                features,
                hidden: 32,
                classes,
            },
            anchor: &[],
        },
    ])
}

/// A split: standardised training rows over `nodes` nodes, and the test rows.
fn split(data: &Dataset, seed: u64, nodes: usize, skewed: bool) -> (Vec<Dataset>, Dataset) {
    let (parts, _, test) = greenmesh_fl::data::federated_split(data, seed, nodes, skewed);
    (parts, test)
}

/// The training settings for ε over `rounds` rounds.
fn settings(epsilon: f64, rounds: u32) -> Training {
    let (steps, q, delta) = (10u32, 0.5, 1e-3);
    let sigma = if epsilon.is_finite() {
        accountant::noise_multiplier(epsilon, delta, q, (rounds * steps) as u64, 1_000.0)
            .unwrap_or(f64::INFINITY)
    } else {
        0.0
    };
    Training {
        learning_rate: 0.5,
        steps,
        sampling_rate: q,
        clip: if epsilon.is_finite() {
            1.0
        } else {
            f64::INFINITY
        },
        noise_multiplier: sigma,
    }
}

/// FedAvg natively; answers the test accuracy.
fn native(
    case: &Case,
    parts: &[Dataset],
    test: &Dataset,
    t: &Training,
    rounds: u32,
    seed: u64,
) -> f64 {
    let model = (case.model)(case.data.schema().features, case.data.classes);
    let mut rng = SplitMix64(seed);
    let mut global = model.init(&mut rng);
    for _ in 0..rounds {
        let members: Vec<(Vec<f64>, u64)> = parts
            .iter()
            .map(|d| {
                (
                    local_train(&model, &global, d, t, &mut rng),
                    d.features.len() as u64,
                )
            })
            .collect();
        global = fedavg(&members).expect("same shapes");
    }
    model.accuracy(&global, test)
}

/// FedAvg with every member's round run by the `fl-train` kernel in the
/// sandbox, reading its rows through the dataset import.
fn sandboxed(
    (sandbox, k): (&Sandbox, &greenmesh_provider::catalog::Installed),
    case: &Case,
    parts: &[Dataset],
    test: &Dataset,
    t: &Training,
    rounds: u32,
) -> anyhow::Result<f64> {
    let model = (case.model)(case.data.schema().features, case.data.classes);
    let spec = match model {
        Model::Softmax { .. } => serde_json::json!({ "kind": "softmax" }),
        Model::Mlp { hidden, .. } => serde_json::json!({ "kind": "mlp", "hidden": hidden }),
    };
    let mut global = model.init(&mut SplitMix64(1));
    let parts: Vec<Arc<Dataset>> = parts.iter().cloned().map(Arc::new).collect();
    for _ in 0..rounds {
        let mut members = Vec::new();
        for part in &parts {
            let mut training = serde_json::json!({ "learning_rate": t.learning_rate, "steps": t.steps,
                                                   "sampling_rate": t.sampling_rate, "noise_multiplier": t.noise_multiplier });
            if t.clip.is_finite() {
                training["clip"] = serde_json::json!(t.clip);
            }
            let input = serde_json::json!({ "model": spec, "global": global, "training": training, "holdout": 0.0 });
            let limits = RunLimits {
                dataset: Some(part.clone()),
                ..RunLimits::measuring(512 << 20)
            };
            let out = sandbox
                .run(
                    &k.prepared,
                    "application/json",
                    input.to_string().as_bytes(),
                    "{}",
                    &limits,
                )
                .outcome
                .map_err(|e| anyhow::anyhow!("fl-train: {e}"))?;
            let v: serde_json::Value = serde_json::from_slice(&out.bytes)?;
            let params: Vec<f64> = serde_json::from_value(v["params"].clone())?;
            members.push((params, v["samples"].as_u64().unwrap_or(0)));
        }
        global = fedavg(&members)
            .ok_or_else(|| anyhow::anyhow!("members disagree on the model's size"))?;
    }
    Ok(model.accuracy(&global, test))
}

/// Runs the benchmark and prints its tables.
pub fn run(setup: Setup) -> anyhow::Result<()> {
    println!("## The accountant against dp-accounting 0.6.0\n");
    println!("| σ | q | steps | δ | ε here | ε dp-accounting |\n|---|---|---|---|---|---|");
    for &(sigma, q, steps, delta, reference) in REFERENCE {
        println!(
            "| {sigma} | {q} | {steps} | {delta:e} | {:.4} | {reference:.4} |",
            accountant::epsilon(q, sigma, steps, delta)
        );
    }
    let cases = load(&setup)?;
    let epsilons = [0.5, 1.0, 2.0, 4.0, 8.0, f64::INFINITY];
    println!(
        "\n## Privacy against utility: mean test accuracy over {} splits, {} nodes, {} rounds (10 DP-SGD steps a round, q 0.5, clip 1, δ 10⁻³)\n",
        setup.splits, setup.nodes, setup.rounds
    );
    println!(
        "| data | split | {} |",
        epsilons.map(|e| format!("ε {e}")).join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(epsilons.len()));
    for case in &cases {
        for skewed in [false, true] {
            let cells: Vec<String> = epsilons
                .iter()
                .map(|&eps| {
                    let t = settings(eps, setup.rounds);
                    let mean = (1..=setup.splits)
                        .map(|s| {
                            let (parts, test) = split(&case.data, s, setup.nodes, skewed);
                            native(case, &parts, &test, &t, setup.rounds, 100 + s)
                        })
                        .sum::<f64>()
                        / setup.splits as f64;
                    format!("{:.1} %", mean * 100.0)
                })
                .collect();
            let how = if skewed { "label-skewed" } else { "IID" };
            println!("| {} | {how} | {} |", case.name, cells.join(" | "));
        }
        if !case.anchor.is_empty() {
            let cells: Vec<String> = epsilons
                .iter()
                .map(|e| {
                    case.anchor
                        .iter()
                        .find(|(a, _)| a == e)
                        .map_or("—".into(), |(_, acc)| format!("{:.0} %", acc * 100.0))
                })
                .collect();
            println!(
                "| {} | centralised DP anchor (diffprivlib 0.6.6) | {} |",
                case.name,
                cells.join(" | ")
            );
        }
    }
    // Compiled once, as a node does at start (not timed).
    let sandbox = Sandbox::new(512 << 20, None)?;
    let kernel = greenmesh_provider::catalog::load(&sandbox, &setup.kernels.join("fl-train.wasm"))?;
    println!("\n## The fl-train kernel in the sandbox against native code (ε 1, IID, split 1; compile not timed)\n");
    println!(
        "| data | sandbox | native | sandbox accuracy | native accuracy |\n|---|---|---|---|---|"
    );
    for case in &cases {
        let (parts, test) = split(&case.data, 1, setup.nodes, false);
        let t = settings(1.0, setup.rounds);
        let started = Instant::now();
        let in_sandbox = sandboxed((&sandbox, &kernel), case, &parts, &test, &t, setup.rounds)?;
        let sandbox_time = started.elapsed();
        let started = Instant::now();
        let natively = native(case, &parts, &test, &t, setup.rounds, 101);
        let native_time = started.elapsed();
        println!(
            "| {} | {:.0} ms | {:.0} ms ({:.1}× faster) | {:.1} % | {:.1} % |",
            case.name,
            sandbox_time.as_secs_f64() * 1e3,
            native_time.as_secs_f64() * 1e3,
            sandbox_time.as_secs_f64() / native_time.as_secs_f64().max(1e-9),
            in_sandbox * 100.0,
            natively * 100.0
        );
    }
    if let Some(python) = &setup.flower {
        against_flower(&setup, python, (&sandbox, &kernel), &cases[0])?;
    }
    Ok(())
}

/// Flower's FedAvg simulation beside greenmesh on the same splits and
/// model (breast cancer, softmax), at ε 1 and without DP.
fn against_flower(
    setup: &Setup,
    python: &std::path::Path,
    kernel: (&Sandbox, &greenmesh_provider::catalog::Installed),
    case: &Case,
) -> anyhow::Result<()> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flower/fedavg.py");
    println!(
        "\n## Against Flower's FedAvg simulation ({}, IID, {} splits; wall time per training)\n",
        case.name, setup.splits
    );
    println!(
        "| ε | greenmesh (sandboxed kernel) | plain FedAvg (native) | Flower |\n|---|---|---|---|"
    );
    for eps in [1.0, f64::INFINITY] {
        let t = settings(eps, setup.rounds);
        let mut sums = [(0.0, 0.0); 3];
        let mut version = String::new();
        for s in 1..=setup.splits {
            let (parts, test) = split(&case.data, s, setup.nodes, false);
            let started = Instant::now();
            sums[0].0 += sandboxed(kernel, case, &parts, &test, &t, setup.rounds)?;
            sums[0].1 += started.elapsed().as_secs_f64();
            let started = Instant::now();
            sums[1].0 += native(case, &parts, &test, &t, setup.rounds, 100 + s);
            sums[1].1 += started.elapsed().as_secs_f64();
            let dir = tempfile::tempdir()?;
            for (i, part) in parts.iter().enumerate() {
                std::fs::write(dir.path().join(format!("node-{i}.csv")), csv(part))?;
            }
            std::fs::write(dir.path().join("test.csv"), csv(&test))?;
            let mut cmd = std::process::Command::new(python);
            cmd.arg(&script)
                .arg(dir.path())
                .args([
                    "--rounds",
                    &setup.rounds.to_string(),
                    "--steps",
                    &t.steps.to_string(),
                ])
                .args([
                    "--q",
                    &t.sampling_rate.to_string(),
                    "--lr",
                    &t.learning_rate.to_string(),
                ])
                .args(["--sigma", &t.noise_multiplier.to_string()])
                .args(["--classes", &case.data.classes.to_string()]);
            if t.clip.is_finite() {
                cmd.args(["--clip", &t.clip.to_string()]);
            }
            let out = cmd.stderr(std::process::Stdio::null()).output()?;
            let last = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .to_string();
            let v: serde_json::Value = serde_json::from_str(&last).map_err(|e| {
                anyhow::anyhow!("{} printed no result ({e}): {last}", script.display())
            })?;
            sums[2].0 += v["accuracy"].as_f64().unwrap_or(f64::NAN);
            sums[2].1 += v["seconds"].as_f64().unwrap_or(f64::NAN);
            version = v["flwr"].as_str().unwrap_or_default().to_string();
        }
        let n = setup.splits as f64;
        let cell = |(acc, secs): (f64, f64)| format!("{:.1} %, {:.2} s", acc / n * 100.0, secs / n);
        println!(
            "| {eps} | {} | {} | {} (flwr {version}) |",
            cell(sums[0]),
            cell(sums[1]),
            cell(sums[2])
        );
    }
    Ok(())
}

/// Rows as CSV, label last (what the Flower script reads).
fn csv(data: &Dataset) -> String {
    let mut out = String::new();
    for (x, y) in data.features.iter().zip(&data.labels) {
        for v in x {
            out.push_str(&format!("{v},"));
        }
        out.push_str(&format!("{y}\n"));
    }
    out
}
