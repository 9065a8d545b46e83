//! The flags that several commands share (the device, the GPU, the
//! network, the layers, the update rule); their values' parsers are in
//! `values`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::values::{
    Hidden, NetKind, conv_pad, conv_size, dropout_ratio, non_negative_f64, parse_hidden,
    parse_input_dim, parse_net, unit_interval,
};
use gpu_net::core::config::RunConfig;
use gpu_net::core::data;
use gpu_net::core::model::Init;
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

#[derive(Args, Clone)]
#[command(next_help_heading = "Model")]
pub struct NetArgs {
    /// The network: two-layer (or mlp: the book's MultiLayerNetExtend), multi-layer, simple-convnet, deep-convnet, a list of layers ("conv 16 3x3 pad 1, relu, pool 2x2, affine 10") or a file holding one.
    #[arg(long, default_value = "mlp", value_parser = parse_net)]
    pub net: NetKind,
    /// Hidden layer sizes, comma separated (e.g. 50 or 64,32); 50 for two-layer, six of 100 for multi-layer and 100 for simple-convnet by default.
    #[arg(long, value_parser = parse_hidden)]
    pub hidden: Option<Hidden>,
    #[command(flatten)]
    pub conv: ConvArgs,
    /// Seed for the weights and the minibatch order.
    #[arg(long, default_value_t = 0, help_heading = "Model")]
    pub seed: u64,
    /// Folder with the four MNIST-style IDX files (gzipped or not); the bundled MNIST by default.
    #[arg(long, help_heading = "Data")]
    pub data: Option<PathBuf>,
    /// Weight initialisation: a standard deviation (the book's 0.01), xavier (√(1/n)) or he (√(2/n)) [default: 0.01; he for deep-convnet and a list, as the book's DeepConvNet].
    #[arg(long, value_parser = Init::parse, help_heading = "Model", allow_negative_numbers = true)]
    pub init: Option<Init>,
}

/// SimpleConvNet's `input_dim` and `conv_param` (the book's defaults).
#[derive(Args, Clone)]
#[command(next_help_heading = "Model (simple-convnet)")]
pub struct ConvArgs {
    /// The images' channels, height and width (C,H,W; C·H·W must be the data's pixels) [default: 1,28,28].
    #[arg(long, value_parser = parse_input_dim)]
    pub input_dim: Option<[usize; 3]>,
    /// Filters of the convolution (filter_num) [default: 30].
    #[arg(long, value_parser = conv_size)]
    pub filter_num: Option<usize>,
    /// Filter side (filter_size) [default: 5].
    #[arg(long, value_parser = conv_size)]
    pub filter_size: Option<usize>,
    /// Zero padding around each image (pad) [default: 0].
    #[arg(long, value_parser = conv_pad)]
    pub pad: Option<usize>,
    /// Stride of the filter (stride) [default: 1].
    #[arg(long, value_parser = conv_size)]
    pub stride: Option<usize>,
}

/// The flags of [`ConvArgs`], as clap names them.
pub const CONV_FLAGS: &[&str] = &["input_dim", "filter_num", "filter_size", "pad", "stride"];

impl NetArgs {
    /// The hidden sizes given, or the kind's default (the book's: 50 for
    /// `TwoLayerNet`, 100 for `SimpleConvNet`).
    /// `--init`, or the network's default: He for a list of layers (the
    /// book's DeepConvNet draws so), the book's 0.01 for the others.
    pub fn init(&self) -> Init {
        match (self.init, self.net.list()) {
            (Some(init), _) => init,
            (None, Some(_)) => Init::He,
            (None, None) => Init::default(),
        }
    }

    pub fn hidden(&self) -> Vec<usize> {
        match (&self.hidden, &self.net) {
            (Some(h), _) => h.0.clone(),
            (None, NetKind::MultiLayer) => vec![100; 6],
            (None, NetKind::SimpleConvnet) => vec![100],
            (None, _) => vec![50],
        }
    }

    /// The convolutional front of `--net simple-convnet`.
    pub fn conv(&self) -> anyhow::Result<Option<gpu_net::core::conv::ConvFront>> {
        self.conv.front(&self.net)
    }

    /// `config` with the network the flags give: its hidden sizes and
    /// front, its layers' `--batchnorm` and `--dropout`, or a list's text
    /// (on `--input-dim`'s images, 1×28×28 by default, unless it says its
    /// own `input`), which those flags may not change.
    pub fn fill(&self, layers: &LayerArgs, config: RunConfig) -> anyhow::Result<RunConfig> {
        let Some(text) = self.net.list() else {
            return Ok(RunConfig {
                hidden: self.hidden(),
                conv: self.conv()?,
                batchnorm: layers.batchnorm,
                dropout: layers.dropout,
                ..config
            });
        };
        let given = [
            ("hidden", self.hidden.is_some()),
            ("batchnorm", layers.batchnorm),
            ("dropout", layers.dropout > 0.0),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            return Err(UsageError(format!(
                "--{flag} is a setting of the presets; a list of layers says its own (affine N, batchnorm, dropout R)"
            ))
            .into());
        }
        Ok(RunConfig {
            network: Some(self.conv.list_text(&text)?),
            ..config
        })
    }
}

impl ConvArgs {
    /// The front `net` has: none for `mlp` (where a convolution flag is a
    /// usage error), else the book's `conv_param` with the flags given.
    pub fn front(&self, net: &NetKind) -> anyhow::Result<Option<gpu_net::core::conv::ConvFront>> {
        if *net != NetKind::SimpleConvnet {
            let given = [
                self.input_dim.is_some(),
                self.filter_num.is_some(),
                self.filter_size.is_some(),
                self.pad.is_some(),
                self.stride.is_some(),
            ];
            if let Some(i) = given.iter().position(|&g| g) {
                let flag = CONV_FLAGS[i].replace('_', "-");
                if net.list().is_some() {
                    return Err(UsageError(format!(
                        "--{flag} is a setting of simple-convnet; a list of layers says its own (conv N KxK [stride S] [pad P])"
                    ))
                    .into());
                }
                return Err(UsageError(format!(
                    "--{flag} is a setting of the convolution: give --net simple-convnet with it"
                ))
                .into());
            }
            return Ok(None);
        }
        let book = gpu_net::core::conv::ConvFront::book();
        Ok(Some(gpu_net::core::conv::ConvFront {
            input_dim: self.input_dim.unwrap_or(book.input_dim),
            filter_num: self.filter_num.unwrap_or(book.filter_num),
            filter_size: self.filter_size.unwrap_or(book.filter_size),
            pad: self.pad.unwrap_or(book.pad),
            stride: self.stride.unwrap_or(book.stride),
        }))
    }
}

impl ConvArgs {
    /// A list's input: `--input-dim`, or the book's 1×28×28; the filter
    /// flags are simple-convnet's.
    pub fn list_input(&self) -> anyhow::Result<[usize; 3]> {
        let filters = [self.filter_num, self.filter_size, self.pad, self.stride];
        if let Some(i) = filters.iter().position(Option::is_some) {
            let flag = CONV_FLAGS[i + 1].replace('_', "-");
            return Err(UsageError(format!(
                "--{flag} is a setting of simple-convnet; a list of layers says its own (conv N KxK [stride S] [pad P])"
            ))
            .into());
        }
        Ok(self.input_dim.unwrap_or([1, 28, 28]))
    }

    /// A list's text with its input first (`Network::text`): on
    /// [`ConvArgs::list_input`]'s images unless it says its own; a list
    /// that does not plan is a usage error.
    pub fn list_text(&self, text: &str) -> anyhow::Result<String> {
        let [c, h, w] = self.list_input()?;
        let input = gpu_net::core::network::Values::Image { c, h, w };
        let network = gpu_net::core::network::Network::parse(text, input)
            .map_err(|e| UsageError(format!("--net: {e}")))?;
        Ok(network.text())
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
