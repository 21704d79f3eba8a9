//! The GPU path: a tiled WGSL matrix multiply (16×16 workgroups, tiles of A
//! and B staged in workgroup memory), run through `greenmesh:gpu`.

use greenmesh_kernel::gpu::{bytes_f32, dispatch, f32_bytes, Buffer, Pipeline};
use greenmesh_kernel::KernelError;

/// Tile edge (the workgroup is TILE × TILE invocations).
const TILE: u32 = 16;

const SHADER: &str = r#"
struct Dims { m: u32, k: u32, n: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = gid.y;
    let col = gid.x;
    var acc = 0.0;
    let tiles = (dims.k + 15u) / 16u;
    for (var t = 0u; t < tiles; t++) {
        let a_col = t * 16u + lid.x;
        let b_row = t * 16u + lid.y;
        var va = 0.0;
        if (row < dims.m && a_col < dims.k) { va = a[row * dims.k + a_col]; }
        var vb = 0.0;
        if (b_row < dims.k && col < dims.n) { vb = b[b_row * dims.n + col]; }
        tile_a[lid.y][lid.x] = va;
        tile_b[lid.y][lid.x] = vb;
        workgroupBarrier();
        for (var i = 0u; i < 16u; i++) {
            acc = acc + tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < dims.m && col < dims.n) {
        c[row * dims.n + col] = acc;
    }
}
"#;

/// `a` is m×k, `b` is k×n, both row-major; returns m×n.
pub fn matmul(a: &[f32], b: &[f32], m: u32, k: u32, n: u32) -> Result<Vec<f32>, KernelError> {
    let pipeline = Pipeline::new(SHADER, "main")?;
    let buf_a = Buffer::new(4 * a.len() as u64)?;
    let buf_b = Buffer::new(4 * b.len() as u64)?;
    let buf_c = Buffer::new(4 * u64::from(m) * u64::from(n))?;
    let dims = Buffer::new(16)?;
    buf_a.write(0, &f32_bytes(a))?;
    buf_b.write(0, &f32_bytes(b))?;
    let dims_bytes: Vec<u8> = [m, k, n, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    dims.write(0, &dims_bytes)?;
    dispatch(
        &pipeline,
        &[&buf_a, &buf_b, &buf_c, &dims],
        (n.div_ceil(TILE), m.div_ceil(TILE), 1),
    )?;
    Ok(bytes_f32(&buf_c.read(0, buf_c.size())?))
}
