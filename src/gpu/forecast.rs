//! The cost model over a whole training step, without a GPU: the gather,
//! each product and the softmax of a step as the planner plans them on a
//! profile, with their predicted times (a gather that writes several steps'
//! batches counts a step's share), and a convolutional front's pooling
//! where it runs by quads; and the same dispatches under the plans of a
//! measurement (the 64×64 tile, the split of K `bench --json`
//! reported, one softmax workgroup, a reduction reading one partial sum at
//! a time), so that the model can be held against what was measured
//! (`tests/cost_model.rs`) and old plans set beside new ones
//! (`examples/cost_model.rs`). Dispatches the model does not plan (im2col,
//! pooling as measured, the optimizer's update, Batch Normalization,
//! Dropout) are carried at their measured times by the callers.
//!
//! Imports `cost`, `plan`, `profile`, `kernels` (workgroup sizes) and
//! `layout` (and `crate::core`).

use super::cost::{CostModel, MEASURED_REDUCE_IN_FLIGHT, REDUCE_IN_FLIGHT, RowGrad, Tile, Work};
use super::kernels::{optimizer, window};
use super::layout::{FrontMatrices, GpuLayout, StepProduct, padded, step_products, step_regions};
use super::plan::{
    REDUCE_WG, SplitK, head_grad_cost, head_steps, plan_head, plan_head_grad, plan_product,
    plan_softmax, plan_tiled, pool_quads, pools_by_quads, rows_seconds,
};
use super::profile::{DeviceProfile, MatmulAlgo};
use crate::core::conv::Slide;
use crate::core::model::Arch;
use crate::core::optim::OptimizerKind;

/// The label of the softmax's dispatch in a step.
pub const SOFTMAX: &str = "softmax_with_loss";
/// How the label of a step's gather starts.
pub const GATHER: &str = "gather slot";

/// One dispatch of a step and what the model predicts for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    pub name: String,
    /// Workgroups of the dispatch and of its second pass, if any.
    pub groups: u64,
    /// Slices of K (1: not split; the softmax's are 1).
    pub split_k: u32,
    /// The tiled product's tile (None for the softmax).
    pub tile: Option<Tile>,
    pub seconds: f64,
}

/// The step's gather (its share, `slots` steps to a submission), products
/// and softmax for `rows` samples, planned on `profile`; where the planner
/// fuses the last Affine into the softmax (the head), one dispatch for the
/// two, and that Affine's input gradient too where the planner fuses it.
pub fn planned_step(
    model: &CostModel,
    profile: &DeviceProfile,
    arch: &Arch,
    (rows, slots): (usize, usize),
) -> Vec<Forecast> {
    let regions = step_regions(profile, arch, rows, slots).count;
    let gather = gather_forecast(model, profile, arch, (rows, regions));
    let products = step_products(arch, rows, true);
    let last = products.iter().rposition(|p| p.name.ends_with(" forward"));
    let head = last.and_then(|l| plan_head(profile, rows, &products[l].shape).map(|g| (l, g)));
    // The last Affine's input gradient follows its forward product.
    let dx = head.and_then(|(l, groups)| {
        let dx = products
            .get(l + 1)
            .filter(|p| p.name.ends_with(" backward dx"))?;
        plan_head_grad(profile, rows, groups, (&products[l].shape, &dx.shape)).then_some(l + 1)
    });
    let planned = products
        .iter()
        .enumerate()
        .filter(|(i, _)| head.is_none_or(|(l, _)| l != *i) && dx != Some(*i))
        .map(|(_, p)| {
            let plan = plan_product(profile, MatmulAlgo::Tiled, &p.shape, SplitK::Auto);
            product_forecast(model, profile, p, plan, REDUCE_IN_FLIGHT)
        });
    let mut step: Vec<Forecast> = std::iter::once(gather).chain(planned).collect();
    step.push(match head {
        Some((l, groups)) => {
            let steps = head_steps(&products[l].shape);
            let (grad, name) = match dx {
                Some(d) => (
                    head_grad_cost(&products[d].shape),
                    format!("{SOFTMAX} + {} + {}", products[l].name, products[d].name),
                ),
                None => (
                    RowGrad::default(),
                    format!("{SOFTMAX} + {}", products[l].name),
                ),
            };
            Forecast {
                name,
                seconds: rows_seconds(model, profile, rows, groups, (steps, grad)),
                ..softmax_forecast(model, profile, rows, groups)
            }
        }
        None => softmax_forecast(model, profile, rows, plan_softmax(profile, rows)),
    });
    step.extend(front_pooling(model, profile, arch, rows));
    step
}

/// The bytes max pooling over `slide` by quads moves (`plan::pools_by_quads`;
/// None where it runs the general kernels, which the model does not cover),
/// forward and backward: the forward reads the convolution's rows of
/// `z_stride` and writes the pooled rows of `p_stride` and one argmax per
/// pooled value; the backward reads the pooled gradient and the argmaxes
/// (and the rows again for Relu's mask when `relu`) and writes the rows'
/// gradient.
pub fn pooling_bytes(
    slide: &Slide,
    (z_stride, p_stride): (usize, usize),
    relu: bool,
) -> Option<[u64; 2]> {
    if !pools_by_quads(slide, z_stride) {
        return None;
    }
    let n = slide.input.n as u64;
    let rows = (n * (slide.input.h * slide.input.w * z_stride) as u64) * 4;
    let pooled = n * (slide.input.c * slide.out_area()) as u64 * 4;
    let forward = rows + n * p_stride as u64 * 4 + pooled;
    let backward = 2 * pooled + rows * (1 + relu as u64);
    Some([forward, backward])
}

/// A convolutional front's pooling (SimpleConvNet's `pool1`, Relu's
/// backward fused into its backward), named as its dispatches are, where it
/// runs by quads.
fn front_pooling(
    model: &CostModel,
    profile: &DeviceProfile,
    arch: &Arch,
    rows: usize,
) -> Vec<Forecast> {
    let Some(m) = arch.conv.and_then(|c| FrontMatrices::new(&c, rows)) else {
        return vec![];
    };
    let strides = (padded(m.filters()), padded(m.pooled()));
    let Some(bytes) = pooling_bytes(&m.pool, strides, true) else {
        return vec![];
    };
    let groups = pool_quads(&m.pool, strides.0).div_ceil(window::WG as usize) as u64;
    let names = ["pool1 forward", "pool1 backward + relu1 backward"];
    (names.iter().zip(bytes))
        .map(|(name, bytes)| stream_forecast(model, profile, name, (bytes, groups)))
        .collect()
}

/// A [`Work::Stream`] dispatch of `bytes` over `groups` workgroups.
fn stream_forecast(
    model: &CostModel,
    profile: &DeviceProfile,
    name: &str,
    (bytes, groups): (u64, u64),
) -> Forecast {
    Forecast {
        name: name.into(),
        groups,
        split_k: 1,
        tile: None,
        seconds: model.seconds(profile, Work::Stream { bytes }),
    }
}

/// The optimizer's update as `bench --json` names it (`{rule} update slot
/// {s}`: a rule not fused into the products) over `arch`'s parameter arena:
/// the parameters and each array of the rule's state read and written, the
/// gradients read. None for a name that is no rule's update. No plan
/// changes it, so the callers carry its measured time in a step;
/// `tests/cost_model.rs` holds [`CostModel::stream_bytes`] to it.
pub fn update_forecast(
    model: &CostModel,
    profile: &DeviceProfile,
    arch: &Arch,
    name: &str,
) -> Option<Forecast> {
    let (rule, _) = name.split_once(" update slot ")?;
    let kind = OptimizerKind::parse(rule).ok()?;
    let arrays = 3 + 2 * kind.state_arrays() as u64;
    let len = GpuLayout::new(arch).len as u64;
    let groups = (len / 4).div_ceil((optimizer::WG * optimizer::PER) as u64);
    Some(stream_forecast(
        model,
        profile,
        name,
        (arrays * len * 4, groups),
    ))
}

/// A dispatch `bench --json` reported (its `name` and `split_k`), as the
/// model predicts it under the plan it ran with: the 64×64 tile and that
/// split for a product, one workgroup for the softmax. None for a dispatch
/// the model does not cover.
pub fn as_measured(
    model: &CostModel,
    profile: &DeviceProfile,
    arch: &Arch,
    rows: usize,
    name: &str,
    split_k: u32,
) -> Option<Forecast> {
    if name == SOFTMAX {
        return Some(softmax_forecast(model, profile, rows, 1));
    }
    if name.starts_with(GATHER) {
        return Some(gather_forecast(model, profile, arch, (rows, 1)));
    }
    let base = name.split(" [split-K").next().unwrap_or(name);
    let product = step_products(arch, rows, true)
        .into_iter()
        .find(|p| base.starts_with(&p.name))?;
    let plan = plan_tiled(profile, Tile::T64, &product.shape, SplitK::Slices(split_k));
    Some(product_forecast(
        model,
        profile,
        &product,
        plan,
        MEASURED_REDUCE_IN_FLIGHT,
    ))
}

fn product_forecast(
    model: &CostModel,
    profile: &DeviceProfile,
    p: &StepProduct,
    plan: super::plan::MatmulPlan,
    reduce_in_flight: u64,
) -> Forecast {
    let reduce_groups = if plan.split_k > 1 {
        (p.shape.n as u64).div_ceil(REDUCE_WG as u64) * p.shape.m as u64
    } else {
        0
    };
    Forecast {
        name: p.name.clone(),
        groups: plan.groups.iter().map(|&g| g as u64).product::<u64>() + reduce_groups,
        split_k: plan.split_k,
        tile: Some(plan.tile),
        seconds: plan.predicted_with(model, profile, &p.shape, reduce_in_flight),
    }
}

/// A step's share of the gather that writes `count` batches of `rows`
/// (`layout::step_regions`): it reads each image's bytes and writes its
/// row of inputs and its label.
fn gather_forecast(
    model: &CostModel,
    profile: &DeviceProfile,
    arch: &Arch,
    (rows, count): (usize, usize),
) -> Forecast {
    let inputs = arch.inputs();
    let row = (padded(inputs) * 4 + 4 + inputs) as u64;
    let bytes = (count * rows) as u64 * row;
    Forecast {
        name: match count {
            1 => "gather".into(),
            n => format!("gather (a step's share of {n} steps' batches)"),
        },
        groups: 1,
        split_k: 1,
        tile: None,
        seconds: model.seconds(profile, Work::Gather { bytes }) / count as f64,
    }
}

fn softmax_forecast(
    model: &CostModel,
    profile: &DeviceProfile,
    rows: usize,
    groups: u32,
) -> Forecast {
    Forecast {
        name: SOFTMAX.into(),
        groups: groups as u64 + (groups > 1) as u64,
        split_k: 1,
        tile: None,
        seconds: rows_seconds(model, profile, rows, groups, (0, RowGrad::default())),
    }
}
