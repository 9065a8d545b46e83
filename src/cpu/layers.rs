//! The book's layers: Affine, Relu, SoftmaxWithLoss. Each `forward` keeps
//! what its `backward` needs, as in `common/layers.py`.

use super::matmul::{matmul, matmul_nt, matmul_tn};

/// Affine: `out = x·W + b`. x is (B, I), W is (I, O), b is (O), out is (B, O).
#[derive(Default)]
pub struct Affine {
    x: Vec<f64>,
    batch: usize,
}

impl Affine {
    pub fn forward(&mut self, x: &[f64], w: &[f64], b: &[f64], batch: usize) -> Vec<f64> {
        let (i, o) = (x.len() / batch, b.len());
        let mut out = vec![0.0; batch * o];
        matmul(&mut out, x, w, batch, i, o);
        for row in out.chunks_exact_mut(o) {
            for (v, bias) in row.iter_mut().zip(b) {
                *v += bias;
            }
        }
        self.x = x.to_vec();
        self.batch = batch;
        out
    }

    /// Writes `dW = xᵀ·dout` and `db = Σrows dout`; returns `dx = dout·Wᵀ`
    /// when `want_dx` (the first layer has no use for it).
    /// dout is (B, O), dw is (I, O), db is (O).
    pub fn backward(
        &self,
        dout: &[f64],
        w: &[f64],
        dw: &mut [f64],
        db: &mut [f64],
        want_dx: bool,
    ) -> Option<Vec<f64>> {
        let (batch, o) = (self.batch, db.len());
        let i = self.x.len() / batch;
        matmul_tn(dw, &self.x, dout, i, batch, o);
        db.fill(0.0);
        for row in dout.chunks_exact(o) {
            for (d, g) in db.iter_mut().zip(row) {
                *d += g;
            }
        }
        want_dx.then(|| {
            let mut dx = vec![0.0; batch * i];
            matmul_nt(&mut dx, dout, w, batch, o, i);
            dx
        })
    }
}

/// Relu: `out = max(x, 0)`; backward passes the gradient where `x > 0`.
#[derive(Default)]
pub struct Relu {
    mask: Vec<bool>,
}

impl Relu {
    pub fn forward(&mut self, x: &[f64]) -> Vec<f64> {
        // The book's mask is `x <= 0`; we keep its complement.
        self.mask = x.iter().map(|&v| v > 0.0).collect();
        x.iter().map(|&v| v.max(0.0)).collect()
    }

    /// Where the last forward's input was positive.
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }

    pub fn backward(&self, dout: &[f64]) -> Vec<f64> {
        dout.iter()
            .zip(&self.mask)
            .map(|(&d, &m)| if m { d } else { 0.0 })
            .collect()
    }
}

/// Targets for [`SoftmaxWithLoss`]: class indices, or one-hot rows (B, C).
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a> {
    Index(&'a [u8]),
    OneHot(&'a [f64]),
}

/// Softmax followed by the cross-entropy loss, averaged over the batch.
///
/// The loss is computed as `logsumexp(x) - x_t` per row, which is exact where
/// the book's `-log(softmax(x)_t + 1e-7)` is off by up to 1e-7 per row and
/// flat (zero gradient) once a probability falls below about 1e-7.
#[derive(Default)]
pub struct SoftmaxWithLoss {
    y: Vec<f64>,
    t: Vec<f64>,
    batch: usize,
}

impl SoftmaxWithLoss {
    /// x is (B, C) logits. Returns the mean loss.
    pub fn forward(&mut self, x: &[f64], t: Labels<'_>, batch: usize) -> f64 {
        let c = x.len() / batch;
        self.batch = batch;
        self.t = match t {
            Labels::OneHot(t) => t.to_vec(),
            Labels::Index(t) => {
                let mut onehot = vec![0.0; batch * c];
                for (r, &label) in t.iter().enumerate() {
                    onehot[r * c + label as usize] = 1.0;
                }
                onehot
            }
        };
        self.y = vec![0.0; x.len()];
        let mut total = 0.0;
        for ((row, y), t) in x
            .chunks_exact(c)
            .zip(self.y.chunks_exact_mut(c))
            .zip(self.t.chunks_exact(c))
        {
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|&v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            for (yk, &xk) in y.iter_mut().zip(row) {
                *yk = (xk - max).exp() / sum;
            }
            total += row
                .iter()
                .zip(t)
                .map(|(&xk, &tk)| tk * (lse - xk))
                .sum::<f64>();
        }
        total / batch as f64
    }

    /// `dx = (y - t) / B`.
    pub fn backward(&self) -> Vec<f64> {
        let b = self.batch as f64;
        self.y
            .iter()
            .zip(&self.t)
            .map(|(y, t)| (y - t) / b)
            .collect()
    }
}
