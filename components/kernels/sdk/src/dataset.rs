//! The dataset a federated-training lease names, read through the host's
//! `greenmesh:kernel/dataset` (the node binds exactly that one dataset to
//! the run). In native builds (tests, benchmarks) there is no host: a test
//! lends rows with [`lend`] for the current thread.

/// A dataset's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub features: u32,
    pub classes: u32,
    pub rows: u64,
}

/// Rows per host call.
const CHUNK: u32 = 256;

/// The bound dataset's shape, if the lease names one.
pub fn describe() -> Option<Shape> {
    imp::describe()
}

/// Every row of the bound dataset: features and labels (empty without one).
pub fn read_all() -> (Vec<Vec<f64>>, Vec<usize>) {
    let Some(shape) = describe() else {
        return (Vec::new(), Vec::new());
    };
    let width = shape.features as usize;
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    let mut start = 0u64;
    while start < shape.rows {
        let (flat, chunk_labels) = imp::rows(start, CHUNK);
        if chunk_labels.is_empty() || width == 0 {
            break;
        }
        features.extend(flat.chunks(width).map(<[f64]>::to_vec));
        labels.extend(chunk_labels.iter().map(|&l| l as usize));
        start += chunk_labels.len() as u64;
    }
    (features, labels)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::greenmesh::kernel::dataset as host;

    pub fn describe() -> Option<super::Shape> {
        host::describe().map(|s| super::Shape {
            features: s.features,
            classes: s.classes,
            rows: s.rows,
        })
    }

    pub fn rows(start: u64, count: u32) -> (Vec<f64>, Vec<u32>) {
        host::rows(start, count)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;

    /// A lent dataset: its shape, features and labels.
    pub type Lent = (super::Shape, Vec<Vec<f64>>, Vec<u32>);

    thread_local! {
        pub static LENT: RefCell<Option<Lent>> = const { RefCell::new(None) };
    }

    pub fn describe() -> Option<super::Shape> {
        LENT.with(|l| l.borrow().as_ref().map(|(s, _, _)| *s))
    }

    pub fn rows(start: u64, count: u32) -> (Vec<f64>, Vec<u32>) {
        LENT.with(|l| {
            let lent = l.borrow();
            let Some((_, features, labels)) = lent.as_ref() else {
                return (Vec::new(), Vec::new());
            };
            let from = (start as usize).min(labels.len());
            let to = (from + count as usize).min(labels.len());
            (
                features[from..to].iter().flatten().copied().collect(),
                labels[from..to].to_vec(),
            )
        })
    }
}

/// Binds `features`/`labels` as this thread's dataset for native tests
/// (what the host does per run); `None` unbinds.
#[cfg(not(target_arch = "wasm32"))]
pub fn lend(rows: Option<(Vec<Vec<f64>>, Vec<u32>)>) {
    imp::LENT.with(|l| {
        *l.borrow_mut() = rows.map(|(features, labels)| {
            let shape = Shape {
                features: features.first().map_or(0, Vec::len) as u32,
                classes: labels.iter().max().map_or(0, |m| m + 1).max(2),
                rows: labels.len() as u64,
            };
            (shape, features, labels)
        });
    });
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_chunks_and_nothing_without_a_dataset() {
        lend(None);
        assert_eq!(describe(), None);
        assert_eq!(read_all(), (Vec::new(), Vec::new()));
        let features: Vec<Vec<f64>> = (0..600).map(|i| vec![i as f64, -(i as f64)]).collect();
        let labels: Vec<u32> = (0..600).map(|i| (i % 3) as u32).collect();
        lend(Some((features.clone(), labels)));
        assert_eq!(
            describe(),
            Some(Shape {
                features: 2,
                classes: 3,
                rows: 600
            })
        );
        let (read, read_labels) = read_all();
        assert_eq!(read, features);
        assert_eq!(read_labels[599], 599 % 3);
        lend(None);
    }
}
