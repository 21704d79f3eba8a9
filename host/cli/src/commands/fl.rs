//! `greenmesh fl predict MODEL.json FILE.csv`: applies a model a federated
//! task trained, here, to rows of a CSV file (features, and optionally the
//! label last, in which case the accuracy is printed too).

use anyhow::{bail, Context};
use greenmesh_fl::data::Scaler;
use greenmesh_fl::model::Model;
use serde_json::Value;
use std::path::PathBuf;

/// `greenmesh fl ...`.
#[derive(Debug, clap::Subcommand)]
pub enum FlCommand {
    /// Predict the class of each row of a CSV file with a trained model.
    Predict {
        /// The model: a task's JSON (`greenmesh task get ID --json`), its
        /// `result`, or the `result.model` object.
        model: PathBuf,
        /// Rows of features (a non-numeric first line is a header); one
        /// more column is read as the true label.
        rows: PathBuf,
        /// Print the predictions as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `fl` command.
pub fn run(cmd: FlCommand) -> anyhow::Result<()> {
    let FlCommand::Predict { model, rows, json } = cmd;
    let text =
        std::fs::read_to_string(&model).with_context(|| format!("reading {}", model.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", model.display()))?;
    let m = [&v["result"]["model"], &v["model"], &v]
        .into_iter()
        .find(|m| m["params"].is_array())
        .with_context(|| format!("{} holds no trained model (no params)", model.display()))?;
    let params: Vec<f64> = serde_json::from_value(m["params"].clone()).context("params")?;
    let hidden = m["spec"]["hidden"].as_u64().map(|h| h as usize);
    let scaler: Option<Scaler> = match &m["scaler"] {
        Value::Null => None,
        s => Some(Scaler {
            mean: serde_json::from_value(s["mean"].clone()).context("scaler.mean")?,
            std: serde_json::from_value(s["std"].clone()).context("scaler.std")?,
        }),
    };
    let csv =
        std::fs::read_to_string(&rows).with_context(|| format!("reading {}", rows.display()))?;
    let mut table: Vec<Vec<f64>> = Vec::new();
    for (i, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line
            .split(',')
            .map(|f| f.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(row) => table.push(row),
            Err(_) if i == 0 => continue,
            Err(e) => bail!("{} line {}: {e}", rows.display(), i + 1),
        }
    }
    let width = table.first().map_or(0, Vec::len);
    // The model fixes the feature count: rows one wider carry a label.
    let (features, labelled) = [(width, false), (width.saturating_sub(1), true)]
        .into_iter()
        .find(|(f, _)| *f > 0 && Model::fitting(*f, hidden, params.len()).is_some())
        .with_context(|| {
            format!(
                "rows of {width} columns fit no model of {} parameters",
                params.len()
            )
        })?;
    let model = Model::fitting(features, hidden, params.len()).expect("checked above");
    let mut predictions = Vec::with_capacity(table.len());
    let mut right = 0;
    for row in &table {
        anyhow::ensure!(row.len() == width, "every row needs {width} columns");
        let x: Vec<f64> = match &scaler {
            Some(s) => row[..features]
                .iter()
                .zip(s.mean.iter().zip(&s.std))
                .map(|(x, (m, sd))| (x - m) / if *sd > 0.0 { *sd } else { 1.0 })
                .collect(),
            None => row[..features].to_vec(),
        };
        let class = model.predict(&params, &x);
        if labelled && row[features] as usize == class {
            right += 1;
        }
        predictions.push(class);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "predictions": predictions,
            "accuracy": labelled.then(|| right as f64 / table.len().max(1) as f64) })
        );
    } else {
        for p in &predictions {
            println!("{p}");
        }
        if labelled {
            eprintln!(
                "accuracy {:.3} ({right} of {} rows)",
                right as f64 / table.len().max(1) as f64,
                table.len()
            );
        }
    }
    Ok(())
}
