//! The book's `MultiLayerNetExtend`: per hidden layer Affine → [BatchNorm] →
//! Relu → [Dropout], then Affine → SoftmaxWithLoss, with weight decay
//! (`½λ·ΣW²` added to the loss) as in `common/multi_layer_net_extend.py`;
//! with a convolutional front, the book's `SimpleConvNet`
//! (`ch07/simple_convnet.py`): Conv1 → Relu1 → Pool1 before the Affines.

use super::conv::{Convolution, Pooling};
use super::layers::{Affine, BatchNormalization, Dropout, Labels, Relu, SoftmaxWithLoss};
use super::optimizer::OptimizerState;
use crate::core::dropout_mask::layer_key;
use crate::core::model::{Arch, Params};

pub struct Net {
    pub arch: Arch,
    /// λ of weight decay; 0 for none.
    pub weight_decay: f64,
    /// Seeds Dropout's masks (with the step and the layer).
    pub seed: u64,
}

/// Training (batch statistics, Dropout's mask for `step`) or evaluation
/// (running statistics, Dropout's `1 - ratio`), as the book's `train_flg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `step` is 1-based, as the optimizers count.
    Train {
        step: u32,
    },
    Eval,
}

/// A convolutional front's layers, as one forward pass left them.
struct Front {
    conv: Convolution,
    relu: Relu,
    pool: Pooling,
}

/// Everything one forward pass kept for the backward pass.
struct Forward {
    front: Option<Front>,
    affines: Vec<Affine>,
    bns: Vec<BatchNormalization>,
    relus: Vec<Relu>,
    dropouts: Vec<Dropout>,
    last: SoftmaxWithLoss,
    /// Cross-entropy only, without weight decay.
    data_loss: f64,
}

struct Hidden {
    logits: Vec<f64>,
    front: Option<Front>,
    affines: Vec<Affine>,
    bns: Vec<BatchNormalization>,
    relus: Vec<Relu>,
    dropouts: Vec<Dropout>,
}

impl Net {
    pub fn new(arch: &Arch) -> Self {
        Net {
            arch: arch.clone(),
            weight_decay: 0.0,
            seed: 0,
        }
    }

    pub fn with_weight_decay(mut self, lambda: f64) -> Self {
        self.weight_decay = lambda;
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Logits (B, O) for inputs x (B, I), in evaluation form.
    pub fn predict(&self, params: &Params, x: &[f64], batch: usize) -> Vec<f64> {
        self.forward_layers(params, x, batch, Pass::Eval).logits
    }

    fn forward_layers(&self, params: &Params, x: &[f64], batch: usize, pass: Pass) -> Hidden {
        let slots = self.arch.slots();
        let bn_slots = self.arch.bn_slots();
        let mut out = Hidden {
            logits: vec![],
            front: None,
            affines: Vec::with_capacity(slots.len()),
            bns: vec![],
            relus: vec![],
            dropouts: vec![],
        };
        let v = &params.values;
        let mut h = match self.front_forward(params, x, batch) {
            Some((front, pooled)) => {
                out.front = Some(front);
                pooled
            }
            None => x.to_vec(),
        };
        for (l, s) in slots.iter().enumerate() {
            let mut affine = Affine::default();
            h = affine.forward(&h, &v[s.w..s.b()], &v[s.b()..s.b() + s.outputs], batch);
            out.affines.push(affine);
            if l + 1 == slots.len() {
                break;
            }
            if let Some(bn) = bn_slots.get(l) {
                let (gamma, beta) = (
                    &v[bn.gamma..bn.beta()],
                    &v[bn.beta()..bn.beta() + bn.features],
                );
                h = match pass {
                    Pass::Train { .. } => {
                        let mut layer = BatchNormalization::default();
                        let y = layer.forward_train(&h, gamma, beta, batch);
                        out.bns.push(layer);
                        y
                    }
                    Pass::Eval => BatchNormalization::forward_eval(
                        &h,
                        gamma,
                        beta,
                        &params.running[bn.running..bn.running_var()],
                        &params.running[bn.running_var()..bn.running_var() + bn.features],
                    ),
                };
            }
            let mut relu = Relu::default();
            h = relu.forward(&h);
            out.relus.push(relu);
            let ratio = self.arch.dropout;
            if ratio > 0.0 {
                h = match pass {
                    Pass::Train { step } => {
                        let mut layer = Dropout::default();
                        let y = layer.forward_train(
                            &h,
                            layer_key(self.seed, step, l as u32 + 1),
                            ratio,
                        );
                        out.dropouts.push(layer);
                        y
                    }
                    Pass::Eval => Dropout::forward_eval(&h, ratio),
                };
            }
        }
        out.logits = h;
        out
    }

    /// Conv → Relu → Pool on images x (B, C·H·W): the layers and the
    /// pooled values (B, FN·PH·PW), flattened per image as the book's Affine
    /// flattens them; None without a convolutional front.
    fn front_forward(&self, params: &Params, x: &[f64], batch: usize) -> Option<(Front, Vec<f64>)> {
        let (front, slot) = (self.arch.conv?, self.arch.conv_slot()?);
        let (conv_slide, pool_slide) = front
            .slides(batch)
            .expect("an Arch's convolutional front slides");
        let v = &params.values;
        let mut conv = Convolution::new(conv_slide, front.filter_num);
        let mut relu = Relu::default();
        let z = conv.forward(
            x,
            &v[slot.w..slot.b()],
            &v[slot.b()..slot.b() + slot.outputs],
        );
        let z = relu.forward(&z);
        let mut pool = Pooling::new(pool_slide);
        let pooled = pool.forward(&z);
        Some((Front { conv, relu, pool }, pooled))
    }

    fn forward(
        &self,
        params: &Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        pass: Pass,
    ) -> Forward {
        let h = self.forward_layers(params, x, batch, pass);
        let mut last = SoftmaxWithLoss::default();
        let data_loss = last.forward(&h.logits, t, batch);
        Forward {
            front: h.front,
            affines: h.affines,
            bns: h.bns,
            relus: h.relus,
            dropouts: h.dropouts,
            last,
            data_loss,
        }
    }

    /// `λ·½ΣW²`.
    fn decay_loss(&self, params: &Params) -> f64 {
        if self.weight_decay == 0.0 {
            0.0
        } else {
            self.weight_decay * params.half_weight_square_sum()
        }
    }

    /// The loss backprop differentiates: mean cross-entropy over the batch
    /// in training form at `step`, plus weight decay.
    pub fn loss(&self, params: &Params, x: &[f64], t: Labels<'_>, batch: usize, step: u32) -> f64 {
        self.forward(params, x, t, batch, Pass::Train { step })
            .data_loss
            + self.decay_loss(params)
    }

    /// [`Net::loss`] and a signature (FNV-1a hash) of every Relu's mask
    /// and every max pooling's argmax, so the numerical gradient can tell
    /// when a nudge crossed a kink (of Relu, or of a window's max).
    pub fn loss_and_signature(
        &self,
        params: &Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> (f64, u64) {
        let f = self.forward(params, x, t, batch, Pass::Train { step });
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for relu in f.front.iter().map(|front| &front.relu).chain(&f.relus) {
            for &m in relu.mask() {
                hash = (hash ^ m as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        for &at in f.front.iter().flat_map(|front| front.pool.argmax()) {
            hash = (hash ^ at as u64).wrapping_mul(0x0100_0000_01b3);
        }
        (f.data_loss + self.decay_loss(params), hash)
    }

    /// Which hidden outputs (after Relu and Dropout) of a training forward
    /// at `step` are positive, per hidden layer, (B, H) row-major: the units
    /// whose gradient passes. A float path that rounds a Relu input within
    /// its rounding of 0 to the other side differs here, and then
    /// legitimately in its gradient.
    pub fn active_units(
        &self,
        params: &Params,
        x: &[f64],
        batch: usize,
        step: u32,
    ) -> Vec<Vec<bool>> {
        let f = self.forward_layers(params, x, batch, Pass::Train { step });
        f.relus
            .iter()
            .enumerate()
            .map(|(l, relu)| match f.dropouts.get(l) {
                Some(d) => relu
                    .mask()
                    .iter()
                    .zip(d.mask())
                    .map(|(&a, &b)| a && b)
                    .collect(),
                None => relu.mask().to_vec(),
            })
            .collect()
    }

    /// Fraction of rows whose largest logit (evaluation form) is the label
    /// (first maximum wins, like numpy's argmax).
    pub fn accuracy(&self, params: &Params, x: &[f64], labels: &[u8]) -> f64 {
        let logits = self.predict(params, x, labels.len());
        correct_count(&logits, labels) as f64 / labels.len() as f64
    }

    /// Backprop at training step `step`: the cross-entropy (without weight
    /// decay) and the gradient of every parameter (with it), as an arena.
    pub fn gradient(
        &self,
        params: &Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> (f64, Params) {
        let (loss, grads, _) = self.gradient_keeping(params, x, t, batch, step);
        (loss, grads)
    }

    fn gradient_keeping(
        &self,
        params: &Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> (f64, Params, Vec<BatchNormalization>) {
        let f = self.forward(params, x, t, batch, Pass::Train { step });
        let mut grads = Params::zeros(&self.arch);
        let slots = self.arch.slots();
        let bn_slots = self.arch.bn_slots();
        let v = &params.values;
        let mut dout = f.last.backward();
        let front = f.front.is_some();
        for (l, s) in slots.iter().enumerate().rev() {
            let (dw, db) = grads.values[s.w..s.b() + s.outputs].split_at_mut(s.inputs * s.outputs);
            let dx = f.affines[l].backward(&dout, &v[s.w..s.b()], dw, db, l > 0 || front);
            self.add_decay(dw, &v[s.w..s.b()]);
            let Some(mut d) = dx else { break };
            let Some(k) = l.checked_sub(1) else {
                let layers = f
                    .front
                    .as_ref()
                    .expect("dx of the first Affine only with a front");
                self.front_backward(layers, &d, params, &mut grads);
                break;
            };
            if let Some(drop) = f.dropouts.get(k) {
                d = drop.backward(&d);
            }
            d = f.relus[k].backward(&d);
            if let Some(bn) = bn_slots.get(k) {
                let (dgamma, dbeta) =
                    grads.values[bn.gamma..bn.beta() + bn.features].split_at_mut(bn.features);
                d = f.bns[k].backward(&d, &v[bn.gamma..bn.beta()], dgamma, dbeta);
            }
            dout = d;
        }
        (f.data_loss, grads, f.bns)
    }

    /// `λ·W` added to a weight gradient.
    fn add_decay(&self, dw: &mut [f64], w: &[f64]) {
        if self.weight_decay != 0.0 {
            for (d, w) in dw.iter_mut().zip(w) {
                *d += self.weight_decay * w;
            }
        }
    }

    /// Pool → Relu → Conv backward from the pooled values' gradient `dp`
    /// into the filters' dW (the book's `[FN, C, FH, FW]`) and db.
    fn front_backward(&self, f: &Front, dp: &[f64], params: &Params, grads: &mut Params) {
        let s = self.arch.conv_slot().expect("a convolutional front");
        let w = &params.values[s.w..s.b()];
        let d = f.relu.backward(&f.pool.backward(dp));
        let g = f.conv.backward(&d, w);
        let (dw, db) = grads.values[s.w..s.b() + s.outputs].split_at_mut(s.inputs * s.outputs);
        dw.copy_from_slice(&g.dw);
        db.copy_from_slice(&g.db);
        self.add_decay(dw, w);
    }

    /// One training step: backprop, the running statistics' update, then the
    /// optimizer's update at learning rate `lr`. Returns the cross-entropy
    /// before the step.
    pub fn train_step(
        &self,
        params: &mut Params,
        optimizer: &mut OptimizerState,
        x: &[f64],
        labels: &[u8],
        lr: f64,
    ) -> f64 {
        let step = (optimizer.t + 1) as u32;
        let (loss, grads) =
            self.gradient_updating_running(params, x, Labels::Index(labels), labels.len(), step);
        optimizer.update(&mut params.values, &grads.values, lr);
        loss
    }

    /// [`Net::gradient`], and the running statistics' update its training
    /// forward makes (the book's BatchNormalization does both at once).
    pub fn gradient_updating_running(
        &self,
        params: &mut Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> (f64, Params) {
        let (loss, grads, bns) = self.gradient_keeping(params, x, t, batch, step);
        self.update_running(params, &bns);
        (loss, grads)
    }

    /// Logits in training form at `step` (batch statistics, Dropout's
    /// mask), and the running statistics' update that forward makes.
    pub fn predict_training(
        &self,
        params: &mut Params,
        x: &[f64],
        batch: usize,
        step: u32,
    ) -> Vec<f64> {
        let h = self.forward_layers(params, x, batch, Pass::Train { step });
        self.update_running(params, &h.bns);
        h.logits
    }

    /// [`Net::loss`], and the running statistics' update its training
    /// forward makes.
    pub fn loss_updating_running(
        &self,
        params: &mut Params,
        x: &[f64],
        t: Labels<'_>,
        batch: usize,
        step: u32,
    ) -> f64 {
        let f = self.forward(params, x, t, batch, Pass::Train { step });
        self.update_running(params, &f.bns);
        f.data_loss + self.decay_loss(params)
    }

    /// Each Batch Normalization layer's running mean and variance, moved
    /// towards the batch statistics `bns` kept.
    fn update_running(&self, params: &mut Params, bns: &[BatchNormalization]) {
        for (bn, slot) in bns.iter().zip(self.arch.bn_slots()) {
            let (mean, var) = params.running[slot.running..slot.running_var() + slot.features]
                .split_at_mut(slot.features);
            bn.update_running(mean, var);
        }
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

/// The first largest logit of each of `rows` rows.
pub fn predicted_classes(logits: &[f64], rows: usize) -> Vec<u8> {
    let c = logits.len() / rows.max(1);
    logits
        .chunks_exact(c)
        .map(|row| argmax(row) as u8)
        .collect()
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
