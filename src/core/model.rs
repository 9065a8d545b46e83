//! The network's description and its parameters: one description shared by
//! the CPU and the GPU path, so neither can drift from the other.
//!
//! The network is the book's `MultiLayerNetExtend`: per hidden layer
//! `Affine → [BatchNorm] → Relu → [Dropout]`, then `Affine → SoftmaxWithLoss`;
//! or, with a convolutional front ([`ConvFront`]), the book's
//! `SimpleConvNet`: `Conv1 → Relu1 → Pool1`, then those Affine layers.
//!
//! All trainable parameters live in one arena (a flat vector) with a table of
//! offsets. Layer `l` (1-based, as the book names `W1`, `b1`) stores `W_l` as
//! an `[I, O]` row-major matrix immediately followed by `b_l` (`[O]`), so the
//! pair is one `[I + 1, O]` matrix: `[X, 1]·[W; b] = X·W + b`, and the
//! gradient of the pair is one product `[X, 1]ᵀ·dY = [dW; db]`. With Batch
//! Normalization, `gamma_l` and `beta_l` follow all the affine blocks. The GPU
//! keeps the same blocks with padded rows (`gpu::layout`). Each block starts
//! on a multiple of 64 elements. Batch Normalization's running statistics are
//! not trained: they live beside the arena ([`Params::running`]). A
//! convolution's `W1` (`[FN, C, FH, FW]`, the book's shape) and `b1` come
//! first, before the Affine blocks.

use rand::SeedableRng;

use crate::core::network::{Layer, Network, NetworkError, Plan, Values};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

pub use crate::core::arena::{ARENA_ALIGN, Init, MAX_PARAMS, Tensor, WEIGHT_INIT_STD};
pub use crate::core::conv::ConvFront;

/// The most hidden layers: far past any network the book trains, and it
/// keeps what scales with depth small (a checkpoint's header is about 1 kB a
/// layer with Batch Normalization and Adam, well inside the reader's limit;
/// each layer is several dispatches per step).
pub const MAX_HIDDEN_LAYERS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    #[error("--hidden: {0}")]
    Hidden(String),
    #[error("--dropout: {0}")]
    Dropout(String),
    /// The convolution's shapes (the flags of `--net simple-convnet`).
    #[error("--net simple-convnet: {0}")]
    Conv(String),
    /// A network given as a list of layers (`--net deep-convnet`, a list, a file).
    #[error("--net: {0}")]
    List(String),
}

/// A network that cannot be built from its settings.
impl crate::core::error::LayerError for ArchError {
    fn is_usage(&self) -> bool {
        true
    }
}

impl ArchError {
    /// What is wrong, without the flag: for networks that came from a
    /// checkpoint, not from the command line.
    pub fn reason(&self) -> &str {
        match self {
            ArchError::Hidden(why)
            | ArchError::Dropout(why)
            | ArchError::Conv(why)
            | ArchError::List(why) => why,
        }
    }
}

/// The network: the Affine layers' sizes from input to output (e.g.
/// `[784, 50, 10]`; after a convolutional front the first is its pooled
/// values per image), what sits between the hidden layers, and the front.
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    pub sizes: Vec<usize>,
    /// Conv → Relu → Pool before the Affine layers (`SimpleConvNet`).
    pub conv: Option<ConvFront>,
    /// Batch Normalization between each hidden Affine and its Relu.
    pub batchnorm: bool,
    /// Dropout ratio after each hidden Relu; 0 for none.
    pub dropout: f32,
    /// A network given as a list of layers (`--net deep-convnet`, a list of
    /// one's own): the list, when it is none of the shapes above. `sizes`
    /// then holds the input's values and each Affine's outputs, and the
    /// arena, its tensors and the running statistics are the list's
    /// (`core::network`); the other fields are unset.
    pub layers: Option<Network>,
}

/// Layer sizes as people write a network: `784-50-10`.
pub fn shape_text(sizes: &[usize]) -> String {
    let sizes: Vec<String> = sizes.iter().map(|n| n.to_string()).collect();
    sizes.join("-")
}

/// Where one layer's parameters sit in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSlot {
    /// Inputs (`I`) and outputs (`O`) of the layer.
    pub inputs: usize,
    pub outputs: usize,
    /// Offset of `W` (`[I, O]`); `b` follows at `w + I·O`.
    pub w: usize,
}

impl LayerSlot {
    pub fn b(&self) -> usize {
        self.w + self.inputs * self.outputs
    }
    /// Elements of `[W; b]`.
    pub fn len(&self) -> usize {
        (self.inputs + 1) * self.outputs
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where one Batch Normalization layer's `gamma` and `beta` sit in the arena,
/// and its running statistics in [`Params::running`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnSlot {
    pub features: usize,
    /// Offset of `gamma` (`[features]`); `beta` follows.
    pub gamma: usize,
    /// Offset of the running mean in `Params::running`; the variance follows.
    pub running: usize,
}

impl BnSlot {
    pub fn beta(&self) -> usize {
        self.gamma + self.features
    }
    pub fn running_var(&self) -> usize {
        self.running + self.features
    }
}

impl Arch {
    /// A plain network (no Batch Normalization, no Dropout).
    pub fn new(sizes: Vec<usize>) -> Result<Self, ArchError> {
        if sizes.len() < 2 {
            return Err(ArchError::Hidden(
                "a network needs an input and an output size".into(),
            ));
        }
        if let Some(z) = sizes.iter().position(|&s| s == 0) {
            return Err(ArchError::Hidden(format!("layer {z} has size 0")));
        }
        if sizes.len() - 2 > MAX_HIDDEN_LAYERS {
            return Err(ArchError::Hidden(format!(
                "{} hidden layers, over the limit of {MAX_HIDDEN_LAYERS}",
                sizes.len() - 2
            )));
        }
        let params: u128 = sizes
            .windows(2)
            .map(|io| (io[0] as u128 + 1) * io[1] as u128)
            .sum::<u128>()
            + 2 * sizes[1..sizes.len() - 1]
                .iter()
                .map(|&s| s as u128)
                .sum::<u128>();
        if params > MAX_PARAMS as u128 {
            return Err(ArchError::Hidden(format!(
                "{} has {params} parameters, over the limit of {MAX_PARAMS}",
                shape_text(&sizes)
            )));
        }
        Ok(Arch {
            sizes,
            conv: None,
            batchnorm: false,
            dropout: 0.0,
            layers: None,
        })
    }

    /// The network a list of layers describes (one that plans).
    pub fn from_network(network: Network) -> Result<Self, NetworkError> {
        let plan = network.plan()?;
        let affines = plan.layers.iter().filter_map(|p| match p.layer {
            Layer::Affine { outputs } => Some(outputs),
            _ => None,
        });
        Ok(Arch {
            sizes: std::iter::once(network.inputs()).chain(affines).collect(),
            conv: None,
            batchnorm: false,
            dropout: 0.0,
            layers: Some(network),
        })
    }

    /// The list of layers this network is: its
    /// convolutional front (Conv → Relu → Pool 2×2), then per hidden layer
    /// Affine → [BatchNorm] → Relu → [Dropout], then the last Affine.
    pub fn network(&self) -> Network {
        if let Some(network) = &self.layers {
            return network.clone();
        }
        let arch = self;
        let mut layers = vec![];
        let input = match arch.conv {
            Some(front) => {
                let [c, h, w] = front.input_dim;
                layers.extend([
                    Layer::Convolution {
                        filters: front.filter_num,
                        size: front.filter_size,
                        stride: front.stride,
                        pad: front.pad,
                    },
                    Layer::Relu,
                    Layer::Pooling { size: 2, stride: 2 },
                ]);
                Values::Image { c, h, w }
            }
            None => Values::Flat(arch.sizes[0]),
        };
        for &outputs in arch.hidden() {
            layers.push(Layer::Affine { outputs });
            if arch.batchnorm {
                layers.push(Layer::BatchNorm);
            }
            layers.push(Layer::Relu);
            if arch.dropout > 0.0 {
                layers.push(Layer::Dropout {
                    ratio: arch.dropout,
                });
            }
        }
        layers.push(Layer::Affine {
            outputs: arch.outputs(),
        });
        Network { input, layers }
    }

    /// A list network's plan; None for the other shapes.
    pub fn list_plan(&self) -> Option<Plan> {
        let network = self.layers.as_ref()?;
        Some(
            network
                .plan()
                .expect("an Arch's list was planned when it was made"),
        )
    }

    /// This network's Affine layers behind a convolutional front: the first
    /// Affine takes the pooled values. Refused where the front's shapes do
    /// not slide, and with Batch Normalization or Dropout (the book's
    /// `SimpleConvNet` has neither).
    pub fn with_conv(mut self, front: ConvFront) -> Result<Self, ArchError> {
        if self.batchnorm || self.dropout > 0.0 {
            return Err(ArchError::Conv(
                "SimpleConvNet has no Batch Normalization or Dropout layer (drop --batchnorm and --dropout)".into(),
            ));
        }
        front
            .slides(1)
            .map_err(|e| ArchError::Conv(format!("{}: {e}", front.describe())))?;
        self.sizes[0] = front.pooled();
        // The first Affine's inputs are the front's pooled values: a network
        // too large for the limits is the front's to answer for.
        let mut arch = Arch::new(self.sizes).map_err(|e| {
            ArchError::Conv(format!(
                "{} pools each image to {} values: {}",
                front.describe(),
                front.pooled(),
                e.reason()
            ))
        })?;
        arch.conv = Some(front);
        let params = arch.arena_len() as u128;
        if params > MAX_PARAMS as u128 {
            return Err(ArchError::Conv(format!(
                "{} and {} need {params} parameters, over the limit of {MAX_PARAMS}",
                front.describe(),
                shape_text(&arch.sizes)
            )));
        }
        Ok(arch)
    }

    /// The book's `SimpleConvNet`: `front`, the hidden sizes (the book's
    /// one `hidden_size`), `outputs`.
    pub fn simple_convnet(
        front: ConvFront,
        hidden: &[usize],
        outputs: usize,
    ) -> Result<Self, ArchError> {
        Arch::mlp(front.pixels(), hidden, outputs)?.with_conv(front)
    }

    /// `inputs`, the hidden sizes, `outputs`.
    pub fn mlp(inputs: usize, hidden: &[usize], outputs: usize) -> Result<Self, ArchError> {
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(outputs);
        Arch::new(sizes)
    }

    pub fn with_batchnorm(mut self, on: bool) -> Self {
        self.batchnorm = on;
        self
    }

    /// Dropout after each hidden Relu; `ratio` in [0, 1).
    pub fn with_dropout(mut self, ratio: f32) -> Result<Self, ArchError> {
        if !(0.0..1.0).contains(&ratio) {
            return Err(ArchError::Dropout(format!(
                "{ratio} is not a ratio in [0, 1)"
            )));
        }
        self.dropout = ratio;
        Ok(self)
    }

    /// Parses a comma list of hidden sizes (`"50"`, `"64,32"`).
    pub fn parse_hidden(list: &str) -> Result<Vec<usize>, ArchError> {
        list.split(',')
            .map(|s| {
                let s = s.trim();
                match s.parse::<usize>() {
                    Ok(0) => Err(ArchError::Hidden(format!(
                        "size 0 in {list:?}; sizes must be at least 1"
                    ))),
                    Ok(n) if n > 1 << 16 => Err(ArchError::Hidden(format!(
                        "size {n} in {list:?} is over the limit of 65536"
                    ))),
                    Ok(n) => Ok(n),
                    Err(_) => Err(ArchError::Hidden(format!(
                        "{s:?} in {list:?} is not a positive integer (expected e.g. 50 or 64,32)"
                    ))),
                }
            })
            .collect()
    }

    /// Values per input sample: the image's C·H·W with a convolutional
    /// front, else the first Affine's inputs.
    pub fn inputs(&self) -> usize {
        self.conv.map_or(self.sizes[0], |c| c.pixels())
    }
    pub fn outputs(&self) -> usize {
        *self.sizes.last().unwrap()
    }
    pub fn hidden(&self) -> &[usize] {
        &self.sizes[1..self.sizes.len() - 1]
    }

    /// The layers as the book lists them, e.g. `Affine1 BatchNorm1 Relu1
    /// Dropout1 Affine2 SoftmaxWithLoss`, or `Conv1 Relu1 Pool1 Affine1
    /// Relu2 Affine2 SoftmaxWithLoss`.
    pub fn describe(&self) -> String {
        if let Some(network) = &self.layers {
            return network.to_string();
        }
        let mut parts = Vec::new();
        let relu = self.conv.is_some() as usize;
        if self.conv.is_some() {
            parts.extend(["Conv1", "Relu1", "Pool1"].map(String::from));
        }
        for l in 1..self.sizes.len() {
            parts.push(format!("Affine{l}"));
            if l + 1 < self.sizes.len() {
                if self.batchnorm {
                    parts.push(format!("BatchNorm{l}"));
                }
                parts.push(format!("Relu{}", l + relu));
                if self.dropout > 0.0 {
                    parts.push(format!("Dropout{l}({})", self.dropout));
                }
            }
        }
        parts.push("SoftmaxWithLoss".into());
        parts.join(" ")
    }

    /// The convolution's filters: `inputs` C·FH·FW, `outputs` FN, `W` in the
    /// book's `[FN, C, FH, FW]` at the start of the arena, then `b`.
    pub fn conv_slot(&self) -> Option<LayerSlot> {
        self.conv.map(|c| LayerSlot {
            inputs: c.filter_len(),
            outputs: c.filter_num,
            w: 0,
        })
    }

    /// The convolution's slot, then the Affine layers': every weight matrix.
    pub fn weight_slots(&self) -> Vec<LayerSlot> {
        self.conv_slot().into_iter().chain(self.slots()).collect()
    }

    /// The arena layout of the affine layers: one slot per layer, 64-element
    /// aligned, after the convolution's.
    pub fn slots(&self) -> Vec<LayerSlot> {
        assert!(
            self.layers.is_none(),
            "a list network's blocks are its plan's (Arch::list_plan)"
        );
        let mut offset = self
            .conv_slot()
            .map_or(0, |c| c.len().next_multiple_of(ARENA_ALIGN));
        self.sizes
            .windows(2)
            .map(|io| {
                let slot = LayerSlot {
                    inputs: io[0],
                    outputs: io[1],
                    w: offset,
                };
                offset = (slot.w + slot.len()).next_multiple_of(ARENA_ALIGN);
                slot
            })
            .collect()
    }

    fn affine_end(&self) -> usize {
        let last = *self.slots().last().unwrap();
        (last.w + last.len()).next_multiple_of(ARENA_ALIGN)
    }

    /// One slot per hidden layer when Batch Normalization is on, else none.
    pub fn bn_slots(&self) -> Vec<BnSlot> {
        if !self.batchnorm {
            return vec![];
        }
        let (mut offset, mut running) = (self.affine_end(), 0);
        self.hidden()
            .iter()
            .map(|&h| {
                let slot = BnSlot {
                    features: h,
                    gamma: offset,
                    running,
                };
                offset = (offset + 2 * h).next_multiple_of(ARENA_ALIGN);
                running += 2 * h;
                slot
            })
            .collect()
    }

    /// Total arena length, padding included.
    pub fn arena_len(&self) -> usize {
        if let Some(plan) = self.list_plan() {
            return plan.arena_len;
        }
        match self.bn_slots().last() {
            Some(bn) => (bn.gamma + 2 * bn.features).next_multiple_of(ARENA_ALIGN),
            None => self.affine_end(),
        }
    }

    /// Length of [`Params::running`]: a mean and a variance per BN feature.
    pub fn running_len(&self) -> usize {
        if let Some(plan) = self.list_plan() {
            return plan.running_len;
        }
        self.bn_slots().iter().map(|b| 2 * b.features).sum()
    }

    /// The sizes as people write a network: `784-50-10`.
    pub fn shape(&self) -> String {
        if let Some(network) = &self.layers {
            let name = match *network == Network::deep_convnet() {
                true => "DeepConvNet".to_string(),
                false => format!("a list of {} layers", network.layers.len()),
            };
            return format!("{name} on {}", network.input);
        }
        match self.conv {
            Some(c) => format!(
                "SimpleConvNet ({}), {}",
                c.describe(),
                shape_text(&self.sizes)
            ),
            None => shape_text(&self.sizes),
        }
    }

    /// Number of trainable parameters (no padding).
    pub fn param_count(&self) -> usize {
        if self.layers.is_some() {
            return self.tensors().iter().map(Tensor::len).sum();
        }
        self.weight_slots().iter().map(|s| s.len()).sum::<usize>()
            + self
                .bn_slots()
                .iter()
                .map(|b| 2 * b.features)
                .sum::<usize>()
    }

    /// The named trainable tensors in the book's order: W1, b1, gamma1,
    /// beta1, W2, ...; with a convolutional front, its W1 `[FN, C, FH, FW]`
    /// and b1, then the Affine layers from W2.
    pub fn tensors(&self) -> Vec<Tensor> {
        if let Some(plan) = self.list_plan() {
            return Network::tensors(&plan).0;
        }
        let bns = self.bn_slots();
        let mut out = Vec::new();
        if let (Some(c), Some(s)) = (self.conv, self.conv_slot()) {
            let [ch, ..] = c.input_dim;
            let f = c.filter_size;
            out.push(Tensor {
                name: "W1".into(),
                offset: s.w,
                shape: vec![c.filter_num, ch, f, f],
            });
            out.push(Tensor {
                name: "b1".into(),
                offset: s.b(),
                shape: vec![c.filter_num],
            });
        }
        let first = 1 + self.conv.is_some() as usize;
        for (l, s) in self.slots().iter().enumerate() {
            let n = l + first;
            out.push(Tensor {
                name: format!("W{n}"),
                offset: s.w,
                shape: vec![s.inputs, s.outputs],
            });
            out.push(Tensor {
                name: format!("b{n}"),
                offset: s.b(),
                shape: vec![s.outputs],
            });
            if let Some(bn) = bns.get(l) {
                out.push(Tensor {
                    name: format!("gamma{n}"),
                    offset: bn.gamma,
                    shape: vec![bn.features],
                });
                out.push(Tensor {
                    name: format!("beta{n}"),
                    offset: bn.beta(),
                    shape: vec![bn.features],
                });
            }
        }
        out
    }

    /// The running statistics, as tensors of [`Params::running`].
    pub fn running_tensors(&self) -> Vec<Tensor> {
        if let Some(plan) = self.list_plan() {
            return Network::tensors(&plan).1;
        }
        self.bn_slots()
            .iter()
            .enumerate()
            .flat_map(|(l, bn)| {
                [
                    Tensor {
                        name: format!("running_mean{}", l + 1),
                        offset: bn.running,
                        shape: vec![bn.features],
                    },
                    Tensor {
                        name: format!("running_var{}", l + 1),
                        offset: bn.running_var(),
                        shape: vec![bn.features],
                    },
                ]
            })
            .collect()
    }

    /// Multiply-adds of one forward pass's products at batch `batch`: per
    /// layer rows·(I + 1)·O, a convolution's rows being its window positions.
    pub fn forward_mults(&self, batch: usize) -> f64 {
        self.product_rows(batch)
            .into_iter()
            .map(|(_, rows, s)| (rows * (s.inputs + 1) * s.outputs) as f64)
            .sum()
    }

    /// Each weight slot with its index and the rows its products run over
    /// at batch `batch` (the first's are [`Arch::positions`]).
    pub fn product_rows(&self, batch: usize) -> Vec<(usize, usize, LayerSlot)> {
        if let Some(plan) = self.list_plan() {
            return list_product_rows(&plan, batch);
        }
        let positions = self.positions(batch);
        let slots = self.weight_slots().into_iter().enumerate();
        slots
            .map(move |(l, s)| (l, if l == 0 { positions } else { batch }, s))
            .collect()
    }

    /// Rows of the first product at batch `batch`: the batch, or a
    /// convolution's window positions (N·OH·OW).
    pub fn positions(&self, batch: usize) -> usize {
        self.conv.map_or(batch, |c| {
            c.slides(batch).map_or(0, |(conv, _)| conv.col_rows())
        })
    }

    /// Multiply-adds ×2 of one training step's matmuls at batch `b`, counting
    /// the products the GPU really runs: forward `[X,1]·[W;b]` per layer, the
    /// gradient `[X,1]ᵀ·dY` per layer, and `dY·Wᵀ` for every layer but the
    /// first. A convolution is a layer whose rows are its window positions.
    pub fn train_step_flops(&self, batch: usize) -> f64 {
        self.product_rows(batch)
            .into_iter()
            .map(|(l, rows, s)| {
                let (i, o, b) = ((s.inputs + 1) as f64, s.outputs as f64, rows as f64);
                let dx = if l == 0 {
                    0.0
                } else {
                    2.0 * b * o * s.inputs as f64
                };
                2.0 * b * i * o * 2.0 + dx
            })
            .sum()
    }
}

/// A list network's products as an `Arch`'s are counted: per weighted
/// layer its index, the rows its products run over at batch `batch` (a
/// convolution's window positions) and its block.
fn list_product_rows(plan: &Plan, batch: usize) -> Vec<(usize, usize, LayerSlot)> {
    let weighted = plan.layers.iter().filter_map(|p| Some((p, p.weights?)));
    weighted
        .enumerate()
        .map(|(l, (p, b))| {
            let rows = match (p.layer, p.output) {
                (Layer::Convolution { .. }, Values::Image { h, w, .. }) => batch * h * w,
                _ => batch,
            };
            let slot = LayerSlot {
                inputs: b.inputs,
                outputs: b.outputs,
                w: b.w,
            };
            (l, rows, slot)
        })
        .collect()
}

/// Host-side parameters: the arena in f64. Every value is exactly
/// representable in f32, so the GPU (f32) and the CPU reference (f64) start
/// from identical weights and any difference between them is arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub arch: Arch,
    pub values: Vec<f64>,
    /// Batch Normalization's running mean and variance per layer
    /// ([`Arch::running_tensors`]); empty without Batch Normalization.
    pub running: Vec<f64>,
}

impl Params {
    pub fn zeros(arch: &Arch) -> Self {
        Params {
            arch: arch.clone(),
            values: vec![0.0; arch.arena_len()],
            running: vec![0.0; arch.running_len()],
        }
    }

    /// The book's chapter 5 initialisation: weights `N(0, 0.01²)`.
    pub fn init(arch: &Arch, seed: u64) -> Self {
        Self::init_with(arch, Init::default(), seed)
    }

    /// Weights drawn as `init` says from ChaCha8 seeded with `seed` (a named
    /// algorithm, so a seed means the same weights on every platform and
    /// version), rounded to f32; biases and `beta` 0, `gamma` 1; running
    /// statistics 0 (as the book starts them).
    pub fn init_with(arch: &Arch, init: Init, seed: u64) -> Self {
        if let Some(plan) = arch.list_plan() {
            let (values, running) = Network::init(&plan, init, seed);
            return Params {
                arch: arch.clone(),
                values,
                running,
            };
        }
        let mut p = Params::zeros(arch);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for s in arch.weight_slots() {
            let normal = Normal::new(0.0, init.std(s.inputs)).unwrap();
            for w in &mut p.values[s.w..s.b()] {
                *w = normal.sample(&mut rng) as f32 as f64;
            }
        }
        for bn in arch.bn_slots() {
            p.values[bn.gamma..bn.beta()].fill(1.0);
        }
        p
    }

    pub fn tensor(&self, t: &Tensor) -> &[f64] {
        &self.values[t.range()]
    }

    /// `½·Σ W²` over the weight matrices and filters (not biases, `gamma`
    /// or `beta`): weight decay adds λ times this to the loss.
    pub fn half_weight_square_sum(&self) -> f64 {
        self.arch
            .weight_slots()
            .iter()
            .map(|s| self.values[s.w..s.b()].iter().map(|w| w * w).sum::<f64>())
            .sum::<f64>()
            * 0.5
    }
}
