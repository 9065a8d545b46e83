//! The dispatch planner: pure functions from a dispatch's shape and the
//! device's [`DeviceProfile`] to its grid. On a GPU the tiled product's
//! tile and split of K, and the softmax's workgroups, are the plans the
//! cost model (`cost`) says are fastest; on a CPU adapter (lavapipe) the
//! vec4 kernel keeps the rules measured there. The same shape on the same
//! profile always gets the same plan, so a seed repeats a run bit for bit.
//! `im2col`'s and `col2im`'s grain: on a CPU adapter an invocation per row
//! of the column matrix or per image position (its loop is cheaper than
//! divisions there); on a GPU one per element, so that neighbouring
//! invocations write neighbouring addresses. (Pooling over
//! windows that tile the image runs a window's quad of channels per
//! invocation everywhere, and the gather and update kernels one invocation
//! per element or vec4, which suits both.)
//!
//! Imports `profile` and `cost` (and `crate::core::conv`).

use super::cost::{CostModel, H200, K_STEP, REDUCE_IN_FLIGHT, RowGrad, Tile, Work};
use super::profile::{DeviceProfile, MatmulAlgo};
use crate::core::conv::Slide;

/// The product's dimensions and strides (row lengths as stored). Columns
/// `n_real..n` of C are padding: 1.0 at `ones_col`, 0.0 elsewhere (left
/// untouched by the SGD epilogue). Weight decay `decay` applies to rows
/// `m < decay_rows` (the weights of a `[W; b]` block, not its bias row) in the
/// SGD and Grad epilogues.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub n_real: usize,
    pub ones_col: Option<usize>,
    pub lr: f32,
    pub decay: f32,
    pub decay_rows: usize,
}

impl MatmulShape {
    /// A plain product `C(m, n) = A(m, k)·B(k, n)`, tightly packed, no padding columns.
    pub fn plain(m: usize, n: usize, k: usize, lda: usize, ldb: usize, ldc: usize) -> Self {
        MatmulShape {
            m,
            n,
            k,
            lda,
            ldb,
            ldc,
            n_real: n,
            ones_col: None,
            lr: 0.0,
            decay: 0.0,
            decay_rows: 0,
        }
    }
}

/// How K is divided among workgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitK {
    /// Chosen by the planner ([`plan_product`]).
    Auto,
    /// At most this many slices (fewer when K is too short for them).
    Slices(u32),
}

/// How a product is dispatched: its tile, workgroup grid and split of K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulPlan {
    /// The tiled kernel's tile (the vec4 kernel ignores it).
    pub tile: Tile,
    /// Workgroups of the product pass (x, y, and z = the slices of K).
    pub groups: [u32; 3],
    /// Slices of K computed in parallel (1: not split).
    pub split_k: u32,
    /// Length of each slice of K (a multiple of 16; the last may be shorter).
    pub k_slice: u32,
}

impl MatmulPlan {
    /// Bytes of the partial sums a split product allocates (0 when not split).
    pub fn partial_bytes(&self, s: &MatmulShape) -> u64 {
        if self.split_k > 1 {
            self.split_k as u64 * s.m as u64 * s.ldc as u64 * 4
        } else {
            0
        }
    }

    /// The dispatches this plan makes, as the cost model sees them.
    pub fn work(&self, s: &MatmulShape) -> Vec<Work> {
        self.work_with(s, REDUCE_IN_FLIGHT)
    }

    /// [`MatmulPlan::work`] with a reduction that reads `reduce_in_flight`
    /// partial sums before adding them (another build's kernel).
    pub fn work_with(&self, s: &MatmulShape, reduce_in_flight: u64) -> Vec<Work> {
        let groups = self.groups.iter().map(|&g| g as u64).product();
        let steps = (self.k_slice as u64).div_ceil(K_STEP);
        // C (or the partial sums) written, and read too by most epilogues.
        let out_bytes = 8 * (self.split_k as usize * s.m * s.n) as u64;
        let mut work = vec![Work::Tiled {
            tile: self.tile,
            groups,
            steps,
            out_bytes,
        }];
        if self.split_k > 1 {
            work.push(Work::Reduce {
                elements: (s.m * s.n) as u64,
                slices: self.split_k as u64,
                in_flight: reduce_in_flight,
            });
        }
        work
    }

    /// What `model` predicts for this plan on `profile`, in seconds.
    pub fn predicted(&self, model: &CostModel, profile: &DeviceProfile, s: &MatmulShape) -> f64 {
        self.predicted_with(model, profile, s, REDUCE_IN_FLIGHT)
    }

    /// [`MatmulPlan::predicted`] with the reduction of [`MatmulPlan::work_with`].
    pub fn predicted_with(
        &self,
        model: &CostModel,
        profile: &DeviceProfile,
        s: &MatmulShape,
        reduce_in_flight: u64,
    ) -> f64 {
        let work = self.work_with(s, reduce_in_flight);
        work.into_iter().map(|w| model.seconds(profile, w)).sum()
    }
}

/// Split-K on CPU adapters (the vec4 kernel): K is cut into slices of at
/// least this length. With texture operands the kernel already takes K in
/// cache-sized blocks (see K_BLOCK4 in shaders/matmul/vec4.wgsl), yet long slices
/// still run slower (reading buffers, without the blocks, more so): at the
/// weight gradient of batch 8192 eight slices beat four and one (measured
/// in docs/performance.md, "The large products").
const VEC4_MIN_K_SLICE: u64 = 1024;
/// The reduction's workgroup (invocations along N; a row of C per row of
/// workgroups).
pub const REDUCE_WG: u32 = 64;
/// The splits of K the GPU planner weighs (as far as K has steps for them).
const SPLIT_CANDIDATES: [u64; 20] = [
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
];
/// Output tile of one invocation of the vec4 kernel.
pub const VEC4_TN: u32 = 16;
/// Invocations along x (the SIMD lanes) of a vec4 workgroup.
pub const VEC4_WG_X: u32 = 8;
/// The heights a vec4 workgroup whose lanes walk M may have (invocations
/// along y). Each is a pipeline of its own, compiled and, in CI, validated
/// in every variant, so they are few: the powers of two up to the 8 that
/// covers 128 columns, as lanes along N do, then the heights between
/// multiples of 8 blocks, where lanes along N would compute up to 64
/// columns more (12, 20 and 28 cover 192, 320 and 448 columns).
pub const VEC4_WG_YS: [u32; 7] = [1, 2, 4, 8, 12, 20, 28];

/// The workgroup grid, tile and split of K for a product of `algo` on
/// `profile`. [`SplitK::Auto`] on a GPU (the tiled kernel) takes the tile and
/// split the cost model predicts fastest; on the vec4 kernel it splits when K
/// is too long for the caches ([`VEC4_MIN_K_SLICE`]). A split whose partial
/// sums would not fit one binding, or whose reduction's grid would not fit
/// the device, is never chosen.
pub fn plan_product(
    profile: &DeviceProfile,
    algo: MatmulAlgo,
    s: &MatmulShape,
    split: SplitK,
) -> MatmulPlan {
    let k = s.k as u64;
    let fits = |n: u64| split_fits(profile, s, n);
    let wanted = match (split, algo) {
        (SplitK::Slices(n), _) => n as u64,
        (SplitK::Auto, MatmulAlgo::Tiled) => return fastest_tiled(profile, &Tile::ALL, s, fits),
        (SplitK::Auto, _) => k / VEC4_MIN_K_SLICE,
    };
    let mut n = wanted.clamp(1, k.div_ceil(K_STEP).max(1));
    if split == SplitK::Auto {
        while !fits(n) {
            n /= 2;
        }
    }
    with_split(algo, Tile::T64, s, n)
}

/// Whether K may be split in `n`: the partial sums fit one binding and the
/// reduction's grid (one row of workgroups per row of C) fits the device.
fn split_fits(profile: &DeviceProfile, s: &MatmulShape, n: u64) -> bool {
    n <= 1
        || (n * s.m as u64 * s.ldc as u64 * 4 <= profile.binding_limit
            && s.m as u64 <= profile.max_groups_per_dim as u64)
}

/// [`plan_product`] for the tiled kernel with its tile given (a test, or
/// `bench --matmul` comparing the tiles): `SplitK::Auto` takes the split the
/// cost model predicts fastest for that tile.
pub fn plan_tiled(
    profile: &DeviceProfile,
    tile: Tile,
    s: &MatmulShape,
    split: SplitK,
) -> MatmulPlan {
    match split {
        SplitK::Slices(n) => {
            let n = (n as u64).clamp(1, (s.k as u64).div_ceil(K_STEP).max(1));
            with_split(MatmulAlgo::Tiled, tile, s, n)
        }
        SplitK::Auto => fastest_tiled(profile, &[tile], s, |n| split_fits(profile, s, n)),
    }
}

/// The tiled plan among `tiles` with the least predicted time; ties go to
/// the earlier tile, then the fewer slices (one dispatch rather than two).
fn fastest_tiled(
    profile: &DeviceProfile,
    tiles: &[Tile],
    s: &MatmulShape,
    fits: impl Fn(u64) -> bool,
) -> MatmulPlan {
    let steps = (s.k as u64).div_ceil(K_STEP).max(1);
    let mut best = with_split(MatmulAlgo::Tiled, tiles[0], s, 1);
    let mut best_time = best.predicted(&H200, profile, s);
    for &tile in tiles {
        for n in SPLIT_CANDIDATES
            .into_iter()
            .filter(|&n| n <= steps && fits(n))
        {
            let plan = with_split(MatmulAlgo::Tiled, tile, s, n);
            let time = plan.predicted(&H200, profile, s);
            if time < best_time {
                (best, best_time) = (plan, time);
            }
        }
    }
    best
}

/// The plan cutting K into at most `n` slices of whole steps, none empty.
fn with_split(algo: MatmulAlgo, tile: Tile, s: &MatmulShape, n: u64) -> MatmulPlan {
    let k = s.k as u64;
    let [x, y] = grid(algo, tile, s);
    let k_slice = k.div_ceil(n.max(1)).next_multiple_of(K_STEP).max(1);
    let n = if n > 1 { k.div_ceil(k_slice) } else { 1 };
    MatmulPlan {
        tile,
        groups: [x, y, n as u32],
        split_k: n as u32,
        k_slice: if n > 1 {
            k_slice as u32
        } else {
            k.max(1) as u32
        },
    }
}

/// Workgroups along x and y covering C.
fn grid(algo: MatmulAlgo, tile: Tile, s: &MatmulShape) -> [u32; 2] {
    match algo {
        MatmulAlgo::Tiled => [
            (s.n as u32).div_ceil(tile.edge()),
            (s.m as u32).div_ceil(tile.edge()),
        ],
        MatmulAlgo::Vec4 | MatmulAlgo::Vec4Buffers => {
            let shape = Vec4Shape::for_product(s.m, s.n);
            let (along_x, along_y) = if shape.x_along_m {
                (s.m, s.n)
            } else {
                (s.n, s.m)
            };
            let (tile_x, tile_y) = if shape.x_along_m {
                (shape.tm, VEC4_TN)
            } else {
                (VEC4_TN, shape.tm)
            };
            [
                (along_x as u32).div_ceil(tile_x * VEC4_WG_X),
                (along_y as u32).div_ceil(tile_y * shape.wg_y),
            ]
        }
    }
}

/// The vec4 kernel's workgroup: which dimension the SIMD lanes (x) walk,
/// how many invocations along y, and the rows per invocation (all pipeline
/// constants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Vec4Shape {
    pub x_along_m: bool,
    pub wg_y: u32,
    pub tm: u32,
}

impl Vec4Shape {
    /// Lanes along M, the lowest of [`VEC4_WG_YS`] tall enough for N,
    /// where that computes fewer columns than lanes along N (8 lanes × 16
    /// columns a workgroup) would, or N is under 128; otherwise, or where M
    /// is shorter than N, lanes along N. (The 148 columns of DeepConvNet's
    /// first input gradients take 192 so, not 256. Where both cover N alike,
    /// as at 500 columns, lanes along N measured faster on lavapipe.) 12
    /// rows per invocation, unless rounding M up to a whole number of
    /// workgroups would waste more than with 8.
    pub fn for_product(m: usize, n: usize) -> Self {
        let (m, n) = (m as u32, n as u32);
        let by_lanes = n.next_multiple_of(VEC4_WG_X * VEC4_TN);
        let tall = VEC4_WG_YS.into_iter().find(|&y| y * VEC4_TN >= n);
        let narrow = n < VEC4_WG_X * VEC4_TN;
        let (x_along_m, wg_y) = match tall {
            Some(y) if m >= n && (narrow || y * VEC4_TN < by_lanes) => (true, y),
            _ => (false, 8),
        };
        let rows_per_group = |tm: u32| if x_along_m { tm * VEC4_WG_X } else { tm * wg_y };
        let padded = |tm: u32| m.div_ceil(rows_per_group(tm)) * rows_per_group(tm);
        let tm = if padded(12) <= padded(8) + padded(8) / 16 {
            12
        } else {
            8
        };
        Vec4Shape {
            x_along_m,
            wg_y,
            tm,
        }
    }
}

/// How `im2col` and `col2im` divide their work (see the module's comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowGrain {
    /// A row of im2col's matrix per invocation; col2im, an image position
    /// (its channels) per invocation.
    Rows,
    /// An element per invocation (col2im: an image value).
    Elements,
}

/// Windows that tile the image: stride = window height = width, no
/// padding, so every input value lies in exactly one window.
pub fn tiles(s: &Slide) -> bool {
    let w = s.window;
    w.pad == 0 && w.stride == w.h && w.stride == w.w
}

/// Whether max pooling over `s` runs by quads (`kernels::MaxPool`): windows
/// that [`tiles`] the image, over rows of whole vec4s (`z_stride` a
/// multiple of 4, as every stride of `gpu::layout` is). Invocations then
/// number (n, oy, ox, quad of channels); otherwise the general kernels'.
pub fn pools_by_quads(s: &Slide, z_stride: usize) -> bool {
    tiles(s) && z_stride.is_multiple_of(4)
}

/// The invocations of pooling over `s` by quads: one per window position
/// and quad of the `z_stride` channels a row holds.
pub fn pool_quads(s: &Slide, z_stride: usize) -> usize {
    s.input.n * s.out_area() * z_stride / 4
}

/// `im2col`'s and `col2im`'s grain on `profile`'s device.
pub fn window_grain(profile: &DeviceProfile) -> WindowGrain {
    if profile.cpu {
        WindowGrain::Rows
    } else {
        WindowGrain::Elements
    }
}

/// Whether a convolution reads im2col's matrix in place (the tiled
/// product's `A_COLUMNS`: `kernels::Columns`) rather than writing it out
/// and reading it back: wherever the products are the tiled kernel's (a
/// GPU's; CPU adapters run the vec4 kernel, which reads A from memory) and
/// the profile allows it. The same values in the same order, so the same
/// bits either way, with no im2col dispatch and no column matrix in memory.
pub fn implicit_columns(profile: &DeviceProfile, algo: MatmulAlgo) -> bool {
    profile.implicit_conv && algo == MatmulAlgo::Tiled
}

/// How a training step's inputs and labels are laid out for the steps of
/// one submission: `count` batches one after another, each `rows` rows
/// from the last (the batch, rounded up so that every batch starts on a
/// 256-byte boundary, a storage binding's offset). One gather writes them
/// all, so a submission of `count` steps has one gather dispatch, not
/// `count`; each step's products read its own region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regions {
    pub count: usize,
    pub rows: usize,
}

impl Regions {
    /// A single batch of `batch` rows (an evaluation's, or one step's).
    pub fn one(batch: usize) -> Self {
        Regions {
            count: 1,
            rows: batch,
        }
    }

    /// Rows the inputs and labels hold.
    pub fn total_rows(&self) -> usize {
        self.count * self.rows
    }
}

/// Whether `profile`'s device gathers a submission's batches at once where
/// they fit (see [`gather_regions`]).
pub fn gathers_ahead(profile: &DeviceProfile) -> bool {
    profile.gather_ahead && !profile.cpu
}

/// The most bytes of inputs and labels a submission's steps gather at
/// once; beyond it, each step gathers its own batch.
pub const GATHER_AHEAD_BYTES: usize = 64 << 20;

/// How training steps of `batch` rows of `row_floats` inputs, `slots` to a
/// submission, lay out their inputs and labels: on a GPU, where a
/// dispatch's launch is what a small gather costs, all the slots' batches
/// at once where they fit [`GATHER_AHEAD_BYTES`]; on a CPU adapter, whose
/// caches still hold a step's batch when its first product reads it, or
/// with `GPU_NET_GATHER_AHEAD=0`, one.
pub fn gather_regions(
    profile: &DeviceProfile,
    batch: usize,
    slots: usize,
    row_floats: usize,
) -> Regions {
    // A u32 label is 4 bytes: 64 rows of them make 256.
    let rows = batch.next_multiple_of(64);
    let bytes = slots * rows * (row_floats + 1) * 4;
    match slots > 1 && bytes <= GATHER_AHEAD_BYTES && gathers_ahead(profile) {
        true => Regions { count: slots, rows },
        false => Regions::one(batch),
    }
}

/// Invocations of a softmax workgroup (`WG` in softmax_loss.wgsl).
pub const SOFTMAX_WG: u32 = 256;
/// The most workgroups a softmax pass spreads its rows over (the size of
/// its partial sums' buffer); each invocation walks more rows beyond it.
pub const SOFTMAX_MAX_GROUPS: u32 = 1024;

/// How SoftmaxWithLoss runs over `rows` rows: one workgroup, whose tree
/// adds the sums (a CPU adapter, or few rows), or one row per invocation over
/// many workgroups and a second pass adding their sums in a fixed order,
/// when the cost model predicts that faster.
pub fn plan_softmax(profile: &DeviceProfile, rows: usize) -> u32 {
    plan_rows(profile, rows, 0)
}

/// [`plan_softmax`] for rows that each first take `steps` steps of K (the head).
fn plan_rows(profile: &DeviceProfile, rows: usize, steps: u64) -> u32 {
    let spread = (rows as u64)
        .div_ceil(SOFTMAX_WG as u64)
        .clamp(1, SOFTMAX_MAX_GROUPS as u64) as u32;
    if profile.cpu || spread == 1 {
        return 1;
    }
    let one = rows_seconds(&H200, profile, rows, 1, (steps, RowGrad::default()));
    let many = rows_seconds(&H200, profile, rows, spread, (steps, RowGrad::default()));
    if many < one { spread } else { 1 }
}

/// What `model` predicts for a SoftmaxWithLoss pass over `rows` rows in
/// `groups` workgroups, its sums' second pass included, each row first
/// computed over `steps` steps of K (the head) or not (0), then the head's
/// input gradient (`grad`; zero for none).
pub fn rows_seconds(
    model: &CostModel,
    profile: &DeviceProfile,
    rows: usize,
    groups: u32,
    (steps, grad): (u64, RowGrad),
) -> f64 {
    let (rows, groups) = (rows as u64, groups as u64);
    let pass = model.seconds(
        profile,
        Work::Rows {
            rows,
            groups,
            steps,
            grad,
        },
    );
    match groups {
        0 | 1 => pass,
        _ => pass + model.seconds(profile, Work::Finish { partials: groups }),
    }
}

/// The longest row of logits (classes and padding) the head holds in
/// registers (`HEAD_CLASSES` in shaders/softmax_loss.wgsl).
pub const HEAD_CLASSES: usize = 16;

/// Whether SoftmaxWithLoss computes the last Affine itself (the head: one
/// dispatch where there were a product's and its own), and over how many
/// workgroups; None keeps them apart. Only on a GPU whose profile allows
/// it, for rows of logits no longer than [`HEAD_CLASSES`], and where the
/// cost model predicts the head faster than the tiled product (as planned)
/// and the softmax after it. `product` is the last Affine's forward shape.
pub fn plan_head(profile: &DeviceProfile, rows: usize, product: &MatmulShape) -> Option<u32> {
    if profile.cpu || !profile.fused_head || product.n > HEAD_CLASSES {
        return None;
    }
    let steps = head_steps(product);
    let groups = plan_rows(profile, rows, steps);
    let head = rows_seconds(&H200, profile, rows, groups, (steps, RowGrad::default()));
    let plan = plan_product(profile, MatmulAlgo::Tiled, product, SplitK::Auto);
    let softmax = plan_softmax(profile, rows);
    let apart = plan.predicted(&H200, profile, product)
        + rows_seconds(&H200, profile, rows, softmax, (0, RowGrad::default()));
    (head < apart).then_some(groups)
}

/// Steps of K a row of the head computes its logits over.
pub fn head_steps(product: &MatmulShape) -> u64 {
    (product.k as u64).div_ceil(K_STEP)
}

/// What a row of the head's input gradient costs (`dx`: the last Affine's
/// input-gradient product): a multiply-add per element of the row and K,
/// and a float read (Relu's mask) and written per element.
pub fn head_grad_cost(dx: &MatmulShape) -> RowGrad {
    RowGrad {
        fmas: (dx.n * dx.k) as u64,
        bytes: (dx.n * 8) as u64,
    }
}

/// Whether the head, planned over `groups` workgroups for `rows` rows of
/// the last Affine `product`, also computes that Affine's input gradient
/// (`dx`: its backward's product, Relu's mask included): where the cost
/// model predicts the head doing both faster than the head and the tiled
/// product (as planned) apart.
pub fn plan_head_grad(
    profile: &DeviceProfile,
    rows: usize,
    groups: u32,
    (product, dx): (&MatmulShape, &MatmulShape),
) -> bool {
    let steps = head_steps(product);
    let both = rows_seconds(&H200, profile, rows, groups, (steps, head_grad_cost(dx)));
    let plan = plan_product(profile, MatmulAlgo::Tiled, dx, SplitK::Auto);
    let alone = rows_seconds(&H200, profile, rows, groups, (steps, RowGrad::default()));
    let apart = alone + plan.predicted(&H200, profile, dx);
    both < apart
}
