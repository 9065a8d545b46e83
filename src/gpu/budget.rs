//! Every storage buffer a trainer or a gradient check will make, listed with
//! its size before any is made, so that a configuration the device cannot
//! hold is refused before any GPU work (no dataset uploaded, no pipeline
//! built): a late refusal would have allocated hundreds of megabytes first.
//!
//! The sizes are the ones the allocating code uses ([`matrix_bytes`] is
//! shared with `net::GpuNet::activations`), and a test holds the plan's total
//! against what the context really allocates.
//!
//! Imports `context`, `error`, `kernels::matmul`, `layout` and `plan`; nothing
//! imports it but the trainer (and `verify`).

use super::context::GpuContext;
use super::error::{GpuError, Result};
pub use super::kernels::matmul::Scratch;
use super::kernels::matmul::{TEXELS_PER_ROW, operand_texels, plan_product, stages_operands};
use super::kernels::{Epilogue, MatmulVariant, SoftmaxWithLoss, SplitK};
pub use super::layout::matrix_bytes;
use super::layout::{FrontMatrices, GpuLayout, Regions, step_products, step_regions};
use super::plan::implicit_columns;
use super::profile::DeviceProfile;
use crate::core::model::Arch;

/// The size a storage buffer of `bytes` really gets (`GpuContext::storage`).
fn storage_size(bytes: u64) -> u64 {
    bytes.max(16).next_multiple_of(4)
}

/// The storage buffers of one configuration, and the textures the vec4
/// matmul stages its operands in: (what, bytes).
#[derive(Clone, Debug)]
pub struct Plan {
    pub buffers: Vec<(String, u64)>,
    pub textures: Vec<(String, u64)>,
    /// Whether a convolution's columns are stored (`plan::implicit_columns`
    /// says where they are read in place instead).
    columns_stored: bool,
    /// The device's, for the planner's choices that change what is stored.
    profile: DeviceProfile,
}

impl Plan {
    /// An empty plan for `ctx`'s device.
    pub fn new(ctx: &GpuContext) -> Self {
        Plan {
            buffers: vec![],
            textures: vec![],
            columns_stored: !implicit_columns(&ctx.profile, ctx.matmul_algo),
            profile: ctx.profile,
        }
    }

    fn add(&mut self, what: String, bytes: u64) {
        self.buffers.push((what, storage_size(bytes)));
    }

    /// A dataset split resident on the GPU: pixels packed four to a u32,
    /// labels one u32 each.
    pub fn dataset(&mut self, name: &str, len: usize, pixels: usize) {
        let pixel_bytes = (len as u64 * pixels as u64).div_ceil(4) * 4;
        self.add(
            format!("the {name} images ({len} × {pixels} u8)"),
            pixel_bytes,
        );
        self.add(format!("the {name} labels ({len} u32)"), len as u64 * 4);
    }

    /// The parameter and gradient arenas, and the running statistics.
    pub fn net(&mut self, arch: &Arch) {
        let arena = GpuLayout::new(arch).len as u64 * 4;
        self.add("the parameters".into(), arena);
        self.add("the gradients".into(), arena);
        let running = arch.running_len().max(1).next_multiple_of(4) as u64 * 4;
        self.add("the running statistics".into(), running);
        self.kernels();
    }

    /// What the kernels own: the softmax's per-workgroup sums.
    fn kernels(&mut self) {
        self.add(
            "the softmax's per-workgroup sums".into(),
            SoftmaxWithLoss::PARTIALS_BYTES,
        );
    }

    /// [`Plan::net`] for a network that only evaluates: no gradients.
    pub fn net_for_evaluation(&mut self, arch: &Arch) {
        let arena = GpuLayout::new(arch).len as u64 * 4;
        self.add("the parameters".into(), arena);
        let running = arch.running_len().max(1).next_multiple_of(4) as u64 * 4;
        self.add("the running statistics".into(), running);
        self.kernels();
    }

    /// [`Plan::activations`] as `GpuNet::eval_activations` makes them: per
    /// layer its output (with Batch Normalization, its input too), and the
    /// output's gradient, which the loss binds.
    pub fn eval_activations(&mut self, arch: &Arch, rows: usize) {
        self.layers(arch, rows, false, Regions::one(rows));
    }

    /// Per layer (x, then each Affine's output) its copies for `rows`
    /// samples, a convolutional front's matrices, and the labels; x and the
    /// labels for the batches `regions` lays out.
    fn layers(&mut self, arch: &Arch, rows: usize, train: bool, regions: Regions) {
        let sizes = std::iter::once(arch.inputs()).chain(arch.sizes[1..].iter().copied());
        let last = arch.sizes.len() - 1;
        for (l, s) in sizes.enumerate() {
            let copies = match (l, train) {
                (0, _) => 1,                       // x
                _ if l == last => 2,               // Z, dZ
                (_, false) if arch.batchnorm => 2, // Z, A
                (_, false) => 1,                   // Z
                (_, true) if arch.batchnorm => 4,  // Z, dZ, A, dA
                (_, true) => 2,                    // Z, dZ
            };
            let rows = if l == 0 { regions.total_rows() } else { rows };
            for _ in 0..copies {
                self.add(
                    format!("layer {l}'s activations ({rows} × {s} f32)"),
                    matrix_bytes(rows, s),
                );
            }
        }
        if let Some(m) = arch.conv.and_then(|c| FrontMatrices::new(&c, rows)) {
            let copies = 1 + train as usize; // and the gradient
            if self.columns_stored {
                self.add("im2col's columns".into(), m.col_bytes());
            }
            self.add("the pooling's argmax".into(), m.argmax_bytes());
            for _ in 0..copies {
                self.add("the convolution's output".into(), m.z_bytes());
                self.add("the pooled values".into(), m.pooled_bytes());
            }
        }
        let labels = regions.total_rows();
        self.add(format!("the labels of {labels} rows"), labels as u64 * 4);
    }

    /// Inputs, labels, and per layer its output and gradient (with Batch
    /// Normalization, its input and gradient too) for `rows` samples.
    pub fn activations(&mut self, arch: &Arch, rows: usize) {
        self.layers(arch, rows, true, Regions::one(rows));
    }

    /// [`Plan::activations`] for a training step of `batch` rows, `slots`
    /// to a submission, its inputs and labels laid out by
    /// `layout::step_regions`.
    pub fn step_activations(&mut self, arch: &Arch, batch: usize, slots: usize) {
        let regions = step_regions(&self.profile, arch, batch, slots);
        self.layers(arch, batch, true, regions);
    }

    /// The training step's own buffers: the batch indices of `slots` steps
    /// and, when an optimizer pass runs, its `state_arrays` arrays.
    pub fn step(&mut self, arch: &Arch, batch: usize, slots: usize, state_arrays: usize) {
        self.add(
            format!("the batch indices ({batch} × {slots} steps per submission)"),
            batch as u64 * slots as u64 * 4,
        );
        let arena = GpuLayout::new(arch).len as u64 * 4;
        for _ in 0..state_arrays {
            self.add("the optimizer's state".into(), arena);
        }
    }

    /// What the matmul's products share (see [`largest_scratch`]): split-K's
    /// partial-sum buffer when any product is split, and the two textures
    /// operands are staged in when any is.
    pub fn matmul_scratch(&mut self, scratch: &Scratch) {
        if scratch.partial_bytes > 0 {
            self.add("split-K's partial sums".into(), scratch.partial_bytes);
        }
        for (name, texels) in ["A", "B"].iter().zip(scratch.staged_texels) {
            if texels > 0 {
                self.textures.push((
                    format!("the staged matmul operand {name} ({texels} texels)"),
                    texels.div_ceil(TEXELS_PER_ROW) * TEXELS_PER_ROW * 16,
                ));
            }
        }
    }

    /// A whole-split evaluation's index list.
    pub fn evaluation(&mut self, name: &str, len: usize) {
        self.add(format!("the {name} indices ({len} u32)"), len as u64 * 4);
    }

    /// Bytes of every buffer and texture listed.
    pub fn total(&self) -> u64 {
        self.buffers
            .iter()
            .chain(&self.textures)
            .map(|(_, b)| b)
            .sum()
    }

    /// Refuses the first buffer larger than one storage binding of `ctx`.
    /// (A staged operand always fits its texture: a product whose operand
    /// would not is read from the buffers instead.)
    pub fn check(&self, ctx: &GpuContext) -> Result<()> {
        let have = ctx.binding_limit();
        match self.buffers.iter().find(|(_, bytes)| *bytes > have) {
            Some((what, need)) => Err(GpuError::TooLarge {
                what: what.clone(),
                need: *need,
                have,
                unit: "bytes",
            }),
            None => Ok(()),
        }
    }
}

/// The [`Scratch`] of every product over `runs` of (rows, with the
/// gradient products too), reserved before binding so that all of them
/// share one of each. (Counted from shapes: a product that `Matmul::bind`
/// reads from buffers because of an operand's offset would leave its
/// textures unused, never too small.)
pub fn largest_scratch(ctx: &GpuContext, arch: &Arch, runs: &[(usize, bool)]) -> Scratch {
    let mut largest = Scratch::default();
    for &(rows, backward) in runs {
        for p in step_products(arch, rows, backward) {
            let v = MatmulVariant {
                trans_a: p.trans_a,
                trans_b: p.trans_b,
                epilogue: Epilogue::Store,
            };
            let plan = plan_product(ctx, ctx.matmul_algo, &p.shape, SplitK::Auto);
            largest.partial_bytes = largest.partial_bytes.max(plan.partial_bytes(&p.shape));
            if stages_operands(ctx, ctx.matmul_algo, &v, &p.shape) {
                for (most, t) in largest
                    .staged_texels
                    .iter_mut()
                    .zip(operand_texels(&v, &p.shape))
                {
                    *most = (*most).max(t);
                }
            }
        }
    }
    largest
}
