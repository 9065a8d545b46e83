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
            Device::Gpu(ctx) if params.arch.layers.is_some() => {
                let model = (params, list_stages(&params.arch)?);
                let shape = (workspace.batch, workspace.slots);
                Box::new(GpuTrainer::for_list(
                    ctx.clone(),
                    model,
                    data,
                    shape,
                    lr,
                    rule,
                )?)
            }
            Device::Gpu(ctx) => Box::new(GpuTrainer::new(
                ctx.clone(),
                params,
                data,
                workspace.batch,
                workspace.slots,
                lr,
                rule,
            )?),
            Device::Cpu => Box::new(CpuTrainer::new(&params.arch, params.clone(), data, rule)),
        })
    }
}

/// How the GPU runs a list network's layers, or which layer it cannot run.
pub fn list_stages(arch: &Arch) -> Result<Stages> {
    let plan = arch.list_plan().expect("a list network");
    Ok(Stages::new(&plan)?)
}
