//! The flags that several commands share (the device, the GPU, the
//! layers, the update rule; the network's are in `net_args`); their
//! values' parsers are in `values`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::values::{dropout_ratio, non_negative_f64, unit_interval};
use gpu_net::core::data;
use gpu_net::core::optim::{Optimizer, OptimizerKind};
use gpu_net::gpu::kernels::MatmulAlgo;
use gpu_net::gpu::{self, GpuOptions};
use gpu_net::run::device::DeviceChoice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// The GPU when an adapter exists, else the CPU with a warning.
    Auto,
    /// The GPU, or an error saying how to get a driver.
    Gpu,
    /// The CPU reference path (f64).
    Cpu,
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Device")]
pub struct GpuArgs {
    /// Only this backend: vulkan, metal, dx12 or gl (or several, comma
    /// separated); WGPU_BACKEND's when not given.
    #[arg(long, value_parser = gpu::adapter::parse_backends)]
    pub backend: Option<wgpu::Backends>,
    /// Adapter index from `gpu-net devices` (given the same --backend);
    /// when not given, the first adapter whose name contains
    /// WGPU_ADAPTER_NAME, else the best one.
    #[arg(long)]
    pub adapter: Option<usize>,
    /// Matmul implementation: tiled (for GPUs), vec4 (for CPU adapters such
    /// as lavapipe, operands copied into textures) or vec4-buffers (the same
    /// kernel reading the buffers); chosen by the adapter's type by default.
    #[arg(long, value_enum, ignore_case = true)]
    pub matmul_kernel: Option<MatmulKernel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MatmulKernel {
    Tiled,
    Vec4,
    /// The vec4 kernel reading its operands straight from the buffers,
    /// not from texture copies.
    Vec4Buffers,
}

impl GpuArgs {
    pub fn options(&self) -> GpuOptions {
        GpuOptions {
            backend: self.backend,
            adapter: self.adapter,
            matmul: self.matmul_kernel.map(|k| match k {
                MatmulKernel::Tiled => MatmulAlgo::Tiled,
                MatmulKernel::Vec4 => MatmulAlgo::Vec4,
                MatmulKernel::Vec4Buffers => MatmulAlgo::Vec4Buffers,
            }),
        }
    }
}

/// What sits between the layers, and weight decay.
#[derive(Args, Clone)]
#[command(next_help_heading = "Model")]
pub struct LayerArgs {
    /// Batch Normalization between each hidden Affine and its Relu.
    #[arg(long)]
    pub batchnorm: bool,
    /// Dropout ratio after each hidden Relu, in [0, 1) (the book's form, not inverted).
    #[arg(long, default_value_t = 0.0, value_parser = dropout_ratio, allow_negative_numbers = true)]
    pub dropout: f32,
    /// Weight decay λ: ½λ·ΣW² added to the loss (weights only, not biases, gamma or beta).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_f64, allow_negative_numbers = true)]
    pub weight_decay: f64,
}

/// The update rule and its hyperparameters (the book's defaults).
#[derive(Args, Clone)]
#[command(next_help_heading = "Optimizer")]
pub struct OptimizerArgs {
    /// sgd, momentum, nesterov, adagrad, rmsprop or adam.
    #[arg(long, default_value = "sgd", value_parser = OptimizerKind::parse)]
    pub optimizer: OptimizerKind,
    /// Momentum and Nesterov's momentum, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Adam's β1, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval, allow_negative_numbers = true)]
    pub beta1: f64,
    /// Adam's β2, in [0, 1).
    #[arg(long, default_value_t = 0.999, value_parser = unit_interval, allow_negative_numbers = true)]
    pub beta2: f64,
    /// RMSprop's decay rate, in [0, 1).
    #[arg(long, default_value_t = 0.99, value_parser = unit_interval, allow_negative_numbers = true)]
    pub decay_rate: f64,
}

impl OptimizerArgs {
    pub fn optimizer(&self) -> Optimizer {
        Optimizer {
            kind: self.optimizer,
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            decay_rate: self.decay_rate,
        }
    }
}

/// A flag whose value is wrong only in the light of the data or the other
/// flags: reported like clap's errors, with exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<DeviceArg> for DeviceChoice {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Gpu => DeviceChoice::Gpu,
            DeviceArg::Cpu => DeviceChoice::Cpu,
        }
    }
}

/// The bundled MNIST unless `dir` names another IDX folder.
pub fn load_data(dir: &Option<PathBuf>) -> anyhow::Result<data::Mnist> {
    Ok(data::load_dir(&gpu_net::run::data_dir(dir.as_deref())?)?)
}
