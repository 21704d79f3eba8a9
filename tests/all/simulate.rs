//! `greenmesh simulate` end to end: a short replay of the real GB trace
//! through the real coordinator on the virtual clock. Forecasts must beat
//! history, neither may beat the oracle, no job may miss its deadline, and
//! the coordinator's own ledger must have recorded every run.

use greenmesh_bench::simulate::{run, SimulateArgs};
use greenmesh_tests::tests_dir;

#[tokio::test]
async fn a_week_of_gb_replay_saves_carbon_within_the_oracle_and_misses_no_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("replay.svg");
    let export = dir.path().join("replay.json");
    let args = SimulateArgs {
        traces: vec![tests_dir().join("../data/carbon/gb_ci_2020.csv")],
        sla: "high".into(),
        jobs: 30,
        job_minutes: 60,
        forecast_error: 0.05,
        foresight: "both".into(),
        days: Some(6),
        seed: 7,
        step_minutes: 30,
        power_w: 100.0,
        plot: Some(plot.clone()),
        export: Some(export.clone()),
        manifest: tests_dir().join("../spin.toml"),
    };
    let outcomes = run(args).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        let f = &o.figures;
        assert_eq!(f.finished, 30, "{}: every job ran", o.label);
        assert_eq!(f.deadline_misses, 0, "{}", o.label);
        assert!(
            f.saving() <= f.oracle_saving() + 1e-9,
            "{}: beat the oracle?",
            o.label
        );
        assert_eq!(
            o.run.ledger_runs, 30,
            "{}: the ledger has every run",
            o.label
        );
    }
    let (forecast, history) = (&outcomes[0].figures, &outcomes[1].figures);
    assert!(
        forecast.saving() > 0.0,
        "forecasts save carbon: {:?}",
        forecast
    );
    assert!(
        forecast.saving() >= history.saving(),
        "forecast {:.3} vs history {:.3}",
        forecast.saving(),
        history.saving()
    );
    // The coordinator's ledger (baseline at submission on the home grid)
    // agrees in sign with the replay's own accounting.
    assert!(outcomes[0].run.ledger_saved_g > 0.0);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("gb_ci_2020 intensity"));
    // The dashboard's copy of the first replay: every start, the trace at
    // full resolution over the span, and a saving that adds up.
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(doc["format"], "greenmesh-replay/1");
    assert_eq!(doc["starts"]["t"].as_array().unwrap().len(), 30);
    let trace = &doc["intensity"][0];
    let (t, g) = (
        trace["t"].as_array().unwrap(),
        trace["g_per_kwh"].as_array().unwrap(),
    );
    assert_eq!(t.len(), g.len());
    assert!(t.len() >= 6 * 48, "half-hourly over the days: {}", t.len());
    assert_eq!(t[1].as_u64().unwrap() - t[0].as_u64().unwrap(), 1800);
    let f = &outcomes[0].figures;
    let saved = doc["saved"]["cumulative_g"].as_array().unwrap();
    let last = saved.last().unwrap().as_f64().unwrap();
    assert!(
        (last - (f.run_now_g - f.actual_g)).abs() < 1e-6 * f.run_now_g.max(1.0),
        "{last} vs {} - {}",
        f.run_now_g,
        f.actual_g
    );
}
