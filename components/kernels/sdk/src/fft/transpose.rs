//! Transposing [`Quads`], four by four in vector registers: how the second
//! axis of a 2-D transform becomes the row axis that [`super::BatchFft`]
//! transforms along.

use wide::f32x4;

use super::{join, split, Quads};

/// Writes the transpose of `src` (`rows` rows of `width`, both multiples
/// of 4) into `dst` (`width` rows of `rows`): the value in row `r`, column
/// `c` moves to row `c`, column `r`.
pub fn transpose(src: &Quads, rows: usize, width: usize, dst: &mut Quads) {
    assert!(
        rows.is_multiple_of(4) && width.is_multiple_of(4),
        "quad rows and widths are multiples of 4"
    );
    let (src_row, dst_row) = (width / 4, rows / 4);
    let (src, dst) = (
        &src.data[..rows * src_row],
        &mut dst.data[..width * dst_row],
    );
    for r in (0..rows).step_by(4) {
        for q in 0..src_row {
            let block: [&[f32; 8]; 4] = std::array::from_fn(|i| &src[(r + i) * src_row + q]);
            let halves = block.map(split);
            let re = f32x4::transpose(halves.map(|(re, _)| re));
            let im = f32x4::transpose(halves.map(|(_, im)| im));
            for (j, (re, im)) in re.into_iter().zip(im).enumerate() {
                join(&mut dst[(4 * q + j) * dst_row + r / 4], re, im);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_at_its_mirrored_place() {
        for (rows, width) in [(4, 4), (8, 12), (20, 4), (100, 256)] {
            let mut src = Quads::zeroed(rows, width);
            for r in 0..rows {
                for c in 0..width {
                    src.set(
                        r,
                        c,
                        width,
                        ((r * 1000 + c) as f32, -((c * 1000 + r) as f32)),
                    );
                }
            }
            let mut dst = Quads::zeroed(width, rows);
            transpose(&src, rows, width, &mut dst);
            for r in 0..rows {
                for c in 0..width {
                    assert_eq!(
                        dst.get(c, r, rows),
                        src.get(r, c, width),
                        "{rows}×{width} at ({r}, {c})"
                    );
                }
            }
        }
    }
}
