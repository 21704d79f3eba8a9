//! Node-local datasets for federated training: declared by name and CSV
//! file (`--dataset NAME=FILE.csv`, `[datasets]` in the settings file, or
//! `MESH_DATASETS`), read at start, and advertised by shape only: the
//! number of feature columns, classes and rows. The rows never leave the
//! node; a training kernel will read them through a host import bound to
//! the one dataset its lease names.

use crate::config::ProviderConfig;
use anyhow::Context;
use greenmesh_fl::data::{Dataset, Schema};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// A dataset this node holds, read once at start.
#[derive(Debug, Clone)]
pub struct LocalDataset {
    pub name: String,
    pub path: PathBuf,
    pub schema: Schema,
    /// The rows: only a run whose lease names this dataset reads them.
    pub data: Arc<Dataset>,
}

impl LocalDataset {
    /// What the registration says of it: name and shape, no rows.
    pub fn advertised(&self) -> Value {
        json!({
            "name": self.name,
            "features": self.schema.features,
            "classes": self.schema.classes,
            "rows": self.schema.rows,
        })
    }
}

/// The dataset a `fl-train` lease's input names (`inputs.dataset`), if
/// this node holds it.
pub fn named_by<'a>(datasets: &'a [LocalDataset], input_text: &str) -> Option<&'a LocalDataset> {
    let input: Value = serde_json::from_str(input_text).ok()?;
    let name = input["inputs"]["dataset"].as_str()?;
    datasets.iter().find(|d| d.name == name)
}

/// Reads every configured dataset; a file that is missing or not a
/// dataset stops the node at start, naming it.
pub fn load_all(config: &ProviderConfig) -> anyhow::Result<Vec<LocalDataset>> {
    config
        .datasets
        .iter()
        .map(|(name, path)| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("dataset {name}: reading {}", path.display()))?;
            let data = Dataset::parse_csv(&text)
                .map_err(|e| anyhow::anyhow!("dataset {name} ({}): {e}", path.display()))?;
            Ok(LocalDataset {
                name: name.clone(),
                path: path.clone(),
                schema: data.schema(),
                data: Arc::new(data),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_is_advertised_by_shape_and_a_bad_file_is_named() {
        let dir = std::env::temp_dir().join(format!("gm-datasets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("part.csv");
        std::fs::write(&good, "3,2,no,yes\n1.5,2.25,0\n3.5,4.75,1\n5.5,6.75,1\n").unwrap();
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "1,2,0\nx,y,1\n").unwrap();
        let mut config = ProviderConfig::default();
        config.datasets.insert("cancer".into(), good);
        let all = load_all(&config).unwrap();
        let ad = all[0].advertised();
        assert_eq!(
            ad,
            json!({ "name": "cancer", "features": 2, "classes": 2, "rows": 3 })
        );
        assert!(!ad.to_string().contains("2.25"), "no row leaves the node");
        config.datasets.insert("broken".into(), bad);
        let err = load_all(&config).unwrap_err().to_string();
        assert!(
            err.contains("dataset broken") && err.contains("line 2"),
            "{err}"
        );
        config.datasets.clear();
        config
            .datasets
            .insert("gone".into(), dir.join("missing.csv"));
        assert!(load_all(&config)
            .unwrap_err()
            .to_string()
            .contains("dataset gone"));
        std::fs::remove_dir_all(dir).ok();
    }
}
