//! Batched FFTs: `width` same-length complex transforms at once, element `k`
//! of transform `c` in row `k`, column `c` of [`Quads`] (real and imaginary
//! parts of four columns side by side).
//!
//! The layout is chosen for the sandbox (ADR 0014): every butterfly runs over
//! whole rows of `width` lanes with the twiddle factor shared by the row, so
//! it is plain vertical arithmetic on four-lane vectors, no shuffles; and a
//! quad's real and imaginary parts share one address, so a radix-4 stage
//! keeps four pointers live, not eight (Cranelift spilled the eight). The
//! stages are in-place Cooley–Tukey, radix 4 with one radix-2 or radix-3
//! stage, so lengths are 2ᵏ or 3·2ᵏ: forward transforms decimate in
//! frequency and leave bin `k` in row [`BatchFft::row_of`]`(k)` (a digit
//! reversal); inverse ones decimate in time and take their bins in that same
//! order, giving samples in natural order. Nothing is reordered in between:
//! code that works bin by bin does not care, and code that needs bin `k`
//! looks its row up. Forward transforms use `e^{−2πi·jk/n}`; inverse ones
//! `e^{+2πi·jk/n}`, unnormalised (forward then inverse multiplies by `n`).
//!
//! Many short transforms (the columns of an image, the frames of an STFT)
//! are what kernels need; `width` is a multiple of 4 (pad with zero columns).

mod butterflies;
pub mod real;
mod transpose;

pub use transpose::transpose;

use std::f64::consts::TAU;

use wide::f32x4;

/// Complex values in rows of `width` columns (a multiple of 4), each row
/// `width / 4` quads: the real parts of four columns, then their imaginary
/// parts. Column `c` of row `k` is in quad `k · width/4 + c/4`, lane `c % 4`
/// (its imaginary part in lane `4 + c % 4`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quads {
    pub data: Vec<[f32; 8]>,
}

impl Quads {
    /// `rows` rows of `width` zeros.
    pub fn zeroed(rows: usize, width: usize) -> Self {
        assert_eq!(width % 4, 0, "a quad row's width is a multiple of 4");
        Self {
            data: vec![[0.0; 8]; rows * width / 4],
        }
    }

    /// Row `k` of rows of `width`.
    pub fn row(&self, k: usize, width: usize) -> &[[f32; 8]] {
        &self.data[k * width / 4..][..width / 4]
    }

    /// Row `k` of rows of `width`, to write.
    pub fn row_mut(&mut self, k: usize, width: usize) -> &mut [[f32; 8]] {
        &mut self.data[k * width / 4..][..width / 4]
    }

    /// The value in row `k`, column `c` (rows of `width`), as `(re, im)`.
    pub fn get(&self, k: usize, c: usize, width: usize) -> (f32, f32) {
        let quad = &self.data[(k * width + c) / 4];
        (quad[c % 4], quad[4 + c % 4])
    }

    /// Sets the value in row `k`, column `c` (rows of `width`).
    pub fn set(&mut self, k: usize, c: usize, width: usize, (re, im): (f32, f32)) {
        let quad = &mut self.data[(k * width + c) / 4];
        quad[c % 4] = re;
        quad[4 + c % 4] = im;
    }
}

/// A quad's real and imaginary lanes as two vectors.
#[inline(always)]
pub fn split(quad: &[f32; 8]) -> (f32x4, f32x4) {
    (
        f32x4::new([quad[0], quad[1], quad[2], quad[3]]),
        f32x4::new([quad[4], quad[5], quad[6], quad[7]]),
    )
}

/// Writes a quad's real and imaginary lanes (two whole-vector stores: an
/// eight-element array literal became eight lane extractions in wasm).
#[inline(always)]
pub fn join(quad: &mut [f32; 8], re: f32x4, im: f32x4) {
    quad[..4].copy_from_slice(&re.to_array());
    quad[4..].copy_from_slice(&im.to_array());
}

/// Which way a transform goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `X[k] = Σ x[j] e^{−2πi·jk/n}`.
    Forward,
    /// `x[j] = Σ X[k] e^{+2πi·jk/n}` (no `1/n`).
    Inverse,
}

/// One stage: `radix`-point butterflies within each group of `radix · m`
/// rows, with twiddles `w^{q·p}` (`q` in `1..radix`, `p` in `0..m`, `w` the
/// group length's root of unity) stored `q`-major.
#[derive(Debug, Clone)]
struct Stage {
    radix: usize,
    m: usize,
    twiddle_re: Vec<f32>,
    twiddle_im: Vec<f32>,
}

/// A planned batched FFT of one length and direction.
#[derive(Debug, Clone)]
pub struct BatchFft {
    len: usize,
    direction: Direction,
    /// In the order they run.
    stages: Vec<Stage>,
    /// `rows[k]`: the row bin `k` occupies.
    rows: Vec<usize>,
}

/// Why a length cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedLength(pub usize);

impl std::fmt::Display for UnsupportedLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FFT length {} is not 2ᵏ or 3·2ᵏ", self.0)
    }
}

impl std::error::Error for UnsupportedLength {}

/// The radices that make up `len`: fours, then a two if `len` has an odd
/// power of two, then a three if it has one.
fn radices(len: usize) -> Result<Vec<usize>, UnsupportedLength> {
    if len == 0 {
        return Err(UnsupportedLength(len));
    }
    let odd = len >> len.trailing_zeros();
    if odd != 1 && odd != 3 {
        return Err(UnsupportedLength(len));
    }
    let twos = len.trailing_zeros();
    let mut radices = vec![4; (twos / 2) as usize];
    if twos % 2 == 1 {
        radices.push(2);
    }
    if odd == 3 {
        radices.push(3);
    }
    Ok(radices)
}

impl BatchFft {
    /// Plans transforms of `len` points (2ᵏ or 3·2ᵏ, including 1).
    pub fn new(len: usize, direction: Direction) -> Result<Self, UnsupportedLength> {
        let sign = match direction {
            Direction::Forward => -1.0,
            Direction::Inverse => 1.0,
        };
        let radices = radices(len)?;
        let mut n = len;
        let mut stages: Vec<Stage> = radices
            .iter()
            .map(|&radix| {
                let m = n / radix;
                let mut twiddle_re = Vec::with_capacity((radix - 1) * m);
                let mut twiddle_im = Vec::with_capacity((radix - 1) * m);
                for q in 1..radix {
                    for p in 0..m {
                        let angle = sign * TAU * (q * p) as f64 / n as f64;
                        twiddle_re.push(angle.cos() as f32);
                        twiddle_im.push(angle.sin() as f32);
                    }
                }
                n = m;
                Stage {
                    radix,
                    m,
                    twiddle_re,
                    twiddle_im,
                }
            })
            .collect();
        // Decimation in time runs the same stages from the smallest groups up.
        if direction == Direction::Inverse {
            stages.reverse();
        }
        Ok(Self {
            len,
            direction,
            stages,
            rows: (0..len).map(|k| digit_reversed(k, len, &radices)).collect(),
        })
    }

    /// The transform length.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The row holding bin `k`: where a forward transform leaves it and
    /// where an inverse one wants it.
    pub fn row_of(&self, k: usize) -> usize {
        self.rows[k]
    }

    /// Transforms the `width` transforms held in the first `len` rows of
    /// `data` (rows of `width`, a multiple of 4) in place.
    pub fn process(&self, data: &mut Quads, width: usize) {
        assert_eq!(width % 4, 0, "batch widths are multiples of 4");
        let quads = self.len * width / 4;
        assert!(
            data.data.len() >= quads,
            "FFT data holds {} quads, {} rows of {width} need {quads}",
            data.data.len(),
            self.len
        );
        if quads == 0 {
            return;
        }
        let data = &mut data.data[..quads];
        for stage in &self.stages {
            let twiddles = (&stage.twiddle_re[..], &stage.twiddle_im[..]);
            let row = width / 4;
            for group in data.chunks_exact_mut(stage.radix * stage.m * row) {
                let legs = butterflies::Legs::new(group, stage.m * row, row);
                match (stage.radix, self.direction) {
                    (4, Direction::Forward) => butterflies::radix4_dif(legs, twiddles),
                    (4, Direction::Inverse) => butterflies::radix4_dit(legs, twiddles),
                    (2, Direction::Forward) => butterflies::radix2_dif(legs, twiddles),
                    (2, Direction::Inverse) => butterflies::radix2_dit(legs, twiddles),
                    (3, Direction::Forward) => butterflies::radix3_dif(legs, twiddles),
                    (3, Direction::Inverse) => butterflies::radix3_dit(legs, twiddles),
                    (radix, _) => unreachable!("no radix-{radix} stage is planned"),
                }
            }
        }
    }
}

/// Where decimation in frequency by `radices` (first to last) leaves bin `k`
/// of `len`: bin `k = r·k' + t` of a group goes to sub-group `t`, at the
/// place bin `k'` takes in that sub-group.
fn digit_reversed(k: usize, len: usize, radices: &[usize]) -> usize {
    let (mut k, mut n, mut row) = (k, len, 0);
    for &radix in radices {
        n /= radix;
        row += (k % radix) * n;
        k /= radix;
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DFT by its definition, in f64.
    fn naive(re: &[f32], im: &[f32], direction: Direction) -> (Vec<f64>, Vec<f64>) {
        let n = re.len();
        let sign = if direction == Direction::Forward {
            -1.0
        } else {
            1.0
        };
        (0..n)
            .map(|k| {
                (0..n).fold((0.0, 0.0), |(sr, si), j| {
                    let angle = sign * TAU * ((j * k) % n) as f64 / n as f64;
                    let (c, s) = (angle.cos(), angle.sin());
                    let (xr, xi) = (f64::from(re[j]), f64::from(im[j]));
                    (sr + xr * c - xi * s, si + xr * s + xi * c)
                })
            })
            .unzip()
    }

    fn signal(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0)
            .collect()
    }

    #[test]
    fn every_supported_length_matches_the_definition_for_each_transform_of_a_batch() {
        for len in [
            1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512,
        ] {
            for direction in [Direction::Forward, Direction::Inverse] {
                let width = 8;
                let columns: Vec<(Vec<f32>, Vec<f32>)> = (0..width)
                    .map(|c| (signal(len, 2 * c), signal(len, 2 * c + 1)))
                    .collect();
                let fft = BatchFft::new(len, direction).unwrap();
                // Inverse transforms take their input in the forward order.
                let input_row = |j: usize| match direction {
                    Direction::Forward => j,
                    Direction::Inverse => fft.row_of(j),
                };
                let output_row = |k: usize| match direction {
                    Direction::Forward => fft.row_of(k),
                    Direction::Inverse => k,
                };
                let mut data = Quads::zeroed(len, width);
                for (c, (re, im)) in columns.iter().enumerate() {
                    for j in 0..len {
                        data.set(input_row(j), c, width, (re[j], im[j]));
                    }
                }
                fft.process(&mut data, width);
                for (c, (re, im)) in columns.iter().enumerate() {
                    let (want_re, want_im) = naive(re, im, direction);
                    let tolerance = 2e-6 * len as f64 * (len as f64).log2().max(1.0);
                    for k in 0..len {
                        let row = output_row(k);
                        let (got_re, got_im) = data.get(row, c, width);
                        assert!(
                            (f64::from(got_re) - want_re[k]).abs() < tolerance
                                && (f64::from(got_im) - want_im[k]).abs() < tolerance,
                            "len {len} {direction:?}, transform {c}, bin {k}: \
                             got {got_re}+{got_im}i, want {}+{}i",
                            want_re[k],
                            want_im[k]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn forward_then_inverse_scales_by_the_length() {
        let (len, width) = (192, 4);
        let mut original = Quads::zeroed(len, width);
        for (i, quad) in original.data.iter_mut().enumerate() {
            quad.copy_from_slice(&signal(8, i));
        }
        // The inverse takes the forward transform's row order as it is.
        let mut data = original.clone();
        BatchFft::new(len, Direction::Forward)
            .unwrap()
            .process(&mut data, width);
        BatchFft::new(len, Direction::Inverse)
            .unwrap()
            .process(&mut data, width);
        for (got, want) in data
            .data
            .iter()
            .flatten()
            .zip(original.data.iter().flatten())
        {
            assert!(
                (got / len as f32 - want).abs() < 1e-5,
                "{got} / {len} ≠ {want}"
            );
        }
    }

    #[test]
    fn rows_past_the_batch_are_left_alone() {
        let mut data = Quads::zeroed(5, 4);
        for quad in &mut data.data {
            *quad = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        }
        BatchFft::new(4, Direction::Forward)
            .unwrap()
            .process(&mut data, 4);
        assert_eq!(data.data[4], [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        // Four constant transforms: all energy in bin 0, which stays in row 0.
        assert_eq!(data.data[0], [4.0, 4.0, 4.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(data.data[1..4].iter().flatten().all(|&v| v == 0.0));
    }

    #[test]
    fn bins_rows_are_a_digit_reversal() {
        for len in [1, 2, 8, 32, 96, 192, 512] {
            let fft = BatchFft::new(len, Direction::Forward).unwrap();
            let mut rows: Vec<usize> = (0..len).map(|k| fft.row_of(k)).collect();
            rows.sort_unstable();
            assert_eq!(rows, (0..len).collect::<Vec<_>>(), "len {len}");
        }
        // 8 = 4 · 2: bin k = 4·k' + t lands in row 2·t + k'.
        let fft = BatchFft::new(8, Direction::Inverse).unwrap();
        let rows: Vec<usize> = (0..8).map(|k| fft.row_of(k)).collect();
        assert_eq!(rows, [0, 2, 4, 6, 1, 3, 5, 7]);
    }

    #[test]
    fn other_lengths_are_refused() {
        for len in [0, 5, 9, 10, 40, 100] {
            assert_eq!(
                BatchFft::new(len, Direction::Forward).unwrap_err(),
                UnsupportedLength(len)
            );
        }
    }
}
