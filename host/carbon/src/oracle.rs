//! The upper bound on what shifting jobs can save: each job's cost when run
//! at submission versus at the best start (and region) chosen with perfect
//! foresight, as `shared/tools/carbon_oracle.py` measures it.
//!
//! Costs are mean carbon intensities over a job's run (gCO2/kWh); at a fixed
//! power, emissions are proportional to mean × duration.

use super::civil::DAY_MS;
use super::rng::SplitMix64;
use super::trace::{span_text, Trace};

/// A job to place: submitted at `submit_ms`, runs `duration_ms`, and may
/// start any time up to `window_ms` after submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub submit_ms: u64,
    pub duration_ms: u64,
    pub window_ms: u64,
}

/// The best placement of a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Index into the traces given to [`oracle_cost`].
    pub trace: usize,
    pub start_ms: u64,
    /// Mean intensity over the run, gCO2/kWh.
    pub intensity: f64,
}

/// Mean intensity over `[submit, submit + duration)` on the home trace;
/// `None` if the run leaves the trace.
pub fn run_now_cost(home: &Trace, job: &Job) -> Option<f64> {
    home.mean_f64(job.submit_ms, job.submit_ms.checked_add(job.duration_ms)?)
}

/// The lowest mean intensity over `[s, s + duration)` for any start `s` in
/// `[submit, submit + window]` on any of `traces` (one trace: temporal
/// shifting only; several: also spatial). Starts whose run would leave a
/// trace are not considered; `None` if no start fits anywhere.
///
/// Exact over all real start times, not only a grid: on a step function the
/// mean over a fixed-length run is piecewise linear in `s`, with corners
/// where the run's start or end crosses a step boundary, so it suffices to
/// check the window's ends and those corners (with a duration that is a
/// whole number of steps, these are the step boundaries themselves).
pub fn oracle_cost(traces: &[&Trace], job: &Job) -> Option<Choice> {
    let mut best: Option<Choice> = None;
    for (index, trace) in traces.iter().enumerate() {
        let earliest = job.submit_ms.max(trace.start_ms);
        let Some(latest) = job
            .submit_ms
            .checked_add(job.window_ms)
            .map(|w| w.min(trace.end_ms().saturating_sub(job.duration_ms)))
        else {
            continue;
        };
        if trace.step_ms == 0 || latest < earliest || trace.end_ms() < job.duration_ms {
            continue;
        }
        let mut consider = |s: u64| {
            if let Some(m) = trace.mean_f64(s, s + job.duration_ms) {
                if best.is_none_or(|b| m < b.intensity) {
                    best = Some(Choice {
                        trace: index,
                        start_ms: s,
                        intensity: m,
                    });
                }
            }
        };
        consider(earliest);
        consider(latest);
        for (_, b) in trace.steps_in(earliest, latest.saturating_add(job.duration_ms)) {
            if b <= latest {
                consider(b);
            }
            if let Some(s) = b.checked_sub(job.duration_ms) {
                if s > earliest && s <= latest {
                    consider(s);
                }
            }
        }
    }
    best
}

/// `n` submission times drawn uniformly (seeded) from the part of the trace
/// that leaves two days of history before them and `window_ms +
/// duration_ms` after them, in increasing order.
pub fn job_arrivals(
    trace: &Trace,
    n: usize,
    window_ms: u64,
    duration_ms: u64,
    seed: u64,
) -> anyhow::Result<Vec<u64>> {
    let first = trace.start_ms.saturating_add(2 * DAY_MS);
    let room = window_ms.saturating_add(duration_ms);
    let last = trace.end_ms().checked_sub(room).filter(|&l| l > first);
    let Some(last) = last else {
        anyhow::bail!(
            "trace {} spans {}: too short for 2 days of history plus a {} window and a {} job",
            trace.region,
            span_text(trace.end_ms().saturating_sub(trace.start_ms)),
            span_text(window_ms),
            span_text(duration_ms),
        );
    };
    let mut rng = SplitMix64::new(seed);
    let mut times: Vec<u64> = (0..n).map(|_| first + rng.below(last - first)).collect();
    times.sort_unstable();
    Ok(times)
}

/// Run-now and oracle totals over a set of jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Savings {
    pub jobs: usize,
    /// Σ duration × mean intensity when run at submission (gCO2/kWh·ms;
    /// times a power, grams).
    pub run_now: f64,
    /// The same at the oracle's choices.
    pub oracle: f64,
}

impl Savings {
    /// Fraction of run-now emissions the oracle avoids (0.244 = 24.4 %).
    pub fn fraction(&self) -> f64 {
        if self.run_now > 0.0 {
            1.0 - self.oracle / self.run_now
        } else {
            0.0
        }
    }
}

/// Evaluates every job on `home` (run now) and `traces` (oracle; include
/// `home` for temporal shifting). A job that cannot run now on `home` is an
/// error naming it.
pub fn savings(home: &Trace, traces: &[&Trace], jobs: &[Job]) -> anyhow::Result<Savings> {
    let mut total = Savings {
        jobs: jobs.len(),
        run_now: 0.0,
        oracle: 0.0,
    };
    for (i, job) in jobs.iter().enumerate() {
        let now = run_now_cost(home, job).ok_or_else(|| {
            anyhow::anyhow!("job {i} ({job:?}) does not fit in trace {}", home.region)
        })?;
        let best = oracle_cost(traces, job).map_or(now, |c| c.intensity.min(now));
        let weight = job.duration_ms as f64;
        total.run_now += now * weight;
        total.oracle += best * weight;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const H: u64 = 3_600_000;

    fn trace(values: &[f32], step_ms: u64) -> Trace {
        Trace {
            region: "t".into(),
            start_ms: 1_600_000_000_000,
            step_ms,
            values: values.to_vec(),
        }
    }

    #[test]
    fn picks_the_cheapest_start_and_region() {
        let home = trace(&[300.0, 300.0, 100.0, 50.0, 300.0, 300.0], H);
        let s = home.start_ms;
        let job = Job {
            submit_ms: s,
            duration_ms: 2 * H,
            window_ms: 3 * H,
        };
        assert_eq!(run_now_cost(&home, &job), Some(300.0));
        let c = oracle_cost(&[&home], &job).unwrap();
        assert_eq!((c.trace, c.start_ms, c.intensity), (0, s + 2 * H, 75.0));
        // With no window, the oracle is run-now.
        let now = Job {
            window_ms: 0,
            ..job
        };
        assert_eq!(oracle_cost(&[&home], &now).unwrap().intensity, 300.0);
        // Another region at 20 wins (spatial shifting).
        let green = Trace {
            region: "green".into(),
            ..trace(&[20.0; 6], H)
        };
        let c = oracle_cost(&[&home, &green], &job).unwrap();
        assert_eq!((c.trace, c.intensity), (1, 20.0));
        // The window is cut where the run would leave the trace.
        let late = Job {
            submit_ms: s + 4 * H,
            ..job
        };
        let c = oracle_cost(&[&home], &late).unwrap();
        assert_eq!((c.start_ms, c.intensity), (s + 4 * H, 300.0));
        let outside = Job {
            submit_ms: s + 10 * H,
            ..job
        };
        assert_eq!(run_now_cost(&home, &outside), None);
        assert_eq!(oracle_cost(&[&home], &outside), None);
        assert!(savings(&home, &[&home], &[job, outside]).is_err());
    }

    #[test]
    fn exact_minimum_matches_a_fine_scan() {
        // Irregular durations and submissions off the grid.
        let mut rng = SplitMix64::new(3);
        let values: Vec<f32> = (0..200).map(|_| 50.0 + rng.below(400) as f32).collect();
        let tr = trace(&values, 30 * 60_000);
        for _ in 0..200 {
            let job = Job {
                submit_ms: tr.start_ms + 60_000 * rng.below(60 * 60),
                duration_ms: 60_000 * (1 + rng.below(300)),
                window_ms: 60_000 * rng.below(600),
            };
            let exact = oracle_cost(&[&tr], &job).unwrap();
            let mut scanned = f64::INFINITY;
            let mut s = job.submit_ms;
            while s <= job.submit_ms + job.window_ms {
                scanned = scanned.min(tr.mean_f64(s, s + job.duration_ms).unwrap());
                s += 60_000;
            }
            assert!(exact.intensity <= scanned + 1e-9, "{job:?}");
            // The scan's grid is as fine as every corner, so they agree.
            assert!((exact.intensity - scanned).abs() < 1e-6, "{job:?}");
        }
    }

    #[test]
    fn arrivals_are_uniform_seeded_and_leave_room() {
        let tr = trace(&[1.0; 24 * 10], H);
        let times = job_arrivals(&tr, 1000, 24 * H, H, 5).unwrap();
        assert_eq!(times, job_arrivals(&tr, 1000, 24 * H, H, 5).unwrap());
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        let (lo, hi) = (tr.start_ms + 48 * H, tr.end_ms() - 25 * H);
        assert!(times.iter().all(|&t| lo <= t && t < hi));
        let below_middle = times.iter().filter(|&&t| t < (lo + hi) / 2).count();
        assert!((430..570).contains(&below_middle), "{below_middle}");
        let err = job_arrivals(&tr, 10, 8 * 24 * H, H, 5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too short") && err.contains("192 h"), "{err}");
    }

    fn real(name: &str) -> Trace {
        Trace::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data/carbon")
                .join(name),
        )
        .unwrap()
    }

    /// Saving of the oracle for 3,000 one-hour jobs, as the reference tool.
    fn oracle_saving(tr: &Trace, window_h: u64, seed: u64) -> f64 {
        let jobs: Vec<Job> = job_arrivals(tr, 3000, window_h * H, H, seed)
            .unwrap()
            .into_iter()
            .map(|submit_ms| Job {
                submit_ms,
                duration_ms: H,
                window_ms: window_h * H,
            })
            .collect();
        savings(tr, &[tr], &jobs).unwrap().fraction()
    }

    #[test]
    fn oracle_savings_on_the_real_traces() {
        // Measured here (seed 1): GB 26.1 % (24 h), 34.4 % (48 h); DE
        // 21.7 %, 29.6 %; seeds 2 and 3 within 0.8 points. Reference:
        // carbon_oracle.py on the resampled traces, seeds 1-3: GB 25.5-27.0 %,
        // 33.8-34.8 %; DE 21.7-22.2 %, 29.8-30.2 %. The tool's own GB figures
        // (24.4 %, 32.7 %) are low: it treats GB's 15-minute rows from
        // November on as 30-minute ones (data/carbon/README.md).
        let gb = real("gb_ci_2020.csv");
        let de = real("ger_ci_2020.csv");
        for (tr, window_h, lo, hi) in [
            (&gb, 24, 0.245, 0.285),
            (&gb, 48, 0.325, 0.365),
            (&de, 24, 0.205, 0.235),
            (&de, 48, 0.28, 0.315),
        ] {
            let s = oracle_saving(tr, window_h, 1);
            assert!((lo..hi).contains(&s), "{} {window_h} h: {s}", tr.region);
        }
    }

    #[test]
    fn spatial_shifting_saves_at_least_as_much() {
        let gb = real("gb_ci_2020.csv");
        let de = real("ger_ci_2020.csv");
        let jobs: Vec<Job> = job_arrivals(&gb, 300, 24 * H, H, 2)
            .unwrap()
            .into_iter()
            .map(|submit_ms| Job {
                submit_ms,
                duration_ms: H,
                window_ms: 24 * H,
            })
            .collect();
        let temporal = savings(&de, &[&de], &jobs).unwrap();
        let both = savings(&de, &[&de, &gb], &jobs).unwrap();
        assert_eq!(temporal.run_now, both.run_now);
        assert!(both.fraction() > temporal.fraction() + 0.1, "{both:?}");
    }
}
