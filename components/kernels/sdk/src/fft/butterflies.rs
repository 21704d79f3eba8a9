//! The butterflies of [`super::BatchFft`]: a radix-`r` stage splits each
//! group of rows into `r` legs of `m` rows and, for each `p` in `0..m`,
//! combines row `p` of every leg in place. Decimation in frequency (forward)
//! butterflies then multiplies leg `q` by the twiddle `w^{q·p}`; decimation
//! in time (inverse) multiplies first. The twiddle is shared by the whole
//! row, so each row is plain vertical arithmetic, a quad (four lanes) at a
//! time.

use std::ops::{Add, Mul, Neg, Sub};

use wide::f32x4;

use super::{join, split};

/// One row of a leg: its quads.
type Row<'a> = &'a mut [[f32; 8]];

/// One group of rows of a stage, seen as its legs.
pub struct Legs<'a> {
    quads: &'a mut [[f32; 8]],
    /// Quads per leg: `m` rows.
    leg: usize,
    /// Quads per row.
    row: usize,
}

impl<'a> Legs<'a> {
    /// The group held in `quads`, cut into legs of `leg` quads made of rows
    /// of `row` quads.
    pub fn new(quads: &'a mut [[f32; 8]], leg: usize, row: usize) -> Self {
        Self { quads, leg, row }
    }

    /// Rows per leg (`m`).
    #[inline]
    fn m(&self) -> usize {
        self.leg / self.row
    }

    /// Row `p` of each of the `R` legs.
    #[inline(always)]
    fn rows<const R: usize>(&mut self, p: usize) -> [Row<'_>; R] {
        let row = self.row;
        let mut legs = self.quads.chunks_exact_mut(self.leg);
        std::array::from_fn(|_| match legs.next() {
            Some(leg) => &mut leg[p * row..][..row],
            None => unreachable!("a group holds R legs"),
        })
    }
}

/// A complex value, or four of them, as `(re, im)`.
type Complex<L> = (L, L);

/// What a butterfly computes with: four `f32` lanes in a 128-bit vector
/// (`wide` picks SSE natively and wasm SIMD in a component, so both sides of
/// the sandbox benchmark run the same four-lane code). A trait so the
/// butterflies read as plain arithmetic.
trait Lane:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Neg<Output = Self>
{
    fn splat(x: f32) -> Self;
}

impl Lane for f32x4 {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        f32x4::splat(x)
    }
}

/// Twiddle `w^{q·p}` for `q` in `1..radix` from the `q`-major tables.
fn twiddles<const N: usize>(table: (&[f32], &[f32]), m: usize, p: usize) -> [Complex<f32>; N] {
    std::array::from_fn(|q| (table.0[q * m + p], table.1[q * m + p]))
}

/// `x · w`, or `x` itself when not `TWIDDLED` (`p = 0`, where every
/// twiddle is 1).
#[inline(always)]
fn rotate<L: Lane, const TWIDDLED: bool>(x: Complex<L>, w: Complex<L>) -> Complex<L> {
    if TWIDDLED {
        (x.0 * w.0 - x.1 * w.1, x.0 * w.1 + x.1 * w.0)
    } else {
        x
    }
}

/// Runs `butterfly` in place over every quad of `R` rows (all of one
/// length).
#[inline(always)]
fn for_each_quad<const R: usize>(
    rows: [Row<'_>; R],
    butterfly: impl Fn([Complex<f32x4>; R]) -> [Complex<f32x4>; R],
) {
    let quads = rows[0].len();
    let rows = rows.map(|row| &mut row[..quads]);
    for j in 0..quads {
        // SAFETY: every row was cut to exactly `quads` above (the cut panics
        // otherwise), and `j < quads`. LLVM does not see this through the
        // array of rows, and the bounds checks it left in cost a quarter of
        // a stage's time in a component (each also splits the loop's fuel
        // accounting).
        let out = butterfly(std::array::from_fn(|r| {
            split(unsafe { rows[r].get_unchecked(j) })
        }));
        for (r, (re, im)) in out.into_iter().enumerate() {
            // SAFETY: as above.
            join(unsafe { rows[r].get_unchecked_mut(j) }, re, im);
        }
    }
}

/// Runs a stage's butterflies over one group: `point` gets the row's
/// twiddles, and whether they are all 1 (`p = 0`) as its `TWIDDLED`.
macro_rules! stage {
    ($legs:ident, $table:ident, $radix:literal, $point:ident) => {{
        let m = $legs.m();
        for p in 0..m {
            let rows = $legs.rows::<$radix>(p);
            if p == 0 {
                let one = (f32x4::splat(1.0), f32x4::splat(0.0));
                for_each_quad(rows, |v| $point::<_, false>(v, [one; $radix - 1]));
            } else {
                let w = twiddles::<{ $radix - 1 }>($table, m, p)
                    .map(|(re, im)| (f32x4::splat(re), f32x4::splat(im)));
                for_each_quad(rows, |v| $point::<_, true>(v, w));
            }
        }
    }};
}

/// A forward radix-4 stage (decimation in frequency).
pub fn radix4_dif(mut legs: Legs<'_>, table: (&[f32], &[f32])) {
    stage!(legs, table, 4, radix4_dif_point);
}

/// An inverse radix-4 stage (decimation in time).
pub fn radix4_dit(mut legs: Legs<'_>, table: (&[f32], &[f32])) {
    stage!(legs, table, 4, radix4_dit_point);
}

/// A forward radix-2 stage.
pub fn radix2_dif(mut legs: Legs<'_>, table: (&[f32], &[f32])) {
    stage!(legs, table, 2, radix2_dif_point);
}

/// An inverse radix-2 stage.
pub fn radix2_dit(mut legs: Legs<'_>, table: (&[f32], &[f32])) {
    stage!(legs, table, 2, radix2_dit_point);
}

/// A forward radix-3 stage.
pub fn radix3_dif(mut legs: Legs<'_>, table: (&[f32], &[f32])) {
    stage!(legs, table, 3, radix3_dif_point);
}

/// An inverse radix-3 stage.
pub fn radix3_dit(mut legs: Legs<'_>, table: (&[f32], &[f32])) {
    stage!(legs, table, 3, radix3_dit_point);
}

/// The 4-point DFT; `INVERSE` picks the sign of the `±i` rotations.
#[inline(always)]
fn radix4_core<L: Lane, const INVERSE: bool>([a, b, c, d]: [Complex<L>; 4]) -> [Complex<L>; 4] {
    let apc = (a.0 + c.0, a.1 + c.1);
    let amc = (a.0 - c.0, a.1 - c.1);
    let bpd = (b.0 + d.0, b.1 + d.1);
    let bmd = (b.0 - d.0, b.1 - d.1);
    // ∓i·(b − d): −i forward, +i inverse.
    let j = if INVERSE {
        (-bmd.1, bmd.0)
    } else {
        (bmd.1, -bmd.0)
    };
    [
        (apc.0 + bpd.0, apc.1 + bpd.1),
        (amc.0 + j.0, amc.1 + j.1),
        (apc.0 - bpd.0, apc.1 - bpd.1),
        (amc.0 - j.0, amc.1 - j.1),
    ]
}

#[inline(always)]
fn radix4_dif_point<L: Lane, const TWIDDLED: bool>(
    x: [Complex<L>; 4],
    w: [Complex<L>; 3],
) -> [Complex<L>; 4] {
    let [y0, y1, y2, y3] = radix4_core::<L, false>(x);
    [
        y0,
        rotate::<L, TWIDDLED>(y1, w[0]),
        rotate::<L, TWIDDLED>(y2, w[1]),
        rotate::<L, TWIDDLED>(y3, w[2]),
    ]
}

#[inline(always)]
fn radix4_dit_point<L: Lane, const TWIDDLED: bool>(
    [a, b, c, d]: [Complex<L>; 4],
    w: [Complex<L>; 3],
) -> [Complex<L>; 4] {
    radix4_core::<L, true>([
        a,
        rotate::<L, TWIDDLED>(b, w[0]),
        rotate::<L, TWIDDLED>(c, w[1]),
        rotate::<L, TWIDDLED>(d, w[2]),
    ])
}

#[inline(always)]
fn radix2_dif_point<L: Lane, const TWIDDLED: bool>(
    [a, b]: [Complex<L>; 2],
    w: [Complex<L>; 1],
) -> [Complex<L>; 2] {
    [
        (a.0 + b.0, a.1 + b.1),
        rotate::<L, TWIDDLED>((a.0 - b.0, a.1 - b.1), w[0]),
    ]
}

#[inline(always)]
fn radix2_dit_point<L: Lane, const TWIDDLED: bool>(
    [a, b]: [Complex<L>; 2],
    w: [Complex<L>; 1],
) -> [Complex<L>; 2] {
    let b = rotate::<L, TWIDDLED>(b, w[0]);
    [(a.0 + b.0, a.1 + b.1), (a.0 - b.0, a.1 - b.1)]
}

/// The 3-point DFT; `INVERSE` picks the sign of the `±i·√3/2` rotations.
#[inline(always)]
fn radix3_core<L: Lane, const INVERSE: bool>([a, b, c]: [Complex<L>; 3]) -> [Complex<L>; 3] {
    // Forward: the cube root of unity e^{−2πi/3} = −1/2 − i·√3/2.
    let half_sqrt3 = L::splat(if INVERSE { -0.866_025_4 } else { 0.866_025_4 });
    let half = L::splat(0.5);
    let s = (b.0 + c.0, b.1 + c.1);
    let d = (b.0 - c.0, b.1 - c.1);
    let mid = (a.0 - half * s.0, a.1 - half * s.1);
    // a + ω·b + ω²·c = mid ∓ i·(√3/2)·(b − c).
    let r = (half_sqrt3 * d.1, -(half_sqrt3 * d.0));
    [
        (a.0 + s.0, a.1 + s.1),
        (mid.0 + r.0, mid.1 + r.1),
        (mid.0 - r.0, mid.1 - r.1),
    ]
}

#[inline(always)]
fn radix3_dif_point<L: Lane, const TWIDDLED: bool>(
    x: [Complex<L>; 3],
    w: [Complex<L>; 2],
) -> [Complex<L>; 3] {
    let [y0, y1, y2] = radix3_core::<L, false>(x);
    [
        y0,
        rotate::<L, TWIDDLED>(y1, w[0]),
        rotate::<L, TWIDDLED>(y2, w[1]),
    ]
}

#[inline(always)]
fn radix3_dit_point<L: Lane, const TWIDDLED: bool>(
    [a, b, c]: [Complex<L>; 3],
    w: [Complex<L>; 2],
) -> [Complex<L>; 3] {
    radix3_core::<L, true>([
        a,
        rotate::<L, TWIDDLED>(b, w[0]),
        rotate::<L, TWIDDLED>(c, w[1]),
    ])
}
