//! A grid carbon-intensity time series on a constant step, loaded from the
//! `Time,Carbon Intensity` CSV files in `data/carbon/`.
//!
//! A trace is a step function: `values[i]` (gCO2/kWh) holds over
//! `[start_ms + i·step_ms, start_ms + (i+1)·step_ms)`. Files whose rows are
//! not all the same distance apart (the GB file switches from 30 to 15
//! minutes in November 2020) are resampled onto their most common step with
//! a time-weighted mean; gaps longer than [`MAX_GAP_STEPS`] steps, rows out
//! of order and malformed rows are errors naming the line.

use super::civil::{self, Civil, DAY_MS};
use anyhow::Context;
use std::path::Path;

/// Rows may be at most this many steps apart; a longer silence is taken as
/// missing data rather than a coarser resolution.
pub const MAX_GAP_STEPS: u64 = 4;

/// Average carbon intensity of one region's grid over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Names the trace in results and plots (by default the file stem).
    pub region: String,
    /// Start of the first step, ms since the Unix epoch (UTC).
    pub start_ms: u64,
    /// Length of every step, ms (positive).
    pub step_ms: u64,
    /// gCO2/kWh for each step.
    pub values: Vec<f32>,
}

/// "30 min", "2 h", "90 s": how long a span is, for error messages.
pub(crate) fn span_text(ms: u64) -> String {
    if ms.is_multiple_of(3_600_000) {
        format!("{} h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{} min", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

impl Trace {
    /// Loads a CSV trace; the region is the file stem (`gb_ci_2020`).
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Trace> {
        let path = path.as_ref();
        let region = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "trace".into());
        Self::load_as(path, &region)
    }

    /// Loads a CSV trace under the given region name.
    pub fn load_as(path: impl AsRef<Path>, region: &str) -> anyhow::Result<Trace> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading carbon trace {}", path.display()))?;
        Self::parse(&text, region).with_context(|| format!("carbon trace {}", path.display()))
    }

    /// Parses the CSV text: header `Time,Carbon Intensity`, then rows
    /// `YYYY-MM-DD HH:MM:SS,<gCO2/kWh>` (UTC) in increasing time.
    pub fn parse(text: &str, region: &str) -> anyhow::Result<Trace> {
        let mut lines = text
            .strip_prefix('\u{feff}')
            .unwrap_or(text)
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let Some((n, header)) = lines.next() else {
            anyhow::bail!("the file is empty; expected the header `Time,Carbon Intensity`");
        };
        let fields: Vec<String> = header
            .split(',')
            .map(|f| f.trim().to_ascii_lowercase())
            .collect();
        anyhow::ensure!(
            fields == ["time", "carbon intensity"],
            "line {n}: expected the header `Time,Carbon Intensity`, found {header:?}"
        );
        // (time, value, line)
        let mut rows: Vec<(u64, f64, usize)> = Vec::new();
        for (n, line) in lines {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [time, value] = fields[..] else {
                anyhow::bail!(
                    "line {n}: expected 2 fields (time, carbon intensity), found {}: {line:?}",
                    fields.len()
                );
            };
            let t = civil::parse_utc(time).map_err(|e| anyhow::anyhow!("line {n}: {e}"))?;
            let v: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "line {n}: carbon intensity {value:?} is not a non-negative number"
                    )
                })?;
            if let Some(&(prev, _, prev_line)) = rows.last() {
                anyhow::ensure!(
                    t > prev,
                    "line {n}: {time} is not after the previous row's time (line {prev_line})"
                );
            }
            rows.push((t, v, n));
        }
        anyhow::ensure!(
            rows.len() >= 2,
            "{} data rows; a trace needs at least two to know its step",
            rows.len()
        );
        let step_ms = most_common_step(&rows);
        for pair in rows.windows(2) {
            let ((a, _, _), (b, _, n)) = (pair[0], pair[1]);
            anyhow::ensure!(
                b - a <= MAX_GAP_STEPS * step_ms,
                "line {n}: {} after the previous row, more than {MAX_GAP_STEPS} steps of {}; \
                 the trace must not have gaps",
                span_text(b - a),
                span_text(step_ms)
            );
        }
        let irregular = rows
            .windows(2)
            .filter(|p| p[1].0 - p[0].0 != step_ms)
            .count();
        if irregular > 0 {
            tracing::debug!(
                region,
                rows = irregular,
                step = %span_text(step_ms),
                "carbon trace resampled onto its most common step"
            );
        }
        Ok(Trace {
            region: region.to_string(),
            start_ms: rows[0].0,
            step_ms,
            values: resample(&rows, step_ms),
        })
    }

    /// End of the last step (exclusive), ms.
    pub fn end_ms(&self) -> u64 {
        self.start_ms
            .saturating_add(self.step_ms.saturating_mul(self.values.len() as u64))
    }

    /// Index of the step containing `t_ms`.
    pub fn index(&self, t_ms: u64) -> Option<usize> {
        if self.step_ms == 0 || t_ms < self.start_ms || t_ms >= self.end_ms() {
            return None;
        }
        Some(((t_ms - self.start_ms) / self.step_ms) as usize)
    }

    /// Start of step `i`, ms.
    pub fn step_start(&self, i: usize) -> u64 {
        self.start_ms
            .saturating_add(self.step_ms.saturating_mul(i as u64))
    }

    /// The value of the step containing `t_ms`; `None` outside the trace.
    pub fn at(&self, t_ms: u64) -> Option<f32> {
        self.index(t_ms).map(|i| self.values[i])
    }

    /// Time-weighted mean over `[from_ms, to_ms)`, partial steps weighted by
    /// their overlap; `None` unless the interval lies inside the trace.
    /// An empty interval gives the value at that instant.
    pub fn mean(&self, from_ms: u64, to_ms: u64) -> Option<f32> {
        self.mean_f64(from_ms, to_ms).map(|m| m as f32)
    }

    /// [`Trace::mean`] in full precision (sums over many steps).
    pub fn mean_f64(&self, from_ms: u64, to_ms: u64) -> Option<f64> {
        if from_ms == to_ms {
            return self.at(from_ms).map(f64::from);
        }
        if from_ms > to_ms || self.step_ms == 0 || from_ms < self.start_ms || to_ms > self.end_ms()
        {
            return None;
        }
        let first = self.index(from_ms)?;
        let last = self.index(to_ms - 1)?;
        let mut sum = 0.0;
        for i in first..=last {
            let a = self.step_start(i).max(from_ms);
            let b = (self.step_start(i) + self.step_ms).min(to_ms);
            sum += f64::from(self.values[i]) * (b - a) as f64;
        }
        Some(sum / (to_ms - from_ms) as f64)
    }

    /// `(step index, step start)` of every step starting in
    /// `(after_ms, until_ms]`.
    pub fn steps_in(
        &self,
        after_ms: u64,
        until_ms: u64,
    ) -> impl Iterator<Item = (usize, u64)> + '_ {
        let first = if self.step_ms == 0 || after_ms < self.start_ms {
            0
        } else {
            ((after_ms - self.start_ms) / self.step_ms + 1) as usize
        };
        (first..self.values.len())
            .map(move |i| (i, self.step_start(i)))
            .take_while(move |&(_, t)| t <= until_ms)
    }

    /// Means over consecutive `every_ms` buckets from the trace's start
    /// (the last one may be shorter): hourly or daily curves for plots.
    pub fn binned(&self, every_ms: u64) -> Vec<(u64, f32)> {
        let end = self.end_ms();
        if every_ms == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut t = self.start_ms;
        while t < end {
            let next = t.saturating_add(every_ms).min(end);
            if let Some(m) = self.mean(t, next) {
                out.push((t, m));
            }
            t = next;
        }
        out
    }

    /// Maps any instant onto the trace, keeping month, day and time of day
    /// and choosing a year the trace covers: how `greenmesh provide
    /// --carbon-trace` replays 2020 data live in a later year.
    ///
    /// The year holding the middle of the trace is tried first, then the
    /// other years it touches, nearest first. 29 February in a year without
    /// one becomes 28 February. If no year puts the instant inside the
    /// trace (a trace shorter than a year), the nearest covered instant is
    /// returned.
    pub fn replay_time(&self, now_ms: u64) -> u64 {
        let (start, end) = (self.start_ms, self.end_ms());
        if end <= start {
            return start;
        }
        let now = Civil::from_ms(now_ms);
        let first_year = Civil::from_ms(start).year;
        let last_year = Civil::from_ms(end - 1).year;
        let middle_year = Civil::from_ms(start + (end - start) / 2).year;
        let mut years: Vec<i64> = (first_year..=last_year).collect();
        years.sort_by_key(|y| ((y - middle_year).abs(), -*y));
        let mut nearest: Option<(u64, u64)> = None; // (distance, clamped)
        for year in years {
            let day = if now.month == 2 && now.day == 29 && !civil::is_leap(year) {
                28
            } else {
                now.day
            };
            let Some(t) = (Civil { year, day, ..now }).to_ms() else {
                continue;
            };
            if (start..end).contains(&t) {
                return t;
            }
            let clamped = t.clamp(start, end - 1);
            let distance = t.abs_diff(clamped);
            if nearest.is_none_or(|(d, _)| distance < d) {
                nearest = Some((distance, clamped));
            }
        }
        nearest.map_or(start, |(_, t)| t)
    }

    /// The same instant of day, `days` days earlier (for daily persistence).
    pub(crate) fn days_before(t_ms: u64, days: u64) -> Option<u64> {
        t_ms.checked_sub(days.checked_mul(DAY_MS)?)
    }
}

/// The most common distance between consecutive rows (the smaller on a tie).
fn most_common_step(rows: &[(u64, f64, usize)]) -> u64 {
    let mut counts: std::collections::BTreeMap<u64, usize> = Default::default();
    for pair in rows.windows(2) {
        *counts.entry(pair[1].0 - pair[0].0).or_default() += 1;
    }
    counts
        .iter()
        .max_by_key(|&(step, count)| (*count, std::cmp::Reverse(*step)))
        .map_or(1, |(step, _)| *step)
}

/// Each row holds until the next (the last for one step); bucket `k` of
/// the result is the time-weighted mean over `[t0 + k·step, t0 + (k+1)·step)`.
fn resample(rows: &[(u64, f64, usize)], step: u64) -> Vec<f32> {
    let t0 = rows[0].0;
    let end = rows[rows.len() - 1].0 + step;
    let n = (end - t0).div_ceil(step) as usize;
    let mut sum = vec![0.0f64; n];
    let mut covered = vec![0u64; n];
    for (i, &(a, v, _)) in rows.iter().enumerate() {
        let b = rows.get(i + 1).map_or(end, |r| r.0);
        let mut s = a;
        while s < b {
            let k = ((s - t0) / step) as usize;
            let e = b.min(t0 + (k as u64 + 1) * step);
            sum[k] += v * (e - s) as f64;
            covered[k] += e - s;
            s = e;
        }
    }
    sum.iter()
        .zip(&covered)
        .map(|(s, &c)| if c == 0 { 0.0 } else { (s / c as f64) as f32 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    fn t(s: &str) -> u64 {
        civil::parse_utc(s).unwrap()
    }

    fn hourly(values: &[f32]) -> Trace {
        Trace {
            region: "test".into(),
            start_ms: t("2020-01-01 00:00:00"),
            step_ms: H,
            values: values.to_vec(),
        }
    }

    #[test]
    fn parses_rows_and_answers_by_step() {
        let tr = Trace::parse(
            "Time,Carbon Intensity\r\n2020-01-01 00:00:00,100\r\n2020-01-01 00:30:00,200.5\r\n2020-01-01 01:00:00,300\r\n\r\n",
            "gb",
        )
        .unwrap();
        assert_eq!(tr.region, "gb");
        assert_eq!(tr.step_ms, 30 * 60_000);
        assert_eq!(tr.values, [100.0, 200.5, 300.0]);
        assert_eq!(tr.end_ms(), t("2020-01-01 01:30:00"));
        assert_eq!(tr.at(t("2020-01-01 00:29:59")), Some(100.0));
        assert_eq!(tr.at(t("2020-01-01 00:30:00")), Some(200.5));
        assert_eq!(tr.at(tr.end_ms()), None);
        assert_eq!(tr.at(tr.start_ms - 1), None);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let head = "Time,Carbon Intensity\n2020-01-01 00:00:00,1\n";
        for (text, needle) in [
            ("", "empty"),
            ("time;value\n", "line 1: expected the header"),
            (
                &format!("{head}2020-01-01 01:00:00\n") as &str,
                "line 3: expected 2 fields",
            ),
            (
                &format!("{head}2020-01-01 01:00:00,abc\n"),
                "line 3: carbon intensity \"abc\"",
            ),
            (&format!("{head}2020-01-01 01:00:00,-5\n"), "line 3"),
            (&format!("{head}2020-01-01 01:00:00,NaN\n"), "line 3"),
            (
                &format!("{head}2020-13-01 01:00:00,1\n"),
                "line 3: \"2020-13-01 01:00:00\"",
            ),
            (
                &format!("{head}2020-01-01 00:00:00,1\n"),
                "line 3: 2020-01-01 00:00:00 is not after",
            ),
            (head, "1 data rows"),
            (
                &format!("{head}2020-01-01 01:00:00,1\n2020-01-01 09:00:00,1\n"),
                "line 4: 8 h after the previous row",
            ),
        ] {
            let err = format!("{:#}", Trace::parse(text, "x").unwrap_err());
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let err = format!("{:#}", Trace::load("/nonexistent/gb.csv").unwrap_err());
        assert!(err.contains("/nonexistent/gb.csv"), "{err}");
    }

    #[test]
    fn a_finer_stretch_is_averaged_onto_the_common_step() {
        // 30-minute rows, then 15-minute rows (as in the GB file), then a
        // 60-minute row (as in the DE file).
        let tr = Trace::parse(
            "Time,Carbon Intensity\n\
             2020-01-01 00:00:00,100\n\
             2020-01-01 00:30:00,200\n\
             2020-01-01 01:00:00,10\n\
             2020-01-01 01:15:00,30\n\
             2020-01-01 01:30:00,50\n\
             2020-01-01 02:00:00,60\n\
             2020-01-01 03:00:00,70\n",
            "gb",
        )
        .unwrap();
        assert_eq!(tr.step_ms, 30 * 60_000);
        assert_eq!(tr.values, [100.0, 200.0, 20.0, 50.0, 60.0, 60.0, 70.0]);
    }

    #[test]
    fn means_weight_partial_steps() {
        let tr = hourly(&[100.0, 200.0, 400.0]);
        let s = tr.start_ms;
        let m = tr.mean(s, s + 3 * H).unwrap();
        assert!((m - 700.0 / 3.0).abs() < 1e-3);
        assert_eq!(tr.mean(s + H / 2, s + 3 * H / 2), Some(150.0));
        // Half an hour of 100, a whole hour of 200, a quarter of 400.
        let m = tr.mean(s + H / 2, s + 2 * H + H / 4).unwrap();
        assert!((m - (50.0 + 200.0 + 100.0) / 1.75).abs() < 1e-3);
        assert_eq!(tr.mean(s + H, s + H), Some(200.0));
        assert_eq!(tr.mean(s, s + 3 * H + 1), None);
        assert_eq!(tr.mean(s - 1, s + H), None);
        assert_eq!(tr.mean(s + H, s), None);
        assert_eq!(tr.binned(2 * H), [(s, 150.0), (s + 2 * H, 400.0)]);
        let steps: Vec<_> = tr.steps_in(s, s + 2 * H).collect();
        assert_eq!(steps, [(1, s + H), (2, s + 2 * H)]);
        assert_eq!(tr.steps_in(s - 1, s).count(), 1);
    }

    #[test]
    fn replay_keeps_the_calendar_day_and_time_inside_the_span() {
        // 2019-12-20 .. 2021-01-10, like the real files.
        let start = t("2019-12-20 00:00:00");
        let days = (t("2021-01-10 00:00:00") - start) / DAY_MS;
        let tr = Trace {
            region: "gb".into(),
            start_ms: start,
            step_ms: DAY_MS,
            values: vec![1.0; days as usize],
        };
        assert_eq!(
            tr.replay_time(t("2026-03-15 12:34:56")),
            t("2020-03-15 12:34:56")
        );
        assert_eq!(
            tr.replay_time(t("2026-12-31 23:59:59")),
            t("2020-12-31 23:59:59")
        );
        assert_eq!(
            tr.replay_time(t("2027-01-01 00:00:00")),
            t("2020-01-01 00:00:00")
        );
        assert_eq!(
            tr.replay_time(t("2028-02-29 06:00:00")),
            t("2020-02-29 06:00:00")
        );
        assert_eq!(
            tr.replay_time(t("2020-07-01 00:00:00")),
            t("2020-07-01 00:00:00")
        );
        assert_eq!(tr.replay_time(0), t("2020-01-01 00:00:00"));
        assert_eq!(tr.replay_time(u64::MAX / 4), tr.replay_time(u64::MAX / 4));

        // A ten-day trace that is not in a leap year.
        let short = Trace {
            start_ms: t("2021-02-20 00:00:00"),
            values: vec![1.0; 10],
            ..tr.clone()
        };
        assert_eq!(
            short.replay_time(t("2024-02-29 06:00:00")),
            t("2021-02-28 06:00:00")
        );
        assert_eq!(
            short.replay_time(t("2026-02-22 01:00:00")),
            t("2021-02-22 01:00:00")
        );
        // Outside the span: the nearest covered instant.
        assert_eq!(
            short.replay_time(t("2026-07-01 00:00:00")),
            short.end_ms() - 1
        );
        assert_eq!(short.replay_time(t("2026-01-05 00:00:00")), short.start_ms);
        let empty = Trace {
            values: vec![],
            ..tr
        };
        assert_eq!(empty.replay_time(123), empty.start_ms);
    }

    #[test]
    fn loads_the_real_traces() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/carbon");
        let gb = Trace::load(dir.join("gb_ci_2020.csv")).unwrap();
        assert_eq!(gb.region, "gb_ci_2020");
        assert_eq!(gb.step_ms, 30 * 60_000);
        assert_eq!(gb.start_ms, t("2019-12-20 00:00:00"));
        assert_eq!(gb.end_ms(), t("2021-01-10 00:00:00"));
        assert_eq!(gb.values.len(), 18_576);
        let de = Trace::load_as(dir.join("ger_ci_2020.csv"), "DE").unwrap();
        assert_eq!(de.step_ms, 15 * 60_000);
        assert_eq!(de.values.len(), 37_149);
        // Time-weighted means; the files' row means (218, 315) weigh GB's
        // 15-minute winter rows double.
        for (tr, lo, mean, hi) in [(&gb, 63.0, 214.5, 395.0), (&de, 100.0, 315.0, 594.0)] {
            let m = tr.mean_f64(tr.start_ms, tr.end_ms()).unwrap();
            assert!((m - mean).abs() < 0.5, "{}: mean {m}", tr.region);
            assert!(tr.values.iter().all(|&v| (lo..=hi).contains(&v)));
        }
    }
}
