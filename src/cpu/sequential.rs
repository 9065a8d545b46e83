//! Any network given as a list of layers (`core::network`) on the CPU, in
//! f64, as the book's `DeepConvNet` runs its `layers` list: each layer's
//! `forward` in order keeping what its `backward` needs, then the
//! `backward`s in reverse from `SoftmaxWithLoss`. The layers are the book's
//! classes of `layers` and `conv`; weight decay (`½λ·ΣW²` over every `W`)
//! and Dropout's masks (keyed by the number of the weighted layer before
//! each) are as `Net` computes them, so a list that describes an `Arch`
//! gives `Net`'s numbers (`tests/network.rs`).
//!
//! May import: core (the network, Dropout's mask), the rest of cpu.

use super::conv::{Convolution, Pooling};
use super::layers::{Affine, BatchNormalization, Dropout, Labels, Relu, SoftmaxWithLoss};
use super::net::{Pass, correct_count};
use crate::core::conv::{ImageShape, Slide, Window};
use crate::core::dropout_mask::layer_key;
use crate::core::network::{Layer, Placed, Plan, Values};

/// A planned network on the CPU.
pub struct Sequential {
    pub plan: Plan,
    /// λ of weight decay; 0 for none.
    pub weight_decay: f64,
    /// Seeds Dropout's masks (with the step and the layer's number).
    pub seed: u64,
}

/// One layer as its forward pass left it, for its backward pass.
enum Kept {
    Conv(Convolution),
    Pool(Pooling),
    Affine(Affine),
    Relu(Relu),
    Norm(BatchNormalization),
    Drop(Dropout),
    /// A layer with nothing to keep (BatchNorm and Dropout in evaluation).
    Nothing,
}

/// The parameters a pass reads: the arena and the running statistics.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    pub values: &'a [f64],
    pub running: &'a [f64],
}

impl Sequential {
    pub fn new(plan: Plan) -> Self {
        Sequential {
            plan,
            weight_decay: 0.0,
            seed: 0,
        }
    }

    /// The layers' outputs in turn from inputs `x` (B, C·H·W): the logits,
    /// and what each layer kept.
    fn forward_layers(
        &self,
        p: Weights,
        x: &[f64],
        batch: usize,
        pass: Pass,
    ) -> (Vec<f64>, Vec<Kept>) {
        let mut h = x.to_vec();
        let mut kept = Vec::with_capacity(self.plan.layers.len());
        for layer in &self.plan.layers {
            let (out, k) = self.layer_forward(layer, p, h, batch, pass);
            h = out;
            kept.push(k);
        }
        (h, kept)
    }

    fn layer_forward(
        &self,
        l: &Placed,
        p: Weights,
        h: Vec<f64>,
        batch: usize,
        pass: Pass,
    ) -> (Vec<f64>, Kept) {
        let v = p.values;
        match (l.layer, pass) {
            (
                Layer::Convolution {
                    filters,
                    size,
                    stride,
                    pad,
                },
                _,
            ) => {
                let b = l.weights.expect("a convolution has weights");
                let mut conv = Convolution::new(slide(l.input, batch, size, stride, pad), filters);
                let out = conv.forward(&h, &v[b.w..b.b()], &v[b.b()..b.b() + b.outputs]);
                (out, Kept::Conv(conv))
            }
            (Layer::Pooling { size, stride }, _) => {
                let mut pool = Pooling::new(slide(l.input, batch, size, stride, 0));
                (pool.forward(&h), Kept::Pool(pool))
            }
            (Layer::Affine { .. }, _) => {
                let b = l.weights.expect("an Affine has weights");
                let mut affine = Affine::default();
                let out = affine.forward(&h, &v[b.w..b.b()], &v[b.b()..b.b() + b.outputs], batch);
                (out, Kept::Affine(affine))
            }
            (Layer::Relu, _) => {
                let mut relu = Relu::default();
                (relu.forward(&h), Kept::Relu(relu))
            }
            (Layer::BatchNorm, Pass::Train { .. }) => {
                let n = l.norm.expect("a BatchNorm has gamma and beta");
                let (gamma, beta) = v[n.gamma..n.gamma + 2 * n.features].split_at(n.features);
                let mut bn = BatchNormalization::default();
                (bn.forward_train(&h, gamma, beta, batch), Kept::Norm(bn))
            }
            (Layer::BatchNorm, Pass::Eval) => {
                let n = l.norm.expect("a BatchNorm has gamma and beta");
                let (gamma, beta) = v[n.gamma..n.gamma + 2 * n.features].split_at(n.features);
                let (mean, var) =
                    p.running[n.running..n.running + 2 * n.features].split_at(n.features);
                (
                    BatchNormalization::forward_eval(&h, gamma, beta, mean, var),
                    Kept::Nothing,
                )
            }
            (Layer::Dropout { ratio }, Pass::Train { step }) => {
                let mut drop = Dropout::default();
                let key = layer_key(self.seed, step, l.number as u32);
                (drop.forward_train(&h, key, ratio), Kept::Drop(drop))
            }
            (Layer::Dropout { ratio }, Pass::Eval) => {
                (Dropout::forward_eval(&h, ratio), Kept::Nothing)
            }
        }
    }

    /// Logits (B, outputs) in evaluation form.
    pub fn predict(&self, p: Weights, x: &[f64], batch: usize) -> Vec<f64> {
        self.forward_layers(p, x, batch, Pass::Eval).0
    }

    /// Logits in training form at `step` (batch statistics, Dropout's
    /// masks), as the book's `predict(x, train_flg=True)`.
    pub fn predict_training(&self, p: Weights, x: &[f64], batch: usize, step: u32) -> Vec<f64> {
        self.forward_layers(p, x, batch, Pass::Train { step }).0
    }

    /// Fraction of rows whose first largest logit is the label.
    pub fn accuracy(&self, p: Weights, x: &[f64], labels: &[u8]) -> f64 {
        let logits = self.predict(p, x, labels.len());
        correct_count(&logits, labels) as f64 / labels.len() as f64
    }

    /// `½λ·ΣW²` over every weighted layer's `W`.
    pub fn decay_loss(&self, values: &[f64]) -> f64 {
        if self.weight_decay == 0.0 {
            return 0.0;
        }
        let blocks = self.plan.layers.iter().filter_map(|l| l.weights);
        let squares: f64 = blocks
            .map(|b| values[b.w..b.b()].iter().map(|w| w * w).sum::<f64>())
            .sum();
        0.5 * self.weight_decay * squares
    }

    /// The loss backprop differentiates (training form at `step`, weight
    /// decay included) and a signature of every Relu's mask and every
    /// pooling's argmax, for the numerical gradient to tell a nudge that
    /// crossed a kink.
    pub fn loss_and_signature(
        &self,
        p: Weights,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> (f64, u64) {
        let (logits, kept) = self.forward_layers(p, x, batch, Pass::Train { step });
        let loss =
            SoftmaxWithLoss::default().forward(&logits, t, batch) + self.decay_loss(p.values);
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        let mut mix = |v: u64| hash = (hash ^ v).wrapping_mul(0x0100_0000_01b3);
        for k in &kept {
            match k {
                Kept::Relu(r) => r.mask().iter().for_each(|&m| mix(m as u64)),
                Kept::Pool(p) => p.argmax().iter().for_each(|&a| mix(a as u64)),
                _ => {}
            }
        }
        (loss, hash)
    }

    /// Backprop at training step `step`: the cross-entropy (without weight
    /// decay) and the gradient of every parameter (with it), as an arena.
    pub fn gradient(
        &self,
        p: Weights,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> (f64, Vec<f64>) {
        let (logits, kept) = self.forward_layers(p, x, batch, Pass::Train { step });
        let mut last = SoftmaxWithLoss::default();
        let loss = last.forward(&logits, t, batch);
        let mut grads = vec![0.0; self.plan.arena_len];
        let mut dout = last.backward();
        for (i, (l, k)) in self.plan.layers.iter().zip(&kept).enumerate().rev() {
            dout = self.layer_backward(l, k, p.values, &mut grads, dout, i > 0);
        }
        (loss, grads)
    }

    /// One layer's backward: its parameters' gradients into `grads`, and
    /// the gradient of its input (empty for the first weighted layer's,
    /// which nothing needs).
    fn layer_backward(
        &self,
        l: &Placed,
        k: &Kept,
        v: &[f64],
        grads: &mut [f64],
        dout: Vec<f64>,
        want_dx: bool,
    ) -> Vec<f64> {
        match k {
            Kept::Conv(conv) => {
                let b = l.weights.expect("a convolution has weights");
                let g = conv.backward(&dout, &v[b.w..b.b()]);
                grads[b.w..b.b()].copy_from_slice(&g.dw);
                grads[b.b()..b.b() + b.outputs].copy_from_slice(&g.db);
                self.add_decay(&mut grads[b.w..b.b()], &v[b.w..b.b()]);
                g.dx
            }
            Kept::Affine(affine) => {
                let b = l.weights.expect("an Affine has weights");
                let (dw, db) = grads[b.w..b.b() + b.outputs].split_at_mut(b.inputs * b.outputs);
                let dx = affine.backward(&dout, &v[b.w..b.b()], dw, db, want_dx);
                self.add_decay(dw, &v[b.w..b.b()]);
                dx.unwrap_or_default()
            }
            Kept::Norm(bn) => {
                let n = l.norm.expect("a BatchNorm has gamma and beta");
                let (dgamma, dbeta) =
                    grads[n.gamma..n.gamma + 2 * n.features].split_at_mut(n.features);
                bn.backward(&dout, &v[n.gamma..n.gamma + n.features], dgamma, dbeta)
            }
            Kept::Pool(pool) => pool.backward(&dout),
            Kept::Relu(relu) => relu.backward(&dout),
            Kept::Drop(drop) => drop.backward(&dout),
            Kept::Nothing => unreachable!("a training pass keeps every layer"),
        }
    }

    /// `λ·W` added to a weight gradient.
    fn add_decay(&self, dw: &mut [f64], w: &[f64]) {
        if self.weight_decay != 0.0 {
            for (d, w) in dw.iter_mut().zip(w) {
                *d += self.weight_decay * w;
            }
        }
    }
}

/// A planned window over `batch` images of `input`.
fn slide(input: Values, batch: usize, size: usize, stride: usize, pad: usize) -> Slide {
    let Values::Image { c, h, w } = input else {
        unreachable!("a planned convolution or pooling takes images")
    };
    let window = Window {
        h: size,
        w: size,
        stride,
        pad,
    };
    Slide::new(ImageShape { n: batch, c, h, w }, window).expect("a planned window slides")
}
