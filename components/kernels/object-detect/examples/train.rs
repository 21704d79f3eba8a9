//! Trains the kernel's classifier and writes `src/model.bin`:
//! `cargo run -p object-detect --release --example train`.
//!
//! Deterministic (fixed seeds, fixed order, single thread). The examples are
//! the training rows of optdigits (every row but each fifth) as digits, plus
//! windows cut from generated pages of training digits exactly as the
//! detector cuts them (a window with IoU ≥ 0.6 to a digit's box is that
//! digit, one with IoU < 0.3 to every box is background, the rest unused),
//! plus generated background patches (blank, noise, stroke fragments,
//! shifted partial digits). The held-out rows are never seen.

use object_detect::boxes::Rect;
use object_detect::dataset::{held_out_digits, training_digits, Digit};
use object_detect::features::{Features, InkIntegral, FEATURES, MIN_INK};
use object_detect::model::{Mlp, BACKGROUND, CLASSES};
use object_detect::testdata::{background_patch, compose_scene, Rng};

const HIDDEN: usize = 64;
/// Copies of each training row among the examples, so the plain digits weigh
/// as much as the windows cut from pages.
const ROW_COPIES: usize = 5;
const TRAINING_SCENES: u64 = 600;
/// Seeds of the training pages; the evaluation pages start at 0x5EED0D16.
const TRAINING_SCENE_SEED: u64 = 1;
const WINDOW_SIZES: [usize; 3] = [16, 24, 32];
const WINDOW_STRIDE: usize = 2;
const POSITIVE_IOU: f32 = 0.6;
const NEGATIVE_IOU: f32 = 0.45;
/// Share of the eligible background windows kept.
const NEGATIVE_KEEP: f32 = 0.2;
const PATCHES_PER_KIND: usize = 1500;
const EPOCHS: usize = 40;
const BATCH: usize = 64;
const LEARNING_RATE: f32 = 0.05;
const MOMENTUM: f32 = 0.9;
const WEIGHT_DECAY: f32 = 1e-4;
const SEED: u64 = 0x7EA1_2026;

fn main() {
    let pool = training_digits();
    let examples = build_examples(&pool);
    let per_class = (0..CLASSES)
        .map(|c| examples.iter().filter(|(_, l)| *l as usize == c).count())
        .collect::<Vec<_>>();
    println!("{} examples, per class {per_class:?}", examples.len());

    let mut model = initial_model();
    train(&mut model, &examples);

    let training_accuracy = accuracy(&model, examples.iter().map(|(f, l)| (f, *l)));
    let held_out = held_out_digits();
    let held_out_accuracy = accuracy(&model, held_out.iter().map(|d| (&d.pixels, d.label)));
    println!("training examples accuracy: {training_accuracy:.4}");
    println!(
        "held-out digits accuracy:   {held_out_accuracy:.4} ({} digits)",
        held_out.len()
    );

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/model.bin");
    std::fs::write(path, model.to_bytes()).expect("writing src/model.bin");
    println!("wrote {path}");
}

/// All labelled examples, in a fixed order.
fn build_examples(pool: &[Digit]) -> Vec<(Features, u8)> {
    let mut examples: Vec<(Features, u8)> = pool
        .iter()
        .flat_map(|d| std::iter::repeat_n((d.pixels, d.label), ROW_COPIES))
        .collect();
    let mut rng = Rng::new(SEED);
    let mut features = [0u8; FEATURES];
    for i in 0..TRAINING_SCENES {
        let seed = TRAINING_SCENE_SEED + i;
        let scene = compose_scene(pool, 128, 96, 3 + (i % 3) as usize, seed);
        let integral = InkIntegral::from_gray(&scene.image);
        for size in WINDOW_SIZES {
            for y in (0..=integral.height() - size).step_by(WINDOW_STRIDE) {
                for x in (0..=integral.width() - size).step_by(WINDOW_STRIDE) {
                    if integral.window_features(x, y, size, &mut features) < MIN_INK {
                        continue;
                    }
                    let window = Rect {
                        x: x as u32,
                        y: y as u32,
                        width: size as u32,
                        height: size as u32,
                    };
                    let best = scene
                        .digits
                        .iter()
                        .map(|d| (window.iou(&d.rect), d.label))
                        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
                    if best.0 >= POSITIVE_IOU {
                        examples.push((features, best.1));
                    } else if best.0 < NEGATIVE_IOU && rng.unit() < NEGATIVE_KEEP {
                        examples.push((features, BACKGROUND as u8));
                    }
                }
            }
        }
    }
    for kind in 0..4 {
        for _ in 0..PATCHES_PER_KIND {
            examples.push((background_patch(kind, pool, &mut rng), BACKGROUND as u8));
        }
    }
    examples
}

/// Uniform Glorot-style initial weights, zero biases.
fn initial_model() -> Mlp {
    let mut rng = Rng::new(SEED ^ 1);
    let mut model = Mlp::zeros(HIDDEN);
    let limit1 = (6.0 / (FEATURES + HIDDEN) as f32).sqrt();
    for w in model.w1.iter_mut() {
        *w = (rng.unit() * 2.0 - 1.0) * limit1;
    }
    let limit2 = (6.0 / (HIDDEN + CLASSES) as f32).sqrt();
    for w in model.w2.iter_mut() {
        *w = (rng.unit() * 2.0 - 1.0) * limit2;
    }
    model
}

/// Mini-batch SGD with momentum and weight decay on the cross-entropy,
/// learning rate on a cosine schedule.
fn train(model: &mut Mlp, examples: &[(Features, u8)]) {
    let mut rng = Rng::new(SEED ^ 2);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut gradient = Mlp::zeros(HIDDEN);
    let mut velocity = Mlp::zeros(HIDDEN);
    let mut hidden = vec![0f32; HIDDEN];
    let mut hidden_delta = vec![0f32; HIDDEN];
    let mut probabilities = [0f32; CLASSES];
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let progress = epoch as f32 / EPOCHS as f32;
        let rate = LEARNING_RATE * 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
        let mut loss = 0.0f64;
        for batch in order.chunks(BATCH) {
            for array in [
                &mut gradient.w1,
                &mut gradient.b1,
                &mut gradient.w2,
                &mut gradient.b2,
            ] {
                array.fill(0.0);
            }
            for &index in batch {
                let (features, label) = &examples[index];
                model.forward(features, &mut hidden, &mut probabilities);
                loss -= (probabilities[*label as usize].max(1e-12) as f64).ln();
                let mut delta = probabilities;
                delta[*label as usize] -= 1.0;
                for (k, d) in delta.iter().enumerate() {
                    gradient.b2[k] += d;
                }
                for (j, (&h, hd)) in hidden.iter().zip(hidden_delta.iter_mut()).enumerate() {
                    *hd = 0.0;
                    if h > 0.0 {
                        let row = j * CLASSES..(j + 1) * CLASSES;
                        let weights = &model.w2[row.clone()];
                        for ((g, w), d) in gradient.w2[row].iter_mut().zip(weights).zip(&delta) {
                            *g += h * d;
                            *hd += w * d;
                        }
                    }
                }
                for (b, d) in gradient.b1.iter_mut().zip(&hidden_delta) {
                    *b += d;
                }
                for (i, &f) in features.iter().enumerate() {
                    if f != 0 {
                        let x = f as f32 / 16.0;
                        let row = &mut gradient.w1[i * HIDDEN..(i + 1) * HIDDEN];
                        for (g, d) in row.iter_mut().zip(&hidden_delta) {
                            *g += x * d;
                        }
                    }
                }
            }
            let scale = 1.0 / batch.len() as f32;
            step(
                &mut model.w1,
                &mut velocity.w1,
                &gradient.w1,
                scale,
                rate,
                WEIGHT_DECAY,
            );
            step(
                &mut model.b1,
                &mut velocity.b1,
                &gradient.b1,
                scale,
                rate,
                0.0,
            );
            step(
                &mut model.w2,
                &mut velocity.w2,
                &gradient.w2,
                scale,
                rate,
                WEIGHT_DECAY,
            );
            step(
                &mut model.b2,
                &mut velocity.b2,
                &gradient.b2,
                scale,
                rate,
                0.0,
            );
        }
        println!(
            "epoch {epoch:2}: rate {rate:.4}, mean loss {:.4}",
            loss / examples.len() as f64
        );
    }
}

/// One momentum step on one parameter array.
fn step(
    weights: &mut [f32],
    velocity: &mut [f32],
    gradient: &[f32],
    scale: f32,
    rate: f32,
    decay: f32,
) {
    for ((w, v), g) in weights.iter_mut().zip(velocity.iter_mut()).zip(gradient) {
        *v = MOMENTUM * *v - rate * (g * scale + decay * *w);
        *w += *v;
    }
}

/// Share of examples whose most probable class (of all 11) is the label.
fn accuracy<'a>(model: &Mlp, examples: impl Iterator<Item = (&'a Features, u8)>) -> f64 {
    let mut hidden = vec![0f32; model.hidden];
    let mut probabilities = [0f32; CLASSES];
    let (mut right, mut total) = (0usize, 0usize);
    for (features, label) in examples {
        model.forward(features, &mut hidden, &mut probabilities);
        let predicted = (0..CLASSES)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap();
        right += (predicted == label as usize) as usize;
        total += 1;
    }
    right as f64 / total as f64
}
