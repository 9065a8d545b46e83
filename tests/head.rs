//! The head: SoftmaxWithLoss computing the last Affine itself
//! (`shaders/softmax_loss.wgsl` with AFFINE, `plan::plan_head`), and that
//! Affine's input gradient after (INPUT_GRAD, `plan::plan_head_grad`). Its
//! logits, dY, loss, accuracy and input gradient (with Relu's mask and
//! without) against the CPU reference on awkward shapes, over one
//! workgroup and many; all of them bit for bit those of the tiled
//! products and the plain softmax apart; a network trained with it to the
//! bits of one trained without; and the planner's choices.
//!
//! Tolerance: the logits as the matmul tests hold a length-K dot product
//! (`K·ε32·max|h|·|W|`), the input gradient likewise over the classes
//! against the GPU's own dY; dY, the loss and the count against the CPU's
//! softmax of the GPU's own logits, as `tests/kernels.rs` holds the softmax.

mod common;

use gpu_net::core::compare::{EPS_F32, Tolerance, diff};
use gpu_net::core::model::{Arch, Params};
use gpu_net::core::optim::{Optimizer, StepRule};
use gpu_net::core::trainer::Trainer;
use gpu_net::cpu::net::correct_count;
use gpu_net::cpu::{Labels, SoftmaxWithLoss as CpuSoftmax};
use gpu_net::gpu::kernels::{
    Epilogue, Head, HeadGrad, Matmul, MatmulAlgo, MatmulCall, MatmulShape, MatmulVariant, Slice,
    SoftmaxCall, SoftmaxWithLoss, SplitK, Stats,
};
use gpu_net::gpu::layout::{GpuLayer, forward_shape, input_grad_shape, padded};
use gpu_net::gpu::plan::{plan_head, plan_head_grad};
use gpu_net::gpu::stages::Stages;
use gpu_net::gpu::{DeviceProfile, GpuContext, GpuTrainer};
use std::sync::Arc;

/// One head's inputs: h (rows × K, the ones column at `inputs`, zeros
/// after) and W (K × stride: weights, the bias row at `inputs`, zeros
/// elsewhere), with labels.
struct Case {
    rows: usize,
    inputs: usize,
    classes: usize,
    h: Vec<f32>,
    w: Vec<f32>,
    t: Vec<u32>,
}

impl Case {
    fn new(rows: usize, inputs: usize, classes: usize) -> Self {
        let (k, stride) = (padded(inputs), padded(classes));
        let seed = (rows * 1000 + inputs * 10 + classes) as u64;
        let hv = common::random_f32(rows * inputs, seed);
        let wv = common::random_f32((inputs + 1) * classes, seed + 1);
        let h = (0..rows * k)
            .map(|e| match e % k {
                c if c < inputs => hv[e / k * inputs + c],
                c if c == inputs => 1.0,
                _ => 0.0,
            })
            .collect();
        let w = (0..k * stride)
            .map(|e| match (e / stride, e % stride) {
                (r, c) if r <= inputs && c < classes => 2.0 * wv[r * classes + c],
                _ => 0.0,
            })
            .collect();
        let t = (0..rows).map(|r| ((r * 7 + 3) % classes) as u32).collect();
        Case {
            rows,
            inputs,
            classes,
            h,
            w,
            t,
        }
    }

    fn k(&self) -> usize {
        padded(self.inputs)
    }

    fn stride(&self) -> usize {
        padded(self.classes)
    }

    /// The Affine as the network lays out its block.
    fn layer(&self) -> GpuLayer {
        GpuLayer {
            inputs: self.inputs,
            outputs: self.classes,
            offset: 0,
        }
    }
}

/// What a pass wrote: the logits (with padding), dY, the stats and the
/// input gradient (empty where there is none).
struct Out {
    y: Vec<f32>,
    dy: Vec<f32>,
    stats: Stats,
    dh: Vec<f32>,
}

/// The case through the head over `groups` workgroups, or (`groups` None)
/// through the tiled product unsplit and then the plain softmax; with
/// `grad` (whether Relu's mask applies), the input gradient too, in the
/// head or by the tiled product unsplit after.
fn run(
    ctx: &GpuContext,
    softmax: &SoftmaxWithLoss,
    c: &Case,
    groups: Option<u32>,
    grad: Option<bool>,
) -> Out {
    let (k, stride) = (c.k(), c.stride());
    let h = ctx.storage_init("h", &c.h);
    let w = ctx.storage_init("w", &c.w);
    let t = ctx.storage_init("t", &c.t);
    let y = ctx.storage_init("y", &vec![-5.0f32; c.rows * stride]);
    let dy = ctx.storage("dy", (c.rows * stride * 4) as u64);
    let stats = ctx.storage_init("stats", &[Stats::default()]);
    // Never-written elements keep -3.
    let dh = ctx.storage_init("dh", &vec![-3.0f32; c.rows * k]);
    let head = groups.map(|groups| Head {
        h: Slice::whole(&h),
        w: Slice::whole(&w),
        k,
        ldh: k,
        ldw: stride,
        groups,
        grad: grad.map(|relu| HeadGrad {
            dh: Slice::whole(&dh),
            inputs: c.inputs,
            relu,
        }),
    });
    let call = SoftmaxCall {
        label: "test head".into(),
        rows: c.rows,
        classes: c.classes,
        stride,
        want_grad: true,
        y: Slice::whole(&y),
        t: Slice::whole(&t),
        dy: Slice::whole(&dy),
        stats: Slice::new(&stats, 0, 4),
        head,
    };
    let loss = softmax.bind(ctx, call).unwrap();
    let matmul = Matmul::with_algo(ctx, MatmulAlgo::Tiled);
    if groups.is_some() {
        ctx.run(&[&loss]).unwrap();
    } else {
        let product = matmul
            .bind_split(
                ctx,
                MatmulCall {
                    label: "test last affine".into(),
                    v: MatmulVariant {
                        trans_a: false,
                        trans_b: false,
                        epilogue: Epilogue::Store,
                    },
                    shape: MatmulShape {
                        n_real: c.classes,
                        ones_col: Some(c.classes),
                        ..MatmulShape::plain(c.rows, stride, k, k, stride, stride)
                    },
                    a: Slice::whole(&h),
                    b: Slice::whole(&w),
                    c: Slice::whole(&y),
                    aux: None,
                    columns: None,
                },
                SplitK::Slices(1),
            )
            .unwrap();
        ctx.run(&[&product, &loss]).unwrap();
        if let Some(relu) = grad {
            let call = MatmulCall {
                label: "test input gradient".into(),
                v: MatmulVariant {
                    trans_a: false,
                    trans_b: true,
                    epilogue: if relu {
                        Epilogue::ReluMask
                    } else {
                        Epilogue::Store
                    },
                },
                shape: input_grad_shape(&c.layer(), c.rows),
                a: Slice::whole(&dy),
                b: Slice::whole(&w),
                c: Slice::whole(&dh),
                aux: relu.then(|| Slice::whole(&h)),
                columns: None,
            };
            let product = matmul.bind_split(ctx, call, SplitK::Slices(1)).unwrap();
            ctx.run(&[&product]).unwrap();
        }
    }
    Out {
        y: ctx.read_f32(&y, 0, c.rows * stride, "y").unwrap(),
        dy: ctx.read_f32(&dy, 0, c.rows * stride, "dy").unwrap(),
        stats: bytemuck::pod_read_unaligned(&ctx.read_bytes(&stats, 0, 16, "stats").unwrap()),
        dh: match grad {
            Some(_) => ctx.read_f32(&dh, 0, c.rows * k, "dh").unwrap(),
            None => vec![],
        },
    }
}

/// Where `out` departs from the CPU reference on case `c`, if anywhere.
fn check(c: &Case, out: &Out) -> Result<(), String> {
    let (k, stride, classes) = (c.k(), c.stride(), c.classes);
    let mut logits = Vec::with_capacity(c.rows * classes);
    let mut scale: f64 = 0.0;
    for r in 0..c.rows {
        for j in 0..stride {
            let got = out.y[r * stride + j] as f64;
            let (want, bound) = (0..k).fold((0.0, 0.0), |(s, b), i| {
                let (h, w) = (c.h[r * k + i] as f64, c.w[i * stride + j] as f64);
                (s + h * w, b + (h * w).abs())
            });
            let want = match j {
                j if j < classes => want,
                j if j == classes => 1.0,
                _ => 0.0,
            };
            scale = scale.max(bound);
            let tol = Tolerance {
                atol: k as f64 * EPS_F32 * bound.max(1.0),
                rtol: 1e-5,
            };
            if !tol.allows(got, want) {
                return Err(format!("y[{r}, {j}] = {got}, want {want}"));
            }
            if j < classes {
                logits.push(got);
            }
        }
    }
    let labels: Vec<u8> = c.t.iter().map(|&v| v as u8).collect();
    let mut cpu = CpuSoftmax::default();
    let loss = cpu.forward(&logits, Labels::Index(&labels), c.rows) * c.rows as f64;
    let want_dy = cpu.backward();
    let dy: Vec<f64> = (out.dy.chunks(stride))
        .flat_map(|r| r[..classes].iter().map(|&v| v as f64))
        .collect();
    let dy_tol = Tolerance {
        atol: 64.0 * EPS_F32 / c.rows as f64,
        rtol: 1e-5,
    };
    let d = diff(&dy, &want_dy, dy_tol, 1e-9);
    if !d.ok() {
        return Err(format!("dY: {d:?}"));
    }
    let s = &out.stats;
    let loss_tol = Tolerance {
        atol: c.rows as f64 * 16.0 * (8.0 + scale) * EPS_F32,
        rtol: 1e-5,
    };
    let counts = (s.rows as usize, s.correct as usize);
    if counts != (c.rows, correct_count(&logits, &labels))
        || !loss_tol.allows(s.loss_sum as f64, loss)
    {
        return Err(format!("stats {s:?}, want loss {loss}"));
    }
    Ok(())
}

/// Where `out`'s input gradient departs from the CPU's of its own dY
/// (kept where h > 0 when `relu`), if anywhere.
fn check_grad(c: &Case, out: &Out, relu: bool) -> Result<(), String> {
    let (k, stride) = (c.k(), c.stride());
    for r in 0..c.rows {
        for j in 0..k {
            let got = out.dh[r * k + j] as f64;
            let (sum, bound) = (0..c.classes).fold((0.0, 0.0), |(s, b), i| {
                let (dy, w) = (out.dy[r * stride + i] as f64, c.w[j * stride + i] as f64);
                (s + dy * w, b + (dy * w).abs())
            });
            let kept = j < c.inputs && (!relu || c.h[r * k + j] > 0.0);
            let want = if kept { sum } else { 0.0 };
            let tol = Tolerance {
                atol: c.classes as f64 * EPS_F32 * bound,
                rtol: 1e-5,
            };
            if !tol.allows(got, want) {
                return Err(format!("dh[{r}, {j}] = {got}, want {want}"));
            }
        }
    }
    Ok(())
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 17, 3),
    (17, 3, 10),
    (33, 127, 15),
    (127, 50, 10),
    (784, 33, 7),
    (8192, 50, 10),
];

#[test]
fn the_head_matches_the_cpu_on_awkward_shapes_over_one_workgroup_and_many() {
    let Some(ctx) = common::gpu() else { return };
    let softmax = SoftmaxWithLoss::new(&ctx);
    let mut failures = Vec::new();
    for &(rows, inputs, classes) in SHAPES {
        let c = Case::new(rows, inputs, classes);
        let spread = rows.div_ceil(256) as u32;
        for (groups, grad) in [
            (1, Some(true)),
            (spread, Some(false)),
            (3, None),
            (3, Some(true)),
        ] {
            let out = run(&ctx, &softmax, &c, Some(groups), grad);
            let checked = check(&c, &out).and_then(|_| match grad {
                Some(relu) => check_grad(&c, &out, relu),
                None => Ok(()),
            });
            if let Err(e) = checked {
                failures.push(format!(
                    "rows {rows}, inputs {inputs}, classes {classes}, {groups} workgroups, input gradient {grad:?}: {e}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_check_catches_a_wrong_logit() {
    let Some(ctx) = common::gpu() else { return };
    let c = Case::new(17, 33, 10);
    let mut out = run(&ctx, &SoftmaxWithLoss::new(&ctx), &c, Some(1), None);
    assert!(check(&c, &out).is_ok());
    out.y[5 * c.stride() + 3] *= 1.001;
    assert!(check(&c, &out).is_err());
}

#[test]
fn the_check_catches_a_wrong_input_gradient_or_mask() {
    let Some(ctx) = common::gpu() else { return };
    let c = Case::new(17, 33, 10);
    let out = run(&ctx, &SoftmaxWithLoss::new(&ctx), &c, Some(1), Some(true));
    assert!(check_grad(&c, &out, true).is_ok());
    // The same values unmasked are wrong where h <= 0.
    assert!(check_grad(&c, &out, false).is_err());
    let at = (0..c.rows * c.k()).find(|&e| out.dh[e] != 0.0).unwrap();
    let mut wrong = Out {
        dh: out.dh.clone(),
        ..out
    };
    wrong.dh[at] *= 1.001;
    assert!(check_grad(&c, &wrong, true).is_err());
}

#[test]
fn the_head_gives_the_bits_of_the_tiled_product_and_the_softmax() {
    let Some(ctx) = common::gpu() else { return };
    let softmax = SoftmaxWithLoss::new(&ctx);
    for (i, &(rows, inputs, classes)) in SHAPES.iter().enumerate() {
        let c = Case::new(rows, inputs, classes);
        let grad = [None, Some(true), Some(false)][i % 3];
        let head = run(&ctx, &softmax, &c, Some(1), grad);
        let apart = run(&ctx, &softmax, &c, None, grad);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let case = format!("{rows}×{inputs}→{classes}, input gradient {grad:?}");
        assert_eq!(bits(&head.y), bits(&apart.y), "y, {case}");
        assert_eq!(bits(&head.dy), bits(&apart.dy), "dY, {case}");
        assert_eq!(bits(&head.dh), bits(&apart.dh), "dh, {case}");
        assert_eq!(head.stats, apart.stats, "{case}");
    }
}

#[test]
fn a_row_longer_than_the_head_holds_is_refused() {
    let Some(ctx) = common::gpu() else { return };
    let c = Case::new(3, 5, 16);
    let buf = ctx.storage("any", 4096);
    let call = head_call(&c, &buf, true, None);
    let e = SoftmaxWithLoss::new(&ctx).bind(&ctx, call).err().unwrap();
    assert!(e.to_string().contains("at most 16 logits"), "{e}");
}

/// A head pass over case `c`'s shapes with every operand in `buf`, and
/// the input gradient into `dh` where given.
fn head_call<'a>(
    c: &Case,
    buf: &'a wgpu::Buffer,
    want_grad: bool,
    dh: Option<&'a wgpu::Buffer>,
) -> SoftmaxCall<'a> {
    SoftmaxCall {
        label: "test head".into(),
        rows: c.rows,
        classes: c.classes,
        stride: c.stride(),
        want_grad,
        y: Slice::whole(buf),
        t: Slice::whole(buf),
        dy: Slice::whole(buf),
        stats: Slice::new(buf, 0, 4),
        head: Some(Head {
            h: Slice::whole(buf),
            w: Slice::whole(buf),
            k: c.k(),
            ldh: c.k(),
            ldw: c.stride(),
            groups: 1,
            grad: dh.map(|dh| HeadGrad {
                dh: Slice::whole(dh),
                inputs: c.inputs,
                relu: true,
            }),
        }),
    }
}

#[test]
fn an_input_gradient_without_dy_or_room_is_refused() {
    let Some(ctx) = common::gpu() else { return };
    let c = Case::new(3, 5, 10);
    let buf = ctx.storage("any", 4096);
    let short = ctx.storage("short", (c.rows * c.k() * 4 - 4) as u64);
    let call = |want_grad: bool, short_dh: bool| {
        head_call(
            &c,
            &buf,
            want_grad,
            Some(if short_dh { &short } else { &buf }),
        )
    };
    let softmax = SoftmaxWithLoss::new(&ctx);
    assert!(softmax.bind(&ctx, call(true, false)).is_ok());
    let e = softmax.bind(&ctx, call(false, false)).err().unwrap();
    assert!(e.to_string().contains("needs dY"), "{e}");
    let e = softmax.bind(&ctx, call(true, true)).err().unwrap();
    assert!(e.to_string().contains("dh holds 23 elements"), "{e}");
}

/// A 132-unit GPU's plans on this adapter, the tiled product, and the head
/// on or off.
fn gpu_planned(fused_head: bool) -> Arc<GpuContext> {
    common::planned_as(DeviceProfile {
        fused_head,
        ..DeviceProfile::discrete(132)
    })
}

/// Four steps of batch 100 and the test split's loss and accuracy.
fn train_and_eval(t: &mut dyn Trainer<Params>) -> common::Outcome {
    common::train_and_eval(t, (4, 100, 600), 0.1)
}

#[test]
fn a_network_trains_with_its_head_to_the_bits_of_one_without() {
    if common::gpu().is_none() {
        return;
    }
    let data = common::mnist();
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let rule = StepRule {
        optimizer: Optimizer::default(),
        weight_decay: 0.0,
        seed: 1,
    };
    // The head computes the logits and the hidden layer's gradient.
    let last = gpu_net::gpu::layout::GpuLayout::new(&arch).layers[1];
    let (product, dx) = (forward_shape(&last, 100), input_grad_shape(&last, 100));
    let gpu = DeviceProfile::discrete(132);
    let groups = plan_head(&gpu, 100, &product).unwrap();
    assert!(plan_head_grad(&gpu, 100, groups, (&product, &dx)));
    let params = Params::init(&arch, 3);
    let run = |fused: bool| {
        let mut t = GpuTrainer::new(gpu_planned(fused), &params, data, 100, 2, 0.1, &rule).unwrap();
        train_and_eval(&mut t)
    };
    let (head, apart) = (run(true), run(false));
    assert_eq!(head.0, apart.0, "parameters");
    assert_eq!(head.1, apart.1, "training loss");
    assert_eq!(head.2, apart.2, "test loss and accuracy");
    // The same network as a list of layers takes its head the same way.
    let network = arch.network();
    let stages = Stages::new(&network.plan().unwrap()).unwrap();
    let list = Params {
        arch: Arch::from_network(network.clone()).unwrap(),
        ..params.clone()
    };
    let mut t = GpuTrainer::for_list(
        gpu_planned(true),
        (&list, stages),
        data,
        (100, 2),
        0.1,
        &rule,
    )
    .unwrap();
    assert_eq!(train_and_eval(&mut t), head, "{network} as a list");
}

#[test]
fn the_shader_holds_as_many_logits_as_the_planner_allows() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/softmax_loss.wgsl");
    let source = std::fs::read_to_string(path).unwrap();
    let line = format!(
        "const HEAD_CLASSES: u32 = {}u;",
        gpu_net::gpu::plan::HEAD_CLASSES
    );
    assert!(source.contains(&line), "softmax_loss.wgsl lacks `{line}`");
}

#[test]
fn the_planner_fuses_the_head_on_a_gpu_only_where_it_fits() {
    let gpu = DeviceProfile::discrete(132);
    let shape = |classes: usize| MatmulShape {
        n_real: classes,
        ones_col: Some(classes),
        ..MatmulShape::plain(
            100,
            padded(classes),
            52,
            52,
            padded(classes),
            padded(classes),
        )
    };
    assert!(
        plan_head(&gpu, 100, &shape(10)).is_some(),
        "the book's step"
    );
    assert_eq!(plan_head(&gpu, 100, &shape(16)), None, "20 logits a row");
    assert_eq!(
        plan_head(&DeviceProfile::cpu(2), 100, &shape(10)),
        None,
        "a CPU"
    );
    let off = DeviceProfile {
        fused_head: false,
        ..gpu
    };
    assert_eq!(
        plan_head(&off, 100, &shape(10)),
        None,
        "GPU_NET_FUSED_HEAD=0"
    );
}

#[test]
fn the_planner_fuses_the_input_gradient_where_the_model_predicts_it_faster() {
    let gpu = DeviceProfile::discrete(132);
    let fused = |rows: usize, hidden: usize| {
        let last = GpuLayer {
            inputs: hidden,
            outputs: 10,
            offset: 0,
        };
        let (product, dx) = (forward_shape(&last, rows), input_grad_shape(&last, rows));
        let groups = plan_head(&gpu, rows, &product).expect("a head");
        plan_head_grad(&gpu, rows, groups, (&product, &dx))
    };
    assert!(fused(100, 50), "the book's step");
    // The head's rows are few workgroups' (256 each): at batch 1000 its
    // 4 would write what the product spreads over 128, and rows of 4100
    // gradients are too long for any.
    assert!(!fused(1000, 50), "batch 1000, 50 hidden");
    assert!(!fused(65536, 4096), "batch 65536, 4096 hidden");
}
