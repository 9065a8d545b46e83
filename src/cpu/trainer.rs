//! The CPU reference path as a [`Trainer`]: the book's network in f64,
//! trained and evaluated on the host.
//!
//! May import: the rest of cpu, core::trainer (the trait it implements), model,
//! data, optim, error.

use super::network::CpuNetwork;
use super::{Labels, OptimizerState};
use crate::core::data::{Dataset, Mnist};
use crate::core::error::{Result, fail_unless};
use crate::core::model::{Arch, Params};
use crate::core::optim::StepRule;
use crate::core::trainer::{Precision, Split, Trainer};

/// The CPU reference path as a [`Trainer`]: f64 throughout.
pub struct CpuTrainer<'a> {
    net: CpuNetwork,
    pub params: Params,
    pub optimizer: OptimizerState,
    data: &'a Mnist,
    loss_sum: f64,
    loss_steps: usize,
}

impl<'a> CpuTrainer<'a> {
    pub fn new(arch: &Arch, params: Params, data: &'a Mnist, rule: &StepRule) -> Self {
        CpuTrainer {
            net: CpuNetwork::new(arch, rule),
            optimizer: OptimizerState::new(rule.optimizer, params.values.len()),
            params,
            data,
            loss_sum: 0.0,
            loss_steps: 0,
        }
    }

    fn split(&self, split: Split) -> &'a Dataset {
        match split {
            Split::Train => &self.data.train,
            Split::Test => &self.data.test,
        }
    }
}

impl Trainer for CpuTrainer<'_> {
    fn device(&self) -> String {
        "cpu (f64 reference)".into()
    }

    fn precision(&self) -> Precision {
        Precision::F64
    }

    fn train_steps(&mut self, batches: &[Vec<u32>], lr: f32) -> Result<()> {
        for batch in batches {
            let idx: Vec<usize> = batch.iter().map(|&i| i as usize).collect();
            let x = self.data.train.batch_f64(&idx);
            let t = self.data.train.batch_labels(&idx);
            let (params, optimizer) = (&mut self.params, &mut self.optimizer);
            self.loss_sum += self.net.train_step(params, optimizer, (&x, &t), lr as f64);
            self.loss_steps += 1;
        }
        Ok(())
    }

    fn take_mean_loss(&mut self) -> Result<f64> {
        let mean = self.loss_sum / self.loss_steps.max(1) as f64;
        (self.loss_sum, self.loss_steps) = (0.0, 0);
        Ok(mean)
    }

    fn evaluate(&mut self, split: Split) -> Result<(f64, f64)> {
        let data = self.split(split);
        let (mut loss, mut correct) = (0.0, 0);
        let chunk = super::memory::eval_rows(&self.params.arch);
        for start in (0..data.len()).step_by(chunk) {
            let idx: Vec<usize> = (start..(start + chunk).min(data.len())).collect();
            let x = data.batch_f64(&idx);
            let t = data.batch_labels(&idx);
            let logits = self.net.predict(&self.params, &x, idx.len());
            let mut last = super::SoftmaxWithLoss::default();
            loss += last.forward(&logits, Labels::Index(&t), idx.len()) * idx.len() as f64;
            correct += super::net::correct_count(&logits, &t);
        }
        let n = data.len().max(1) as f64;
        Ok((loss / n, correct as f64 / n))
    }

    fn params(&mut self) -> Result<Params> {
        Ok(self.params.clone())
    }

    fn predictions(&mut self, split: Split) -> Result<Vec<u8>> {
        let data = self.split(split);
        let mut out = Vec::with_capacity(data.len());
        let chunk = super::memory::eval_rows(&self.params.arch);
        for start in (0..data.len()).step_by(chunk) {
            let idx: Vec<usize> = (start..(start + chunk).min(data.len())).collect();
            let logits = self
                .net
                .predict(&self.params, &data.batch_f64(&idx), idx.len());
            out.extend(super::net::predicted_classes(&logits, idx.len()));
        }
        Ok(out)
    }

    fn optimizer_state(&mut self) -> Result<Vec<Vec<f64>>> {
        Ok(self.optimizer.state.clone())
    }

    fn steps_done(&self) -> u64 {
        self.optimizer.t
    }

    fn restore(&mut self, optimizer_state: &[Vec<f64>], steps: u64) -> Result<()> {
        fail_unless!(
            optimizer_state.len() == self.optimizer.state.len()
                && optimizer_state
                    .iter()
                    .all(|s| s.len() == self.params.values.len()),
            "the optimizer state does not fit this network and rule"
        );
        self.optimizer.state = optimizer_state.to_vec();
        self.optimizer.t = steps;
        Ok(())
    }
}
