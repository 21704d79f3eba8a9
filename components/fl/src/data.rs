//! Tabular datasets: a node's CSV file (numeric features, an integer class
//! label last), its schema (what a node advertises: never its rows), and
//! standardisation.

/// Rows of features with their class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub features: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
    /// Number of classes (largest label + 1).
    pub classes: usize,
}

/// What a node may say about a dataset: its shape, never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub features: usize,
    pub classes: usize,
    pub rows: usize,
}

impl Dataset {
    /// Parses CSV text: numeric features, then an integer label, one row a
    /// line. A first line that is not all numbers is a header and skipped
    /// (scikit-learn's files start with `n_samples,n_features,names`).
    pub fn parse_csv(text: &str) -> Result<Self, String> {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let numbers: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
            let numbers = match numbers {
                Ok(n) => n,
                Err(_) if i == 0 => continue,
                Err(e) => return Err(format!("line {}: {e}", i + 1)),
            };
            let Some((&label, row)) = numbers.split_last() else {
                continue;
            };
            if row.is_empty() {
                return Err(format!("line {}: no features before the label", i + 1));
            }
            if label < 0.0 || label.fract() != 0.0 || label > 1_000.0 {
                return Err(format!(
                    "line {}: label {label} is not a class number",
                    i + 1
                ));
            }
            if let Some(first) = features.first() {
                let first: &Vec<f64> = first;
                if first.len() != row.len() {
                    return Err(format!(
                        "line {}: {} features, the first row had {}",
                        i + 1,
                        row.len(),
                        first.len()
                    ));
                }
            }
            if row.iter().any(|x| !x.is_finite()) {
                return Err(format!("line {}: a feature is not a finite number", i + 1));
            }
            features.push(row.to_vec());
            labels.push(label as usize);
        }
        if features.is_empty() {
            return Err("no rows".into());
        }
        let classes = labels.iter().max().map_or(0, |m| m + 1).max(2);
        Ok(Self {
            features,
            labels,
            classes,
        })
    }

    pub fn schema(&self) -> Schema {
        Schema {
            features: self.features.first().map_or(0, Vec::len),
            classes: self.classes,
            rows: self.features.len(),
        }
    }

    /// The rows at `indices`.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            features: indices.iter().map(|&i| self.features[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes,
        }
    }
}

/// Per-feature mean and standard deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Scaler {
    /// Fitted on `data`.
    pub fn fit(data: &Dataset) -> Self {
        let n = data.features.len().max(1) as f64;
        let d = data.schema().features;
        let mut mean = vec![0.0; d];
        for row in &data.features {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x / n;
            }
        }
        let mut std = vec![0.0; d];
        for row in &data.features {
            for ((s, x), m) in std.iter_mut().zip(row).zip(&mean) {
                *s += (x - m) * (x - m) / n;
            }
        }
        for s in &mut std {
            *s = if *s > 1e-24 { s.sqrt() } else { 1.0 };
        }
        Self { mean, std }
    }

    /// `data` with every feature standardised.
    pub fn apply(&self, data: &Dataset) -> Dataset {
        Dataset {
            features: data
                .features
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(self.mean.iter().zip(&self.std))
                        .map(|(x, (m, s))| (x - m) / s)
                        .collect()
                })
                .collect(),
            labels: data.labels.clone(),
            classes: data.classes,
        }
    }
}

/// A federated experiment's split of `data`: a shuffled 80/20 cut
/// (`seed`), standardised on the training rows; the training rows over
/// `nodes` nodes, evenly (IID) or `skewed` (label-sorted, cut in 2 × nodes
/// shards, each node two of them: McMahan et al.'s non-IID split). As
/// `(parts, all training rows, test rows)`.
pub fn federated_split(
    data: &Dataset,
    seed: u64,
    nodes: usize,
    skewed: bool,
) -> (Vec<Dataset>, Dataset, Dataset) {
    use crate::random::{shuffled, SplitMix64};
    let order = shuffled(data.features.len(), &mut SplitMix64(seed));
    let cut = data.features.len() * 4 / 5;
    let scaler = Scaler::fit(&data.subset(&order[..cut]));
    let train = scaler.apply(&data.subset(&order[..cut]));
    let test = scaler.apply(&data.subset(&order[cut..]));
    let n = train.features.len();
    let mut idx: Vec<usize> = (0..n).collect();
    let parts: Vec<Vec<usize>> = if skewed {
        idx.sort_by_key(|&i| train.labels[i]);
        let shards = 2 * nodes;
        let mut parts = vec![Vec::new(); nodes];
        for (k, s) in shuffled(shards, &mut SplitMix64(seed + 1000))
            .into_iter()
            .enumerate()
        {
            parts[k % nodes].extend_from_slice(&idx[s * n / shards..(s + 1) * n / shards]);
        }
        parts
    } else {
        (0..nodes)
            .map(|k| idx[k * n / nodes..(k + 1) * n / nodes].to_vec())
            .collect()
    };
    let parts = parts.iter().map(|p| train.subset(p)).collect();
    (parts, train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_skipped_and_bad_rows_are_named() {
        let d = Dataset::parse_csv("3,2,no,yes\n1.0,2.0,0\n3,4,1\n\n5,6,1\n").unwrap();
        assert_eq!(
            d.schema(),
            Schema {
                features: 2,
                classes: 2,
                rows: 3
            }
        );
        assert_eq!(d.labels, [0, 1, 1]);
        assert!(Dataset::parse_csv("1,2,0\n1,x,1")
            .unwrap_err()
            .contains("line 2"));
        assert!(Dataset::parse_csv("1,2,0\n1,1")
            .unwrap_err()
            .contains("1 features"));
        assert!(Dataset::parse_csv("1,2,0.5")
            .unwrap_err()
            .contains("not a class"));
        assert!(Dataset::parse_csv("header only\n").is_err());
    }

    #[test]
    fn a_skewed_split_gives_each_node_few_labels_and_keeps_every_row() {
        let rows: String = (0..100).map(|i| format!("{i},{}\n", i % 4)).collect();
        let d = Dataset::parse_csv(&rows).unwrap();
        let (parts, train, test) = federated_split(&d, 1, 4, true);
        assert_eq!((train.features.len(), test.features.len()), (80, 20));
        assert_eq!(parts.iter().map(|p| p.features.len()).sum::<usize>(), 80);
        for p in &parts {
            let mut labels = p.labels.clone();
            labels.sort_unstable();
            labels.dedup();
            assert!(labels.len() <= 3, "{labels:?}");
        }
        let (even, _, _) = federated_split(&d, 1, 4, false);
        assert!(even.iter().all(|p| p.features.len() == 20));
    }

    #[test]
    fn standardised_features_have_zero_mean_and_unit_variance() {
        let d = Dataset::parse_csv("1,10,0\n2,10,1\n3,10,0\n").unwrap();
        let s = Scaler::fit(&d);
        let z = s.apply(&d);
        let col: Vec<f64> = z.features.iter().map(|r| r[0]).collect();
        assert!((col.iter().sum::<f64>()).abs() < 1e-12);
        assert!((col.iter().map(|x| x * x).sum::<f64>() / 3.0 - 1.0).abs() < 1e-12);
        assert_eq!(
            z.features[0][1], 0.0,
            "a constant feature is centred, not divided by 0"
        );
    }
}
