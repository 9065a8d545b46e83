//! The book's network (`TwoLayerNet`, generalised to any list of layer sizes
//! as `MultiLayerNet`): Affine → Relu → ... → Affine → SoftmaxWithLoss.

use super::layers::{Affine, Labels, Relu, SoftmaxWithLoss};
use crate::model::{Arch, Params};

pub struct Net {
    pub arch: Arch,
}

/// Everything one forward pass kept for the backward pass.
struct Forward {
    affines: Vec<Affine>,
    relus: Vec<Relu>,
    last: SoftmaxWithLoss,
    loss: f64,
}

impl Net {
    pub fn new(arch: &Arch) -> Self {
        Net { arch: arch.clone() }
    }

    /// Logits (B, O) for inputs x (B, I).
    pub fn predict(&self, params: &Params, x: &[f64], batch: usize) -> Vec<f64> {
        self.forward_layers(params, x, batch).0
    }

    fn forward_layers(
        &self,
        params: &Params,
        x: &[f64],
        batch: usize,
    ) -> (Vec<f64>, Vec<Affine>, Vec<Relu>) {
        let slots = self.arch.slots();
        let mut affines = Vec::with_capacity(slots.len());
        let mut relus = Vec::with_capacity(slots.len() - 1);
        let mut h = x.to_vec();
        for (l, s) in slots.iter().enumerate() {
            let mut affine = Affine::default();
            h = affine.forward(
                &h,
                &params.values[s.w..s.b()],
                &params.values[s.b()..s.b() + s.outputs],
                batch,
            );
            affines.push(affine);
            if l + 1 < slots.len() {
                let mut relu = Relu::default();
                h = relu.forward(&h);
                relus.push(relu);
            }
        }
        (h, affines, relus)
    }

    fn forward(&self, params: &Params, x: &[f64], t: Labels<'_>, batch: usize) -> Forward {
        let (logits, affines, relus) = self.forward_layers(params, x, batch);
        let mut last = SoftmaxWithLoss::default();
        let loss = last.forward(&logits, t, batch);
        Forward {
            affines,
            relus,
            last,
            loss,
        }
    }

    /// Mean cross-entropy loss over the batch.
    pub fn loss(&self, params: &Params, x: &[f64], t: Labels<'_>, batch: usize) -> f64 {
        self.forward(params, x, t, batch).loss
    }

    /// The loss and a signature (FNV-1a hash) of every Relu's mask, so the
    /// numerical gradient can tell when a nudge crossed a kink.
    pub fn loss_and_signature(
        &self,
        params: &Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
    ) -> (f64, u64) {
        let f = self.forward(params, x, t, batch);
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for relu in &f.relus {
            for &m in relu.mask() {
                hash = (hash ^ m as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        (f.loss, hash)
    }

    /// Fraction of rows whose largest logit is the label (first maximum wins,
    /// like numpy's argmax).
    pub fn accuracy(&self, params: &Params, x: &[f64], labels: &[u8]) -> f64 {
        let logits = self.predict(params, x, labels.len());
        correct_count(&logits, labels) as f64 / labels.len() as f64
    }

    /// Backprop: the loss and the gradient of every parameter, as an arena.
    pub fn gradient(
        &self,
        params: &Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
    ) -> (f64, Params) {
        let f = self.forward(params, x, t, batch);
        let mut grads = Params::zeros(&self.arch);
        let slots = self.arch.slots();
        let mut dout = f.last.backward();
        for (l, s) in slots.iter().enumerate().rev() {
            let (dw, db) = grads.values[s.w..s.b() + s.outputs].split_at_mut(s.inputs * s.outputs);
            let dx = f.affines[l].backward(&dout, &params.values[s.w..s.b()], dw, db, l > 0);
            if let Some(dx) = dx {
                dout = f.relus[l - 1].backward(&dx);
            }
        }
        (f.loss, grads)
    }

    /// One SGD step: `W -= lr·dW`. Returns the loss before the step.
    pub fn sgd_step(&self, params: &mut Params, x: &[f64], labels: &[u8], lr: f64) -> f64 {
        let (loss, grads) = self.gradient(params, x, Labels::Index(labels), labels.len());
        for (p, g) in params.values.iter_mut().zip(&grads.values) {
            *p -= lr * g;
        }
        loss
    }
}

/// Rows whose first maximal logit is at the label's index.
pub fn correct_count(logits: &[f64], labels: &[u8]) -> usize {
    let c = logits.len() / labels.len();
    logits
        .chunks_exact(c)
        .zip(labels)
        .filter(|(row, label)| argmax(row) == **label as usize)
        .count()
}

fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    best
}
