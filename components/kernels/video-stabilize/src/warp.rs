//! Translating a plane by a sub-pixel shift: bilinear interpolation with
//! edge clamping, in 8-bit fixed point (the shift is quantised to 1/256 px).

use crate::trajectory::Shift;

/// Fractional bits of the interpolation weights.
const FRACTION_BITS: u32 = 8;
const ONE: u32 = 1 << FRACTION_BITS;

/// Splits `-shift` (the source offset of each output pixel) into a whole
/// part and a fraction in 1/256 px.
fn source_offset(shift: f32, limit: usize) -> (isize, u32) {
    let limit = limit as f32;
    let fixed = (-shift.clamp(-limit, limit) * ONE as f32).round() as i64;
    (
        fixed.div_euclid(ONE as i64) as isize,
        fixed.rem_euclid(ONE as i64) as u32,
    )
}

/// Appends the `width`×`height` plane `src` moved by `shift` (content at `p`
/// lands at `p + shift`) to `out`: `out(x, y) = src(x − shift.x, y − shift.y)`
/// sampled bilinearly, with coordinates outside the plane clamped to its edge.
pub fn translate_plane(src: &[u8], width: usize, height: usize, shift: Shift, out: &mut Vec<u8>) {
    let (offset_x, fraction_x) = source_offset(shift.x, width);
    let (offset_y, fraction_y) = source_offset(shift.y, height);
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let (wx1, wy1) = (fraction_x, fraction_y);
    let (wx0, wy0) = (ONE - wx1, ONE - wy1);
    let weights = [wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1];
    let rounding = 1 << (2 * FRACTION_BITS - 1);
    let blend = |top_left: u8, top_right: u8, bottom_left: u8, bottom_right: u8| {
        let sum = weights[0] * top_left as u32
            + weights[1] * top_right as u32
            + weights[2] * bottom_left as u32
            + weights[3] * bottom_right as u32;
        ((sum + rounding) >> (2 * FRACTION_BITS)) as u8
    };
    // Output columns whose two source columns both lie inside the plane
    // read it contiguously; only the columns outside them need clamping.
    let inside_start = (-offset_x).clamp(0, width as isize) as usize;
    let inside_end =
        (width as isize - 1 - offset_x).clamp(inside_start as isize, width as isize) as usize;
    let start = out.len();
    out.resize(start + width * height, 0);
    for (y, row) in out[start..].chunks_exact_mut(width).enumerate() {
        let y = y as isize;
        let top = &src[clamp(y + offset_y, height) * width..][..width];
        let bottom = &src[clamp(y + offset_y + 1, height) * width..][..width];
        let edge = |x: usize| {
            let left = clamp(x as isize + offset_x, width);
            let right = clamp(x as isize + offset_x + 1, width);
            blend(top[left], top[right], bottom[left], bottom[right])
        };
        for (x, o) in row[..inside_start].iter_mut().enumerate() {
            *o = edge(x);
        }
        if inside_end > inside_start {
            let first = (inside_start as isize + offset_x) as usize;
            let count = inside_end - inside_start;
            let (t0, t1) = (
                &top[first..first + count],
                &top[first + 1..first + count + 1],
            );
            let (b0, b1) = (
                &bottom[first..first + count],
                &bottom[first + 1..first + count + 1],
            );
            blend_run(&mut row[inside_start..inside_end], [t0, t1, b0, b1], blend);
        }
        for (x, o) in row.iter_mut().enumerate().skip(inside_end) {
            *o = edge(x);
        }
    }
}

/// The pixels one iteration of the vectorised blend loop makes in wasm
/// (16 lanes, unrolled 4 times); a multiple of natively's.
const BLEND_BLOCK: usize = 64;

/// `out[i] = blend(t0[i], t1[i], b0[i], b1[i])` over the four source rows
/// `[t0, t1, b0, b1]`. The loop is run on a whole number of
/// [`BLEND_BLOCK`]s and then once more on the last block, which overlaps
/// the others (rewriting a few pixels with the same values): a vectorised
/// loop leaves up to 63 pixels a row to its scalar remainder, which took a
/// third of the warp's time in wasm.
fn blend_run(out: &mut [u8], rows: [&[u8]; 4], blend: impl Fn(u8, u8, u8, u8) -> u8 + Copy) {
    let n = out.len();
    let whole = n / BLEND_BLOCK * BLEND_BLOCK;
    blend_rows(&mut out[..whole], rows, blend);
    if whole < n {
        let last = n.saturating_sub(BLEND_BLOCK);
        blend_rows(&mut out[last..], rows.map(|r| &r[last..]), blend);
    }
}

/// [`blend_run`]'s plain loop.
#[inline(always)]
fn blend_rows(out: &mut [u8], [t0, t1, b0, b1]: [&[u8]; 4], blend: impl Fn(u8, u8, u8, u8) -> u8) {
    for ((((o, &tl), &tr), &bl), &br) in out.iter_mut().zip(t0).zip(t1).zip(b0).zip(b1) {
        *o = blend(tl, tr, bl, br);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: usize, height: usize) -> Vec<u8> {
        (0..height)
            .flat_map(|y| (0..width).map(move |x| (10 * x + 3 * y) as u8))
            .collect()
    }

    fn translated(src: &[u8], width: usize, height: usize, shift: Shift) -> Vec<u8> {
        let mut out = Vec::new();
        translate_plane(src, width, height, shift, &mut out);
        out
    }

    #[test]
    fn a_zero_shift_is_the_identity() {
        let src = ramp(7, 5);
        assert_eq!(translated(&src, 7, 5, Shift::default()), src);
    }

    #[test]
    fn whole_pixel_shifts_move_content_and_clamp_the_edges() {
        let src = ramp(7, 5);
        let out = translated(&src, 7, 5, Shift::new(2.0, -1.0));
        // out(x, y) = src(x - 2, y + 1), clamped.
        assert_eq!(out[7 + 3], src[2 * 7 + 1]);
        assert_eq!(out[7], src[2 * 7]);
        assert_eq!(out[4 * 7 + 6], src[4 * 7 + 4]);
    }

    #[test]
    fn half_pixel_shifts_average_neighbours() {
        let src = ramp(7, 5);
        let out = translated(&src, 7, 5, Shift::new(-0.5, 0.0));
        // out(x) = src(x + 0.5): the mean of columns x and x + 1 (a linear ramp).
        assert_eq!(out[2 * 7 + 3], (src[2 * 7 + 3] + 5));
        let vertical = translated(&src, 7, 5, Shift::new(0.0, 0.25));
        // out(y) = src(y - 0.25): 3/4 of row y and 1/4 of row y - 1 (3 per row).
        assert_eq!(vertical[3 * 7 + 1], src[3 * 7 + 1] - 1);
    }

    /// The plain per-pixel definition, clamping every coordinate.
    fn reference(src: &[u8], width: usize, height: usize, shift: Shift) -> Vec<u8> {
        let (ox, fx) = source_offset(shift.x, width);
        let (oy, fy) = source_offset(shift.y, height);
        let at = |x: isize, y: isize| {
            let x = x.clamp(0, width as isize - 1) as usize;
            let y = y.clamp(0, height as isize - 1) as usize;
            src[y * width + x] as u32
        };
        let mut out = Vec::new();
        for y in 0..height as isize {
            for x in 0..width as isize {
                let (sx, sy) = (x + ox, y + oy);
                let sum = (ONE - fy) * (ONE - fx) * at(sx, sy)
                    + (ONE - fy) * fx * at(sx + 1, sy)
                    + fy * (ONE - fx) * at(sx, sy + 1)
                    + fy * fx * at(sx + 1, sy + 1);
                out.push(((sum + (1 << 15)) >> 16) as u8);
            }
        }
        out
    }

    #[test]
    fn every_shift_matches_the_per_pixel_definition() {
        let (w, h) = (13, 6);
        let src: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8).collect();
        for sx in [
            -20.0, -13.0, -12.5, -3.25, -1.0, -0.75, 0.0, 0.4, 1.0, 2.6, 12.0, 12.9, 13.0, 40.0,
        ] {
            for sy in [-7.0, -0.5, 0.0, 1.25, 5.9] {
                let shift = Shift::new(sx, sy);
                assert_eq!(
                    translated(&src, w, h, shift),
                    reference(&src, w, h, shift),
                    "{shift:?}"
                );
            }
        }
    }

    #[test]
    fn rows_longer_than_a_block_match_the_per_pixel_definition() {
        // Inside runs shorter than a block, of one block, and of whole
        // blocks plus an overlapping last one.
        for w in [40, 65, 66, 130, 200] {
            let h = 4;
            let src: Vec<u8> = (0..w * h).map(|i| (i * 53 % 241) as u8).collect();
            for sx in [-1.5, -0.25, 0.0, 0.7, 1.0, 23.3] {
                let shift = Shift::new(sx, 0.6);
                assert_eq!(
                    translated(&src, w, h, shift),
                    reference(&src, w, h, shift),
                    "width {w}, {shift:?}"
                );
            }
        }
    }

    #[test]
    fn huge_shifts_clamp_to_an_edge_colour() {
        let src = ramp(7, 5);
        let out = translated(&src, 7, 5, Shift::new(1e9, -1e9));
        assert!(out.iter().all(|&v| v == src[4 * 7]));
    }
}
