//! The flags that choose the network (`--net`, `--hidden`, the
//! convolution's, `--init`, `--seed`, `--data`) and the run configuration
//! they fill; their values' parsers are in `values`.

use std::path::PathBuf;

use clap::Args;

use super::args::{LayerArgs, UsageError};
use super::values::{
    Hidden, NetKind, conv_pad, conv_size, parse_hidden, parse_input_dim, parse_net,
};
use gpu_net::core::config::RunConfig;
use gpu_net::core::model::Init;

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
    /// `--init`, or the network's default: He for a list of layers (the
    /// book's DeepConvNet draws so), the book's 0.01 for the others.
    pub fn init(&self) -> Init {
        match (self.init, self.net.list()) {
            (Some(init), _) => init,
            (None, Some(_)) => Init::He,
            (None, None) => Init::default(),
        }
    }

    /// The hidden sizes given, or the kind's default (the book's: 50 for
    /// `TwoLayerNet`, six of 100 for `MultiLayerNet`, 100 for `SimpleConvNet`).
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
            return Err(list_says_its_own(flag).into());
        }
        Ok(RunConfig {
            network: Some(self.conv.list_text(&text)?),
            ..config
        })
    }
}

/// `--flag` given with `deep-convnet` or a list of layers, which say their
/// own hidden layers.
pub fn list_says_its_own(flag: &str) -> UsageError {
    let presets = match flag {
        "hidden" => "two-layer, multi-layer and simple-convnet",
        _ => "two-layer and multi-layer",
    };
    UsageError(format!(
        "--{flag} is a setting of {presets}; deep-convnet and a list of layers say their own (affine N, batchnorm, dropout R)"
    ))
}

impl ConvArgs {
    /// The front `net` has: none for `mlp` (where a convolution flag is a
    /// usage error), else the book's `conv_param` with the flags given.
    pub fn front(&self, net: &NetKind) -> anyhow::Result<Option<gpu_net::core::conv::ConvFront>> {
        if net.list().is_some() {
            self.list_input()?; // a list takes --input-dim, and refuses the rest
            return Ok(None);
        }
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

    /// A list's input: `--input-dim`, or the book's 1×28×28 (the filter
    /// flags are simple-convnet's).
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
