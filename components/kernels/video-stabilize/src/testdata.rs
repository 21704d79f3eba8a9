//! Deterministic test inputs: a synthetic textured scene (smooth value noise
//! plus soft-edged discs) filmed by a slowly panning camera shaken by known
//! per-frame offsets, encoded as 4:2:0 Y4M. No randomness crate: a fixed-seed
//! xorshift drives the shake and an integer hash the texture.

use greenmesh_kernel::Payload;

use crate::trajectory::Shift;
use crate::MEDIA_TYPE;
/// The largest shake offset per axis, in luma pixels.
pub const SHAKE_AMPLITUDE: f32 = 4.0;
/// The smooth pan's content velocity, in luma pixels per frame.
pub const PAN_VELOCITY: Shift = Shift::new(-0.8, 0.35);

/// A generated shaken clip and the camera motion that produced it.
pub struct ShakenClip {
    /// The clip: `video/x-yuv4mpegpipe`, C420jpeg, 30000:1001 fps.
    pub payload: Payload,
    /// Each frame's content offset along the smooth pan, in luma pixels.
    pub pan: Vec<Shift>,
    /// Each frame's shake, added to the pan: uniform in ±[`SHAKE_AMPLITUDE`]
    /// per axis, sub-pixel.
    pub shake: Vec<Shift>,
}

/// An integer hash of a lattice point to [0, 1).
fn hash(x: i32, y: i32, salt: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8da6_b343)
        ^ (y as u32).wrapping_mul(0xd816_3841)
        ^ salt.wrapping_mul(0xcb1a_b31f);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297a_2d39);
    h ^= h >> 15;
    (h >> 8) as f32 / (1u32 << 24) as f32
}

/// Value noise in [0, 1) with lattice spacing `cell`, quintic-interpolated.
fn value_noise(x: f32, y: f32, cell: f32, salt: u32) -> f32 {
    let (gx, gy) = (x / cell, y / cell);
    let (fx, fy) = (gx.floor(), gy.floor());
    let (ix, iy) = (fx as i32, fy as i32);
    let ease = |t: f32| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
    let (sx, sy) = (ease(gx - fx), ease(gy - fy));
    let top = hash(ix, iy, salt) + (hash(ix + 1, iy, salt) - hash(ix, iy, salt)) * sx;
    let bottom =
        hash(ix, iy + 1, salt) + (hash(ix + 1, iy + 1, salt) - hash(ix, iy + 1, salt)) * sx;
    top + (bottom - top) * sy
}

/// The scene's brightness at a point: three octaves of noise, plus in most
/// 40 px cells a dark or bright disc with a one-pixel soft edge.
fn scene_brightness(x: f32, y: f32) -> f32 {
    let noise = 0.5 * value_noise(x, y, 20.0, 1)
        + 0.3 * value_noise(x, y, 9.0, 2)
        + 0.2 * value_noise(x, y, 4.0, 3);
    let base = 40.0 + 150.0 * noise;
    const CELL: f32 = 40.0;
    let (cx, cy) = ((x / CELL).floor(), (y / CELL).floor());
    let (ix, iy) = (cx as i32, cy as i32);
    if hash(ix, iy, 4) > 0.7 {
        return base;
    }
    let radius = 5.0 + 10.0 * hash(ix, iy, 5);
    let room = CELL - 2.0 * radius - 2.0;
    let centre_x = cx * CELL + radius + 1.0 + room * hash(ix, iy, 6);
    let centre_y = cy * CELL + radius + 1.0 + room * hash(ix, iy, 7);
    let distance = (x - centre_x).hypot(y - centre_y);
    let coverage = (radius - distance + 0.5).clamp(0.0, 1.0);
    let tone = if hash(ix, iy, 8) > 0.5 { 225.0 } else { 25.0 };
    base + (tone - base) * coverage * 0.85
}

/// The scene's chroma (Cb, Cr) at a point: slow colour washes.
fn scene_chroma(x: f32, y: f32) -> (f32, f32) {
    (
        128.0 + 90.0 * (value_noise(x, y, 30.0, 11) - 0.5),
        128.0 + 90.0 * (value_noise(x, y, 26.0, 12) - 0.5),
    )
}

fn to_byte(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// A `width`×`height` luma plane of the scene with its content moved by
/// `offset`: pixel (x, y) shows scene point (x − offset.x, y − offset.y).
pub fn scene_luma(width: usize, height: usize, offset: Shift) -> Vec<u8> {
    let mut plane = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            plane.push(to_byte(scene_brightness(
                x as f32 - offset.x,
                y as f32 - offset.y,
            )));
        }
    }
    plane
}

/// Appends the two chroma planes of a C420jpeg frame (chroma sited at the
/// centre of each 2×2 luma block) with content moved by `offset`.
fn push_scene_chroma(width: usize, height: usize, offset: Shift, out: &mut Vec<u8>) {
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut cr = Vec::with_capacity(cw * ch);
    for v in 0..ch {
        for u in 0..cw {
            let x = 2.0 * u as f32 + 0.5 - offset.x;
            let y = 2.0 * v as f32 + 0.5 - offset.y;
            let (cb_value, cr_value) = scene_chroma(x, y);
            out.push(to_byte(cb_value));
            cr.push(to_byte(cr_value));
        }
    }
    out.extend_from_slice(&cr);
}

/// A 32-bit xorshift generator with a fixed seed.
struct XorShift(u32);

impl XorShift {
    /// Uniform in [-1, 1).
    fn next_signed(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// A `width`×`height`, `frames`-frame C420jpeg clip of the scene: the
/// content pans by [`PAN_VELOCITY`] per frame, and each frame is shaken by an
/// independent uniform offset in ±[`SHAKE_AMPLITUDE`] px per axis.
pub fn shaken_clip(width: usize, height: usize, frames: usize) -> ShakenClip {
    let mut random = XorShift(0x9e37_79b9);
    let pan: Vec<Shift> = (0..frames).map(|i| PAN_VELOCITY * i as f32).collect();
    let shake: Vec<Shift> = (0..frames)
        .map(|_| {
            let x = random.next_signed() * SHAKE_AMPLITUDE;
            Shift::new(x, random.next_signed() * SHAKE_AMPLITUDE)
        })
        .collect();
    let mut bytes =
        format!("YUV4MPEG2 W{width} H{height} F30000:1001 Ip A1:1 C420jpeg\n").into_bytes();
    for (&p, &s) in pan.iter().zip(&shake) {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend_from_slice(&scene_luma(width, height, p + s));
        push_scene_chroma(width, height, p + s, &mut bytes);
    }
    ShakenClip {
        payload: Payload::new(MEDIA_TYPE, bytes),
        pan,
        shake,
    }
}

/// The benchmark's typical task: a 320×240, 30-frame shaken clip with the
/// default params (`{}`).
pub fn sample_input() -> (Payload, String) {
    (shaken_clip(320, 240, 30).payload, "{}".into())
}
