//! The energy state a node reports in registrations and heartbeats: fixed
//! from its settings, or replayed live from a carbon-intensity trace
//! (`carbon_trace`) with the trace's next 24 hours as a forecast.

use super::config::ProviderConfig;
use anyhow::Context;
use greenmesh_carbon::{forecast, ForecastPoint, Trace};
use serde_json::Value;

/// How far ahead a trace-driven node forecasts.
pub const FORECAST_HORIZON_MS: u64 = 24 * 3_600_000;

/// What the node reports about its energy; cheap to ask every heartbeat.
#[derive(Debug, Clone, Default)]
pub struct EnergyReport {
    trace: Option<Trace>,
}

impl EnergyReport {
    /// Loads `config.carbon_trace`, if set; errors name the setting and
    /// the file's bad line.
    pub fn load(config: &ProviderConfig) -> anyhow::Result<Self> {
        let Some(path) = &config.carbon_trace else {
            return Ok(Self::default());
        };
        let trace = Trace::load(path).context("MESH_CARBON_TRACE / carbon_trace")?;
        tracing::info!(
            region = %trace.region,
            from = %greenmesh_carbon::civil::format_rfc3339(trace.start_ms),
            to = %greenmesh_carbon::civil::format_rfc3339(trace.end_ms()),
            step_min = trace.step_ms / 60_000,
            "replaying a carbon-intensity trace on today's calendar"
        );
        Ok(Self { trace: Some(trace) })
    }

    /// The `energy` JSON at real time `now_ms`: the settings' `sources` and
    /// `clean_share`; with a trace, `carbon_intensity` is the trace at
    /// [`Trace::replay_time`] and `forecast` its next 24 h re-timed to the
    /// real clock (Carbon Aware SDK shape). Like the fixed
    /// `grid_carbon_intensity` it stands for, the trace is the grid's
    /// intensity, so both are scaled by the grid's share (1 − clean share):
    /// on the plain grid they are the trace's own values.
    pub fn json(&self, config: &ProviderConfig, now_ms: u64) -> Value {
        let mut energy = config.energy_json();
        let Some(replayed) = self
            .trace
            .as_ref()
            .and_then(|t| forecast::replayed(t, now_ms, FORECAST_HORIZON_MS))
        else {
            return energy;
        };
        let grid_share = 1.0 - config.clean_share();
        let points: Vec<ForecastPoint> = replayed
            .forecast
            .iter()
            .map(|p| ForecastPoint {
                value: (f64::from(p.value) * grid_share) as f32,
                ..*p
            })
            .collect();
        energy["carbon_intensity"] = Value::from(f64::from(replayed.intensity) * grid_share);
        energy["forecast"] = serde_json::to_value(points).unwrap_or_default();
        energy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenmesh_carbon::civil;
    use std::path::PathBuf;

    fn gb_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/carbon/gb_ci_2020.csv")
    }

    #[test]
    fn without_a_trace_the_settings_are_reported() {
        let config = ProviderConfig::default();
        let report = EnergyReport::load(&config).unwrap();
        assert_eq!(report.json(&config, 123), config.energy_json());
        assert!(report.json(&config, 123).get("forecast").is_none());
    }

    #[test]
    fn a_trace_drives_intensity_and_a_day_of_forecast() {
        let config = ProviderConfig {
            carbon_trace: Some(gb_path()),
            ..Default::default()
        };
        let report = EnergyReport::load(&config).unwrap();
        let trace = Trace::load(gb_path()).unwrap();
        let now = civil::parse_utc("2026-06-10 18:40:00").unwrap();
        let then = civil::parse_utc("2020-06-10 18:40:00").unwrap();
        let v = report.json(&config, now);
        assert_eq!(v["sources"], serde_json::json!([["grid", 1.0]]));
        assert_eq!(v["clean_share"], 0.0);
        let intensity = v["carbon_intensity"].as_f64().unwrap();
        assert!((intensity - f64::from(trace.at(then).unwrap())).abs() < 1e-3);
        let forecast = v["forecast"].as_array().unwrap();
        assert_eq!(forecast.len(), 49);
        assert_eq!(forecast[0]["timestamp"], "2026-06-10T18:30:00Z");
        assert_eq!(forecast[1]["timestamp"], "2026-06-10T19:00:00Z");
        assert_eq!(forecast[48]["timestamp"], "2026-06-11T18:30:00Z");
        for (i, p) in forecast.iter().enumerate() {
            let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["duration", "timestamp", "value"]);
            assert_eq!(p["duration"], 30);
            let at = then - 10 * 60_000 + i as u64 * 30 * 60_000;
            let want = f64::from(trace.at(at).unwrap());
            assert!((p["value"].as_f64().unwrap() - want).abs() < 1e-3, "{i}");
        }
        // It parses back as the coordinator reads it.
        let points: Vec<ForecastPoint> = serde_json::from_value(v["forecast"].clone()).unwrap();
        assert_eq!(points[0].timestamp_ms, now - 10 * 60_000);
    }

    #[test]
    fn a_clean_share_scales_trace_and_forecast_alike() {
        let config = ProviderConfig {
            carbon_trace: Some(gb_path()),
            energy_type: "solar".into(),
            energy_percent_clean: 75.0,
            ..Default::default()
        };
        let report = EnergyReport::load(&config).unwrap();
        let grid = ProviderConfig {
            energy_type: "grid".into(),
            ..config.clone()
        };
        let now = civil::parse_utc("2026-01-02 03:04:05").unwrap();
        let (solar, plain) = (report.json(&config, now), report.json(&grid, now));
        assert_eq!(solar["clean_share"], 0.75);
        assert_eq!(solar["sources"][0], serde_json::json!(["solar", 0.75]));
        let ratio = |k: &Value, g: &Value| k.as_f64().unwrap() / g.as_f64().unwrap();
        assert!(
            (ratio(&solar["carbon_intensity"], &plain["carbon_intensity"]) - 0.25).abs() < 1e-6
        );
        assert!(
            (ratio(
                &solar["forecast"][7]["value"],
                &plain["forecast"][7]["value"]
            ) - 0.25)
                .abs()
                < 1e-6
        );
    }

    #[test]
    fn a_bad_trace_names_the_setting_and_the_line() {
        let path = std::env::temp_dir().join(format!("gm-bad-trace-{}.csv", std::process::id()));
        std::fs::write(
            &path,
            "Time,Carbon Intensity\n2020-01-01 00:00:00,1\nnot a row\n",
        )
        .unwrap();
        let config = ProviderConfig {
            carbon_trace: Some(path.clone()),
            ..Default::default()
        };
        let err = format!("{:#}", EnergyReport::load(&config).unwrap_err());
        assert!(
            err.contains("MESH_CARBON_TRACE") && err.contains("line 3"),
            "{err}"
        );
        std::fs::remove_file(path).ok();
        let missing = ProviderConfig {
            carbon_trace: Some("/nonexistent/trace.csv".into()),
            ..Default::default()
        };
        let err = format!("{:#}", EnergyReport::load(&missing).unwrap_err());
        assert!(err.contains("/nonexistent/trace.csv"), "{err}");
    }
}
