//! Plain f64 matrix products, row-major. Loop orders keep the innermost loop
//! contiguous so the compiler vectorises it; no blocking, on purpose: these are
//! the oracle, and they must stay obviously right.

/// `out = a·b`. a is (M, K), b is (K, N), out is (M, N).
pub fn matmul(out: &mut [f64], a: &[f64], b: &[f64], m: usize, k: usize, n: usize) {
    debug_assert_eq!((a.len(), b.len(), out.len()), (m * k, k * n, m * n));
    out.fill(0.0);
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let aip = a[i * k + p];
            for (o, &bv) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *o += aip * bv;
            }
        }
    }
}

/// `out = aᵀ·b`. a is (K, M), b is (K, N), out is (M, N).
pub fn matmul_tn(out: &mut [f64], a: &[f64], b: &[f64], m: usize, k: usize, n: usize) {
    debug_assert_eq!((a.len(), b.len(), out.len()), (k * m, k * n, m * n));
    out.fill(0.0);
    for p in 0..k {
        let brow = &b[p * n..(p + 1) * n];
        for i in 0..m {
            let api = a[p * m + i];
            for (o, &bv) in out[i * n..(i + 1) * n].iter_mut().zip(brow) {
                *o += api * bv;
            }
        }
    }
}

/// `out = a·bᵀ`. a is (M, K), b is (N, K), out is (M, N).
pub fn matmul_nt(out: &mut [f64], a: &[f64], b: &[f64], m: usize, k: usize, n: usize) {
    debug_assert_eq!((a.len(), b.len(), out.len()), (m * k, n * k, m * n));
    for i in 0..m {
        let arow = &a[i * k..(i + 1) * k];
        for j in 0..n {
            out[i * n + j] = arow
                .iter()
                .zip(&b[j * k..(j + 1) * k])
                .map(|(x, y)| x * y)
                .sum();
        }
    }
}
