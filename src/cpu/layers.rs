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

/// The ε under Batch Normalization's square root: the book writes `10e-7`.
pub const BN_EPS: f64 = 1e-6;
/// Weight of the old running statistics in each update (the book's `momentum`).
pub const BN_MOMENTUM: f64 = 0.9;

/// Batch Normalization (`common/layers.py`, `BatchNormalization`), per
/// feature over the batch. x is (B, H), gamma and beta are (H).
///
/// Training: `xn = (x - mean) / √(var + ε)` with the batch's mean and biased
/// variance; `out = gamma·xn + beta`. Evaluation: the same with the running
/// statistics.
#[derive(Default)]
pub struct BatchNormalization {
    batch: usize,
    xc: Vec<f64>,
    xn: Vec<f64>,
    std: Vec<f64>,
    /// The last training forward's batch mean and variance, per feature.
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

impl BatchNormalization {
    pub fn forward_train(
        &mut self,
        x: &[f64],
        gamma: &[f64],
        beta: &[f64],
        batch: usize,
    ) -> Vec<f64> {
        let h = gamma.len();
        let mut mean = vec![0.0; h];
        for row in x.chunks_exact(h) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= batch as f64);
        let xc: Vec<f64> = x
            .chunks_exact(h)
            .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v - m))
            .collect();
        let mut var = vec![0.0; h];
        for row in xc.chunks_exact(h) {
            for (s, v) in var.iter_mut().zip(row) {
                *s += v * v;
            }
        }
        var.iter_mut().for_each(|s| *s /= batch as f64);
        let std: Vec<f64> = var.iter().map(|v| (v + BN_EPS).sqrt()).collect();
        let xn: Vec<f64> = xc
            .chunks_exact(h)
            .flat_map(|row| row.iter().zip(&std).map(|(c, s)| c / s))
            .collect();
        let out = affine_per_feature(&xn, gamma, beta);
        (self.batch, self.xc, self.xn, self.std) = (batch, xc, xn, std);
        (self.mean, self.var) = (mean, var);
        out
    }

    /// The evaluation form, with running statistics.
    pub fn forward_eval(
        x: &[f64],
        gamma: &[f64],
        beta: &[f64],
        running_mean: &[f64],
        running_var: &[f64],
    ) -> Vec<f64> {
        let h = gamma.len();
        let xn: Vec<f64> = x
            .chunks_exact(h)
            .flat_map(|row| {
                row.iter()
                    .zip(running_mean.iter().zip(running_var))
                    .map(|(v, (m, var))| (v - m) / (var + BN_EPS).sqrt())
            })
            .collect();
        affine_per_feature(&xn, gamma, beta)
    }

    /// `running = 0.9·running + 0.1·batch` for the last training forward's
    /// mean and variance (the book's `momentum` of 0.9).
    pub fn update_running(&self, running_mean: &mut [f64], running_var: &mut [f64]) {
        for (r, b) in running_mean.iter_mut().zip(&self.mean) {
            *r = BN_MOMENTUM * *r + (1.0 - BN_MOMENTUM) * b;
        }
        for (r, b) in running_var.iter_mut().zip(&self.var) {
            *r = BN_MOMENTUM * *r + (1.0 - BN_MOMENTUM) * b;
        }
    }

    /// The book's backward, step by step; writes dgamma and dbeta, returns dx.
    pub fn backward(
        &self,
        dout: &[f64],
        gamma: &[f64],
        dgamma: &mut [f64],
        dbeta: &mut [f64],
    ) -> Vec<f64> {
        let (h, b) = (gamma.len(), self.batch as f64);
        dgamma.fill(0.0);
        dbeta.fill(0.0);
        for (drow, xrow) in dout.chunks_exact(h).zip(self.xn.chunks_exact(h)) {
            for j in 0..h {
                dbeta[j] += drow[j];
                dgamma[j] += drow[j] * xrow[j];
            }
        }
        // dxn = gamma·dout; dxc = dxn / std
        let dxn: Vec<f64> = dout
            .chunks_exact(h)
            .flat_map(|row| row.iter().zip(gamma).map(|(d, g)| d * g))
            .collect();
        let mut dxc: Vec<f64> = dxn
            .chunks_exact(h)
            .flat_map(|row| row.iter().zip(&self.std).map(|(d, s)| d / s))
            .collect();
        // dstd = -Σ dxn·xc / std²; dvar = 0.5·dstd / std
        let mut dstd = vec![0.0; h];
        for (drow, crow) in dxn.chunks_exact(h).zip(self.xc.chunks_exact(h)) {
            for j in 0..h {
                dstd[j] -= drow[j] * crow[j] / (self.std[j] * self.std[j]);
            }
        }
        let dvar: Vec<f64> = dstd
            .iter()
            .zip(&self.std)
            .map(|(d, s)| 0.5 * d / s)
            .collect();
        // dxc += (2/B)·xc·dvar; dmu = Σ dxc; dx = dxc - dmu/B
        for (drow, crow) in dxc.chunks_exact_mut(h).zip(self.xc.chunks_exact(h)) {
            for j in 0..h {
                drow[j] += (2.0 / b) * crow[j] * dvar[j];
            }
        }
        let mut dmu = vec![0.0; h];
        for row in dxc.chunks_exact(h) {
            for (m, d) in dmu.iter_mut().zip(row) {
                *m += d;
            }
        }
        for row in dxc.chunks_exact_mut(h) {
            for (d, m) in row.iter_mut().zip(&dmu) {
                *d -= m / b;
            }
        }
        dxc
    }
}

fn affine_per_feature(xn: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    xn.chunks_exact(gamma.len())
        .flat_map(|row| {
            row.iter()
                .zip(gamma.iter().zip(beta))
                .map(|(x, (g, b))| g * x + b)
        })
        .collect()
}

/// Dropout in the book's form (not "inverted" dropout): training multiplies
/// by a 0/1 mask, evaluation by `1 - ratio`. The mask comes from
/// [`crate::core::dropout_mask`], so the GPU draws the same one. x is (B, H).
#[derive(Default)]
pub struct Dropout {
    mask: Vec<bool>,
}

impl Dropout {
    /// `key` from [`crate::core::dropout_mask::layer_key`].
    pub fn forward_train(&mut self, x: &[f64], key: u32, ratio: f32) -> Vec<f64> {
        self.mask = (0..x.len())
            .map(|i| crate::core::dropout_mask::keep(key, i as u32, ratio))
            .collect();
        x.iter()
            .zip(&self.mask)
            .map(|(&v, &m)| if m { v } else { 0.0 })
            .collect()
    }

    /// Which elements the last training forward kept.
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }

    pub fn forward_eval(x: &[f64], ratio: f32) -> Vec<f64> {
        let keep = 1.0 - ratio as f64;
        x.iter().map(|v| v * keep).collect()
    }

    pub fn backward(&self, dout: &[f64]) -> Vec<f64> {
        dout.iter()
            .zip(&self.mask)
            .map(|(&d, &m)| if m { d } else { 0.0 })
            .collect()
    }
}
