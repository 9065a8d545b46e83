//! The book's Trainer's evaluation with `evaluate_sample_num_per_epoch`:
//! the accuracy on the first N images of each split, on the device the run
//! trains on (the GPU keeps an evaluator per split; the CPU runs the f64
//! reference on them).
//!
//! May import: core, cpu, gpu, run (the device).

use crate::core::data::{Dataset, Mnist};
use crate::core::error::Result;
use crate::core::model::Params;
use crate::core::trainer::Split;
use crate::cpu::CpuNetwork;
use crate::gpu::eval::ParamsEvaluator;
use crate::gpu::list_trainer::evaluator;
use crate::run::device::Device;

/// The first images of each split, ready to be evaluated.
pub enum FirstImages {
    Gpu([Box<dyn ParamsEvaluator>; 2]),
    Cpu([Dataset; 2]),
}

impl FirstImages {
    /// The first `n` images of each split (all of a smaller one).
    pub fn new(device: &Device, params: &Params, data: &Mnist, n: usize) -> Result<Self> {
        let first = |d: &Dataset| d.first(n.min(d.len()));
        let sets = [first(&data.train), first(&data.test)];
        Ok(match device {
            Device::Gpu(ctx) => {
                let [train, test] = &sets;
                FirstImages::Gpu([
                    evaluator(ctx.clone(), params, train)?,
                    evaluator(ctx.clone(), params, test)?,
                ])
            }
            Device::Cpu => FirstImages::Cpu(sets),
        })
    }

    /// The accuracy of `params` (with Batch Normalization's running
    /// statistics) on the first images of `split`.
    pub fn accuracy(&self, params: &Params, split: Split) -> Result<f64> {
        let i = match split {
            Split::Train => 0,
            Split::Test => 1,
        };
        Ok(match self {
            FirstImages::Gpu(evals) => {
                evals[i].load(params);
                evals[i].evaluate()?.1
            }
            FirstImages::Cpu(sets) => {
                let d = &sets[i];
                let all: Vec<usize> = (0..d.len()).collect();
                CpuNetwork::of(&params.arch).accuracy(params, &d.batch_f64(&all), &d.labels)
            }
        })
    }
}
