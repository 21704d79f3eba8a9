//! The `object-detect` kernel: finds handwritten digits (a stand-in for
//! objects) in a PNG page and returns their labelled boxes as JSON. A sliding
//! window over a few sizes feeds a tiny perceptron trained on UCI optdigits
//! (`examples/train.rs`); non-maximum suppression picks among the hits.
//!
//! The dense scan (features and classifier for every window) runs on the
//! node's GPU when it has one ([`gpu`], a WGSL compute pass) and on the CPU
//! otherwise ([`detect`], the reference); the `device` param chooses. Both
//! give the same boxes and labels, scores within [`gpu::SCORE_TOLERANCE`].

pub mod boxes;
pub mod codec;
pub mod dataset;
pub mod detect;
pub mod features;
pub mod gpu;
pub mod model;
pub mod testdata;

use detect::{detect, window_count, ScanSettings};
use greenmesh_kernel::gpu::{Device, GpuError};
use greenmesh_kernel::{
    expect_media_type, params, Description, GpuUse, Kernel, KernelError, Payload,
};
use serde::{Deserialize, Serialize};

/// The most windows one run classifies (about 3.1 million for a 4096×4096
/// page at the default settings).
pub const MAX_WINDOWS: u64 = 4_000_000;
/// Largest window side, in pixels.
pub const MAX_WINDOW_SIZE: u32 = 256;
/// Largest number of window sizes.
pub const MAX_WINDOW_SIZES: usize = 8;
/// Largest stride, in pixels.
pub const MAX_STRIDE: u32 = 64;

/// The kernel.
pub struct ObjectDetect;

/// The task's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectParams {
    /// Smallest class probability reported, in [0, 1].
    pub min_score: f32,
    /// Largest IoU a kept box may have with a better-scored one, in [0, 1].
    pub nms_iou: f32,
    /// Window sides scanned, in pixels: multiples of 8 from 8 to 256, at most 8 of them.
    pub window_sizes: Vec<u32>,
    /// Step between window positions, 1–64 pixels.
    pub stride: u32,
    /// Where the scan runs: `auto` (the GPU when the node has one), `cpu`
    /// or `gpu` (fails without one).
    pub device: Device,
}

impl Default for DetectParams {
    fn default() -> Self {
        Self {
            min_score: 0.6,
            nms_iou: 0.3,
            window_sizes: vec![16, 24, 32],
            stride: 4,
            device: Device::Auto,
        }
    }
}

impl DetectParams {
    fn validate(self) -> Result<ScanSettings, KernelError> {
        let refuse = |m: String| Err(KernelError::InvalidParams(m));
        if !(0.0..=1.0).contains(&self.min_score) {
            return refuse(format!("min_score {} is not in [0, 1]", self.min_score));
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            return refuse(format!("nms_iou {} is not in [0, 1]", self.nms_iou));
        }
        if self.window_sizes.is_empty() || self.window_sizes.len() > MAX_WINDOW_SIZES {
            return refuse(format!("window_sizes needs 1 to {MAX_WINDOW_SIZES} sizes"));
        }
        if let Some(bad) = self
            .window_sizes
            .iter()
            .find(|&&s| s == 0 || s % 8 != 0 || s > MAX_WINDOW_SIZE)
        {
            return refuse(format!(
                "window size {bad} is not a multiple of 8 from 8 to {MAX_WINDOW_SIZE}"
            ));
        }
        if !(1..=MAX_STRIDE).contains(&self.stride) {
            return refuse(format!("stride {} is not in 1..={MAX_STRIDE}", self.stride));
        }
        let mut window_sizes = self.window_sizes;
        window_sizes.sort_unstable();
        window_sizes.dedup();
        Ok(ScanSettings {
            min_score: self.min_score,
            nms_iou: self.nms_iou,
            window_sizes,
            stride: self.stride,
        })
    }
}

/// The output document.
#[derive(Debug, Serialize)]
struct Report {
    bounding_boxes: Vec<BoundingBox>,
    image: ImageSize,
}

/// One detection as JSON: the digit, its probability (4 decimals) and the
/// box (top-left corner and size, in pixels).
#[derive(Debug, Serialize)]
struct BoundingBox {
    label: String,
    score: f64,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct ImageSize {
    width: u32,
    height: u32,
}

const PARAMS_DOC: &str = r#"{
  "min_score": {"default": 0.6, "doc": "smallest class probability reported, 0..1"},
  "nms_iou": {"default": 0.3, "doc": "non-maximum suppression: largest IoU a kept box may have with a better one, 0..1"},
  "window_sizes": {"default": [16, 24, 32], "doc": "window sides scanned in pixels, multiples of 8 from 8 to 256, at most 8"},
  "stride": {"default": 4, "doc": "step between window positions in pixels, 1..64"},
  "device": {"default": "auto", "doc": "where the window scan runs: auto (GPU when the node has one, else CPU), cpu, or gpu (fails without a GPU); the GPU gives the CPU's boxes and labels, scores within 0.0001"}
}"#;

impl Kernel for ObjectDetect {
    fn describe() -> Description {
        Description {
            name: "object-detect".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Finds handwritten digits in a PNG page: labelled bounding boxes with scores, as JSON; the window scan runs on the GPU when the node has one."
                .into(),
            input_types: vec!["image/png".into()],
            output_types: vec!["application/json".into()],
            params: PARAMS_DOC.into(),
            gpu: GpuUse::Optional,
        }
    }

    fn run(input: Payload, params_json: &str) -> Result<Payload, KernelError> {
        expect_media_type(&input, &["image/png"])?;
        let params = params::<DetectParams>(params_json)?;
        let device = params.device;
        let settings = params.validate()?;
        let image = codec::decode_png(&input.bytes)?;
        let windows = window_count(image.width, image.height, &settings);
        if windows > MAX_WINDOWS {
            return Err(KernelError::InvalidInput(format!(
                "a {}×{} image at these settings needs {windows} windows (limit {MAX_WINDOWS}): raise stride or scan fewer window sizes",
                image.width, image.height
            )));
        }
        let model = model::Mlp::embedded().map_err(KernelError::Failed)?;
        let detections = if device.use_gpu() {
            gpu::detect(&image, &model, &settings).map_err(gpu_failure)?
        } else {
            detect(&image, &model, &settings)
        };
        let report = Report {
            bounding_boxes: detections
                .iter()
                .map(|d| BoundingBox {
                    label: d.label.to_string(),
                    score: (d.score as f64 * 1e4).round() / 1e4,
                    x: d.rect.x,
                    y: d.rect.y,
                    width: d.rect.width,
                    height: d.rect.height,
                })
                .collect(),
            image: ImageSize {
                width: image.width,
                height: image.height,
            },
        };
        let json = serde_json::to_vec(&report).map_err(|e| KernelError::Failed(e.to_string()))?;
        Ok(Payload::new("application/json", json))
    }
}

/// A failed GPU scan as the task's error (with a hint when there is no GPU).
fn gpu_failure(e: GpuError) -> KernelError {
    let hint = match e {
        GpuError::Unavailable(_) => {
            r#" ("device": "gpu" needs a GPU; "auto" or "cpu" runs the scan on the CPU)"#
        }
        _ => "",
    };
    KernelError::Failed(format!("GPU scan: {e}{hint}"))
}

greenmesh_kernel::export_kernel!(ObjectDetect);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode_png, GrayImage};
    use crate::testdata::{sample_input, sample_scene};
    use serde_json::Value;

    fn run_json(input: Payload, params: &str) -> Value {
        let out = ObjectDetect::run(input, params).unwrap();
        assert_eq!(out.media_type, "application/json");
        serde_json::from_slice(&out.bytes).unwrap()
    }

    #[test]
    fn the_sample_scene_is_found_with_the_right_labels() {
        let scene = sample_scene();
        let report = run_json(sample_input().0, "{}");
        assert_eq!(report["image"]["width"], 256);
        assert_eq!(report["image"]["height"], 192);
        let boxes = report["bounding_boxes"].as_array().unwrap();
        let scores: Vec<f64> = boxes.iter().map(|b| b["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted by score");
        assert!(scores.iter().all(|&s| (0.6..=1.0).contains(&s)));
        let found = scene
            .digits
            .iter()
            .filter(|d| {
                boxes.iter().any(|b| {
                    let rect = boxes::Rect {
                        x: b["x"].as_u64().unwrap() as u32,
                        y: b["y"].as_u64().unwrap() as u32,
                        width: b["width"].as_u64().unwrap() as u32,
                        height: b["height"].as_u64().unwrap() as u32,
                    };
                    b["label"].as_str() == Some(d.label.to_string().as_str())
                        && rect.iou(&d.rect) >= 0.5
                })
            })
            .count();
        assert!(found >= 5, "found {found} of 6 digits");
    }

    #[test]
    fn light_ink_on_a_dark_page_is_found_too() {
        let mut scene = sample_scene();
        for p in scene.image.pixels.iter_mut() {
            *p = 255 - *p;
        }
        let inverted = run_json(scene.payload(), "{}");
        let original = run_json(sample_input().0, "{}");
        assert_eq!(inverted, original);
    }

    #[test]
    fn params_change_the_scan() {
        let all = run_json(sample_input().0, r#"{"min_score": 0.0}"#);
        let strict = run_json(sample_input().0, r#"{"min_score": 0.999}"#);
        let all_n = all["bounding_boxes"].as_array().unwrap().len();
        let strict_n = strict["bounding_boxes"].as_array().unwrap().len();
        assert!(strict_n < all_n);
        let big_only = run_json(sample_input().0, r#"{"window_sizes": [32], "stride": 8}"#);
        assert!(big_only["bounding_boxes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["width"] == 32 && b["x"].as_u64().unwrap() % 8 == 0));
    }

    #[test]
    fn an_image_smaller_than_every_window_has_no_boxes() {
        let tiny = Payload::new("image/png", encode_png(&GrayImage::filled(8, 8, 0)));
        let report = run_json(tiny, "{}");
        assert_eq!(report["bounding_boxes"], Value::Array(vec![]));
        assert_eq!(report["image"]["width"], 8);
    }

    #[test]
    fn bad_inputs_and_params_are_refused() {
        let png = sample_input().0;
        let wrong_type = Payload::new("image/jpeg", png.bytes.clone());
        assert!(matches!(
            ObjectDetect::run(wrong_type, "{}"),
            Err(KernelError::UnsupportedMediaType(_))
        ));
        let garbage = Payload::new("image/png", vec![1, 2, 3]);
        assert!(matches!(
            ObjectDetect::run(garbage, "{}"),
            Err(KernelError::InvalidInput(_))
        ));
        for params in [
            r#"{"min_scor": 0.5}"#,
            r#"{"min_score": 1.5}"#,
            r#"{"nms_iou": -0.1}"#,
            r#"{"window_sizes": []}"#,
            r#"{"window_sizes": [20]}"#,
            r#"{"window_sizes": [264]}"#,
            r#"{"window_sizes": [8, 16, 24, 32, 40, 48, 56, 64, 72]}"#,
            r#"{"stride": 0}"#,
            r#"{"stride": 65}"#,
            "not json",
        ] {
            assert!(
                matches!(
                    ObjectDetect::run(png.clone(), params),
                    Err(KernelError::InvalidParams(_))
                ),
                "{params}"
            );
        }
    }

    #[test]
    fn scans_beyond_the_window_limit_are_refused() {
        let page = Payload::new("image/png", encode_png(&GrayImage::filled(2048, 2048, 230)));
        let err = ObjectDetect::run(page, r#"{"stride": 1}"#).unwrap_err();
        assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("windows")));
    }

    #[test]
    fn device_is_parsed_and_defaults_to_auto() {
        let parse = |json: &str| params::<DetectParams>(json).map(|p| p.device);
        assert_eq!(parse("{}").unwrap(), Device::Auto);
        assert_eq!(parse(r#"{"device": "auto"}"#).unwrap(), Device::Auto);
        assert_eq!(parse(r#"{"device": "cpu"}"#).unwrap(), Device::Cpu);
        assert_eq!(
            parse(r#"{"device": "gpu", "stride": 8}"#).unwrap(),
            Device::Gpu
        );
        for bad in [r#"{"device": "tpu"}"#, r#"{"device": "GPU"}"#] {
            let err = ObjectDetect::run(sample_input().0, bad).unwrap_err();
            assert!(
                matches!(&err, KernelError::InvalidParams(m) if m.contains("unknown variant")),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            ObjectDetect::run(sample_input().0, r#"{"device": 1}"#),
            Err(KernelError::InvalidParams(_))
        ));
    }

    #[test]
    fn device_gpu_without_a_gpu_fails_clearly() {
        let err = ObjectDetect::run(sample_input().0, r#"{"device": "gpu"}"#).unwrap_err();
        let KernelError::Failed(message) = &err else {
            panic!("{err}");
        };
        assert!(message.contains("no GPU"), "{message}");
        assert!(
            message.contains(r#""device": "gpu" needs a GPU"#),
            "{message}"
        );
        // Even when there is nothing to scan.
        let tiny = Payload::new("image/png", encode_png(&GrayImage::filled(8, 8, 0)));
        assert!(matches!(
            ObjectDetect::run(tiny, r#"{"device": "gpu"}"#),
            Err(KernelError::Failed(m)) if m.contains("no GPU")
        ));
        // Bad params are reported as such first.
        assert!(matches!(
            ObjectDetect::run(sample_input().0, r#"{"device": "gpu", "stride": 0}"#),
            Err(KernelError::InvalidParams(_))
        ));
    }

    #[test]
    fn natively_auto_falls_back_to_the_cpu_with_identical_output() {
        for params in [
            "{}",
            r#"{"min_score": 0.2, "window_sizes": [16, 32], "stride": 2}"#,
        ] {
            let with = |device: &str| {
                let mut json: Value = serde_json::from_str(params).unwrap();
                json["device"] = device.into();
                ObjectDetect::run(sample_input().0, &json.to_string())
                    .unwrap()
                    .bytes
            };
            let default = ObjectDetect::run(sample_input().0, params).unwrap().bytes;
            assert_eq!(with("auto"), default, "{params}");
            assert_eq!(with("cpu"), default, "{params}");
        }
    }

    #[test]
    fn describe_names_the_capability_and_documents_every_param() {
        let d = ObjectDetect::describe();
        assert_eq!(d.name, "object-detect");
        assert_eq!(d.input_types, vec!["image/png"]);
        assert_eq!(d.output_types, vec!["application/json"]);
        let doc: Value = serde_json::from_str(&d.params).unwrap();
        let defaults = DetectParams::default();
        assert_eq!(
            doc["min_score"]["default"].as_f64().unwrap() as f32,
            defaults.min_score
        );
        assert_eq!(
            doc["nms_iou"]["default"].as_f64().unwrap() as f32,
            defaults.nms_iou
        );
        assert_eq!(
            doc["window_sizes"]["default"],
            serde_json::json!(defaults.window_sizes)
        );
        assert_eq!(doc["stride"]["default"], defaults.stride);
        assert_eq!(doc["device"]["default"], "auto");
        assert_eq!(defaults.device, Device::Auto);
        assert_eq!(d.gpu, GpuUse::Optional);
        assert_eq!(doc.as_object().unwrap().len(), 5, "one entry per param");
    }
}
