//! Measured quality (the README's figures): plain classification accuracy on
//! the held-out optdigits rows, and detection precision and recall on pages
//! built only from held-out digits. Reproduce with
//! `cargo test -p object-detect --release -- --nocapture quality`.

use greenmesh_kernel::Kernel;
use object_detect::boxes::Rect;
use object_detect::dataset::held_out_digits;
use object_detect::model::{Mlp, CLASSES};
use object_detect::testdata::{held_out_scenes, Scene};
use object_detect::ObjectDetect;
use serde_json::Value;

/// Held-out digits the embedded model classifies right (argmax of all 11
/// classes, background counting as wrong), as the README states. A retrained
/// or damaged model changes this.
const HELD_OUT_CORRECT: usize = 350;
const EVALUATION_SCENES: usize = 50;

#[test]
fn quality_held_out_classification_accuracy() {
    let model = Mlp::embedded().unwrap();
    let digits = held_out_digits();
    let mut hidden = vec![0f32; model.hidden];
    let mut p = [0f32; CLASSES];
    let correct = digits
        .iter()
        .filter(|d| {
            model.forward(&d.pixels, &mut hidden, &mut p);
            let best = (0..CLASSES).fold(0, |b, k| if p[k] > p[b] { k } else { b });
            best == d.label as usize
        })
        .count();
    println!(
        "held-out classification accuracy: {correct}/{} = {:.4}",
        digits.len(),
        correct as f64 / digits.len() as f64
    );
    assert_eq!(correct, HELD_OUT_CORRECT);
}

/// A detection is right if its label matches a not yet matched ground-truth
/// digit whose box it overlaps with IoU ≥ 0.5 (detections taken best first).
fn score_scene(scene: &Scene, detections: &[(u8, Rect)]) -> (usize, usize) {
    let mut matched = vec![false; scene.digits.len()];
    let mut true_positives = 0;
    for (label, rect) in detections {
        let hit = scene
            .digits
            .iter()
            .enumerate()
            .find(|(i, d)| !matched[*i] && d.label == *label && d.rect.iou(rect) >= 0.5);
        if let Some((i, _)) = hit {
            matched[i] = true;
            true_positives += 1;
        }
    }
    (true_positives, detections.len())
}

fn run_kernel(scene: &Scene) -> Vec<(u8, Rect)> {
    let out = ObjectDetect::run(scene.payload(), "{}").unwrap();
    let report: Value = serde_json::from_slice(&out.bytes).unwrap();
    let field = |b: &Value, k: &str| b[k].as_u64().unwrap() as u32;
    report["bounding_boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let label = b["label"].as_str().unwrap().parse().unwrap();
            let rect = Rect {
                x: field(b, "x"),
                y: field(b, "y"),
                width: field(b, "width"),
                height: field(b, "height"),
            };
            (label, rect)
        })
        .collect()
}

#[test]
fn quality_detection_precision_and_recall_on_held_out_scenes() {
    let scenes = held_out_scenes(EVALUATION_SCENES);
    let (mut true_positives, mut detections, mut truths) = (0, 0, 0);
    for scene in &scenes {
        let (tp, n) = score_scene(scene, &run_kernel(scene));
        true_positives += tp;
        detections += n;
        truths += scene.digits.len();
    }
    let precision = true_positives as f64 / detections as f64;
    let recall = true_positives as f64 / truths as f64;
    println!(
        "detection on {EVALUATION_SCENES} held-out scenes: {truths} digits, {detections} detections, \
         {true_positives} correct; precision {precision:.4}, recall {recall:.4}"
    );
    assert!(precision >= 0.85, "precision {precision}");
    assert!(recall >= 0.93, "recall {recall}");
}
