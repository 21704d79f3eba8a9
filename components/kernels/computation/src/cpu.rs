//! The CPU path: `C = A·B` in i-k-j order (rows of B streamed, C's row kept
//! hot), the layout a compiler vectorises.

/// `a` is m×k, `b` is k×n, both row-major; returns m×n.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for (i, row) in c.chunks_exact_mut(n).enumerate() {
        for (p, &x) in a[i * k..(i + 1) * k].iter().enumerate() {
            let b_row = &b[p * n..(p + 1) * n];
            for (out, &y) in row.iter_mut().zip(b_row) {
                *out += x * y;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_identity_leaves_a_matrix_unchanged() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(super::matmul(&a, &id, 2, 3, 3), a.to_vec());
    }
}
