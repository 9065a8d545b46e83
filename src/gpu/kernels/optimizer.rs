//! `shaders/optimizer.wgsl`: every update rule of [`crate::core::optim`] as one
//! elementwise pass over the parameter arena, with its state arrays beside it
//! on the GPU.
//!
//! Imports `context`, `dispatch` and `error` only (and `crate::core::optim`).

use crate::core::optim::{Optimizer, OptimizerKind};
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Dispatch, KernelLayout, binding_contract, dispatch, kernel_bindings,
    kernel_layout, pipeline, wgsl_struct,
};
use crate::gpu::error::Result;

/// `shaders/optimizer.wgsl`.
pub const SOURCE: &str = include_str!("../../../shaders/optimizer.wgsl");
/// `kind`'s value of the shader's `RULE` override.
pub const fn rule_code(kind: OptimizerKind) -> u32 {
    match kind {
        OptimizerKind::Sgd => 0,
        OptimizerKind::Momentum => 1,
        OptimizerKind::Nesterov => 2,
        OptimizerKind::AdaGrad => 3,
        OptimizerKind::RmsProp => 4,
        OptimizerKind::Adam => 5,
    }
}

/// Every value of `RULE` by its name as a WGSL `const` in
/// `shaders/optimizer.wgsl` (`tests/contracts.rs` holds the two sides equal).
pub const RULE_CODES: [(&str, u32); 6] = [
    ("SGD", rule_code(OptimizerKind::Sgd)),
    ("MOMENTUM", rule_code(OptimizerKind::Momentum)),
    ("NESTEROV", rule_code(OptimizerKind::Nesterov)),
    ("ADAGRAD", rule_code(OptimizerKind::AdaGrad)),
    ("RMSPROP", rule_code(OptimizerKind::RmsProp)),
    ("ADAM", rule_code(OptimizerKind::Adam)),
];

/// Invocations per workgroup, and vec4s per invocation, as in the shader.
/// Invocations per workgroup and vec4s per invocation: the shader's `WG`
/// and `PER` overrides.
pub const WG: u32 = 64;
pub const PER: u32 = 4;

wgsl_struct! {
    /// `shaders/optimizer.wgsl`'s uniform.
    struct Dims {
        len4: u32,
        lr: f32,
        c1: f32,
        c2: f32,
        k1: f32,
        k2: f32,
        _pad0: u32,
        _pad1: u32,
    }
}

kernel_bindings! {
    /// The arrays one update reads and writes.
    pub struct OptimizerBuffers<'a> {
        /// The parameters (a multiple of 4 elements), updated in place.
        params: ReadWrite,
        grads: Read,
        /// The rule's two state arrays (any small buffer where it keeps none).
        s1: ReadWrite,
        s2: ReadWrite,
    }
}

pub struct OptimizerKernel {
    layout: KernelLayout,
    pipeline: wgpu::ComputePipeline,
    pub rule: Optimizer,
}

impl OptimizerKernel {
    pub fn new(ctx: &GpuContext, rule: Optimizer) -> Self {
        let layout = kernel_layout::<OptimizerBuffers, Dims>(ctx, "optimizer");
        let code = f64::from(rule_code(rule.kind));
        let pipeline = pipeline(
            ctx,
            &format!("optimizer {}", rule.kind),
            &layout,
            SOURCE,
            &[("RULE", code), ("WG", WG.into()), ("PER", PER.into())],
        );
        OptimizerKernel {
            layout,
            pipeline,
            rule,
        }
    }

    /// One update of `b.params` from `b.grads` and the rule's state. The
    /// learning rate is set per step with [`OptimizerDispatch::set_step_lr`].
    pub fn bind(
        &self,
        ctx: &GpuContext,
        label: &str,
        b: OptimizerBuffers<'_>,
    ) -> Result<OptimizerDispatch> {
        let r = self.rule;
        let c1 = match r.kind {
            OptimizerKind::RmsProp => r.decay_rate,
            OptimizerKind::Adam => r.beta1,
            _ => r.momentum,
        };
        let len4 = (b.params.len / 4) as u32;
        let dims = Dims {
            len4,
            lr: 0.0,
            c1: c1 as f32,
            c2: r.beta2 as f32,
            k1: (1.0 - c1) as f32,
            k2: (1.0 - r.beta2) as f32,
            _pad0: 0,
            _pad1: 0,
        };
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        let groups = [len4.div_ceil(WG * PER).clamp(1, max), 1, 1];
        dispatch(
            ctx,
            label.to_string(),
            &self.pipeline,
            &self.layout,
            &dims,
            &b,
            groups,
        )
        .map(OptimizerDispatch)
    }
}

/// An optimizer pass: a [`Dispatch`] whose step size can be rewritten.
pub struct OptimizerDispatch(Dispatch);

impl OptimizerDispatch {
    /// Sets the learning rate (Adam's `lr_t`).
    pub fn set_step_lr(&self, ctx: &GpuContext, lr: f32) {
        self.0
            .write_uniform(ctx, std::mem::offset_of!(Dims, lr), &lr);
    }
}

impl std::ops::Deref for OptimizerDispatch {
    type Target = Dispatch;
    fn deref(&self) -> &Dispatch {
        &self.0
    }
}

impl AsRef<Dispatch> for OptimizerDispatch {
    fn as_ref(&self) -> &Dispatch {
        &self.0
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    vec![crate::gpu::dispatch::uniform_dims::<Dims>(vec![(
        "shaders/optimizer.wgsl",
        SOURCE.into(),
    )])]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    vec![binding_contract::<OptimizerBuffers>(
        "optimizer",
        vec![("shaders/optimizer.wgsl", SOURCE.into())],
    )]
}
