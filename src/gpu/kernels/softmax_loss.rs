//! `shaders/softmax_loss.wgsl`: per-row loss, accuracy and dY in one pass,
//! summed into a small stats buffer on the GPU: by one workgroup, or by many
//! and a second pass adding their sums in a fixed order (`plan::plan_softmax`);
//! with a [`Head`], each row of logits computed first from the last
//! Affine's input and weights (`plan::plan_head`), and with its
//! [`HeadGrad`], that Affine's input gradient after (`plan::plan_head_grad`).
//!
//! Imports `context`, `dispatch`, `error` and `plan`.

use std::sync::OnceLock;

use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Checks, Dispatch, KernelLayout, Slice, binding_contract, dispatch,
    kernel_bindings, kernel_layout, pipeline, pipeline_at, wgsl_struct,
};
use crate::gpu::error::{GpuError, Result};
use crate::gpu::plan::{HEAD_CLASSES, SOFTMAX_MAX_GROUPS, SOFTMAX_WG, plan_softmax};

const SOURCE: &str = include_str!("../../../shaders/softmax_loss.wgsl");

wgsl_struct! {
    /// The sums the kernel accumulates, as laid out in the shader (`Stats`).
    #[derive(Debug, Default, PartialEq)]
    pub struct Stats {
        pub loss_sum: f32,
        pub correct: u32,
        pub rows: u32,
        pub _pad: u32,
    }
}

impl Stats {
    pub const BYTES: u64 = size_of::<Stats>() as u64;
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum as f64 / self.rows.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.rows.max(1) as f64
    }
}

wgsl_struct! {
    /// `shaders/softmax_loss.wgsl`'s uniform.
    struct Dims {
        rows: u32,
        classes: u32,
        want_grad: u32,
        stride: u32,
        groups: u32,
        k: u32,
        ldh: u32,
        ldw: u32,
        inputs: u32,
        relu_mask: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

wgsl_struct! {
    /// One workgroup's sums when a pass has several (`Partial`).
    struct Partial {
        loss_sum: f32,
        correct: u32,
    }
}

/// One SoftmaxWithLoss: y, the logits (rows, classes) in rows `stride`
/// long (written first when there is a `head`); t, the labels (rows) as
/// u32; dy, like y, written only when `want_grad` and only in the real
/// columns; stats, a 16-byte [`Stats`] accumulator.
pub struct SoftmaxCall<'a> {
    pub label: String,
    pub rows: usize,
    pub classes: usize,
    pub stride: usize,
    pub want_grad: bool,
    pub y: Slice<'a>,
    pub t: Slice<'a>,
    pub dy: Slice<'a>,
    pub stats: Slice<'a>,
    pub head: Option<Head<'a>>,
}

/// The last Affine, computed by the softmax pass (the head): y = h·w over
/// `k` (h's ones column carries w's bias row), h's rows `ldh` long and w's
/// `ldw` (= `stride`, at most [`HEAD_CLASSES`]); over `groups` workgroups
/// (what `plan::plan_head` gives); then, with `grad`, the Affine's input
/// gradient.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    pub h: Slice<'a>,
    pub w: Slice<'a>,
    pub k: usize,
    pub ldh: usize,
    pub ldw: usize,
    pub groups: u32,
    pub grad: Option<HeadGrad<'a>>,
}

/// The head's Affine's input gradient, as its backward's product writes
/// it: `dh = dY·Wᵀ`, kept where `h > 0` when `relu` (Relu's backward), in
/// the first `inputs` columns of rows `ldh` long, zeros in the columns
/// after (the ones column among them). Only with `want_grad`.
#[derive(Clone, Copy)]
pub struct HeadGrad<'a> {
    pub dh: Slice<'a>,
    pub inputs: usize,
    pub relu: bool,
}

kernel_bindings! {
    /// The shader's buffers: [`SoftmaxCall`]'s, the workgroups' sums, then
    /// the head's operands (the labels again where there is no head).
    struct Buffers<'a> {
        y: ReadWrite,
        t: Read,
        dy: ReadWrite,
        stats: ReadWrite,
        partials: ReadWrite,
        h: Read,
        w: Read,
        dh: ReadWrite,
    }
}

pub struct SoftmaxWithLoss {
    layout: KernelLayout,
    pipeline: wgpu::ComputePipeline,
    /// The pass with the head (`AFFINE`), and with its input gradient
    /// (`INPUT_GRAD`), each made on its first use: CPU adapters never fuse
    /// (`plan::plan_head`), so never compile them.
    head: [OnceLock<wgpu::ComputePipeline>; 2],
    finish: wgpu::ComputePipeline,
    /// The workgroups' sums of a pass that has several, shared by every
    /// dispatch of this kernel (they run one after another).
    partials: wgpu::Buffer,
    /// What `dh` binds when the pass writes no input gradient.
    no_dh: wgpu::Buffer,
}

impl SoftmaxWithLoss {
    /// Bytes of the workgroups' sums (`budget::Plan` counts them).
    pub const PARTIALS_BYTES: u64 = SOFTMAX_MAX_GROUPS as u64 * size_of::<Partial>() as u64;

    pub fn new(ctx: &GpuContext) -> Self {
        let layout = kernel_layout::<Buffers, Dims>(ctx, "softmax_loss");
        let constants = [("WG", f64::from(SOFTMAX_WG))];
        let pipeline = pipeline(ctx, "softmax_loss", &layout, SOURCE, &constants);
        let finish = pipeline_at(
            ctx,
            "softmax_loss finish",
            &layout,
            SOURCE,
            "finish",
            &constants,
            Checks::On,
        );
        let partials = ctx.storage("softmax partial sums", Self::PARTIALS_BYTES);
        let no_dh = ctx.storage("softmax without an input gradient", 16);
        SoftmaxWithLoss {
            layout,
            pipeline,
            head: [OnceLock::new(), OnceLock::new()],
            finish,
            partials,
            no_dh,
        }
    }

    /// The dispatch of one [`SoftmaxCall`], spread over as many workgroups
    /// as the planner gives its rows, or its head (the sums' second pass is
    /// its `then`).
    pub fn bind(&self, ctx: &GpuContext, c: SoftmaxCall<'_>) -> Result<Dispatch> {
        let groups = match &c.head {
            Some(head) => head.groups,
            None => plan_softmax(&ctx.profile, c.rows),
        };
        self.bind_spread(ctx, c, groups)
    }

    /// [`SoftmaxWithLoss::bind`] over `groups` workgroups (at most
    /// [`SOFTMAX_MAX_GROUPS`]), whatever the planner would choose.
    pub fn bind_spread(
        &self,
        ctx: &GpuContext,
        c: SoftmaxCall<'_>,
        groups: u32,
    ) -> Result<Dispatch> {
        let groups = groups.clamp(1, SOFTMAX_MAX_GROUPS);
        if let Some(head) = &c.head {
            check_head(&c, head)?;
        }
        let grad = c.head.and_then(|h| h.grad);
        let dims = Dims {
            rows: c.rows as u32,
            classes: c.classes as u32,
            want_grad: c.want_grad as u32,
            stride: c.stride as u32,
            groups,
            k: c.head.map_or(0, |h| h.k as u32),
            ldh: c.head.map_or(0, |h| h.ldh as u32),
            ldw: c.head.map_or(0, |h| h.ldw as u32),
            inputs: grad.map_or(0, |g| g.inputs as u32),
            relu_mask: grad.is_some_and(|g| g.relu) as u32,
            _pad1: 0,
            _pad2: 0,
        };
        let bindings = Buffers {
            y: c.y,
            t: c.t,
            dy: c.dy,
            stats: c.stats,
            partials: Slice::whole(&self.partials),
            h: c.head.map_or(c.t, |h| h.h),
            w: c.head.map_or(c.t, |h| h.w),
            dh: grad.map_or(Slice::whole(&self.no_dh), |g| g.dh),
        };
        let mut first = dispatch(
            ctx,
            c.label.clone(),
            match c.head {
                Some(_) => self.head_pipeline(ctx, grad.is_some()),
                None => &self.pipeline,
            },
            &self.layout,
            &dims,
            &bindings,
            [groups, 1, 1],
        )?;
        if groups > 1 {
            let finish = dispatch(
                ctx,
                format!("{} [sums of {groups} workgroups]", c.label),
                &self.finish,
                &self.layout,
                &dims,
                &bindings,
                [1, 1, 1],
            )?;
            first.then = Some(Box::new(finish));
        }
        Ok(first)
    }
}

impl SoftmaxWithLoss {
    fn head_pipeline(&self, ctx: &GpuContext, grad: bool) -> &wgpu::ComputePipeline {
        self.head[grad as usize].get_or_init(|| {
            let constants = [
                ("WG", f64::from(SOFTMAX_WG)),
                ("AFFINE", 1.0),
                ("INPUT_GRAD", f64::from(grad as u8)),
            ];
            let label = match grad {
                false => "softmax_loss with the last Affine",
                true => "softmax_loss with the last Affine and its input gradient",
            };
            pipeline_at(
                ctx,
                label,
                &self.layout,
                SOURCE,
                "main",
                &constants,
                Checks::On,
            )
        })
    }
}

/// Refuses a head the kernel cannot run: a row of logits longer than it
/// holds, or operands shorter than its rows read.
fn check_head(c: &SoftmaxCall<'_>, head: &Head<'_>) -> Result<()> {
    let fail = |why: String| Err(GpuError::Shape(format!("{}: {why}", c.label)));
    if c.stride > HEAD_CLASSES || head.ldw < c.classes || head.ldh < head.k {
        return fail(format!(
            "the head holds rows of at most {HEAD_CLASSES} logits, got {} classes in rows of {} (W's rows {}, h's {} over K {})",
            c.classes, c.stride, head.ldw, head.ldh, head.k
        ));
    }
    if let Some(g) = head.grad {
        if !c.want_grad || g.inputs >= head.k {
            return fail(format!(
                "the head's input gradient needs dY (want_grad {}) and fewer inputs ({}) than K ({})",
                c.want_grad, g.inputs, head.k
            ));
        }
    }
    let span = |rows: usize, cols: usize, ld: usize| (rows.max(1) - 1) * ld + cols;
    let needs = [
        ("h", head.h.len, span(c.rows, head.k, head.ldh)),
        ("W", head.w.len, span(head.k, c.classes, head.ldw)),
        ("y", c.y.len, span(c.rows, c.stride, c.stride)),
        (
            "dh",
            head.grad.map_or(u64::MAX, |g| g.dh.len),
            span(c.rows, head.ldh, head.ldh),
        ),
    ];
    match needs
        .into_iter()
        .find(|&(_, have, need)| have < need as u64)
    {
        Some((what, have, need)) => fail(format!(
            "{what} holds {have} elements, the head uses {need}"
        )),
        None => Ok(()),
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    let module = || vec![("shaders/softmax_loss.wgsl", SOURCE.to_string())];
    vec![
        crate::gpu::dispatch::uniform_dims::<Dims>(module()),
        crate::gpu::dispatch::StructContract {
            layout: <Stats as crate::gpu::dispatch::WgslStruct>::LAYOUT,
            wgsl_name: "Stats",
            uniform_at: None,
            modules: module(),
        },
        crate::gpu::dispatch::StructContract {
            layout: <Partial as crate::gpu::dispatch::WgslStruct>::LAYOUT,
            wgsl_name: "Partial",
            uniform_at: None,
            modules: module(),
        },
    ]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    vec![binding_contract::<Buffers>(
        "softmax_loss",
        vec![("shaders/softmax_loss.wgsl", SOURCE.into())],
    )]
}
