//! A network given as a list of layers (`core::network`), as the GPU runs
//! it: the layers grouped into stages, each one or two kernels, by rules
//! over neighbouring layers rather than per network:
//!
//! - a Relu right after a Convolution or an Affine is that product's
//!   epilogue; its backward is the mask `value > 0` that whoever computes
//!   the gradient at the Relu's output applies (the next product's input
//!   gradient, col2im, or the pooling's backward);
//! - a Dropout works in place; after a Relu its mask is the Relu's (a
//!   dropped value is 0), otherwise its backward is the same mask applied
//!   to the gradient, in place;
//! - a Convolution's output stays as its product leaves it, one row per
//!   position (n, y, x) of its channels ([`Form::Positions`]); the next
//!   Convolution reads it so, a Pooling turns it into one row per image
//!   ([`Form::Images`], the book's (C, H, W) order), and before an Affine a
//!   1×1 pooling does the same ([`StageKind::Flatten`]).
//!
//! Each weighted layer's parameters are one block of the GPU arena laid out
//! as `layout` lays out an Affine's (a convolution's through
//! `layout::conv_to_gpu`), in the list's order: for a list an `Arch` also
//! describes, the same offsets as [`super::layout::GpuLayout`].
//!
//! What the GPU does not run (a Batch Normalization, a Relu that follows no
//! product, a Pooling or Dropout over a convolution's output layout it
//! cannot take) is refused naming the layer; the CPU reference runs any
//! planned list.
//!
//! Imports `layout` and `crate::core`.

use super::layout::{GpuLayer, padded};
use crate::core::conv::{ImageShape, Slide, Window};
use crate::core::model::ARENA_ALIGN;
use crate::core::network::{Layer, Placed, Plan, Values};

/// How a value between stages is held, per batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One row per image of its values in the book's order, `padded(len)`
    /// long: the values, the ones column an Affine's bias needs, zeros.
    Images,
    /// One row per position (n, y, x) of its C channels, `padded(C)` long:
    /// a convolution's product.
    Positions,
}

/// One value between stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    pub values: Values,
    pub form: Form,
    /// A Relu's output (with any Dropout after it): the gradient at it is
    /// masked by `value > 0`.
    pub relu: bool,
}

impl Value {
    /// Rows for `batch` images.
    pub fn rows(&self, batch: usize) -> usize {
        match (self.form, self.values) {
            (Form::Positions, Values::Image { h, w, .. }) => batch * h * w,
            _ => batch,
        }
    }

    /// Real values per row.
    pub fn cols(&self) -> usize {
        match (self.form, self.values) {
            (Form::Positions, Values::Image { c, .. }) => c,
            _ => self.values.len(),
        }
    }

    /// The row stride.
    pub fn stride(&self) -> usize {
        padded(self.cols())
    }

    /// `batch` images of this value, as a window kernel sees them.
    pub fn images(&self, batch: usize) -> ImageShape {
        match self.values {
            Values::Image { c, h, w } => ImageShape { n: batch, c, h, w },
            Values::Flat(n) => ImageShape {
                n: batch,
                c: n,
                h: 1,
                w: 1,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StageKind {
    /// im2col, then the product with the filters' block (Relu fused when `relu`).
    Convolution { window: Window, relu: bool },
    /// The product with the block (Relu fused when `relu`).
    Affine { relu: bool },
    /// Max pooling of a convolution's output into rows per image.
    Pooling { window: Window },
    /// A convolution's output into rows per image before an Affine: a 1×1
    /// pooling, whose backward is its gather.
    Flatten,
    /// In place on its input. `own_backward`: the gradient is masked by a
    /// dispatch of its own (no Relu before it to do it).
    Dropout { ratio: f32, own_backward: bool },
}

/// One stage: what it runs, from which value to which (indices into
/// [`Stages::values`]; a Dropout's are the same), with which block.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub kind: StageKind,
    pub input: usize,
    pub output: usize,
    /// The book's number of the last weighted layer so far: `W{number}`,
    /// Dropout's key.
    pub number: usize,
    pub block: Option<GpuLayer>,
}

impl Stage {
    /// The start of its dispatches' labels: `conv3`, `affine7`, `dropout8`
    /// (the book's numbers: a Dropout or a Pooling takes its weighted layer's).
    pub fn label(&self) -> String {
        let n = self.number;
        match self.kind {
            StageKind::Convolution { .. } => format!("conv{n}"),
            StageKind::Affine { .. } => format!("affine{n}"),
            StageKind::Pooling { .. } => format!("pool after conv{n}"),
            StageKind::Flatten => format!("flatten before affine{n}"),
            StageKind::Dropout { .. } => format!("dropout{n}"),
        }
    }

    /// The window slid over `batch` images of its input (a convolution's,
    /// a pooling's, a flatten's 1×1).
    pub fn slide(&self, input: &Value, batch: usize) -> Option<Slide> {
        let window = match self.kind {
            StageKind::Convolution { window, .. } | StageKind::Pooling { window } => window,
            StageKind::Flatten => Window {
                h: 1,
                w: 1,
                stride: 1,
                pad: 0,
            },
            _ => return None,
        };
        Some(Slide::new(input.images(batch), window).expect("a planned window slides"))
    }
}

/// The stages of a planned list, the values between them (0 is the input,
/// the last the logits) and the GPU arena's length.
#[derive(Clone, Debug, PartialEq)]
pub struct Stages {
    pub values: Vec<Value>,
    pub stages: Vec<Stage>,
    pub arena_len: usize,
}

/// Why the GPU cannot run a planned list: the layer (1-based) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("layer {index} ({layer}): {why}; the CPU reference (--device cpu) runs it")]
pub struct StageError {
    pub index: usize,
    pub layer: String,
    pub why: String,
}

/// A list the user gave that this device cannot run: a usage error.
impl crate::core::error::LayerError for StageError {
    fn is_usage(&self) -> bool {
        true
    }
}

impl Stages {
    pub fn new(plan: &Plan) -> Result<Self, StageError> {
        let input = Value {
            values: plan.layers[0].input,
            form: Form::Images,
            relu: false,
        };
        let mut s = Stages {
            values: vec![input],
            stages: vec![],
            arena_len: 0,
        };
        let mut i = 0;
        while i < plan.layers.len() {
            let p = &plan.layers[i];
            let relu_next = plan.layers.get(i + 1).map(|n| n.layer) == Some(Layer::Relu);
            let refuse = |why: &str| StageError {
                index: i + 1,
                layer: p.layer.to_string(),
                why: why.to_string(),
            };
            let fused = s.push(p, relu_next).map_err(refuse)?;
            i += 1 + fused as usize;
        }
        Ok(s)
    }

    fn last(&self) -> (usize, Value) {
        let v = self.values.len() - 1;
        (v, self.values[v])
    }

    /// Adds layer `p`'s stage(s); whether it took the Relu after it.
    fn push(&mut self, p: &Placed, relu_next: bool) -> Result<bool, &'static str> {
        let (input, value) = self.last();
        let output = |values, form, relu| Value { values, form, relu };
        match p.layer {
            Layer::Convolution {
                size, stride, pad, ..
            } => {
                let window = Window {
                    h: size,
                    w: size,
                    stride,
                    pad,
                };
                let kind = StageKind::Convolution {
                    window,
                    relu: relu_next,
                };
                let out = output(p.output, Form::Positions, relu_next);
                self.add(kind, input, out, p);
                Ok(relu_next)
            }
            Layer::Affine { .. } => {
                let input = match value.form {
                    Form::Images => input,
                    Form::Positions => {
                        let flat = output(value.values, Form::Images, false);
                        self.add(StageKind::Flatten, input, flat, p);
                        input + 1
                    }
                };
                let out = output(p.output, Form::Images, relu_next);
                self.add(StageKind::Affine { relu: relu_next }, input, out, p);
                Ok(relu_next)
            }
            Layer::Pooling { size, stride } => {
                if value.form != Form::Positions {
                    return Err(
                        "on the GPU a pooling takes a convolution's output (or its Relu's)",
                    );
                }
                let window = Window {
                    h: size,
                    w: size,
                    stride,
                    pad: 0,
                };
                let out = output(p.output, Form::Images, false);
                self.add(StageKind::Pooling { window }, input, out, p);
                Ok(false)
            }
            Layer::Dropout { ratio } => {
                // The input has no gradient for a Dropout's backward to mask.
                if input == 0 {
                    return Err("on the GPU a Dropout follows a layer, not the input");
                }
                if value.form != Form::Images {
                    return Err(
                        "on the GPU a Dropout takes an Affine's or a pooling's output, not a convolution's",
                    );
                }
                let kind = StageKind::Dropout {
                    ratio,
                    own_backward: !value.relu,
                };
                self.stages.push(Stage {
                    kind,
                    input,
                    output: input,
                    number: p.number,
                    block: None,
                });
                Ok(false)
            }
            Layer::Relu => Err("on the GPU a Relu follows a Convolution or an Affine"),
            Layer::BatchNorm => Err(
                "a network given as a list runs Batch Normalization on the CPU only (on the GPU: train --batchnorm)",
            ),
        }
    }

    /// A stage from value `input` to a new value `out`, with `p`'s block
    /// (a Convolution's or an Affine's) placed next in the arena.
    fn add(&mut self, kind: StageKind, input: usize, out: Value, p: &Placed) {
        let weighted = matches!(
            kind,
            StageKind::Convolution { .. } | StageKind::Affine { .. }
        );
        let block = p.weights.filter(|_| weighted).map(|b| {
            let g = GpuLayer {
                inputs: b.inputs,
                outputs: b.outputs,
                offset: self.arena_len,
            };
            self.arena_len = (g.offset + g.len()).next_multiple_of(ARENA_ALIGN);
            g
        });
        self.values.push(out);
        self.stages.push(Stage {
            kind,
            input,
            output: self.values.len() - 1,
            number: p.number,
            block,
        });
    }

    /// The logits' value.
    pub fn logits(&self) -> &Value {
        self.values.last().expect("the input at least")
    }

    /// Each weighted layer's block with the layer's placement, in order.
    pub fn blocks<'a>(&'a self, plan: &'a Plan) -> impl Iterator<Item = (GpuLayer, &'a Placed)> {
        let placed = plan.layers.iter().filter(|p| p.weights.is_some());
        self.stages.iter().filter_map(|s| s.block).zip(placed)
    }
}
