//! How the network's matrices are laid out on the GPU.
//!
//! Every matrix that feeds a layer — the input batch and each hidden
//! activation — is stored with a row stride of `padded(cols)`: the real
//! columns, then a column of ones, then zeros up to a multiple of 4. Each
//! layer's parameters are one `[padded(I), padded(O)]` block: `W` in rows
//! `0..I`, `b` in row `I`, zeros elsewhere. Then
//!
//! ```text
//! [X, 1, 0]·[W; b; 0] = X·W + b        (the bias add is part of the product)
//! [X, 1, 0]ᵀ·dY       = [dW; db; 0]    (and so is the bias gradient)
//! ```
//!
//! and every stride, every K and every N is a multiple of 4, which the vec4
//! matmul needs. Batch rows are padded to a multiple of 4 with zero rows, so a
//! gradient's reduction over the batch can step four rows at a time.
//!
//! A convolutional front's filters come first, as one block laid out as an
//! Affine's ([`conv_to_gpu`]), so that `[im2col(x), 1]·block` is the
//! convolution; its matrices for a batch are [`FrontMatrices`].
//!
//! Batch Normalization's `gamma` and `beta` follow the affine blocks, each
//! layer's pair 64-element aligned, `gamma` then `beta`, unpadded: their
//! kernels take offsets, not bindings.
//!
//! The host keeps the book's unpadded arena ([`crate::core::model::Params`]);
//! [`GpuLayout::to_gpu`] and [`GpuLayout::from_gpu`] convert between the two.
//!
//! Also the facts both the allocating code and the budget read: a matrix's
//! bytes ([`matrix_bytes`]) and each layer's three products' shapes.
//! Imports only `kernels::matmul` (for [`MatmulShape`]), `plan` and
//! `profile` (for [`step_regions`]), `crate::core::conv`,
//! `crate::core::model` and `crate::core::network`.

use super::kernels::matmul::MatmulShape;
pub use super::plan::Regions;
use super::plan::gather_regions;
use super::profile::DeviceProfile;
use crate::core::conv::{ConvFront, Slide};
use crate::core::model::{ARENA_ALIGN, Arch, Params};
use crate::core::network::{Layer, Plan, Values};

/// Row stride of a matrix with `cols` real columns: room for the ones
/// column, rounded up to a multiple of 4.
pub fn padded(cols: usize) -> usize {
    (cols + 1).next_multiple_of(4)
}

/// Rows allocated for a batch of `rows`.
pub fn padded_rows(rows: usize) -> usize {
    rows.next_multiple_of(4)
}

/// Bytes of a `rows × cols` f32 matrix in the GPU layout: rows padded to a
/// multiple of 4, each `padded(cols)` long (the ones column and padding).
pub fn matrix_bytes(rows: usize, cols: usize) -> u64 {
    padded_rows(rows) as u64 * padded(cols) as u64 * 4
}

/// How `arch`'s training steps of `batch` rows, `slots` to a submission,
/// lay out their inputs and labels (`plan::gather_regions`, its rows
/// `padded(inputs)` long); a list of layers gathers a batch a step.
pub fn step_regions(profile: &DeviceProfile, arch: &Arch, batch: usize, slots: usize) -> Regions {
    match arch.list_plan() {
        Some(_) => Regions::one(batch),
        None => gather_regions(profile, batch, slots, padded(arch.inputs())),
    }
}

/// One layer's parameter block in the GPU arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuLayer {
    pub inputs: usize,
    pub outputs: usize,
    /// First element of the block (a multiple of 64: 256-byte aligned).
    pub offset: usize,
}

impl GpuLayer {
    /// Rows of the block: `padded(inputs)`.
    pub fn rows(&self) -> usize {
        padded(self.inputs)
    }
    /// Columns of the block (its row stride): `padded(outputs)`.
    pub fn cols(&self) -> usize {
        padded(self.outputs)
    }
    pub fn len(&self) -> usize {
        self.rows() * self.cols()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One Batch Normalization layer's `gamma` (`beta` follows) in the GPU arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuBn {
    pub features: usize,
    pub gamma: usize,
}

impl GpuBn {
    pub fn beta(&self) -> usize {
        self.gamma + self.features
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuLayout {
    /// A convolutional front's filters (`inputs` C·FH·FW, `outputs` FN).
    pub conv: Option<GpuLayer>,
    pub layers: Vec<GpuLayer>,
    /// One per hidden layer with Batch Normalization, else empty.
    pub bn: Vec<GpuBn>,
    /// Elements of the whole arena.
    pub len: usize,
}

impl GpuLayout {
    pub fn new(arch: &Arch) -> Self {
        let conv = arch.conv_slot().map(|s| GpuLayer {
            inputs: s.inputs,
            outputs: s.outputs,
            offset: 0,
        });
        let mut offset = conv.map_or(0, |g| g.len().next_multiple_of(ARENA_ALIGN));
        let layers = arch
            .sizes
            .windows(2)
            .map(|io| {
                let layer = GpuLayer {
                    inputs: io[0],
                    outputs: io[1],
                    offset,
                };
                offset = (offset + layer.len()).next_multiple_of(ARENA_ALIGN);
                layer
            })
            .collect();
        let bn = arch
            .bn_slots()
            .iter()
            .map(|s| {
                let bn = GpuBn {
                    features: s.features,
                    gamma: offset,
                };
                offset = (offset + 2 * s.features).next_multiple_of(ARENA_ALIGN);
                bn
            })
            .collect();
        GpuLayout {
            conv,
            layers,
            bn,
            len: offset,
        }
    }

    /// The host arena in this layout, as f32, padding zero.
    pub fn to_gpu(&self, p: &Params) -> Vec<f32> {
        let mut out = vec![0f32; self.len];
        if let (Some(g), Some(s)) = (self.conv, p.arch.conv_slot()) {
            let (w, b) = p.values[s.w..s.b() + s.outputs].split_at(s.inputs * s.outputs);
            out[g.offset..][..g.len()].copy_from_slice(&conv_to_gpu(&g, w, b));
        }
        for (g, s) in self.layers.iter().zip(p.arch.slots()) {
            // Rows 0..I are W, row I is b: the host keeps them adjacent too.
            for r in 0..=g.inputs {
                let src = &p.values[s.w + r * g.outputs..s.w + (r + 1) * g.outputs];
                let dst = &mut out[g.offset + r * g.cols()..][..g.outputs];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = v as f32;
                }
            }
        }
        for (g, s) in self.bn.iter().zip(p.arch.bn_slots()) {
            let src = &p.values[s.gamma..s.gamma + 2 * s.features];
            for (d, &v) in out[g.gamma..g.gamma + 2 * g.features].iter_mut().zip(src) {
                *d = v as f32;
            }
        }
        out
    }

    /// Back to the host arena, dropping the padding.
    pub fn from_gpu(&self, arch: &Arch, v: &[f32]) -> Params {
        let mut p = Params::zeros(arch);
        if let (Some(g), Some(s)) = (self.conv, arch.conv_slot()) {
            let (w, b) = conv_from_gpu(&g, &v[g.offset..][..g.len()]);
            p.values[s.w..s.b()].copy_from_slice(&w);
            p.values[s.b()..s.b() + s.outputs].copy_from_slice(&b);
        }
        for (g, s) in self.layers.iter().zip(arch.slots()) {
            for r in 0..=g.inputs {
                let src = &v[g.offset + r * g.cols()..][..g.outputs];
                let dst = &mut p.values[s.w + r * g.outputs..s.w + (r + 1) * g.outputs];
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d = x as f64;
                }
            }
        }
        for (g, s) in self.bn.iter().zip(arch.bn_slots()) {
            let src = &v[g.gamma..g.gamma + 2 * g.features];
            for (d, &x) in p.values[s.gamma..s.gamma + 2 * s.features]
                .iter_mut()
                .zip(src)
            {
                *d = x as f64;
            }
        }
        p
    }
}

/// Layer g's forward product for `rows` samples:
/// [Z_{l-1}, 1, 0] (rows, padded(I)) · [W; b; 0] (padded(I), padded(O)).
pub fn forward_shape(g: &GpuLayer, rows: usize) -> MatmulShape {
    MatmulShape {
        n_real: g.outputs,
        ..MatmulShape::plain(rows, g.cols(), g.rows(), g.rows(), g.cols(), g.cols())
    }
}

/// A convolution's filters as one block of the arena, laid out as an
/// Affine's ([`GpuLayer`] with `inputs` C·FH·FW and `outputs` FN): `W_col`,
/// the book's `W.reshape(FN, -1).T`, in rows 0..K, `b` in row K, zeros
/// elsewhere; `w` is the book's (FN, C, FH, FW). Then `[im2col(x), 1]·block`
/// is the convolution, and `[im2col(x), 1]ᵀ·dout` its `[dW_col; db]`.
pub fn conv_to_gpu(g: &GpuLayer, w: &[f64], b: &[f64]) -> Vec<f32> {
    let (k, fnum) = (g.inputs, g.outputs);
    let mut block = vec![0f32; g.len()];
    for f in 0..fnum {
        for r in 0..k {
            block[r * g.cols() + f] = w[f * k + r] as f32;
        }
        block[k * g.cols() + f] = b[f] as f32;
    }
    block
}

/// [`conv_to_gpu`] undone: (W as (FN, C, FH, FW), b).
pub fn conv_from_gpu(g: &GpuLayer, block: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let (k, fnum) = (g.inputs, g.outputs);
    let mut w = vec![0.0; fnum * k];
    for f in 0..fnum {
        for r in 0..k {
            w[f * k + r] = block[r * g.cols() + f] as f64;
        }
    }
    let b = (0..fnum).map(|f| block[k * g.cols() + f] as f64).collect();
    (w, b)
}

/// Layer g's input gradient dA_l (rows, padded(O)) · [W; b; 0]ᵀ.
pub fn input_grad_shape(g: &GpuLayer, rows: usize) -> MatmulShape {
    MatmulShape {
        n_real: g.inputs,
        ..MatmulShape::plain(rows, g.rows(), g.cols(), g.cols(), g.cols(), g.rows())
    }
}

/// Layer g's weight gradient [Z_{l-1}, 1, 0]ᵀ (padded(I), rows) · dA_l
/// (rows, padded(O)), over the padded batch (its zero rows add nothing).
pub fn weight_grad_shape(g: &GpuLayer, rows: usize) -> MatmulShape {
    let all = padded_rows(rows);
    MatmulShape {
        n_real: g.outputs,
        ..MatmulShape::plain(g.rows(), g.cols(), all, g.rows(), g.cols(), g.cols())
    }
}

/// A convolutional front's matrices for a batch of images, in the layouts
/// of `kernels::window`: `im2col`'s columns (a row per window position,
/// `padded(C·FH·FW)` long, with the ones column), the convolution's output
/// after Relu (a row per position, `padded(FN)`), the pooled values (a row
/// per image, `padded(FN·PH·PW)`, with the ones column: the first Affine's
/// input) and one u32 argmax per pooled value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontMatrices {
    pub conv: Slide,
    pub pool: Slide,
}

impl FrontMatrices {
    /// For `rows` images; None where the front does not slide (an `Arch`'s always does).
    pub fn new(front: &ConvFront, rows: usize) -> Option<Self> {
        let (conv, pool) = front.slides(rows).ok()?;
        Some(FrontMatrices { conv, pool })
    }

    /// Window positions: the rows of the columns and of the output.
    pub fn positions(&self) -> usize {
        self.conv.col_rows()
    }
    pub fn filters(&self) -> usize {
        self.pool.input.c
    }
    /// Pooled values per image.
    pub fn pooled(&self) -> usize {
        self.filters() * self.pool.out_area()
    }
    pub fn col_bytes(&self) -> u64 {
        matrix_bytes(self.positions(), self.conv.col_cols())
    }
    /// The output's bytes (and its gradient's).
    pub fn z_bytes(&self) -> u64 {
        matrix_bytes(self.positions(), self.filters())
    }
    /// The pooled values' bytes (and their gradient's).
    pub fn pooled_bytes(&self) -> u64 {
        matrix_bytes(self.conv.input.n, self.pooled())
    }
    pub fn argmax_bytes(&self) -> u64 {
        (self.conv.input.n * self.pooled()) as u64 * 4
    }
}

/// One product of a training step, named as its dispatch is labelled
/// (`affine2 backward dW,db`, `conv1 forward`), with its operands' forms.
#[derive(Clone, Debug, PartialEq)]
pub struct StepProduct {
    pub name: String,
    pub trans_a: bool,
    pub trans_b: bool,
    pub shape: MatmulShape,
}

/// The products a pass over `rows` samples runs: each layer's forward
/// product and, with `backward`, its input gradient (where a layer below
/// needs it) and its weight gradient. A convolution's products run over its
/// window positions.
pub fn step_products(arch: &Arch, rows: usize, backward: bool) -> Vec<StepProduct> {
    if let Some(plan) = arch.list_plan() {
        return list_products(&plan, rows, backward);
    }
    let layout = GpuLayout::new(arch);
    let front = arch.conv.is_some();
    let positions = arch
        .conv
        .and_then(|c| FrontMatrices::new(&c, rows))
        .map(|m| m.positions());
    let conv = layout
        .conv
        .iter()
        .zip(positions)
        .map(|(g, p)| ("conv1".to_string(), g, p, false));
    let affines = (layout.layers.iter().enumerate())
        .map(|(l, g)| (format!("affine{}", l + 1), g, rows, l > 0 || front));
    let product = |name: String, trans_a, trans_b, shape| StepProduct {
        name,
        trans_a,
        trans_b,
        shape,
    };
    let mut products = Vec::new();
    for (name, g, rows, dx) in conv.chain(affines) {
        products.push(product(
            format!("{name} forward"),
            false,
            false,
            forward_shape(g, rows),
        ));
        if backward && dx {
            let shape = input_grad_shape(g, rows);
            products.push(product(format!("{name} backward dx"), false, true, shape));
        }
        if backward {
            let shape = weight_grad_shape(g, rows);
            products.push(product(
                format!("{name} backward dW,db"),
                true,
                false,
                shape,
            ));
        }
    }
    products
}

/// [`step_products`] of a list network (`stages` runs them in this order):
/// per Convolution or Affine, named as its dispatches are (`conv3`,
/// `affine7`), its forward product, its input gradient (all but the
/// first's) and its weight gradient, a convolution's over its window positions.
fn list_products(plan: &Plan, rows: usize, backward: bool) -> Vec<StepProduct> {
    let mut products = Vec::new();
    for p in plan.layers.iter().filter(|p| p.weights.is_some()) {
        let b = p.weights.expect("a weighted layer");
        let g = GpuLayer {
            inputs: b.inputs,
            outputs: b.outputs,
            offset: 0,
        };
        let (name, rows) = match (p.layer, p.output) {
            (Layer::Convolution { .. }, Values::Image { h, w, .. }) => {
                (format!("conv{}", p.number), rows * h * w)
            }
            _ => (format!("affine{}", p.number), rows),
        };
        let product = |what: &str, trans_a, trans_b, shape| StepProduct {
            name: format!("{name} {what}"),
            trans_a,
            trans_b,
            shape,
        };
        products.push(product("forward", false, false, forward_shape(&g, rows)));
        if backward && p.number > 1 {
            products.push(product(
                "backward dx",
                false,
                true,
                input_grad_shape(&g, rows),
            ));
        }
        if backward {
            products.push(product(
                "backward dW,db",
                true,
                false,
                weight_grad_shape(&g, rows),
            ));
        }
    }
    products
}
