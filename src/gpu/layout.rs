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
//! Batch Normalization's `gamma` and `beta` follow the affine blocks, each
//! layer's pair 64-element aligned, `gamma` then `beta`, unpadded: their
//! kernels take offsets, not bindings.
//!
//! The host keeps the book's unpadded arena ([`crate::model::Params`]);
//! [`GpuLayout::to_gpu`] and [`GpuLayout::from_gpu`] convert between the two.
//!
//! Also the facts both the allocating code and the budget read: a matrix's
//! bytes ([`matrix_bytes`]) and each layer's three products' shapes.
//! Imports only `kernels::matmul` (for [`MatmulShape`]) and `crate::model`.

use super::kernels::matmul::MatmulShape;
use crate::model::{ARENA_ALIGN, Arch, Params};

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
    pub layers: Vec<GpuLayer>,
    /// One per hidden layer with Batch Normalization, else empty.
    pub bn: Vec<GpuBn>,
    /// Elements of the whole arena.
    pub len: usize,
}

impl GpuLayout {
    pub fn new(arch: &Arch) -> Self {
        let mut offset = 0;
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
            layers,
            bn,
            len: offset,
        }
    }

    /// The host arena in this layout, as f32, padding zero.
    pub fn to_gpu(&self, p: &Params) -> Vec<f32> {
        let mut out = vec![0f32; self.len];
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
