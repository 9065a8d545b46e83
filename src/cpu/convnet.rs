//! The book's `SimpleConvNet` (`ch07/simple_convnet.py`) in f64: Conv1 →
//! Relu1 → Pool1 (2×2, stride 2) → Affine1 → Relu2 → Affine2 →
//! SoftmaxWithLoss. Its parameters are one arena in the book's order and
//! shapes: W1 (FN, C, FH, FW), b1 (FN), W2 (FN·PH·PW, hidden), b2, W3
//! (hidden, classes), b3. The reference a GPU SimpleConvNet will be held to;
//! its test reproduces `ch07/gradient_check.py`.
//!
//! Imports `crate::conv`, `crate::model` (for [`Tensor`]) and the layers.

use super::conv::{Convolution, Pooling};
use super::layers::{Affine, Labels, Relu, SoftmaxWithLoss};
use crate::conv::{ImageShape, ShapeError, Slide, Window};
use crate::model::Tensor;

/// The book's constructor arguments: `input_dim`, `conv_param`
/// (`filter_num`, `filter_size`, `pad`, `stride`), `hidden_size`,
/// `output_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvNetShape {
    /// (C, H, W).
    pub input: (usize, usize, usize),
    pub filters: usize,
    pub filter_size: usize,
    pub pad: usize,
    pub stride: usize,
    pub hidden: usize,
    pub classes: usize,
}

/// The pooling after the convolution, as the book fixes it.
const POOL: Window = Window {
    h: 2,
    w: 2,
    stride: 2,
    pad: 0,
};

impl ConvNetShape {
    /// The book's defaults: `input_dim=(1, 28, 28)`, 30 filters of 5×5,
    /// pad 0, stride 1, hidden 100, 10 classes.
    pub fn book() -> Self {
        ConvNetShape {
            input: (1, 28, 28),
            filters: 30,
            filter_size: 5,
            pad: 0,
            stride: 1,
            hidden: 100,
            classes: 10,
        }
    }

    /// The convolution over a batch, and the pooling over its output.
    pub fn slides(&self, batch: usize) -> Result<(Slide, Slide), ShapeError> {
        let (c, h, w) = self.input;
        let window = Window {
            h: self.filter_size,
            w: self.filter_size,
            stride: self.stride,
            pad: self.pad,
        };
        let conv = Slide::new(ImageShape { n: batch, c, h, w }, window)?;
        let out = ImageShape {
            n: batch,
            c: self.filters,
            h: conv.out_h,
            w: conv.out_w,
        };
        Ok((conv, Slide::new(out, POOL)?))
    }

    /// The named tensors in the arena, the book's names and shapes.
    pub fn tensors(&self) -> Result<Vec<Tensor>, ShapeError> {
        let (_, pool) = self.slides(1)?;
        let (c, fs) = (self.input.0, self.filter_size);
        let pooled = self.filters * pool.out_area();
        let shapes = [
            ("W1", vec![self.filters, c, fs, fs]),
            ("b1", vec![self.filters]),
            ("W2", vec![pooled, self.hidden]),
            ("b2", vec![self.hidden]),
            ("W3", vec![self.hidden, self.classes]),
            ("b3", vec![self.classes]),
        ];
        let mut offset = 0;
        Ok(shapes
            .into_iter()
            .map(|(name, shape)| {
                let t = Tensor {
                    name: name.into(),
                    offset,
                    shape,
                };
                offset += t.len();
                t
            })
            .collect())
    }
}

/// The network at one batch size.
pub struct SimpleConvNet {
    pub shape: ConvNetShape,
    tensors: Vec<Tensor>,
    conv: Slide,
    pool: Slide,
}

/// What a forward pass keeps for the backward pass.
struct Forward {
    conv: Convolution,
    relu1: Relu,
    pool: Pooling,
    affine1: Affine,
    relu2: Relu,
    affine2: Affine,
    last: SoftmaxWithLoss,
    logits: Vec<f64>,
}

impl SimpleConvNet {
    pub fn new(shape: ConvNetShape, batch: usize) -> Result<Self, ShapeError> {
        let (conv, pool) = shape.slides(batch)?;
        Ok(SimpleConvNet {
            tensors: shape.tensors()?,
            shape,
            conv,
            pool,
        })
    }

    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    pub fn arena_len(&self) -> usize {
        self.tensors.last().map_or(0, |t| t.offset + t.len())
    }

    fn tensor<'a>(&self, p: &'a [f64], i: usize) -> &'a [f64] {
        &p[self.tensors[i].range()]
    }

    fn forward(&self, p: &[f64], x: &[f64]) -> Forward {
        let batch = self.conv.input.n;
        let mut conv = Convolution::new(self.conv, self.shape.filters);
        let mut relu1 = Relu::default();
        let h = relu1.forward(&conv.forward(x, self.tensor(p, 0), self.tensor(p, 1)));
        let mut pool = Pooling::new(self.pool);
        let pooled = pool.forward(&h); // (N, FN, PH, PW): the book's flatten is this order
        let (mut affine1, mut relu2, mut affine2) = Default::default();
        let h = Affine::forward(
            &mut affine1,
            &pooled,
            self.tensor(p, 2),
            self.tensor(p, 3),
            batch,
        );
        let h = Relu::forward(&mut relu2, &h);
        let logits = Affine::forward(
            &mut affine2,
            &h,
            self.tensor(p, 4),
            self.tensor(p, 5),
            batch,
        );
        Forward {
            conv,
            relu1,
            pool,
            affine1,
            relu2,
            affine2,
            last: SoftmaxWithLoss::default(),
            logits,
        }
    }

    /// Logits (N, classes).
    pub fn predict(&self, p: &[f64], x: &[f64]) -> Vec<f64> {
        self.forward(p, x).logits
    }

    /// Mean cross-entropy over the batch.
    pub fn loss(&self, p: &[f64], x: &[f64], t: &[u8]) -> f64 {
        let mut f = self.forward(p, x);
        f.last.forward(&f.logits, Labels::Index(t), t.len())
    }

    /// Backprop: the loss and every parameter's gradient, as an arena.
    pub fn gradient(&self, p: &[f64], x: &[f64], t: &[u8]) -> (f64, Vec<f64>) {
        let mut f = self.forward(p, x);
        let loss = f.last.forward(&f.logits, Labels::Index(t), t.len());
        let mut g = vec![0.0; self.arena_len()];
        let range = |i: usize| self.tensors[i].range();
        let (lo, hi) = g.split_at_mut(range(4).start);
        let (dw3, db3) = hi.split_at_mut(self.tensors[4].len());
        let d = f
            .affine2
            .backward(&f.last.backward(), self.tensor(p, 4), dw3, db3, true);
        let d = f.relu2.backward(&d.expect("dx asked for"));
        let (lo, hi) = lo.split_at_mut(range(2).start);
        let (dw2, db2) = hi.split_at_mut(self.tensors[2].len());
        let d = f.affine1.backward(&d, self.tensor(p, 2), dw2, db2, true);
        let d = f
            .relu1
            .backward(&f.pool.backward(&d.expect("dx asked for")));
        let grads = f.conv.backward(&d, self.tensor(p, 0));
        lo[range(0)].copy_from_slice(&grads.dw);
        lo[range(1)].copy_from_slice(&grads.db);
        (loss, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ch07/gradient_check.py`'s network: input (1, 10, 10), 10 filters of
    /// 3×3, hidden 10, 10 classes; here a batch of 2 images.
    fn gradient_check_net() -> SimpleConvNet {
        let shape = ConvNetShape {
            input: (1, 10, 10),
            filters: 10,
            filter_size: 3,
            pad: 0,
            stride: 1,
            hidden: 10,
            classes: 10,
        };
        SimpleConvNet::new(shape, 2).unwrap()
    }

    fn values(len: usize, scale: f64, seed: f64) -> Vec<f64> {
        (0..len)
            .map(|i| (((i as f64 + 1.0) * (0.754877666 + seed)).fract() * 2.0 - 1.0) * scale)
            .collect()
    }

    #[test]
    fn the_books_shapes_and_names() {
        let net = SimpleConvNet::new(ConvNetShape::book(), 100).unwrap();
        let got: Vec<(String, Vec<usize>)> = net
            .tensors()
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        let want = [
            ("W1", vec![30, 1, 5, 5]),
            ("b1", vec![30]),
            ("W2", vec![4320, 100]),
            ("b2", vec![100]),
            ("W3", vec![100, 10]),
            ("b3", vec![10]),
        ];
        assert_eq!(got, want.map(|(n, s)| (n.to_string(), s)));
        let odd = ConvNetShape {
            input: (1, 25, 25),
            filter_size: 5,
            ..ConvNetShape::book()
        };
        let e = SimpleConvNet::new(odd, 1)
            .err()
            .expect("21 does not pool by 2");
        assert!(
            e.to_string()
                .contains("(21 - 2) / 2 + 1 is not a whole number"),
            "{e}"
        );
    }

    /// `ch07/gradient_check.py`: backprop against central differences for
    /// every parameter (Relu kinks are unlikely at these values; a nudge
    /// crossing one would show as a single large difference).
    #[test]
    fn backprop_matches_the_numerical_gradient() {
        let net = gradient_check_net();
        let p = values(net.arena_len(), 0.3, 0.01);
        let x = values(2 * 100, 1.0, 0.02);
        let t = [1, 7];
        let (_, g) = net.gradient(&p, &x, &t);
        let h = 1e-5;
        let mut worst = 0f64;
        for i in 0..p.len() {
            let (mut a, mut b) = (p.clone(), p.clone());
            a[i] += h;
            b[i] -= h;
            let num = (net.loss(&a, &x, &t) - net.loss(&b, &x, &t)) / (2.0 * h);
            worst = worst.max((num - g[i]).abs());
        }
        assert!(worst < 1e-7, "largest difference {worst}");
        // The check fails on a gradient off by 1%.
        let (mut a, mut b) = (p.clone(), p.clone());
        a[0] += h;
        b[0] -= h;
        let num = (net.loss(&a, &x, &t) - net.loss(&b, &x, &t)) / (2.0 * h);
        assert!(g[0] != 0.0 && (num - g[0] * 1.01).abs() > 1e-7);
    }
}
