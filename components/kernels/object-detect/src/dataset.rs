//! The UCI optdigits digits (`data/digits.csv.gz`, see `data/SOURCE.md`),
//! embedded, and the fixed split: every fifth row (index % 5 == 4) is held
//! out from training.

use flate2::read::GzDecoder;
use std::io::Read;

static DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// Number of rows in the dataset.
pub const ROWS: usize = 1797;

/// One 8×8 digit: 64 values 0..=16, row by row, and its label 0..=9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    pub pixels: [u8; 64],
    pub label: u8,
}

/// Whether row `index` belongs to the held-out set (never trained on).
pub fn is_held_out(index: usize) -> bool {
    index % 5 == 4
}

/// All rows, in file order.
pub fn all_digits() -> Vec<Digit> {
    let mut text = String::new();
    GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .expect("the embedded dataset is valid gzip text");
    text.lines().map(parse_row).collect()
}

/// The rows used for training (4 of every 5, 1,438 digits).
pub fn training_digits() -> Vec<Digit> {
    split(false)
}

/// The held-out rows (every fifth, 359 digits).
pub fn held_out_digits() -> Vec<Digit> {
    split(true)
}

fn split(held_out: bool) -> Vec<Digit> {
    all_digits()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| is_held_out(*i) == held_out)
        .map(|(_, d)| d)
        .collect()
}

fn parse_row(line: &str) -> Digit {
    let values: Vec<u8> = line
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .expect("the embedded dataset holds integers")
        })
        .collect();
    assert_eq!(values.len(), 65, "a row is 64 pixels and a label");
    Digit {
        pixels: values[..64].try_into().unwrap(),
        label: values[64],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dataset_has_the_documented_shape_and_split() {
        let all = all_digits();
        assert_eq!(all.len(), ROWS);
        assert!(all
            .iter()
            .all(|d| d.label <= 9 && d.pixels.iter().all(|&p| p <= 16)));
        assert_eq!(all[0].label, 0);
        assert_eq!(&all[0].pixels[..8], &[0, 0, 5, 13, 9, 1, 0, 0]);
        assert_eq!(held_out_digits().len(), 359);
        assert_eq!(training_digits().len(), 1438);
        assert_eq!(held_out_digits()[0], all[4]);
    }
}
