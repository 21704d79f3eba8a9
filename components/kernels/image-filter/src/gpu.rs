//! The GPU paths (through `greenmesh:gpu`): the separable Gaussian blur and
//! the Sobel magnitude as WGSL compute passes that do the same arithmetic,
//! in the same order, as `blur.rs` and `sobel.rs` (edges clamped). Results
//! agree with the CPU path to within one 8-bit level (a GPU may fuse
//! multiply-adds).

use crate::blur::GaussianKernel;
use crate::sobel::SOBEL_NORMALISATION;
use greenmesh_kernel::gpu::{bytes_f32, dispatch, f32_bytes, Buffer, GpuError, Pipeline};

/// Workgroup edge (16×16 invocations, one per pixel).
const TILE: u32 = 16;

const BLUR: &str = r#"
struct Dims { width: u32, height: u32, radius: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

@compute @workgroup_size(16, 16)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= dims.width || gid.y >= dims.height) { return; }
    let r = i32(dims.radius);
    let last = i32(dims.width) - 1;
    var acc = 0.0;
    for (var t = 0; t <= 2 * r; t++) {
        let x = clamp(i32(gid.x) + t - r, 0, last);
        acc = acc + weights[t] * src[gid.y * dims.width + u32(x)];
    }
    dst[gid.y * dims.width + gid.x] = acc;
}

@compute @workgroup_size(16, 16)
fn columns(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= dims.width || gid.y >= dims.height) { return; }
    let r = i32(dims.radius);
    let last = i32(dims.height) - 1;
    var acc = 0.0;
    for (var t = 0; t <= 2 * r; t++) {
        let y = clamp(i32(gid.y) + t - r, 0, last);
        acc = acc + weights[t] * src[u32(y) * dims.width + gid.x];
    }
    dst[gid.y * dims.width + gid.x] = acc;
}
"#;

const SOBEL: &str = r#"
struct Dims { width: u32, height: u32, scale: f32, pad: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> dims: Dims;

fn at(x: i32, y: i32) -> f32 {
    let cx = clamp(x, 0, i32(dims.width) - 1);
    let cy = clamp(y, 0, i32(dims.height) - 1);
    return src[u32(cy) * dims.width + u32(cx)];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= dims.width || gid.y >= dims.height) { return; }
    let x = i32(gid.x);
    let y = i32(gid.y);
    let left = at(x - 1, y - 1) + 2.0 * at(x - 1, y) + at(x - 1, y + 1);
    let right = at(x + 1, y - 1) + 2.0 * at(x + 1, y) + at(x + 1, y + 1);
    let top = at(x - 1, y - 1) + 2.0 * at(x, y - 1) + at(x + 1, y - 1);
    let bottom = at(x - 1, y + 1) + 2.0 * at(x, y + 1) + at(x + 1, y + 1);
    let gx = right - left;
    let gy = bottom - top;
    dst[gid.y * dims.width + gid.x] = sqrt(gx * gx + gy * gy) / dims.scale;
}
"#;

fn dims(values: [u32; 4]) -> Result<Buffer, GpuError> {
    let buffer = Buffer::new(16)?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    buffer.write(0, &bytes)?;
    Ok(buffer)
}

fn groups(width: usize, height: usize) -> (u32, u32, u32) {
    (
        (width as u32).div_ceil(TILE),
        (height as u32).div_ceil(TILE),
        1,
    )
}

/// Blurs the planes (each `width × height`) on the GPU; one upload of the
/// weights, two passes per plane.
pub fn blur_planes(
    planes: &[Vec<f32>],
    width: usize,
    height: usize,
    kernel: &GaussianKernel,
) -> Result<Vec<Vec<f32>>, GpuError> {
    let rows = Pipeline::new(BLUR, "rows")?;
    let columns = Pipeline::new(BLUR, "columns")?;
    let bytes = 4 * (width * height) as u64;
    let (source, across, out) = (
        Buffer::new(bytes)?,
        Buffer::new(bytes)?,
        Buffer::new(bytes)?,
    );
    let weights = Buffer::new(4 * kernel.weights.len() as u64)?;
    weights.write(0, &f32_bytes(&kernel.weights))?;
    let dims = dims([width as u32, height as u32, kernel.radius as u32, 0])?;
    planes
        .iter()
        .map(|plane| {
            source.write(0, &f32_bytes(plane))?;
            dispatch(
                &rows,
                &[&source, &across, &weights, &dims],
                groups(width, height),
            )?;
            dispatch(
                &columns,
                &[&across, &out, &weights, &dims],
                groups(width, height),
            )?;
            Ok(bytes_f32(&out.read(0, bytes)?))
        })
        .collect()
}

/// The Sobel magnitude of `luma` divided by [`SOBEL_NORMALISATION`].
pub fn sobel_magnitude(luma: &[f32], width: usize, height: usize) -> Result<Vec<f32>, GpuError> {
    let pipeline = Pipeline::new(SOBEL, "main")?;
    let bytes = 4 * (width * height) as u64;
    let (source, out) = (Buffer::new(bytes)?, Buffer::new(bytes)?);
    source.write(0, &f32_bytes(luma))?;
    let dims = dims([
        width as u32,
        height as u32,
        SOBEL_NORMALISATION.to_bits(),
        0,
    ])?;
    dispatch(&pipeline, &[&source, &out, &dims], groups(width, height))?;
    Ok(bytes_f32(&out.read(0, bytes)?))
}
