//! Federated training on the Wisconsin breast-cancer data (`data/ml/`),
//! split over five nodes: without privacy noise it matches the
//! centralised model; with DP-SGD the accountant's noise keeps each node's
//! training within the requested ε, and the model still beats a
//! centralised DP anchor at every ε. (The scaler here is fitted on all
//! training rows, a simplification: a federated run must learn it without
//! pooling rows.)

use greenmesh_fl::accountant;
use greenmesh_fl::data::{federated_split, Dataset};
use greenmesh_fl::model::Model;
use greenmesh_fl::random::SplitMix64;
use greenmesh_fl::train::{fedavg, local_train, Training};

fn dataset() -> Dataset {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/ml/breast_cancer.csv"
    );
    Dataset::parse_csv(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A shuffled 80/20 split over `nodes` nodes, evenly.
fn split(data: &Dataset, seed: u64, nodes: usize) -> (Vec<Dataset>, Dataset, Dataset) {
    federated_split(data, seed, nodes, false)
}

fn federated(parts: &[Dataset], model: &Model, rounds: u32, t: &Training, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64(seed);
    let mut global = model.init(&mut rng);
    for _ in 0..rounds {
        let members: Vec<(Vec<f64>, u64)> = parts
            .iter()
            .map(|d| {
                (
                    local_train(model, &global, d, t, &mut rng),
                    d.features.len() as u64,
                )
            })
            .collect();
        global = fedavg(&members).unwrap();
    }
    global
}

#[test]
fn five_nodes_without_noise_match_the_centralised_model() {
    let data = dataset();
    assert_eq!(data.schema().rows, 569);
    let model = Model::Softmax {
        features: 30,
        classes: 2,
    };
    let plain = Training {
        learning_rate: 0.5,
        steps: 50,
        sampling_rate: 1.0,
        clip: f64::INFINITY,
        noise_multiplier: 0.0,
    };
    for seed in [1, 2, 3] {
        let (parts, train, test) = split(&data, seed, 5);
        let central = local_train(
            &model,
            &model.init(&mut SplitMix64(0)),
            &train,
            &Training {
                steps: 500,
                ..plain
            },
            &mut SplitMix64(0),
        );
        let central_acc = model.accuracy(&central, &test);
        let fed = federated(&parts, &model, 10, &plain, seed);
        let fed_acc = model.accuracy(&fed, &test);
        println!("split {seed}: centralised {central_acc:.3}, federated {fed_acc:.3}");
        assert!(central_acc >= 0.94, "{central_acc}");
        assert!(
            fed_acc >= central_acc - 0.02,
            "federated {fed_acc} vs centralised {central_acc}"
        );
    }
}

#[test]
fn dp_sgd_at_a_target_epsilon_spends_no_more_and_still_learns() {
    let data = dataset();
    let model = Model::Softmax {
        features: 30,
        classes: 2,
    };
    let (rounds, steps, q, delta) = (10u32, 10u32, 0.5, 1e-3);
    for eps in [0.5, 1.0, 2.0, 4.0, 8.0] {
        let sigma =
            accountant::noise_multiplier(eps, delta, q, (rounds * steps) as u64, 1_000.0).unwrap();
        let spent = accountant::epsilon(q, sigma, (rounds * steps) as u64, delta);
        assert!(spent <= eps, "{spent} > {eps}");
        let t = Training {
            learning_rate: 0.5,
            steps,
            sampling_rate: q,
            clip: 1.0,
            noise_multiplier: sigma,
        };
        let mut accs = Vec::new();
        for seed in [1, 2, 3, 4, 5] {
            let (parts, _, test) = split(&data, seed, 5);
            accs.push(model.accuracy(&federated(&parts, &model, rounds, &t, 100 + seed), &test));
        }
        let mean = accs.iter().sum::<f64>() / accs.len() as f64;
        println!("ε {eps}: σ {sigma:.2}, spent {spent:.3}, accuracy {mean:.3} ({accs:.3?})");
        // The centralised DP anchor the issue names: diffprivlib 0.6.6's
        // LogisticRegression (objective perturbation, rows clipped to norm
        // 5 after standardising) on the same data: 72 % at ε 0.5, 80 % at
        // 1, 90 % at 4, 93 % at 8 (ε 2 not measured: 85 % between).
        let anchor = match eps {
            e if e <= 0.5 => 0.72,
            e if e <= 1.0 => 0.80,
            e if e <= 2.0 => 0.85,
            e if e <= 4.0 => 0.90,
            _ => 0.93,
        };
        assert!(
            mean >= anchor,
            "ε {eps}: {mean} below the centralised anchor {anchor}"
        );
    }
}
