//! From gray pixels to the classifier's input: an "ink" map (how far each
//! pixel is from the paper, normalised to 0..=255), its summed-area table, and
//! a square window's 8×8 feature vector quantised to 0..=16 like optdigits.

use crate::codec::GrayImage;

/// Side of the feature grid: every window is resampled to `GRID`×`GRID` cells.
pub const GRID: usize = 8;
/// Number of features per window (`GRID * GRID`).
pub const FEATURES: usize = GRID * GRID;
/// Largest feature value: optdigits counts "on" pixels of a 4×4 block, 0..=16.
pub const FEATURE_MAX: u32 = 16;
/// Windows whose features add up to less than this (less ink than one full
/// cell) are blank paper: the scan skips them without running the classifier.
pub const MIN_INK: u32 = 16;
/// Ink contrast below this (of 255) is never stretched to full scale, so
/// that the noise of an empty page is not mistaken for strokes.
const MIN_FULL_SCALE: u32 = 64;
/// The ink level, in thousandths of the pixels, that maps to full ink.
const FULL_SCALE_PER_MILLE: u64 = 995;

/// A window's features: 64 cell values in 0..=16, row by row.
pub type Features = [u8; FEATURES];

/// The summed-area table of an image's ink map.
pub struct InkIntegral {
    width: usize,
    height: usize,
    /// `(width + 1) * (height + 1)` entries; entry `(x, y)` is the ink summed
    /// over `[0, x) × [0, y)`. A 4096×4096 page of full ink sums to
    /// 4,278,190,080, which fits a `u32`.
    table: Vec<u32>,
}

impl InkIntegral {
    /// Builds the ink map of `image` and its summed-area table.
    ///
    /// The paper level is the median gray. If it is light (≥ 128) ink is
    /// darker than the paper, otherwise lighter, so both dark-on-light and
    /// light-on-dark pages work. The raw ink `|gray − paper|` (on the ink side
    /// only) is scaled so that its 99.5th percentile, or 64 if that is lower,
    /// becomes 255.
    pub fn from_gray(image: &GrayImage) -> Self {
        let lut = ink_lookup_table(image);
        let (width, height) = (image.width as usize, image.height as usize);
        let stride = width + 1;
        let mut table = vec![0u32; stride * (height + 1)];
        // Each row's running ink sum first (a serial loop), then the row
        // above added in a second loop that vectorises.
        let mut running_row = vec![0u32; width];
        for (y, row) in image.pixels.chunks_exact(width.max(1)).enumerate() {
            let mut running = 0u32;
            for (sum, &gray) in running_row.iter_mut().zip(row) {
                running = running.wrapping_add(lut[gray as usize] as u32);
                *sum = running;
            }
            let (done, next) = table.split_at_mut((y + 1) * stride);
            let above = &done[y * stride + 1..];
            for ((entry, &above), &sum) in next[1..stride].iter_mut().zip(above).zip(&running_row) {
                *entry = above.wrapping_add(sum);
            }
        }
        Self {
            width,
            height,
            table,
        }
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The table itself, row by row: `(width + 1) * (height + 1)` entries
    /// (what the GPU path uploads).
    pub fn table(&self) -> &[u32] {
        &self.table
    }

    /// Fills `out` with the features of the `size`×`size` window at `(x, y)`:
    /// each of the 8×8 cells gets `round(16 × mean ink / 255)`. Returns the
    /// sum of the features. `size` must be a multiple of 8 and the window
    /// must lie inside the image.
    pub fn window_features(&self, x: usize, y: usize, size: usize, out: &mut Features) -> u32 {
        let cell = size / GRID;
        let area = (cell * cell) as u32;
        let denominator = 2 * 255 * area;
        let stride = self.width + 1;
        let mut total = 0;
        for row in 0..GRID {
            let top = (y + row * cell) * stride;
            let bottom = top + cell * stride;
            for col in 0..GRID {
                let left = x + col * cell;
                let right = left + cell;
                let sum = self.table[bottom + right]
                    .wrapping_sub(self.table[top + right])
                    .wrapping_sub(self.table[bottom + left])
                    .wrapping_add(self.table[top + left]);
                let value = (2 * FEATURE_MAX * sum + 255 * area) / denominator;
                out[row * GRID + col] = value as u8;
                total += value;
            }
        }
        total
    }
}

/// Maps each gray level to its normalised ink level (0..=255).
fn ink_lookup_table(image: &GrayImage) -> [u8; 256] {
    let mut histogram = [0u64; 256];
    for &gray in &image.pixels {
        histogram[gray as usize] += 1;
    }
    let count = image.pixels.len() as u64;
    let paper = percentile_level(&histogram, count.div_ceil(2)) as u32;
    let dark_ink = paper >= 128;
    let raw_ink = |gray: u32| {
        if dark_ink {
            paper.saturating_sub(gray)
        } else {
            gray.saturating_sub(paper)
        }
    };
    let mut ink_histogram = [0u64; 256];
    for (gray, &n) in histogram.iter().enumerate() {
        ink_histogram[raw_ink(gray as u32) as usize] += n;
    }
    let rank = (count * FULL_SCALE_PER_MILLE).div_ceil(1000).max(1);
    let full_scale = (percentile_level(&ink_histogram, rank) as u32).max(MIN_FULL_SCALE);
    let mut lut = [0u8; 256];
    for (gray, ink) in lut.iter_mut().enumerate() {
        *ink = (raw_ink(gray as u32) * 255 / full_scale).min(255) as u8;
    }
    lut
}

/// The smallest level whose cumulative count reaches `rank` (1-based).
fn percentile_level(histogram: &[u64; 256], rank: u64) -> usize {
    let mut seen = 0;
    for (level, &n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return level;
        }
    }
    255
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A light page with one black 16×16 square at (16, 8).
    fn page_with_square(paper: u8, ink: u8) -> GrayImage {
        let mut image = GrayImage::filled(64, 48, paper);
        for y in 8..24 {
            for x in 16..32 {
                image.pixels[y * 64 + x] = ink;
            }
        }
        image
    }

    #[test]
    fn each_table_entry_is_the_ink_above_and_left_of_it() {
        // An uneven page (gray levels from a small LCG), 37×23 so rows are
        // not a multiple of any vector width.
        let mut image = GrayImage::filled(37, 23, 0);
        let mut state = 12345u32;
        for pixel in &mut image.pixels {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *pixel = (state >> 24) as u8;
        }
        let lut = ink_lookup_table(&image);
        let integral = InkIntegral::from_gray(&image);
        let stride = 38;
        for y in 0..=23 {
            for x in 0..=37 {
                let expected: u32 = (0..y)
                    .flat_map(|row| (0..x).map(move |column| (row, column)))
                    .map(|(row, column)| lut[image.pixels[row * 37 + column] as usize] as u32)
                    .sum();
                assert_eq!(
                    integral.table()[y * stride + x],
                    expected,
                    "entry ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn a_full_window_over_ink_is_all_sixteen_and_blank_paper_is_zero() {
        let integral = InkIntegral::from_gray(&page_with_square(220, 20));
        let mut features = [0; FEATURES];
        assert_eq!(integral.window_features(16, 8, 16, &mut features), 16 * 64);
        assert!(features.iter().all(|&f| f == 16));
        assert_eq!(integral.window_features(40, 24, 24, &mut features), 0);
    }

    #[test]
    fn half_covered_cells_are_eight_and_polarity_follows_the_paper() {
        // Light ink on a dark page gives the same features as dark on light.
        for image in [page_with_square(220, 20), page_with_square(30, 230)] {
            let integral = InkIntegral::from_gray(&image);
            let mut features = [0; FEATURES];
            // A 32-px window at (8, 8): cells are 4×4; the square covers
            // columns 2..=5 fully; shifting by 2 px half-covers the edges.
            integral.window_features(10, 8, 32, &mut features);
            assert_eq!(&features[0..8], &[0, 8, 16, 16, 16, 8, 0, 0]);
            assert_eq!(&features[32..40], &[0; 8]);
        }
    }
}
