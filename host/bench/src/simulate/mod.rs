//! `greenmesh simulate`: replays real grid-intensity traces through the real
//! coordinator components on a virtual clock and reports what carbon-aware
//! scheduling saved.
//!
//! For each replay it prints emissions against running every job at
//! submission on the requester's home grid, the perfect-foresight optimum
//! (`carbon::oracle`, the same bound as `tools/carbon_oracle.py`), the share
//! of the oracle's saving achieved, deadline misses and mean deferral. Two
//! replays run by default: nodes sending a forecast (the trace ahead with 5 %
//! mean error growing with the lead time, as in Wiesner et al.) and nodes
//! sending only their history (daily persistence). With more than one trace
//! the jobs may also move between regions (spatial shifting).
//!
//! - [`replay`]: one replay against the in-process coordinator.
//! - [`report`]: its figures and chart.

pub mod replay;
pub mod report;

use anyhow::{bail, Context};
use greenmesh_carbon::{oracle, Trace};
use replay::{Foresight, Setup};
use std::path::PathBuf;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// `greenmesh simulate` arguments.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// A carbon-intensity trace (CSV: `Time,Carbon Intensity`). The first is
    /// the requester's home region; each further one adds a node elsewhere.
    #[arg(long = "carbon-trace", required = true)]
    pub traces: Vec<PathBuf>,
    /// The SLA every job is submitted with: `high` (24 h) or `normal` (48 h).
    #[arg(long, default_value = "high")]
    pub sla: String,
    /// Jobs, arriving uniformly at random over the replayed span.
    #[arg(long, default_value_t = 3000)]
    pub jobs: usize,
    /// Each job's length, minutes.
    #[arg(long, default_value_t = 60)]
    pub job_minutes: u64,
    /// Mean relative forecast error (grows with the lead time).
    #[arg(long, default_value_t = 0.05)]
    pub forecast_error: f32,
    /// Which replays: `both`, `forecast` or `history`.
    #[arg(long, default_value = "both")]
    pub foresight: String,
    /// Replay only this many days (after two days of history); all by default.
    #[arg(long)]
    pub days: Option<u64>,
    /// Seed for arrivals and forecast errors.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time step of the replay (heartbeats and dispatch decisions), minutes.
    #[arg(long, default_value_t = 30)]
    pub step_minutes: u64,
    /// Power drawn by a running job, W (energy = power × duration).
    #[arg(long, default_value_t = 100.0)]
    pub power_w: f64,
    /// Write an SVG chart of the (first) replay here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write the (first) replay as JSON (`greenmesh-replay/1`) here: open
    /// it on the dashboard's Replay page to zoom through it week by week.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// The coordinator manifest (its components must be built).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
}

/// The printed outcome of one replay.
pub struct Outcome {
    pub label: String,
    pub figures: report::Figures,
    pub run: report::Run,
}

/// Runs the replays `args` asks for and prints their figures.
pub async fn run(args: SimulateArgs) -> anyhow::Result<Vec<Outcome>> {
    let window_ms = match args.sla.as_str() {
        "high" => DAY_MS,
        "normal" => 2 * DAY_MS,
        other => bail!("--sla must be high or normal (the SLAs with a deadline), not {other:?}"),
    };
    if args.step_minutes == 0 || args.job_minutes == 0 {
        bail!("--step-minutes and --job-minutes must be at least 1");
    }
    let mut traces = Vec::new();
    for path in &args.traces {
        traces
            .push(Trace::load(path).with_context(|| format!("--carbon-trace {}", path.display()))?);
    }
    let job_ms = args.job_minutes * 60_000;
    let step_ms = args.step_minutes * 60_000;
    let home = match args.days {
        Some(days) => truncated(&traces[0], 2 * DAY_MS + days * DAY_MS + window_ms + job_ms),
        None => traces[0].clone(),
    };
    let submits = oracle::job_arrivals(&home, args.jobs, window_ms, job_ms, args.seed)?;
    let runs: Vec<(String, Foresight)> = match args.foresight.as_str() {
        "both" => vec![
            forecast_run(&args),
            ("history only".into(), Foresight::History),
        ],
        "forecast" => vec![forecast_run(&args)],
        "history" => vec![("history only".into(), Foresight::History)],
        other => bail!("--foresight must be both, forecast or history, not {other:?}"),
    };
    let regions: Vec<&str> = traces.iter().map(|t| t.region.as_str()).collect();
    println!(
        "replaying {} job(s) of {} min, SLA {} ({} h window), on {} ({} node(s)), step {} min",
        submits.len(),
        args.job_minutes,
        args.sla,
        window_ms / HOUR_MS,
        regions.join(" + "),
        traces.len(),
        args.step_minutes
    );
    let mut outcomes = Vec::new();
    for (label, foresight) in runs {
        let started = std::time::Instant::now();
        let run = replay::run(&Setup {
            manifest: args.manifest.clone(),
            traces: &traces,
            sla: &args.sla,
            window_ms,
            job_ms,
            submits: &submits,
            step_ms,
            foresight,
            power_w: args.power_w,
            label: &label,
        })
        .await?;
        let f = report::figures(&run, &traces, window_ms, job_ms, args.power_w);
        print(
            &label,
            &f,
            traces.len() > 1,
            started.elapsed().as_secs_f64(),
        );
        if outcomes.is_empty() {
            let title = format!(
                "greenmesh simulate: {} jobs, SLA {}, {} ({label})",
                f.jobs,
                args.sla,
                regions.join(" + ")
            );
            if let Some(path) = &args.plot {
                report::chart(&title, &run, &traces, job_ms, args.power_w).write(path)?;
                println!("chart: {}", path.display());
            }
            if let Some(path) = &args.export {
                let doc = report::replay_json(&title, &run, &f, &traces, job_ms, args.power_w);
                std::fs::write(path, serde_json::to_vec(&doc)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("replay for the dashboard: {}", path.display());
            }
        }
        outcomes.push(Outcome {
            label,
            figures: f,
            run,
        });
    }
    Ok(outcomes)
}

fn forecast_run(args: &SimulateArgs) -> (String, Foresight) {
    (
        format!("forecast, {:.0} % mean error", args.forecast_error * 100.0),
        Foresight::Forecast {
            mean_error: args.forecast_error,
            seed: args.seed,
        },
    )
}

/// The first `span_ms` of `trace`.
fn truncated(trace: &Trace, span_ms: u64) -> Trace {
    let steps = (span_ms / trace.step_ms.max(1)) as usize + 1;
    Trace {
        values: trace.values[..steps.min(trace.values.len())].to_vec(),
        ..trace.clone()
    }
}

fn print(label: &str, f: &report::Figures, spatial: bool, seconds: f64) {
    println!("\n{label} ({seconds:.0} s):");
    println!(
        "  emissions: {:.1} kg run-now at home, {:.1} kg scheduled, {:.1} kg oracle",
        f.run_now_g / 1000.0,
        f.actual_g / 1000.0,
        f.oracle_g / 1000.0
    );
    println!(
        "  saving vs run-now: {:.1} %   oracle: {:.1} %   share of the oracle's saving: {:.0} %",
        f.saving() * 100.0,
        f.oracle_saving() * 100.0,
        f.of_oracle() * 100.0
    );
    if spatial {
        println!(
            "  (time shifting alone at home, oracle: {:.1} %)",
            f.oracle_home_saving() * 100.0
        );
    }
    println!(
        "  deadline misses: {} of {}   mean deferral: {:.1} h   interrupted runs: {}",
        f.deadline_misses, f.jobs, f.mean_deferral_h, f.interrupted_runs
    );
}
