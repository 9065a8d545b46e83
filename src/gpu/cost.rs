//! A cost model of one dispatch on a GPU: what a plan should take, without
//! running it. The planner (`plan`) chooses between plans with it, and
//! `examples/cost_model.rs` states what a change should give on a GPU
//! before any run on one.
//!
//! A dispatch costs a launch, then the slowest compute unit's work. A unit
//! runs its share of the workgroups (`ceil(groups / units)`), a few at a
//! time (`residency`); a workgroup of the tiled product steps through K 16
//! at a time, and each step costs at least one round trip to memory
//! (`step_latency`: a lone workgroup waits on its loads) and at least its
//! multiply-adds at the kernel's share of the unit's peak (`efficiency`);
//! its output costs at least its bytes at the epilogue's bandwidth.
//! A gather costs its bytes at a fitted bandwidth, and so does a kernel
//! that streams vec4s (at another).
//! Row kernels (the softmax) cost a fixed time per row an invocation walks,
//! and one step's wait per 16 of K where they compute the row first; where
//! they then compute an input gradient across the workgroup, one more wait
//! and each lane's share of its multiply-adds.
//!
//! The constants are fitted to an NVIDIA H200 (132 units, Vulkan, 2026-12-04;
//! `bench/h200-2026-12-04/`): `tests/cost_model.rs` holds the model's
//! predictions for the plans measured there within 40% of each measured
//! dispatch. Per unit they are a reasonable stand-in for any large GPU;
//! on other GPUs the absolute times are estimates, the ranking of plans is
//! what the planner uses.
//!
//! Imports only `profile`.

use super::profile::DeviceProfile;

/// The tiled matmul's output tile per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tile {
    /// 64×64, 4×4 per invocation: 16 multiply-adds per two workgroup loads.
    T64,
    /// 128×128, 8×8 per invocation: 64 multiply-adds per four loads, twice
    /// the arithmetic per byte staged, half the workgroups.
    T128,
}

impl Tile {
    pub const ALL: [Tile; 2] = [Tile::T64, Tile::T128];

    /// Rows (and columns) of C a workgroup computes.
    pub fn edge(self) -> u32 {
        match self {
            Tile::T64 => 64,
            Tile::T128 => 128,
        }
    }

    /// Rows (and columns) of C one invocation computes (16×16 invocations).
    pub fn per_invocation(self) -> u32 {
        self.edge() / 16
    }
}

/// Steps through K of the tiled kernel (its `BK`).
pub const K_STEP: u64 = 16;

/// Partial sums split-K's reduction reads before it adds any
/// (`REDUCE_IN_FLIGHT` in shaders/matmul/tiled.wgsl; tests/translate.rs
/// holds the two equal).
pub const REDUCE_IN_FLIGHT: u64 = 4;

/// What the reduction of the H200 run (`bench/h200-2026-12-04/`) read
/// before adding: one partial at a time.
pub const MEASURED_REDUCE_IN_FLIGHT: u64 = 1;

/// The work of one dispatch, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Work {
    /// A pass of the tiled product: `groups` workgroups (slices of K
    /// included), each `steps` steps of [`K_STEP`] along K, writing (and
    /// reading, for the epilogues that do) `out_bytes` of C or partial sums.
    Tiled {
        tile: Tile,
        groups: u64,
        steps: u64,
        out_bytes: u64,
    },
    /// Split-K's reduction: `elements` outputs, each the sum of `slices`
    /// partials, which an invocation reads `in_flight` at a time (waiting
    /// on memory once per group).
    Reduce {
        elements: u64,
        slices: u64,
        in_flight: u64,
    },
    /// Rows walked by invocations of 256-wide workgroups: `rows` over
    /// `groups` workgroups (the softmax's pass over the logits), each row
    /// first computed over `steps` steps of [`K_STEP`] along K when the
    /// pass computes the last Affine itself (the head; 0 otherwise), then
    /// `grad.fmas` multiply-adds and `grad.bytes` moved a row of that
    /// Affine's input gradient, shared by the workgroup (the head's; zero
    /// otherwise).
    Rows {
        rows: u64,
        groups: u64,
        steps: u64,
        grad: RowGrad,
    },
    /// One workgroup summing `partials` per-workgroup sums in a fixed order.
    Finish { partials: u64 },
    /// A gather of a batch (or of several steps' batches): `bytes` of
    /// images read and inputs and labels written.
    Gather { bytes: u64 },
    /// A kernel that reads and writes vec4s, neighbouring invocations on
    /// neighbouring 16 bytes: `bytes` read and written (the optimizer's
    /// update, and pooling by quads: `plan::pools_by_quads`).
    Stream { bytes: u64 },
}

/// What a row of the head's input gradient costs: multiply-adds, and
/// bytes read and written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowGrad {
    pub fmas: u64,
    pub bytes: u64,
}

/// The fitted constants (see the module's comment).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// A dispatch with nothing to do, in seconds (a compute pass's launch
    /// and drain as timestamps see them).
    pub launch: f64,
    /// One step through K of a workgroup that waits alone on its loads.
    pub step_latency: f64,
    /// Peak multiply-adds per second of one compute unit (H200: 128 fp32
    /// lanes at 1.98 GHz).
    pub fma_per_unit: f64,
    /// Multiply-adds per second of one lane (one a clock).
    pub fma_per_lane: f64,
    /// One row of the softmax walked by one invocation.
    pub row: f64,
    /// One partial read by a reduction's invocation.
    pub partial_read: f64,
    /// Share of the unit's peak the 64×64 tile's inner loop reaches (17.9
    /// TFLOP/s at 4096³ on the H200). The 128×128 tile's is this times the
    /// profile's `t128_speedup`.
    pub t64_efficiency: f64,
    /// Bytes per second a gather reads and writes (H200: its batches of
    /// 100 to 65,536 images within a factor of 1.6).
    pub gather_bytes: f64,
    /// Bytes per second a [`Work::Stream`] kernel moves (H200: Adam's
    /// update of SimpleConvNet, 12.7 MB in 10.3 and 11.3 µs, launch
    /// included: 2.4 to 2.9 TB/s once the launch is taken off; with so few
    /// bytes the launch is half of it, so those two bound the figure loosely).
    pub stream_bytes: f64,
    /// Bytes per second one compute unit's workgroups write and read back
    /// through a product's epilogue (H200: about 1.3 TB/s over 132 units,
    /// well under HBM's 4.8: four floats per invocation per row).
    pub epilogue_bytes_per_unit: f64,
}

/// The H200 fit.
pub const H200: CostModel = CostModel {
    launch: 6.0e-6,
    step_latency: 2.1e-6,
    fma_per_unit: 253.0e9,
    fma_per_lane: 1.98e9,
    row: 3.0e-6,
    partial_read: 0.5e-6,
    t64_efficiency: 0.28,
    gather_bytes: 0.75e12,
    stream_bytes: 2.6e12,
    epilogue_bytes_per_unit: 10.0e9,
};

impl CostModel {
    /// A block's input gradient in a row pass over `units` units (see
    /// [`Work::Rows`]): one wait on memory, then the longest of a lane's
    /// share of the multiply-adds, its unit's share at the unit's peak,
    /// and its unit's share of the bytes at the epilogue's bandwidth (the
    /// design's estimate: no GPU has run it).
    fn row_grad(&self, units: u64, rows: u64, groups: u64, grad: RowGrad) -> f64 {
        if grad.fmas == 0 {
            return 0.0;
        }
        let resident = groups.clamp(1, units * 8).div_ceil(units);
        let rows_at_once = rows.min(resident * 256) as f64;
        let lane = grad.fmas as f64 / self.fma_per_lane;
        let unit = rows_at_once * grad.fmas as f64 / self.fma_per_unit;
        let traffic = rows_at_once * grad.bytes as f64 / self.epilogue_bytes_per_unit;
        self.step_latency + lane.max(unit).max(traffic)
    }

    /// Share of the unit's peak `tile` reaches on `profile`'s device.
    fn efficiency(&self, profile: &DeviceProfile, tile: Tile) -> f64 {
        match tile {
            Tile::T64 => self.t64_efficiency,
            Tile::T128 => self.t64_efficiency * profile.t128_speedup,
        }
    }
}

impl Tile {
    /// Workgroups one unit keeps in flight (registers and workgroup memory:
    /// 8 KiB and ~40 registers an invocation for 64×64, 16 KiB and ~100 for 128×128).
    fn residency(self) -> u64 {
        match self {
            Tile::T64 => 4,
            Tile::T128 => 2,
        }
    }
}

impl CostModel {
    /// Seconds one dispatch of `work` takes on `profile`'s device.
    pub fn seconds(&self, profile: &DeviceProfile, work: Work) -> f64 {
        let units = profile.compute_units.max(1) as u64;
        let busy = match work {
            Work::Tiled {
                tile,
                groups,
                steps,
                out_bytes,
            } => {
                let per_unit = groups.div_ceil(units);
                let writers = groups.min(units) as f64;
                let traffic = out_bytes as f64 / (writers * self.epilogue_bytes_per_unit);
                let fmas = (tile.edge() as f64).powi(2) * K_STEP as f64;
                let efficiency = self.efficiency(profile, tile);
                let compute = (per_unit * steps) as f64 * fmas / (self.fma_per_unit * efficiency);
                let waiting =
                    per_unit.div_ceil(tile.residency()) as f64 * steps as f64 * self.step_latency;
                compute.max(waiting).max(traffic)
            }
            Work::Reduce {
                elements,
                slices,
                in_flight,
            } => {
                // 2048 invocations in flight per unit; the first partial,
                // then the rest in groups.
                let rounds = elements.div_ceil(units * 2048);
                let waits = 1 + slices.saturating_sub(1).div_ceil(in_flight.max(1));
                (rounds * waits) as f64 * self.partial_read
            }
            Work::Rows {
                rows,
                groups,
                steps,
                grad,
            } => {
                // A row's product waits on memory once a step, as a lone
                // workgroup of the tiled kernel does (the design's
                // estimate: no GPU has run the head).
                let per_invocation = rows.div_ceil(groups.max(1) * 256);
                let waves = groups.div_ceil(units * 8);
                let grad = self.row_grad(units, rows, groups, grad);
                let per_row = self.row + steps as f64 * self.step_latency + grad;
                (per_invocation * waves) as f64 * per_row
            }
            Work::Finish { partials } => (partials.div_ceil(256) + 8) as f64 * self.partial_read,
            Work::Gather { bytes } => bytes as f64 / self.gather_bytes,
            Work::Stream { bytes } => bytes as f64 / self.stream_bytes,
        };
        self.launch + busy
    }
}
