//! What a replay measured: emissions of the coordinator's placements
//! against running at submission (at home) and against the perfect-foresight
//! optimum, deadline misses, deferral; and the chart of it.

use greenmesh_carbon::oracle::{self, Job};
use greenmesh_carbon::plot::Svg;
use greenmesh_carbon::Trace;

/// One job: when it was submitted and where and when it ran.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub submit: u64,
    pub start: Option<u64>,
    pub region: Option<usize>,
    /// Runs stopped before the end (interrupted): start, stop, region.
    pub wasted: Vec<(u64, u64, usize)>,
}

impl JobOutcome {
    pub fn new(submit: u64) -> Self {
        Self {
            submit,
            start: None,
            region: None,
            wasted: Vec::new(),
        }
    }

    pub fn finish(&mut self, start: u64, region: usize) {
        self.start = Some(start);
        self.region = Some(region);
    }

    pub fn wasted(&mut self, start: u64, stop: u64, region: usize) {
        self.wasted.push((start, stop, region));
    }
}

/// A finished replay.
pub struct Run {
    pub jobs: Vec<JobOutcome>,
    /// The coordinator's own ledger totals, for a cross-check.
    pub ledger_saved_g: f64,
    pub ledger_runs: u64,
}

/// The figures of one replay.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub jobs: usize,
    pub finished: usize,
    pub run_now_g: f64,
    pub actual_g: f64,
    pub oracle_g: f64,
    /// The temporal-only oracle on the home trace (equal to `oracle_g`
    /// with one region).
    pub oracle_home_g: f64,
    pub deadline_misses: usize,
    pub mean_deferral_h: f64,
    pub interrupted_runs: usize,
}

impl Figures {
    pub fn saving(&self) -> f64 {
        1.0 - self.actual_g / self.run_now_g
    }
    pub fn oracle_saving(&self) -> f64 {
        1.0 - self.oracle_g / self.run_now_g
    }
    pub fn oracle_home_saving(&self) -> f64 {
        1.0 - self.oracle_home_g / self.run_now_g
    }
    /// The share of the oracle's saving achieved.
    pub fn of_oracle(&self) -> f64 {
        self.saving() / self.oracle_saving()
    }
}

/// Grams for `power_w` over `[from, to)` on `trace`.
fn grams(trace: &Trace, from: u64, to: u64, power_w: f64) -> f64 {
    let kwh = power_w * (to - from) as f64 / 3.6e9;
    kwh * trace.mean_f64(from, to).unwrap_or(0.0)
}

/// Evaluates `run` on `traces` (home first).
pub fn figures(run: &Run, traces: &[Trace], window_ms: u64, job_ms: u64, power_w: f64) -> Figures {
    let all: Vec<&Trace> = traces.iter().collect();
    let home = &traces[0];
    let mut f = Figures {
        jobs: run.jobs.len(),
        finished: 0,
        run_now_g: 0.0,
        actual_g: 0.0,
        oracle_g: 0.0,
        oracle_home_g: 0.0,
        deadline_misses: 0,
        mean_deferral_h: 0.0,
        interrupted_runs: 0,
    };
    let mut deferral = 0.0;
    for j in &run.jobs {
        let job = Job {
            submit_ms: j.submit,
            duration_ms: job_ms,
            window_ms,
        };
        let kwh = power_w * job_ms as f64 / 3.6e9;
        let now = grams(home, j.submit, j.submit + job_ms, power_w);
        f.run_now_g += now;
        f.oracle_g += oracle::oracle_cost(&all, &job).map_or(now, |c| (kwh * c.intensity).min(now));
        f.oracle_home_g +=
            oracle::oracle_cost(&[home], &job).map_or(now, |c| (kwh * c.intensity).min(now));
        for &(from, to, region) in &j.wasted {
            f.actual_g += grams(&traces[region], from, to, power_w);
            f.interrupted_runs += 1;
        }
        match (j.start, j.region) {
            (Some(start), Some(region)) => {
                f.finished += 1;
                f.actual_g += grams(&traces[region], start, start + job_ms, power_w);
                if start > j.submit + window_ms {
                    f.deadline_misses += 1;
                }
                deferral += (start - j.submit) as f64 / 3.6e6;
            }
            _ => f.deadline_misses += 1,
        }
    }
    f.mean_deferral_h = deferral / f.finished.max(1) as f64;
    f
}

/// What a replay's pictures show: its span, each job's start, and the
/// cumulative grams saved against running at submission at home.
pub struct Series {
    /// The replayed span, ms: the first submission to the last run's end.
    pub from: u64,
    pub to: u64,
    /// Each run's start, its region, and that region's mean intensity over
    /// the run (g/kWh), in start order.
    pub starts: Vec<(u64, usize, f64)>,
    /// After each run's start (or an interrupted run's stop), the grams
    /// saved so far; the last is `run_now_g - actual_g` of [`Figures`].
    pub saved: Vec<(u64, f64)>,
}

/// The [`Series`] of `run`.
pub fn series(run: &Run, traces: &[Trace], job_ms: u64, power_w: f64) -> Series {
    let from = run.jobs.first().map_or(0, |j| j.submit);
    let to = run
        .jobs
        .iter()
        .filter_map(|j| j.start)
        .max()
        .unwrap_or(from)
        + job_ms;
    let mut starts = Vec::new();
    // What each run changed against running at submission: a finished run
    // saves (or costs) at its start; an interrupted run's energy is lost
    // at its stop.
    let mut changes: Vec<(u64, f64)> = Vec::new();
    for j in &run.jobs {
        if let (Some(s), Some(r)) = (j.start, j.region) {
            starts.push((s, r, traces[r].mean_f64(s, s + job_ms).unwrap_or(0.0)));
            let now = grams(&traces[0], j.submit, j.submit + job_ms, power_w);
            changes.push((s, now - grams(&traces[r], s, s + job_ms, power_w)));
        }
        for &(start, stop, r) in &j.wasted {
            changes.push((stop, -grams(&traces[r], start, stop, power_w)));
        }
    }
    starts.sort_by_key(|s| s.0);
    changes.sort_by_key(|c| c.0);
    let mut total = 0.0;
    let saved = changes
        .into_iter()
        .map(|(t, g)| {
            total += g;
            (t, total)
        })
        .collect();
    Series {
        from,
        to,
        starts,
        saved,
    }
}

/// A chart of the home intensity (and other regions'), each job's start,
/// and cumulative grams saved against running at submission.
pub fn chart(title: &str, run: &Run, traces: &[Trace], job_ms: u64, power_w: f64) -> Svg {
    let Series {
        from,
        to,
        starts,
        saved,
    } = series(run, traces, job_ms, power_w);
    let bin = if to - from > 30 * 86_400_000 {
        6 * 3_600_000
    } else {
        3_600_000
    };
    let mut svg = Svg::new(title)
        .y_label("grid intensity, gCO2/kWh (average, location-based)")
        .cumulative_label("cumulative CO2 saved vs running at submission, g");
    for t in traces {
        let points = t
            .binned(bin)
            .into_iter()
            .filter(|(x, _)| (from..=to).contains(x))
            .map(|(x, v)| (x, v as f64));
        svg = svg.line(&format!("{} intensity", t.region), points);
    }
    svg.markers("job starts", starts.iter().map(|&(t, _, at)| (t, at)))
        .cumulative("saved", saved)
}

/// The replay as JSON for the dashboard's zoomable chart
/// (`greenmesh-replay/1`): every trace point of the span at full
/// resolution (no binning: the dashboard zooms to a week), each start, the
/// cumulative saving and the figures. Times are Unix seconds.
pub fn replay_json(
    title: &str,
    run: &Run,
    figures: &Figures,
    traces: &[Trace],
    job_ms: u64,
    power_w: f64,
) -> serde_json::Value {
    let Series {
        from,
        to,
        starts,
        saved,
    } = series(run, traces, job_ms, power_w);
    let secs = |ms: u64| ms / 1000;
    let intensity: Vec<_> = traces
        .iter()
        .map(|t| {
            let points: Vec<(u64, f32)> = (0..t.values.len())
                .map(|i| (t.start_ms + i as u64 * t.step_ms, t.values[i]))
                .filter(|(x, _)| (from..=to).contains(x))
                .collect();
            serde_json::json!({
                "region": t.region,
                "t": points.iter().map(|p| secs(p.0)).collect::<Vec<_>>(),
                "g_per_kwh": points.iter().map(|p| p.1).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "format": "greenmesh-replay/1",
        "title": title,
        "signal": "average, location-based grid intensity (gCO2/kWh)",
        "from": secs(from),
        "to": secs(to),
        "job_minutes": job_ms / 60_000,
        "power_w": power_w,
        "figures": {
            "jobs": figures.jobs,
            "finished": figures.finished,
            "run_now_g": figures.run_now_g,
            "scheduled_g": figures.actual_g,
            "oracle_g": figures.oracle_g,
            "saving": figures.saving(),
            "oracle_saving": figures.oracle_saving(),
            "deadline_misses": figures.deadline_misses,
            "mean_deferral_h": figures.mean_deferral_h,
        },
        "intensity": intensity,
        "starts": {
            "t": starts.iter().map(|s| secs(s.0)).collect::<Vec<_>>(),
            "region": starts.iter().map(|s| s.1).collect::<Vec<_>>(),
            "g_per_kwh": starts.iter().map(|s| s.2).collect::<Vec<_>>(),
        },
        "saved": {
            "t": saved.iter().map(|s| secs(s.0)).collect::<Vec<_>>(),
            "cumulative_g": saved.iter().map(|s| s.1).collect::<Vec<_>>(),
        },
    })
}
