//! Chapter 7's layers in f64, as the book writes them (`common/util.py`'s
//! `im2col` and `col2im`, `common/layers.py`'s `Convolution` and
//! `Pooling`): the reference the GPU's kernels are tested against.
//!
//! Images are NCHW, row-major. `im2col`'s matrix has one row per window
//! position (n, oy, ox) and one column per value the window reads (c, ky,
//! kx), as the book's `transpose(0, 4, 5, 1, 2, 3).reshape(N·OH·OW, -1)`.
//!
//! Imports `crate::core::conv` and `super::matmul`.

use super::matmul::{matmul, matmul_nt, matmul_tn};
use crate::core::conv::Slide;

/// Calls `f(entry, value)` for every entry of `im2col`'s matrix that reads
/// an image value (not the padding), in the matrix's row-major order, with
/// the index of that value in the NCHW images.
fn each_read(s: &Slide, mut f: impl FnMut(usize, usize)) {
    let (i, k) = (s.input, s.window);
    let mut at = 0;
    for n in 0..i.n {
        for oy in 0..s.out_h {
            for ox in 0..s.out_w {
                for c in 0..i.c {
                    for ky in 0..k.h {
                        for kx in 0..k.w {
                            if let Some((y, x)) = s.source(oy, ox, ky, kx) {
                                f(at, ((n * i.c + c) * i.h + y) * i.w + x);
                            }
                            at += 1;
                        }
                    }
                }
            }
        }
    }
}

/// The book's `im2col`: (N·OH·OW, C·FH·FW), zeros where a window reads padding.
pub fn im2col(x: &[f64], s: &Slide) -> Vec<f64> {
    let mut col = vec![0.0; s.col_rows() * s.col_cols()];
    each_read(s, |entry, value| col[entry] = x[value]);
    col
}

/// The book's `col2im`: each image value is the sum of the matrix entries
/// that read it (in the order of the matrix's rows, then columns).
pub fn col2im(col: &[f64], s: &Slide) -> Vec<f64> {
    let mut x = vec![0.0; s.input.len()];
    each_read(s, |entry, value| x[value] += col[entry]);
    x
}

/// (N, C, H, W) from rows (n, h, w) of C channels (the layout a product
/// over `im2col` gives), as the book's `transpose(0, 3, 1, 2)`.
pub fn nhwc_to_nchw(v: &[f64], n: usize, c: usize, area: usize) -> Vec<f64> {
    permute(v, n, c, area, true)
}

/// Rows (n, h, w) of C channels from (N, C, H, W): `transpose(0, 2, 3, 1)`.
pub fn nchw_to_nhwc(v: &[f64], n: usize, c: usize, area: usize) -> Vec<f64> {
    permute(v, n, c, area, false)
}

fn permute(v: &[f64], n: usize, c: usize, area: usize, to_nchw: bool) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for i in 0..n {
        for p in 0..area {
            for ch in 0..c {
                let (nchw, nhwc) = ((i * c + ch) * area + p, (i * area + p) * c + ch);
                if to_nchw {
                    out[nchw] = v[nhwc];
                } else {
                    out[nhwc] = v[nchw];
                }
            }
        }
    }
    out
}

/// The book's `Convolution`: filters W (FN, C, FH, FW), bias b (FN).
pub struct Convolution {
    pub slide: Slide,
    pub filters: usize,
    col: Vec<f64>,
}

/// A convolution's gradients: dx (N, C, H, W), dW (FN, C, FH, FW), db (FN).
pub struct ConvGrads {
    pub dx: Vec<f64>,
    pub dw: Vec<f64>,
    pub db: Vec<f64>,
}

impl Convolution {
    pub fn new(slide: Slide, filters: usize) -> Self {
        Convolution {
            slide,
            filters,
            col: vec![],
        }
    }

    /// (N, FN, OH, OW): `im2col(x)·W_colᵀ + b`, W_col = W reshaped (FN, C·FH·FW).
    pub fn forward(&mut self, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
        let s = &self.slide;
        let (rows, k, fnum) = (s.col_rows(), s.col_cols(), self.filters);
        self.col = im2col(x, s);
        let mut out = vec![0.0; rows * fnum];
        matmul_nt(&mut out, &self.col, w, rows, k, fnum);
        for row in out.chunks_exact_mut(fnum) {
            for (o, bias) in row.iter_mut().zip(b) {
                *o += bias;
            }
        }
        nhwc_to_nchw(&out, s.input.n, fnum, s.out_area())
    }

    /// dout (N, FN, OH, OW) to dx, dW and db.
    pub fn backward(&self, dout: &[f64], w: &[f64]) -> ConvGrads {
        let s = &self.slide;
        let (rows, k, fnum) = (s.col_rows(), s.col_cols(), self.filters);
        let d = nchw_to_nhwc(dout, s.input.n, fnum, s.out_area());
        let mut db = vec![0.0; fnum];
        for row in d.chunks_exact(fnum) {
            for (acc, v) in db.iter_mut().zip(row) {
                *acc += v;
            }
        }
        // dW_col = colᵀ·dout is (C·FH·FW, FN); the book transposes it to (FN, ...).
        let mut dw_col = vec![0.0; k * fnum];
        matmul_tn(&mut dw_col, &self.col, &d, k, rows, fnum);
        let mut dw = vec![0.0; fnum * k];
        for r in 0..k {
            for f in 0..fnum {
                dw[f * k + r] = dw_col[r * fnum + f];
            }
        }
        let mut dcol = vec![0.0; rows * k];
        matmul(&mut dcol, &d, w, rows, fnum, k);
        ConvGrads {
            dx: col2im(&dcol, s),
            dw,
            db,
        }
    }
}

/// The book's max `Pooling`, keeping each window's argmax (the first
/// largest, as numpy's `argmax`; padding counts as 0).
pub struct Pooling {
    pub slide: Slide,
    /// Per output value (n, c, oy, ox), the index of its maximum in the window.
    argmax: Vec<usize>,
}

impl Pooling {
    pub fn new(slide: Slide) -> Self {
        Pooling {
            slide,
            argmax: vec![],
        }
    }

    /// (N, C, OH, OW): each window's largest value.
    pub fn forward(&mut self, x: &[f64]) -> Vec<f64> {
        let s = self.slide;
        let (i, k) = (s.input, s.window);
        let mut out = Vec::with_capacity(i.n * i.c * s.out_area());
        self.argmax.clear();
        for n in 0..i.n {
            for c in 0..i.c {
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let (mut best, mut at) = (f64::NEG_INFINITY, 0);
                        for q in 0..k.area() {
                            let v = s
                                .source(oy, ox, q / k.w, q % k.w)
                                .map_or(0.0, |(y, x0)| x[((n * i.c + c) * i.h + y) * i.w + x0]);
                            if v > best {
                                (best, at) = (v, q);
                            }
                        }
                        out.push(best);
                        self.argmax.push(at);
                    }
                }
            }
        }
        out
    }

    /// dout (N, C, OH, OW) routed to each window's argmax, summed where
    /// windows overlap (a maximum in the padding takes its share nowhere).
    pub fn backward(&self, dout: &[f64]) -> Vec<f64> {
        let s = self.slide;
        let (i, k) = (s.input, s.window);
        let mut dx = vec![0.0; i.len()];
        let mut at = 0;
        for n in 0..i.n {
            for c in 0..i.c {
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let q = self.argmax[at];
                        if let Some((y, x0)) = s.source(oy, ox, q / k.w, q % k.w) {
                            dx[((n * i.c + c) * i.h + y) * i.w + x0] += dout[at];
                        }
                        at += 1;
                    }
                }
            }
        }
        dx
    }

    /// Per output value, its maximum's index in the window (row-major).
    pub fn argmax(&self) -> &[usize] {
        &self.argmax
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::conv::{ImageShape, Window};

    fn values(len: usize, seed: u64) -> Vec<f64> {
        // A fixed, irregular sequence in (-1, 1): no ties in a window.
        (0..len)
            .map(|i| ((i as f64 + 1.0) * (0.6180339887 + seed as f64 * 0.1)).fract() * 2.0 - 1.0)
            .collect()
    }

    fn slide(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        k: (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Slide {
        Slide::new(
            ImageShape { n, c, h, w },
            Window {
                h: k.0,
                w: k.1,
                stride,
                pad,
            },
        )
        .unwrap()
    }

    /// Awkward shapes: batch 1 and 3, channels 1 and 3, not square, filters
    /// 1, 3, 5 and 7, stride 1 and 2, pad 0, 1 and 2.
    fn shapes() -> Vec<Slide> {
        vec![
            slide(1, 1, 5, 7, (3, 3), 1, 0),
            slide(3, 3, 7, 5, (3, 3), 2, 1),
            slide(1, 3, 9, 6, (5, 5), 1, 2),
            slide(3, 1, 5, 7, (1, 1), 2, 0),
            slide(1, 1, 7, 9, (7, 7), 1, 1),
        ]
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn numerical(f: impl Fn(&[f64]) -> f64, at: &[f64]) -> Vec<f64> {
        let h = 1e-5;
        (0..at.len())
            .map(|i| {
                let (mut p, mut m) = (at.to_vec(), at.to_vec());
                p[i] += h;
                m[i] -= h;
                (f(&p) - f(&m)) / (2.0 * h)
            })
            .collect()
    }

    fn worst(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .fold(0.0, |m, (x, y)| f64::max(m, (x - y).abs()))
    }

    #[test]
    fn im2col_reads_each_window_and_col2im_is_its_adjoint() {
        for s in shapes() {
            let x = values(s.input.len(), 1);
            let col = im2col(&x, &s);
            // Entry (row of window 0 at (0, 0), column (c=0, ky, kx)).
            for ky in 0..s.window.h {
                for kx in 0..s.window.w {
                    let want = s
                        .source(0, 0, ky, kx)
                        .map_or(0.0, |(y, x0)| x[y * s.input.w + x0]);
                    assert_eq!(col[ky * s.window.w + kx], want);
                }
            }
            let c = values(col.len(), 2);
            let (lhs, rhs) = (dot(&col, &c), dot(&x, &col2im(&c, &s)));
            assert!(
                (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
                "{s:?}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn convolution_gradients_match_the_numerical_gradient() {
        for s in shapes() {
            let fnum = 2;
            let (x, w, b) = (
                values(s.input.len(), 1),
                values(fnum * s.col_cols(), 2),
                values(fnum, 3),
            );
            let r = values(s.input.n * fnum * s.out_area(), 4);
            let f = |x: &[f64], w: &[f64], b: &[f64]| {
                dot(&Convolution::new(s, fnum).forward(x, w, b), &r)
            };
            let mut conv = Convolution::new(s, fnum);
            conv.forward(&x, &w, &b);
            let g = conv.backward(&r, &w);
            assert!(
                worst(&g.dx, &numerical(|v| f(v, &w, &b), &x)) < 1e-8,
                "{s:?} dx"
            );
            assert!(
                worst(&g.dw, &numerical(|v| f(&x, v, &b), &w)) < 1e-8,
                "{s:?} dW"
            );
            assert!(
                worst(&g.db, &numerical(|v| f(&x, &w, v), &b)) < 1e-8,
                "{s:?} db"
            );
            // The check catches a gradient off by 1%.
            let off: Vec<f64> = g.dw.iter().map(|v| v * 1.01).collect();
            assert!(worst(&off, &numerical(|v| f(&x, v, &b), &w)) > 1e-6);
        }
    }

    #[test]
    fn pooling_routes_the_gradient_to_each_windows_maximum() {
        for s in [
            slide(3, 3, 6, 4, (2, 2), 2, 0),
            slide(1, 1, 5, 5, (3, 3), 1, 1),
            slide(1, 3, 7, 5, (3, 3), 2, 0),
        ] {
            let x = values(s.input.len(), 5);
            let r = values(s.input.n * s.input.c * s.out_area(), 6);
            let mut pool = Pooling::new(s);
            let out = pool.forward(&x);
            let dx = pool.backward(&r);
            let f = |v: &[f64]| dot(&Pooling::new(s).forward(v), &r);
            assert!(worst(&dx, &numerical(f, &x)) < 1e-8, "{s:?}");
            assert!(out.iter().all(|v| x.contains(v) || *v == 0.0));
        }
    }

    #[test]
    fn pooling_ties_go_to_the_first_index_as_numpys_argmax() {
        let s = slide(1, 1, 2, 2, (2, 2), 2, 0);
        let mut pool = Pooling::new(s);
        assert_eq!(pool.forward(&[0.5, 1.0, 1.0, 0.25]), [1.0]);
        assert_eq!(pool.argmax(), [1]);
        assert_eq!(pool.backward(&[3.0]), [0.0, 3.0, 0.0, 0.0]);
    }
}
