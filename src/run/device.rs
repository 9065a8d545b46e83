//! Where a run computes: the CPU reference path (f64) or a GPU (f32), and
//! the one place a [`Trainer`] is built for either, used by training,
//! evaluation, bench and the experiments.
//!
//! May import: cpu, gpu, core::trainer (the trait), model, data, optim, error.

use std::sync::Arc;

use crate::core::data::Mnist;
use crate::core::error::Result;
use crate::core::model::{Arch, Params};
use crate::core::optim::StepRule;
use crate::cpu::CpuTrainer;
use crate::gpu::ops::StepNet;
use crate::gpu::stages::Stages;
use crate::gpu::{GpuContext, GpuError, GpuOptions, GpuTrainer, tune};
use crate::run::epoch_loop::{Precision, Trainer};

/// Which device the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The GPU when an adapter exists, else the CPU with a warning.
    #[default]
    Auto,
    /// The GPU, or an error saying how to get a driver.
    Gpu,
    /// The CPU reference path (f64).
    Cpu,
}

/// An opened device.
#[derive(Clone)]
pub enum Device {
    Cpu,
    Gpu(Arc<GpuContext>),
}

/// The training workspace a GPU trainer reserves: its batch and how many
/// steps one submission records (the CPU needs neither).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workspace {
    pub batch: usize,
    pub slots: usize,
}

impl Device {
    /// Opens what `choice` asks for; `fell_back` hears why `Auto` took the
    /// CPU.
    pub fn open(
        choice: DeviceChoice,
        options: &GpuOptions,
        fell_back: &mut dyn FnMut(&GpuError),
    ) -> Result<Device> {
        match choice {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Gpu => Ok(Device::Gpu(Arc::new(tune::open(options)?))),
            DeviceChoice::Auto => match tune::open(options) {
                Ok(ctx) => Ok(Device::Gpu(Arc::new(ctx))),
                Err(e @ GpuError::NoAdapter(_)) => {
                    fell_back(&e);
                    Ok(Device::Cpu)
                }
                Err(e) => Err(e.into()),
            },
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            Device::Cpu => Precision::F64,
            Device::Gpu(_) => Precision::F32,
        }
    }

    /// The device in words, as a trainer on it describes itself.
    pub fn describe(&self) -> String {
        match self {
            Device::Gpu(ctx) => format!("gpu: {}", ctx.describe()),
            Device::Cpu => "cpu (f64 reference)".into(),
        }
    }

    /// A trainer of `params` on `data` with `rule`, starting at learning
    /// rate `lr`.
    pub fn trainer<'a>(
        &self,
        params: &Params,
        data: &'a Mnist,
        workspace: Workspace,
        lr: f32,
        rule: &StepRule,
    ) -> Result<Box<dyn Trainer + 'a>> {
        Ok(match self {
            Device::Gpu(ctx) => {
                gpu_trainer(ctx.clone(), params, data, workspace, (lr, rule), None)?
            }
            Device::Cpu => Box::new(CpuTrainer::new(&params.arch, params.clone(), data, rule)),
        })
    }
}

/// A GPU trainer of `params`, whichever network they hold, that keeps each
/// step's loss for up to `log_losses` steps between reads when given.
pub fn gpu_trainer<'a>(
    ctx: Arc<GpuContext>,
    params: &Params,
    data: &'a Mnist,
    workspace: Workspace,
    (lr, rule): (f32, &StepRule),
    log_losses: Option<usize>,
) -> Result<Box<dyn Trainer + 'a>> {
    fn logging<N: StepNet + 'static>(mut t: GpuTrainer<N>, log: Option<usize>) -> Box<dyn Trainer> {
        if let Some(capacity) = log {
            t.log_losses(capacity);
        }
        Box::new(t)
    }
    let shape = (workspace.batch, workspace.slots);
    Ok(match params.arch.layers {
        Some(_) => {
            let model = (params, list_stages(&params.arch)?);
            logging(
                GpuTrainer::for_list(ctx, model, data, shape, lr, rule)?,
                log_losses,
            )
        }
        None => {
            let (batch, slots) = shape;
            let t = GpuTrainer::new(ctx, params, data, batch, slots, lr, rule)?;
            logging(t, log_losses)
        }
    })
}

/// How the GPU runs a list network's layers, or which layer it cannot run.
pub fn list_stages(arch: &Arch) -> Result<Stages> {
    let plan = arch.list_plan().expect("a list network");
    Ok(Stages::new(&plan)?)
}
