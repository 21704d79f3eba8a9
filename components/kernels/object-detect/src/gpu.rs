//! The GPU path (through `greenmesh:gpu`): the dense window scan as one WGSL
//! compute pass. One invocation per window position (all window sizes in
//! one dispatch) cuts the window's 8×8 features from the summed-area table
//! (integer arithmetic, exactly as `features.rs`), runs the perceptron and
//! the softmax (in the same order as `Mlp::forward`) and writes the window's
//! entry of the score map: the best digit and its probability when it beats
//! the background class. The CPU builds the ink map and its table before and
//! does the `min_score` cut and non-maximum suppression after
//! ([`crate::detect::detections_from_score_map`]).
//!
//! Features and blank-window skipping are exact (the same integers). The
//! probabilities differ by float rounding only (a GPU may fuse
//! multiply-adds, and WGSL's `exp` and division are not correctly rounded),
//! bounded by [`SCORE_TOLERANCE`]; so labels, candidates and boxes agree
//! except where two probabilities, or a probability and `min_score`, lie
//! within that tolerance of each other.

use crate::boxes::Detection;
use crate::codec::GrayImage;
use crate::detect::{detections_from_score_map, grids, Grid, ScanSettings, WindowScore};
use crate::features::{InkIntegral, FEATURES, MIN_INK};
use crate::model::{Mlp, BACKGROUND, CLASSES};
use crate::MAX_WINDOW_SIZES;
use greenmesh_kernel::gpu::{dispatch, f32_bytes, Buffer, GpuError, Pipeline};

/// Largest difference between a window's probability on the GPU and on the
/// CPU. Both paths add the same terms in the same order; they differ where
/// the GPU fuses a multiply-add (the product is not rounded, and later
/// partial sums round differently) and by the few ulps Vulkan allows `exp`
/// (3 + 2·|x|) and division (2.5). Taking every rounding at its largest
/// error and adding them as independent errors do, a logit of this model
/// differs by at most about 7e-6 (one σ, over the test pages' digit
/// windows), a probability by a quarter of the difference of two logits'
/// errors: about 2.6e-6. 2e-5 is 8σ of that conservative estimate and 80×
/// the largest difference measured on lavapipe (2.4e-7, 4 ulp at 1.0, over
/// 52,416 windows: `tests/all/gpu.rs`), and small enough that a reported
/// score (rounded to 4 decimals) differs by at most one unit of its last
/// decimal ([`REPORTED_SCORE_TOLERANCE`]). The rigorous worst case (every
/// rounding aligned, ~1.6e-4 per logit) is not a useful bound.
pub const SCORE_TOLERANCE: f32 = 2e-5;

/// The largest difference between a reported (4-decimal) score from the
/// GPU and from the CPU: one unit in the last place.
pub const REPORTED_SCORE_TOLERANCE: f64 = 1e-4;

/// Invocations per workgroup (one per window).
pub const WORKGROUP: u32 = 64;

/// The most workgroups in one dimension a dispatch may use (WebGPU's
/// default limit).
const MAX_WORKGROUPS_PER_DIMENSION: u32 = 65_535;

/// The shader's entry point.
pub const ENTRY_POINT: &str = "main";

/// The score map's marker for "no digit here" (blank window or background).
const NOT_A_DIGIT: u32 = u32::MAX;

/// Bytes per upload or read-back chunk: large tables and score maps go
/// through the sandbox's memory a piece at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// Bytes of the `Scan` uniform: 8 `u32`s, then 8 `vec4<u32>` grids.
const SCAN_BYTES: usize = 32 + 16 * MAX_WINDOW_SIZES;

const SHADER: &str = r#"
const HIDDEN: u32 = @HIDDEN@u;
const GRID: u32 = 8u;
const FEATURES: u32 = @FEATURES@u;
const CLASSES: u32 = @CLASSES@u;
const BACKGROUND: u32 = @BACKGROUND@u;
const MIN_INK: u32 = @MIN_INK@u;
const NOT_A_DIGIT: u32 = 0xffffffffu;
// Offsets in `model`: w1 (input-major), b1, w2 (hidden-major), b2.
const B1: u32 = FEATURES * HIDDEN;
const W2: u32 = B1 + HIDDEN;
const B2: u32 = W2 + HIDDEN * CLASSES;

struct Scan {
    table_width: u32,
    stride: u32,
    grid_count: u32,
    windows: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
    // Per window size: (size, columns, rows, first window).
    grids: array<vec4<u32>, @MAX_GRIDS@>,
}

@group(0) @binding(0) var<storage, read> ink_table: array<u32>;
@group(0) @binding(1) var<storage, read> model: array<f32>;
@group(0) @binding(2) var<storage, read_write> scores: array<vec2<u32>>;
@group(0) @binding(3) var<uniform> scan: Scan;

@compute @workgroup_size(@WORKGROUP@)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = gid.y * groups.x * @WORKGROUP@u + gid.x;
    if (index >= scan.windows) { return; }
    var grid = scan.grids[0];
    for (var g = 1u; g < scan.grid_count; g++) {
        if (index >= scan.grids[g].w) { grid = scan.grids[g]; }
    }
    let position = index - grid.w;
    let x = (position % grid.y) * scan.stride;
    let y = (position / grid.y) * scan.stride;
    let cell = grid.x / GRID;
    let area = cell * cell;
    let denominator = 2u * 255u * area;

    // Features: round(16 · mean ink) per cell, as integers (u32 wraps like
    // the CPU's wrapping table arithmetic), then the model's input / 16.
    var inputs: array<f32, @FEATURES@>;
    var ink = 0u;
    for (var row = 0u; row < GRID; row++) {
        let top = (y + row * cell) * scan.table_width;
        let bottom = top + cell * scan.table_width;
        for (var col = 0u; col < GRID; col++) {
            let left = x + col * cell;
            let right = left + cell;
            let sum = ink_table[bottom + right] - ink_table[top + right]
                - ink_table[bottom + left] + ink_table[top + left];
            let value = (32u * sum + 255u * area) / denominator;
            inputs[row * GRID + col] = f32(value) * 0.0625;
            ink += value;
        }
    }
    if (ink < MIN_INK) {
        scores[index] = vec2<u32>(NOT_A_DIGIT, 0u);
        return;
    }

    // The perceptron in Mlp::forward's order: every hidden sum adds the
    // inputs in turn, skipping zero inputs, then ReLU and the output sums.
    var hidden: array<f32, HIDDEN>;
    for (var j = 0u; j < HIDDEN; j++) { hidden[j] = model[B1 + j]; }
    for (var i = 0u; i < FEATURES; i++) {
        let input = inputs[i];
        if (input != 0.0) {
            for (var j = 0u; j < HIDDEN; j++) {
                hidden[j] = hidden[j] + input * model[i * HIDDEN + j];
            }
        }
    }
    var logits: array<f32, @CLASSES@>;
    for (var k = 0u; k < CLASSES; k++) { logits[k] = model[B2 + k]; }
    for (var j = 0u; j < HIDDEN; j++) {
        let h = hidden[j];
        if (h > 0.0) {
            for (var k = 0u; k < CLASSES; k++) {
                logits[k] = logits[k] + h * model[W2 + j * CLASSES + k];
            }
        }
    }
    var top_logit = logits[0];
    for (var k = 1u; k < CLASSES; k++) { top_logit = max(top_logit, logits[k]); }
    var p: array<f32, @CLASSES@>;
    var total = 0.0;
    for (var k = 0u; k < CLASSES; k++) {
        p[k] = exp(logits[k] - top_logit);
        total = total + p[k];
    }
    for (var k = 0u; k < CLASSES; k++) { p[k] = p[k] / total; }

    // The most probable digit (lowest on ties), if it beats background.
    var label = 0u;
    var score = p[0];
    for (var d = 1u; d < BACKGROUND; d++) {
        if (p[d] > score) {
            label = d;
            score = p[d];
        }
    }
    if (score > p[BACKGROUND]) {
        scores[index] = vec2<u32>(label, bitcast<u32>(score));
    } else {
        scores[index] = vec2<u32>(NOT_A_DIGIT, 0u);
    }
}
"#;

/// The scan's WGSL for a model of `hidden` units.
pub fn shader(hidden: usize) -> String {
    SHADER
        .replace("@HIDDEN@", &hidden.to_string())
        .replace("@FEATURES@", &FEATURES.to_string())
        .replace("@CLASSES@", &CLASSES.to_string())
        .replace("@BACKGROUND@", &BACKGROUND.to_string())
        .replace("@MIN_INK@", &MIN_INK.to_string())
        .replace("@MAX_GRIDS@", &MAX_WINDOW_SIZES.to_string())
        .replace("@WORKGROUP@", &WORKGROUP.to_string())
}

/// Everything one scan uploads and dispatches. Bindings: 0 the summed-area
/// table (`u32`s), 1 the model's parameters, 2 the score map (written,
/// [`ScanJob::score_map_bytes`] bytes), 3 the `Scan` uniform.
#[derive(Debug, Clone)]
pub struct ScanJob<'a> {
    /// The ink map's summed-area table, row by row.
    pub table: &'a [u32],
    /// `w1`, `b1`, `w2`, `b2` as little-endian `f32`.
    pub model: Vec<u8>,
    /// The `Scan` uniform.
    pub scan: Vec<u8>,
    /// Window positions scanned (entries of the score map).
    pub windows: u64,
    /// The dispatch: one invocation per window.
    pub workgroups: (u32, u32, u32),
}

impl<'a> ScanJob<'a> {
    /// The job for `grids` (from [`grids`]) over `integral`; the scan's
    /// settings must be validated (at most [`MAX_WINDOW_SIZES`] sizes, fewer
    /// than 2³² windows).
    pub fn new(
        integral: &'a InkIntegral,
        model: &Mlp,
        settings: &ScanSettings,
        grids: &[Grid],
    ) -> Self {
        assert!(grids.len() <= MAX_WINDOW_SIZES, "validated settings");
        let windows: u64 = grids.iter().map(Grid::windows).sum();
        let model: Vec<u8> = f32_bytes(
            &[&model.w1, &model.b1, &model.w2, &model.b2]
                .iter()
                .flat_map(|a| a.iter().copied())
                .collect::<Vec<f32>>(),
        );
        let mut scan: Vec<u32> = vec![
            integral.width() as u32 + 1,
            settings.stride,
            grids.len() as u32,
            u32::try_from(windows).expect("validated settings"),
            0,
            0,
            0,
            0,
        ];
        for grid in grids {
            scan.extend([grid.size, grid.columns, grid.rows, grid.first as u32]);
        }
        scan.resize(SCAN_BYTES / 4, 0);
        let groups = windows.div_ceil(WORKGROUP as u64) as u32;
        let workgroups = if groups <= MAX_WORKGROUPS_PER_DIMENSION {
            (groups, 1, 1)
        } else {
            (
                MAX_WORKGROUPS_PER_DIMENSION,
                groups.div_ceil(MAX_WORKGROUPS_PER_DIMENSION),
                1,
            )
        };
        Self {
            table: integral.table(),
            model,
            scan: u32_bytes(&scan),
            windows,
            workgroups,
        }
    }

    /// Size of the score map buffer: a `vec2<u32>` per window.
    pub fn score_map_bytes(&self) -> u64 {
        8 * self.windows
    }
}

/// `u32`s as the little-endian bytes buffers hold.
pub fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes score map entries as the shader writes them: per window a
/// label (`0xffffffff` for no digit) and the probability's bits.
pub fn decode_score_map(bytes: &[u8]) -> Vec<WindowScore> {
    bytes
        .chunks_exact(8)
        .map(|entry| {
            let label = u32::from_le_bytes(entry[..4].try_into().unwrap());
            let score = f32::from_le_bytes(entry[4..].try_into().unwrap());
            (label != NOT_A_DIGIT).then_some((label as u8, score))
        })
        .collect()
}

/// Runs `job` with `pipeline` (compiled from [`shader`]) and reads the score
/// map back.
fn run_scan(pipeline: &Pipeline, job: &ScanJob) -> Result<Vec<WindowScore>, GpuError> {
    if job.windows == 0 {
        return Ok(Vec::new());
    }
    let map_bytes = job.score_map_bytes();
    let scores = Buffer::new(map_bytes)?;
    {
        // The inputs live only until the dispatch has run.
        let table = Buffer::new(4 * job.table.len() as u64)?;
        for (i, chunk) in job.table.chunks(CHUNK_BYTES / 4).enumerate() {
            table.write((i * CHUNK_BYTES) as u64, &u32_bytes(chunk))?;
        }
        let model = Buffer::new(job.model.len() as u64)?;
        model.write(0, &job.model)?;
        let scan = Buffer::new(job.scan.len() as u64)?;
        scan.write(0, &job.scan)?;
        dispatch(pipeline, &[&table, &model, &scores, &scan], job.workgroups)?;
    }
    let mut map = Vec::with_capacity(job.windows as usize);
    let mut offset = 0;
    while offset < map_bytes {
        let length = (map_bytes - offset).min(CHUNK_BYTES as u64);
        map.extend(decode_score_map(&scores.read(offset, length)?));
        offset += length;
    }
    Ok(map)
}

/// Finds digits in `image` with the scan on the GPU: the same detections as
/// [`crate::detect::detect`], probabilities within [`SCORE_TOLERANCE`].
/// Fails with [`GpuError::Unavailable`] at once on a node without a GPU.
pub fn detect(
    image: &GrayImage,
    model: &Mlp,
    settings: &ScanSettings,
) -> Result<Vec<Detection>, GpuError> {
    let pipeline = Pipeline::new(&shader(model.hidden), ENTRY_POINT)?;
    let integral = InkIntegral::from_gray(image);
    let grids = grids(image.width, image.height, settings);
    let map = run_scan(&pipeline, &ScanJob::new(&integral, model, settings, &grids))?;
    Ok(detections_from_score_map(&map, &grids, settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::window_count;
    use crate::testdata::sample_scene;

    fn settings() -> ScanSettings {
        ScanSettings {
            min_score: 0.6,
            nms_iou: 0.3,
            window_sizes: vec![16, 24, 32],
            stride: 4,
        }
    }

    #[test]
    fn the_shader_has_no_placeholders_left() {
        let wgsl = shader(64);
        assert!(wgsl.contains("const HIDDEN: u32 = 64u;"));
        assert!(wgsl.contains("array<vec4<u32>, 8>"));
        let placeholder = |piece: &str| {
            !piece.is_empty() && piece.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        };
        assert!(!wgsl.split('@').any(placeholder), "{wgsl}");
    }

    #[test]
    fn a_job_packs_the_uniform_and_covers_every_window() {
        let scene = sample_scene();
        let integral = InkIntegral::from_gray(&scene.image);
        let model = Mlp::embedded().unwrap();
        let s = settings();
        let g = grids(256, 192, &s);
        let job = ScanJob::new(&integral, &model, &s, &g);
        assert_eq!(job.windows, window_count(256, 192, &s));
        assert_eq!(job.table.len(), 257 * 193);
        assert_eq!(job.model.len(), 4 * (64 * 64 + 64 + 64 * 11 + 11));
        assert_eq!(job.scan.len(), SCAN_BYTES);
        let words: Vec<u32> = job
            .scan
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        assert_eq!(&words[..4], &[257, 4, 3, job.windows as u32]);
        assert_eq!(&words[8..12], &[16, 61, 45, 0]);
        assert_eq!(&words[12..16], &[24, 59, 43, 61 * 45]);
        assert_eq!(job.workgroups, (job.windows.div_ceil(64) as u32, 1, 1));
        assert!(job.workgroups.0 as u64 * WORKGROUP as u64 >= job.windows);
        assert_eq!(job.score_map_bytes(), 8 * job.windows);
    }

    #[test]
    fn the_largest_scan_fits_one_dispatch() {
        // MAX_WINDOWS windows of 64 invocations stay in one row of groups.
        assert!(
            crate::MAX_WINDOWS.div_ceil(WORKGROUP as u64) <= MAX_WORKGROUPS_PER_DIMENSION as u64
        );
    }

    #[test]
    fn score_map_entries_decode() {
        let bytes = u32_bytes(&[NOT_A_DIGIT, 0, 7, 0.75f32.to_bits(), 0, 1.0f32.to_bits()]);
        assert_eq!(
            decode_score_map(&bytes),
            vec![None, Some((7, 0.75)), Some((0, 1.0))]
        );
    }

    #[test]
    fn natively_the_gpu_path_is_unavailable() {
        let model = Mlp::embedded().unwrap();
        let err = detect(&sample_scene().image, &model, &settings()).unwrap_err();
        assert!(matches!(err, GpuError::Unavailable(_)), "{err}");
    }
}
