//! The update rules of [`crate::core::optim`] in f64, over the whole parameter
//! arena at once (padding has zero gradient and so stays zero), as the book's
//! `common/optimizer.py` applies them to each array of `params`.

use crate::core::optim::{EPS, Optimizer, OptimizerKind};

/// A rule and the state it keeps, one array the size of the arena per
/// state variable (`v`; `h`; Adam's `m` and `v`).
#[derive(Clone, Debug)]
pub struct OptimizerState {
    pub rule: Optimizer,
    pub state: Vec<Vec<f64>>,
    /// Steps taken (Adam's `iter`); the next update is step `t + 1`.
    pub t: u64,
}

impl OptimizerState {
    pub fn new(rule: Optimizer, arena_len: usize) -> Self {
        OptimizerState {
            rule,
            state: vec![vec![0.0; arena_len]; rule.kind.state_arrays()],
            t: 0,
        }
    }

    /// One update of `params` with gradient `grads` at learning rate `lr`.
    pub fn update(&mut self, params: &mut [f64], grads: &[f64], lr: f64) {
        self.t += 1;
        let r = self.rule;
        let lr_t = r.step_lr(lr, self.t);
        match r.kind {
            OptimizerKind::Sgd => {
                for (p, g) in params.iter_mut().zip(grads) {
                    *p -= lr * g;
                }
            }
            OptimizerKind::Momentum => {
                for ((p, g), v) in params.iter_mut().zip(grads).zip(&mut self.state[0]) {
                    *v = r.momentum * *v - lr * g;
                    *p += *v;
                }
            }
            OptimizerKind::Nesterov => {
                let m = r.momentum;
                for ((p, g), v) in params.iter_mut().zip(grads).zip(&mut self.state[0]) {
                    *v *= m;
                    *v -= lr * g;
                    *p += m * m * *v;
                    *p -= (1.0 + m) * lr * g;
                }
            }
            OptimizerKind::AdaGrad => {
                for ((p, g), h) in params.iter_mut().zip(grads).zip(&mut self.state[0]) {
                    *h += g * g;
                    *p -= lr * g / (h.sqrt() + EPS);
                }
            }
            OptimizerKind::RmsProp => {
                let d = r.decay_rate;
                for ((p, g), h) in params.iter_mut().zip(grads).zip(&mut self.state[0]) {
                    *h *= d;
                    *h += (1.0 - d) * g * g;
                    *p -= lr * g / (h.sqrt() + EPS);
                }
            }
            OptimizerKind::Adam => {
                let (b1, b2) = (r.beta1, r.beta2);
                let (ms, vs) = self.state.split_at_mut(1);
                for (((p, g), m), v) in params.iter_mut().zip(grads).zip(&mut ms[0]).zip(&mut vs[0])
                {
                    *m += (1.0 - b1) * (g - *m);
                    *v += (1.0 - b2) * (g * g - *v);
                    *p -= lr_t * *m / (v.sqrt() + EPS);
                }
            }
        }
    }
}
