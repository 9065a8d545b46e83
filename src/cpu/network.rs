//! A network on the CPU, whichever it is: the book's `MultiLayerNetExtend`
//! or `SimpleConvNet` (`net::Net`), or a list of layers
//! (`sequential::Sequential`), with what training and evaluation ask of both.
//!
//! May import: the rest of cpu, model, optim.

use super::net::correct_count;
use super::sequential::{Sequential, Weights};
use super::{Labels, Net, OptimizerState};
use crate::core::model::{Arch, Params};
use crate::core::optim::StepRule;

/// The network on the CPU: the book's `MultiLayerNetExtend` or
/// `SimpleConvNet` (`Net`), or a list of layers (`Sequential`).
pub enum CpuNetwork {
    Book(Net),
    List(Sequential),
}

impl CpuNetwork {
    pub fn new(arch: &Arch, rule: &StepRule) -> Self {
        match arch.list_plan() {
            Some(plan) => {
                let mut seq = Sequential::new(plan);
                (seq.weight_decay, seq.seed) = (rule.weight_decay, rule.seed);
                CpuNetwork::List(seq)
            }
            None => CpuNetwork::Book(
                Net::new(arch)
                    .with_weight_decay(rule.weight_decay)
                    .with_seed(rule.seed),
            ),
        }
    }

    /// One step on `x`, `labels`: the cross-entropy before it.
    pub fn train_step(
        &self,
        params: &mut Params,
        optimizer: &mut OptimizerState,
        (x, labels): (&[f64], &[u8]),
        lr: f64,
    ) -> f64 {
        let seq = match self {
            CpuNetwork::Book(net) => return net.train_step(params, optimizer, x, labels, lr),
            CpuNetwork::List(seq) => seq,
        };
        let step = (optimizer.t + 1) as u32;
        let w = Self::weights(params);
        let (loss, grads) = seq.gradient(w, x, Labels::Index(labels), labels.len(), step);
        optimizer.update(&mut params.values, &grads, lr);
        loss
    }

    pub fn predict(&self, params: &Params, x: &[f64], batch: usize) -> Vec<f64> {
        match self {
            CpuNetwork::Book(net) => net.predict(params, x, batch),
            CpuNetwork::List(seq) => seq.predict(Self::weights(params), x, batch),
        }
    }
}

impl CpuNetwork {
    /// The list's parameters as a pass reads them.
    fn weights(params: &Params) -> Weights<'_> {
        Weights {
            values: &params.values,
            running: &params.running,
        }
    }

    /// Backprop at training step `step`: the cross-entropy (without weight
    /// decay) and the gradient of every parameter (with it).
    pub fn gradient(
        &self,
        params: &Params,
        (x, t): (&[f64], Labels<'_>),
        batch: usize,
        step: u32,
    ) -> (f64, Params) {
        match self {
            CpuNetwork::Book(net) => net.gradient(params, x, t, batch, step),
            CpuNetwork::List(seq) => {
                let (loss, values) = seq.gradient(Self::weights(params), x, t, batch, step);
                let running = vec![0.0; params.running.len()];
                let arch = params.arch.clone();
                (
                    loss,
                    Params {
                        arch,
                        values,
                        running,
                    },
                )
            }
        }
    }

    /// The loss backprop differentiates (training form at `step`, weight
    /// decay included) and a signature of every Relu's mask and pooling's
    /// argmax, for the numerical gradient to tell a nudge that crossed a kink.
    pub fn loss_and_signature(
        &self,
        params: &Params,
        (x, t): (&[f64], Labels<'_>),
        batch: usize,
        step: u32,
    ) -> (f64, u64) {
        match self {
            CpuNetwork::Book(net) => net.loss_and_signature(params, x, t, batch, step),
            CpuNetwork::List(seq) => {
                seq.loss_and_signature(Self::weights(params), x, t, batch, step)
            }
        }
    }

    /// The network of `arch` for evaluation (no weight decay, no seed).
    pub fn of(arch: &Arch) -> Self {
        CpuNetwork::new(arch, &StepRule::default())
    }

    /// Fraction of rows whose first largest logit is the label.
    pub fn accuracy(&self, params: &Params, x: &[f64], labels: &[u8]) -> f64 {
        let logits = self.predict(params, x, labels.len());
        correct_count(&logits, labels) as f64 / labels.len() as f64
    }
}
