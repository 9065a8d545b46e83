//! A network as the book builds one: an ordered list of layers (the book's
//! `OrderedDict`) from an input of C×H×W values to `SoftmaxWithLoss`, which
//! always ends it. Shapes flow from the input through the list
//! ([`Network::plan`]); a list that does not fit (a pool that does not tile,
//! a convolution after a flattening Affine, images left at the end) is
//! refused, naming the layer and the sizes.
//!
//! The parameters sit in one arena as `model::Arch` lays them out,
//! so a network given as a list and the same network given as an `Arch`
//! share their tensors: per Convolution or Affine, in order, `W` then `b` in
//! a block aligned to 64 elements (a convolution's `W` as the book's `[FN,
//! C, FH, FW]`, an Affine's as `[I, O]`); then each Batch Normalization's
//! `gamma` and `beta`. They are named as the book names them: the k-th
//! Convolution or Affine has `Wk` and `bk`; a BatchNorm or Dropout takes the
//! number of the layer before it that has weights (`gamma1` after
//! `Affine1`, Dropout's mask keyed by it as `MultiLayerNetExtend`'s is).
//!
//! The text form, one layer per item, items between commas or on lines of
//! their own: `conv 16 3x3 pad 1`, `conv 16 5x5 stride 2`, `pool 2x2`
//! (stride the window's size unless given), `affine 50`, `relu`,
//! `batchnorm`, `dropout 0.5`, and optionally `softmax` last.
//!
//! May import: conv (the geometry), arena (its alignment and tensors, the
//! initialisation), error.

use std::fmt;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::arena::{ARENA_ALIGN, Init, MAX_PARAMS, Tensor};
use super::conv::{ImageShape, Layer as Sliding, Slide, Window};

/// The most layers a list may have.
pub const MAX_LAYERS: usize = 4000;

/// The most filters of a convolution or outputs of an Affine (as `--hidden`).
pub const MAX_WIDTH: usize = 1 << 16;

/// The largest window, stride or padding.
pub const MAX_WINDOW: usize = 1024;

/// One layer of the list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layer {
    /// `filters` filters of `size`×`size`, moved `stride`, over an image
    /// padded with `pad` zeros on each side.
    Convolution {
        filters: usize,
        size: usize,
        stride: usize,
        pad: usize,
    },
    /// Max pooling over `size`×`size` windows moved `stride`.
    Pooling {
        size: usize,
        stride: usize,
    },
    /// A fully connected layer to `outputs` values (images are flattened).
    Affine {
        outputs: usize,
    },
    Relu,
    BatchNorm,
    /// Dropout of `ratio` of the values in training.
    Dropout {
        ratio: f32,
    },
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Layer::Convolution {
                filters,
                size,
                stride,
                pad,
            } => {
                write!(f, "conv {filters} {size}x{size}")?;
                if stride != 1 {
                    write!(f, " stride {stride}")?;
                }
                if pad != 0 {
                    write!(f, " pad {pad}")?;
                }
                Ok(())
            }
            Layer::Pooling { size, stride } if stride == size => write!(f, "pool {size}x{size}"),
            Layer::Pooling { size, stride } => write!(f, "pool {size}x{size} stride {stride}"),
            Layer::Affine { outputs } => write!(f, "affine {outputs}"),
            Layer::Relu => f.write_str("relu"),
            Layer::BatchNorm => f.write_str("batchnorm"),
            Layer::Dropout { ratio } => write!(f, "dropout {ratio}"),
        }
    }
}

/// The values between two layers, per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// C channels of H×W, in the book's (C, H, W) order.
    Image { c: usize, h: usize, w: usize },
    /// A vector, as an Affine gives.
    Flat(usize),
}

impl Values {
    pub fn len(&self) -> usize {
        match *self {
            Values::Image { c, h, w } => c * h * w,
            Values::Flat(n) => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Values::Image { c, h, w } => write!(f, "{c}×{h}×{w}"),
            Values::Flat(n) => write!(f, "{n} values"),
        }
    }
}

/// Why a list is not a network: the layer (1-based, as written) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    #[error("layer {index} ({layer}): {why}")]
    Layer {
        index: usize,
        layer: String,
        why: String,
    },
    #[error("{0}")]
    List(String),
}

impl super::error::LayerError for NetworkError {
    /// A list that cannot be a network is the user's to fix.
    fn is_usage(&self) -> bool {
        true
    }
}

/// A network: the values of one input image and the layers, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub input: Values,
    pub layers: Vec<Layer>,
}

/// A weighted layer's block of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightBlock {
    /// `W`'s offset; `b` follows at `w + inputs·outputs`.
    pub w: usize,
    /// Per output, the inputs one output sees: an Affine's I, a
    /// convolution's C·FH·FW.
    pub inputs: usize,
    /// An Affine's O, a convolution's FN.
    pub outputs: usize,
}

impl WeightBlock {
    pub fn b(&self) -> usize {
        self.w + self.inputs * self.outputs
    }
}

/// A Batch Normalization's `gamma` (then `beta`) in the arena and its
/// running mean (then variance) in the running statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormBlock {
    pub gamma: usize,
    pub running: usize,
    pub features: usize,
}

/// One layer with the values it takes and gives, and where its parameters
/// are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placed {
    pub layer: Layer,
    pub input: Values,
    pub output: Values,
    /// The book's number: a weighted layer's own (`Wk`), else that of the
    /// weighted layer before it (0 before any).
    pub number: usize,
    pub weights: Option<WeightBlock>,
    pub norm: Option<NormBlock>,
}

/// A network with its shapes worked out and its arena laid out.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub layers: Vec<Placed>,
    pub arena_len: usize,
    pub running_len: usize,
}

/// How a convolution of the list names its parts in a shape error.
const CONV: Sliding = Sliding {
    name: "the convolution",
    window: "filter",
    input: "padded input",
};
/// How a pooling of the list names its parts in a shape error.
const POOL: Sliding = Sliding {
    name: "the pooling",
    window: "window",
    input: "input",
};

impl Layer {
    /// What the layer gives for `input`, or why it cannot take it.
    fn output(&self, input: Values) -> Result<Values, String> {
        let image = |what: &str| match input {
            Values::Image { c, h, w } => Ok((c, h, w)),
            Values::Flat(n) => Err(format!(
                "{what} takes images, but gets {n} values (an Affine before it flattened them)"
            )),
        };
        let positive = |n: usize, what: &str| match n {
            0 => Err(format!("the {what} is 0")),
            n if n > MAX_WIDTH => Err(format!("the {what} {n} is over the limit of {MAX_WIDTH}")),
            _ => Ok(()),
        };
        let window = |n: usize, what: &str| match n {
            n if n > MAX_WINDOW => Err(format!("the {what} {n} is over the limit of {MAX_WINDOW}")),
            _ => Ok(()),
        };
        match *self {
            Layer::Convolution {
                filters,
                size,
                stride,
                pad,
            } => {
                positive(filters, "filter count")?;
                window(size, "filter size").and(window(stride, "stride"))?;
                window(pad, "padding")?;
                let (c, h, w) = image("a convolution")?;
                let window = Window {
                    h: size,
                    w: size,
                    stride,
                    pad,
                };
                let s = slide((c, h, w), window, CONV)?;
                Ok(Values::Image {
                    c: filters,
                    h: s.out_h,
                    w: s.out_w,
                })
            }
            Layer::Pooling { size, stride } => {
                window(size, "window size").and(window(stride, "stride"))?;
                let (c, h, w) = image("a pooling")?;
                let window = Window {
                    h: size,
                    w: size,
                    stride,
                    pad: 0,
                };
                let s = slide((c, h, w), window, POOL)?;
                Ok(Values::Image {
                    c,
                    h: s.out_h,
                    w: s.out_w,
                })
            }
            Layer::Affine { outputs } => {
                positive(outputs, "output count")?;
                Ok(Values::Flat(outputs))
            }
            Layer::Dropout { ratio } if !(0.0..1.0).contains(&ratio) => {
                Err(format!("{ratio} is not a ratio in [0, 1)"))
            }
            Layer::Relu | Layer::BatchNorm | Layer::Dropout { .. } => Ok(input),
        }
    }

    fn has_weights(&self) -> bool {
        matches!(self, Layer::Convolution { .. } | Layer::Affine { .. })
    }
}

/// `window` over one C×H×W image, its errors said of `layer`.
fn slide(
    (c, h, w): (usize, usize, usize),
    window: Window,
    layer: Sliding,
) -> Result<Slide, String> {
    let image = ImageShape { n: 1, c, h, w };
    Slide::new(image, window).map_err(|e| {
        let e = e.of(layer);
        match e {
            super::conv::ShapeError::Zero(_) => e.to_string(),
            _ => format!("on {c}×{h}×{w}: {e}"),
        }
    })
}

impl Network {
    /// The shapes through the list and the arena's layout, or the first
    /// layer that does not fit.
    pub fn plan(&self) -> Result<Plan, NetworkError> {
        if self.layers.len() > MAX_LAYERS {
            return Err(NetworkError::List(format!(
                "{} layers, over the limit of {MAX_LAYERS}",
                self.layers.len()
            )));
        }
        self.check_input()?;
        let mut layers = Vec::with_capacity(self.layers.len());
        let (mut values, mut number, mut offset) = (self.input, 0, 0usize);
        for (i, &layer) in self.layers.iter().enumerate() {
            let refuse = |why| NetworkError::Layer {
                index: i + 1,
                layer: layer.to_string(),
                why,
            };
            let output = layer.output(values).map_err(refuse)?;
            let weights = match layer.has_weights() {
                true => Some(weight_block(layer, values, output, offset).map_err(refuse)?),
                false => None,
            };
            if let Some(block) = weights {
                number += 1;
                offset = (block.b() + block.outputs).next_multiple_of(ARENA_ALIGN);
            }
            layers.push(Placed {
                layer,
                input: values,
                output,
                number,
                weights,
                norm: None,
            });
            values = output;
        }
        let running_len = place_norms(&mut layers, &mut offset);
        self.check_end(number, offset)?;
        Ok(Plan {
            layers,
            arena_len: offset,
            running_len,
        })
    }

    /// An input of at least one value, each side at most [`MAX_WIDTH`] and
    /// all of it at most [`MAX_PARAMS`] values an image: the sizes every
    /// layer's arithmetic then stays far inside.
    fn check_input(&self) -> Result<(), NetworkError> {
        let sides: Vec<usize> = match self.input {
            Values::Image { c, h, w } => vec![c, h, w],
            Values::Flat(n) => vec![n],
        };
        let within = sides.iter().all(|&s| (1..=MAX_WIDTH).contains(&s))
            || matches!(self.input, Values::Flat(n) if (1..=MAX_PARAMS).contains(&n));
        if !within || sides.iter().map(|&s| s as u128).product::<u128>() > MAX_PARAMS as u128 {
            return Err(NetworkError::List(format!(
                "the input has {}: each side must be 1 to {MAX_WIDTH}, and an image at most {MAX_PARAMS} values",
                self.input
            )));
        }
        Ok(())
    }

    /// A network ends in values SoftmaxWithLoss can take (an Affine's: no
    /// layer after one gives images), within the limits.
    fn check_end(&self, weighted: usize, arena: usize) -> Result<(), NetworkError> {
        if !self
            .layers
            .iter()
            .any(|l| matches!(l, Layer::Affine { .. }))
        {
            return Err(NetworkError::List(
                "a network needs an Affine layer (SoftmaxWithLoss takes its outputs)".into(),
            ));
        }
        if arena > MAX_PARAMS {
            return Err(NetworkError::List(format!(
                "the {weighted} weighted layers need {arena} parameters, over the limit of {MAX_PARAMS}"
            )));
        }
        Ok(())
    }
}

/// Outputs per position of a weighted layer: an Affine's values, a
/// convolution's filters.
fn output_count(v: Values) -> usize {
    match v {
        Values::Image { c, .. } => c,
        Values::Flat(n) => n,
    }
}

/// A weighted layer's block from `offset`, or why the arena cannot hold it.
fn weight_block(
    layer: Layer,
    input: Values,
    output: Values,
    offset: usize,
) -> Result<WeightBlock, String> {
    let inputs = match (layer, input) {
        (Layer::Convolution { size, .. }, Values::Image { c, .. }) => c * size * size,
        _ => input.len(),
    };
    let outputs = output_count(output);
    let end = offset as u128 + (inputs as u128 + 1) * outputs as u128;
    if end > MAX_PARAMS as u128 {
        return Err(format!(
            "its weights ({inputs} × {outputs}) take the parameters to {end}, over the limit of {MAX_PARAMS}"
        ));
    }
    Ok(WeightBlock {
        w: offset,
        inputs,
        outputs,
    })
}

/// Each Batch Normalization's block after all the weights, in order, and
/// its running statistics; returns their length.
fn place_norms(layers: &mut [Placed], offset: &mut usize) -> usize {
    let mut running = 0;
    for p in layers.iter_mut().filter(|p| p.layer == Layer::BatchNorm) {
        let features = p.input.len();
        p.norm = Some(NormBlock {
            gamma: *offset,
            running,
            features,
        });
        // Saturating: a sum past the limit is refused by `check_end`.
        *offset = offset
            .saturating_add(features.saturating_mul(2))
            .checked_next_multiple_of(ARENA_ALIGN)
            .unwrap_or(usize::MAX);
        running += 2 * features;
    }
    running
}

impl Network {
    /// The book's `DeepConvNet` (`ch08/deep_convnet.py`) on 1×28×28 images.
    pub fn deep_convnet() -> Network {
        let conv = |filters, pad| Layer::Convolution {
            filters,
            size: 3,
            stride: 1,
            pad,
        };
        let pool = Layer::Pooling { size: 2, stride: 2 };
        let (relu, drop) = (Layer::Relu, Layer::Dropout { ratio: 0.5 });
        let layers = vec![
            conv(16, 1),
            relu,
            conv(16, 1),
            relu,
            pool,
            conv(32, 1),
            relu,
            conv(32, 2),
            relu,
            pool,
            conv(64, 1),
            relu,
            conv(64, 1),
            relu,
            pool,
            Layer::Affine { outputs: 50 },
            relu,
            drop,
            Layer::Affine { outputs: 10 },
            drop,
        ];
        Network {
            input: Values::Image { c: 1, h: 28, w: 28 },
            layers,
        }
    }

    /// Values per input image.
    pub fn inputs(&self) -> usize {
        self.input.len()
    }

    /// The named tensors of the arena, in the book's order (`W1`, `b1`,
    /// `gamma1`, `beta1`, `W2`, ...), and the running statistics'
    /// (`running_mean1`, `running_var1`, ...).
    pub fn tensors(plan: &Plan) -> (Vec<Tensor>, Vec<Tensor>) {
        let (mut arena, mut running) = (vec![], vec![]);
        let named = |name: &str, k: usize, offset: usize, shape: Vec<usize>| Tensor {
            name: format!("{name}{k}"),
            offset,
            shape,
        };
        for p in &plan.layers {
            let k = p.number;
            if let Some(b) = p.weights {
                let w_shape = match (p.layer, p.input) {
                    (Layer::Convolution { size, .. }, Values::Image { c, .. }) => {
                        vec![b.outputs, c, size, size]
                    }
                    _ => vec![b.inputs, b.outputs],
                };
                arena.push(named("W", k, b.w, w_shape));
                arena.push(named("b", k, b.b(), vec![b.outputs]));
            }
            if let Some(n) = p.norm {
                let f = n.features;
                arena.push(named("gamma", k, n.gamma, vec![f]));
                arena.push(named("beta", k, n.gamma + f, vec![f]));
                running.push(named("running_mean", k, n.running, vec![f]));
                running.push(named("running_var", k, n.running + f, vec![f]));
            }
        }
        (arena, running)
    }

    /// Initial parameters: each weight `N(0, std²)` for its inputs by
    /// `init` (rounded to f32, as the GPU holds them), in the layers' order
    /// from one ChaCha8 stream seeded `seed`, as `Params::init_with` draws
    /// them; biases and `beta` 0, `gamma` 1; the running statistics 0.
    pub fn init(plan: &Plan, init: Init, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut values = vec![0.0; plan.arena_len];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for b in plan.layers.iter().filter_map(|p| p.weights) {
            let normal = Normal::new(0.0, init.std(b.inputs)).expect("a finite std");
            for w in &mut values[b.w..b.b()] {
                *w = normal.sample(&mut rng) as f32 as f64;
            }
        }
        for n in plan.layers.iter().filter_map(|p| p.norm) {
            values[n.gamma..n.gamma + n.features].fill(1.0);
        }
        (values, vec![0.0; plan.running_len])
    }
}

impl fmt::Display for Network {
    /// The text form, `softmax` last: what [`Network::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for layer in &self.layers {
            write!(f, "{layer}, ")?;
        }
        f.write_str("softmax")
    }
}

impl Network {
    /// The text form with the input first (`input 1x28x28, conv …,
    /// softmax`): what [`Network::parse`] reads back whatever input it is given.
    pub fn text(&self) -> String {
        let input = match self.input {
            Values::Image { c, h, w } => format!("{c}x{h}x{w}"),
            Values::Flat(n) => n.to_string(),
        };
        format!("input {input}, {self}")
    }

    /// A network from its text form (see the module's comment): items
    /// between commas or on lines of their own, `#` to the line's end a
    /// comment; on `input` unless its first item says otherwise (`input
    /// 3x32x32`, `input 784`).
    pub fn parse(text: &str, input: Values) -> Result<Network, NetworkError> {
        let mut items: Vec<&str> = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let input = match items.first().and_then(|i| parse_input(i).transpose()) {
            Some(Ok(given)) => {
                items.remove(0);
                given
            }
            Some(Err(why)) => {
                let item = items[0].to_string();
                return Err(NetworkError::Layer {
                    index: 1,
                    layer: item,
                    why,
                });
            }
            None => input,
        };
        let mut layers = vec![];
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            match parse_layer(item) {
                Ok(Some(layer)) => layers.push(layer),
                Ok(None) if last => {}
                Ok(None) => {
                    return Err(NetworkError::List(format!(
                        "item {} is {item:?}: SoftmaxWithLoss ends a network and is its last item",
                        i + 1
                    )));
                }
                Err(why) => {
                    return Err(NetworkError::Layer {
                        index: i + 1,
                        layer: item.to_string(),
                        why,
                    });
                }
            }
        }
        let network = Network { input, layers };
        network.plan()?;
        Ok(network)
    }
}

/// An `input` item: `input C×H×W` or `input N`; None for any other item.
fn parse_input(item: &str) -> Result<Option<Values>, String> {
    let words: Vec<&str> = item.split_whitespace().collect();
    if !words[0].eq_ignore_ascii_case("input") {
        return Ok(None);
    }
    let sides: Option<Vec<usize>> = match words[..] {
        [_, sides] => sides.split(['x', '×']).map(|s| s.parse().ok()).collect(),
        _ => None,
    };
    match sides.as_deref() {
        Some(&[c, h, w]) => Ok(Some(Values::Image { c, h, w })),
        Some(&[n]) => Ok(Some(Values::Flat(n))),
        _ => Err("expected input CxHxW (e.g. input 1x28x28) or input N".into()),
    }
}

/// One item: a layer, or `None` for `softmax`.
fn parse_layer(item: &str) -> Result<Option<Layer>, String> {
    let words: Vec<String> = item
        .split_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let word = |i: usize| words.get(i).map(String::as_str);
    let expect = |form: &str| format!("expected {form}");
    let layer = match word(0) {
        Some("conv" | "convolution") => {
            let filters = number(word(1), "the filter count")?;
            let size = square(word(2))?;
            let opts = options(&words[3.min(words.len())..], &["stride", "pad"])?;
            Layer::Convolution {
                filters,
                size,
                stride: opts[0].unwrap_or(1),
                pad: opts[1].unwrap_or(0),
            }
        }
        Some("pool" | "pooling") => {
            let size = square(word(1))?;
            let opts = options(&words[2.min(words.len())..], &["stride"])?;
            Layer::Pooling {
                size,
                stride: opts[0].unwrap_or(size),
            }
        }
        Some("affine") if words.len() == 2 => Layer::Affine {
            outputs: number(word(1), "the output count")?,
        },
        Some("relu") if words.len() == 1 => Layer::Relu,
        Some("batchnorm") if words.len() == 1 => Layer::BatchNorm,
        Some("dropout") if words.len() == 2 => Layer::Dropout {
            ratio: word(1)
                .and_then(|r| r.parse::<f32>().ok())
                .ok_or_else(|| expect("a ratio: dropout 0.5"))?,
        },
        Some("softmax" | "softmaxwithloss") if words.len() == 1 => return Ok(None),
        _ => {
            return Err(expect(
                "conv N KxK [stride S] [pad P], pool KxK [stride S], affine N, relu, batchnorm, dropout R or softmax",
            ));
        }
    };
    Ok(Some(layer))
}

/// A whole number.
fn number(word: Option<&str>, what: &str) -> Result<usize, String> {
    let w = word.ok_or_else(|| format!("{what} is missing"))?;
    w.parse::<usize>()
        .map_err(|_| format!("{what} {w:?} is not a whole number"))
}

/// A square window: `3x3`, `3×3` or `3`.
fn square(word: Option<&str>) -> Result<usize, String> {
    let w = word.ok_or("the window's size is missing (e.g. 3x3)")?;
    let sides: Vec<&str> = w.split(['x', '×']).collect();
    let sides: Vec<usize> = sides
        .iter()
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{w:?} is not a window size (e.g. 3x3)"))?;
    match sides[..] {
        [n] => Ok(n),
        [h, w] if h == w => Ok(h),
        _ => Err(format!("{w:?}: windows are square (e.g. 3x3)")),
    }
}

/// `name value` pairs, each of `names` at most once, in any order.
fn options(words: &[String], names: &[&str]) -> Result<Vec<Option<usize>>, String> {
    let mut out = vec![None; names.len()];
    for pair in words.chunks(2) {
        let at = names.iter().position(|n| *n == pair[0]);
        match (at, pair.get(1)) {
            (Some(i), Some(v)) if out[i].is_none() => {
                out[i] = Some(number(Some(v), &format!("the {}", names[i]))?)
            }
            _ => {
                return Err(format!(
                    "expected {} N, not {:?}",
                    names.join(" N or "),
                    pair.join(" ")
                ));
            }
        }
    }
    Ok(out)
}
