//! The chapter 6 kernels (Batch Normalization forward and backward, Dropout,
//! the optimizers) against the CPU reference on awkward shapes, with the
//! buffers laid out as the network lays them out (rows `padded(features)`
//! long, a ones column, parameters at unaligned offsets of a bigger arena).
//!
//! Tolerance: f32 against f64, `|gpu - cpu| <= atol + rtol·|cpu|` with
//! rtol = 1e-4 and atol = 1e-5 × the largest reference value: a per-feature
//! reduction over at most a few hundred rows in f32 loses a few ulps per
//! term, and xn divides by a standard deviation of order 1.

mod common;

use gpu_net::core::compare::{Tolerance, diff, widen};
use gpu_net::core::dropout_mask::{keep, layer_key};
use gpu_net::core::optim::{Optimizer, OptimizerKind};
use gpu_net::cpu::layers::{BN_EPS, BN_MOMENTUM};
use gpu_net::cpu::{BatchNormalization, Dropout, OptimizerState};
use gpu_net::gpu::GpuContext;
use gpu_net::gpu::kernels::{
    BatchNorm, BnBackward, BnForward, BnShape, DropoutCall, DropoutKernel, OptimizerBuffers,
    OptimizerKernel, Slice,
};
use gpu_net::gpu::layout::padded;

/// (rows, features): batches from 2 up, features from 1 to 784.
const SHAPES: &[(usize, usize)] = &[
    (2, 1),
    (3, 17),
    (17, 3),
    (33, 127),
    (127, 33),
    (100, 784),
    (65, 64),
];

/// Where gamma, beta and the running statistics sit: deliberately not aligned.
const GAMMA: usize = 5;
const RUNNING: usize = 3;

fn tol(reference: &[f64]) -> Tolerance {
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    Tolerance {
        atol: 1e-5 * scale.max(1e-30),
        rtol: 1e-4,
    }
}

fn check(what: &str, gpu: &[f64], cpu: &[f64], failures: &mut Vec<String>) {
    let t = tol(cpu);
    let d = diff(gpu, cpu, t, 1e-6);
    if !d.ok() {
        failures.push(format!(
            "{what}: {} of {} outside {t:?}; first {:?}",
            d.failures, d.len, d.first_failures
        ));
    }
}

/// A (rows × features) matrix stored with rows `padded(features)` long,
/// `fill` beyond the real columns.
fn store(values: &[f32], rows: usize, features: usize, fill: f32) -> Vec<f32> {
    let stride = padded(features);
    let mut out = vec![fill; rows * stride];
    for r in 0..rows {
        out[r * stride..r * stride + features]
            .copy_from_slice(&values[r * features..(r + 1) * features]);
    }
    out
}

/// The real columns of a stored matrix.
fn real(stored: &[f32], rows: usize, features: usize) -> Vec<f64> {
    let stride = padded(features);
    (0..rows)
        .flat_map(|r| {
            stored[r * stride..r * stride + features]
                .iter()
                .map(|&v| v as f64)
        })
        .collect()
}

struct BnCase {
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running: Vec<f32>,
}

fn bn_case(rows: usize, features: usize, seed: u64) -> BnCase {
    let r = common::random_f32(rows * features, seed);
    // Features with means away from 0 and spreads of different sizes.
    let x = r
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % features % 5) as f32) + (i % features % 3) as f32 - 1.0)
        .collect();
    let g = common::random_f32(3 * features, seed + 1);
    BnCase {
        x,
        gamma: g[..features].iter().map(|v| 1.0 + v / 2.0).collect(),
        beta: g[features..2 * features].to_vec(),
        running: g[2 * features..]
            .iter()
            .chain(&g[..features])
            .map(|v| v.abs())
            .collect(),
    }
}

fn params_arena(c: &BnCase) -> Vec<f32> {
    let f = c.gamma.len();
    let mut p = vec![-9.0f32; GAMMA + 2 * f + 3];
    p[GAMMA..GAMMA + f].copy_from_slice(&c.gamma);
    p[GAMMA + f..GAMMA + 2 * f].copy_from_slice(&c.beta);
    p
}

fn running_buffer(c: &BnCase) -> Vec<f32> {
    let mut r = vec![-5.0f32; RUNNING];
    r.extend(&c.running);
    r.extend([-5.0f32; 4]);
    r
}

fn shape(rows: usize, features: usize) -> BnShape {
    BnShape {
        rows,
        features,
        stride: padded(features),
        gamma: GAMMA,
        beta: GAMMA + features,
        running: RUNNING,
    }
}

#[test]
fn batchnorm_forward_training_and_evaluation_on_awkward_shapes() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = BatchNorm::new(&ctx);
    let mut failures = Vec::new();
    for (i, &(rows, f)) in SHAPES.iter().enumerate() {
        let c = bn_case(rows, f, 10 * i as u64);
        let x64 = widen(&c.x);
        let (g64, b64) = (widen(&c.gamma), widen(&c.beta));
        for train in [true, false] {
            let what = format!("{rows}x{f} {}", if train { "train" } else { "eval" });
            let a = ctx.storage_init("a", &store(&c.x, rows, f, 0.0));
            // Rows past the batch and columns past the ones column must stay -3.
            let z = ctx.storage_init("z", &vec![-3.0f32; (rows + 2) * padded(f)]);
            let params = ctx.storage_init("params", &params_arena(&c));
            let running = ctx.storage_init("running", &running_buffer(&c));
            let std = ctx.storage_init("std", &vec![0f32; f.next_multiple_of(4)]);
            let buffers = BnForward {
                a: Slice::whole(&a),
                z: Slice::whole(&z),
                params: Slice::whole(&params),
                running: Slice::whole(&running),
                std_dev: Slice::whole(&std),
            };
            let d = kernel
                .forward(&ctx, &what, shape(rows, f), train, buffers)
                .unwrap();
            ctx.run(&[&d]).unwrap();
            let read = |b: &wgpu::Buffer, len: usize| ctx.read_f32(b, 0, len, "result").unwrap();
            let z_all = read(&z, (rows + 2) * padded(f));
            let run_all = read(&running, RUNNING + 2 * f + 4);
            let (rm, rv) = (widen(&c.running[..f]), widen(&c.running[f..]));
            let cpu_out = if train {
                let mut bn = BatchNormalization::default();
                let out = bn.forward_train(&x64, &g64, &b64, rows);
                let xn: Vec<f64> = x64
                    .iter()
                    .enumerate()
                    .map(|(e, v)| (v - bn.mean[e % f]) / (bn.var[e % f] + BN_EPS).sqrt())
                    .collect();
                check(
                    &format!("{what} xn"),
                    &real(&read(&a, rows * padded(f)), rows, f),
                    &xn,
                    &mut failures,
                );
                let std_cpu: Vec<f64> = bn.var.iter().map(|v| (v + BN_EPS).sqrt()).collect();
                check(
                    &format!("{what} std"),
                    &widen(&read(&std, f)),
                    &std_cpu,
                    &mut failures,
                );
                let (mut m, mut v) = (rm.clone(), rv.clone());
                bn.update_running(&mut m, &mut v);
                m.extend(v);
                check(
                    &format!("{what} running"),
                    &widen(&run_all[RUNNING..RUNNING + 2 * f]),
                    &m,
                    &mut failures,
                );
                out
            } else {
                assert_eq!(
                    &run_all[RUNNING..RUNNING + 2 * f],
                    &c.running[..],
                    "{what}: evaluation changed the running statistics"
                );
                BatchNormalization::forward_eval(&x64, &g64, &b64, &rm, &rv)
            };
            let relu: Vec<f64> = cpu_out.iter().map(|v| v.max(0.0)).collect();
            check(
                &format!("{what} z"),
                &real(&z_all, rows, f),
                &relu,
                &mut failures,
            );
            let stride = padded(f);
            for r in 0..rows + 2 {
                for col in f..stride {
                    let want = if r < rows && col == f { 1.0 } else { -3.0 };
                    assert_eq!(z_all[r * stride + col], want, "{what}: z[{r}, {col}]");
                }
            }
            assert_eq!(
                run_all[..RUNNING],
                [-5.0; RUNNING],
                "{what}: wrote before the running statistics"
            );
            assert_eq!(
                run_all[RUNNING + 2 * f..],
                [-5.0; 4],
                "{what}: wrote past the running statistics"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The book's momentum: the running statistics keep 0.9 of themselves.
    assert_eq!(BN_MOMENTUM, 0.9);
}

#[test]
fn batchnorm_backward_on_awkward_shapes() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = BatchNorm::new(&ctx);
    let mut failures = Vec::new();
    for (i, &(rows, f)) in SHAPES.iter().enumerate() {
        let c = bn_case(rows, f, 100 + i as u64);
        let (x64, g64, b64) = (widen(&c.x), widen(&c.gamma), widen(&c.beta));
        let mut bn = BatchNormalization::default();
        bn.forward_train(&x64, &g64, &b64, rows);
        // The forward's xn and std, rounded to f32 as the GPU keeps them.
        let std: Vec<f32> = bn.var.iter().map(|v| (v + BN_EPS).sqrt() as f32).collect();
        let xn: Vec<f32> = x64
            .iter()
            .enumerate()
            .map(|(e, v)| ((v - bn.mean[e % f]) / (bn.var[e % f] + BN_EPS).sqrt()) as f32)
            .collect();
        let dz = common::random_f32(rows * f, 200 + i as u64);
        let (mut dgamma, mut dbeta) = (vec![0.0; f], vec![0.0; f]);
        let dx = bn.backward(&widen(&dz), &g64, &mut dgamma, &mut dbeta);

        let what = format!("{rows}x{f}");
        let grads = ctx.storage_init("grads", &vec![-9.0f32; GAMMA + 2 * f + 3]);
        let dx_buf = ctx.storage_init("dx", &vec![0f32; (rows + 1) * padded(f)]);
        let (dz_buf, xn_buf) = (
            ctx.storage_init("dz", &store(&dz, rows, f, 0.0)),
            ctx.storage_init("xn", &store(&xn, rows, f, 0.0)),
        );
        let std_buf = ctx.storage_init("std", &{
            let mut s = std.clone();
            s.resize(f.next_multiple_of(4), 0.0);
            s
        });
        let params = ctx.storage_init("params", &params_arena(&c));
        let buffers = BnBackward {
            dz: Slice::whole(&dz_buf),
            xn: Slice::whole(&xn_buf),
            std_dev: Slice::whole(&std_buf),
            params: Slice::whole(&params),
            grads: Slice::whole(&grads),
            dx: Slice::whole(&dx_buf),
        };
        let d = kernel
            .backward(&ctx, &what, shape(rows, f), buffers)
            .unwrap();
        ctx.run(&[&d]).unwrap();
        let g = ctx.read_f32(&grads, 0, GAMMA + 2 * f + 3, "grads").unwrap();
        check(
            &format!("{what} dgamma"),
            &widen(&g[GAMMA..GAMMA + f]),
            &dgamma,
            &mut failures,
        );
        check(
            &format!("{what} dbeta"),
            &widen(&g[GAMMA + f..GAMMA + 2 * f]),
            &dbeta,
            &mut failures,
        );
        assert!(
            g[..GAMMA]
                .iter()
                .chain(&g[GAMMA + 2 * f..])
                .all(|&v| v == -9.0),
            "{what}: wrote outside gamma and beta"
        );
        let dx_all = ctx
            .read_f32(&dx_buf, 0, (rows + 1) * padded(f), "dx")
            .unwrap();
        // dx sums to 0 over the batch: its scale is set by dz, not by itself.
        let scale = Tolerance {
            atol: 1e-5
                * dz.iter().fold(0f32, |m, v| m.max(v.abs())) as f64
                * g64.iter().fold(0f64, |m, v| m.max(v.abs()))
                / std.iter().fold(f32::MAX, |m, &v| m.min(v)) as f64,
            rtol: 1e-4,
        };
        let dd = diff(&real(&dx_all, rows, f), &dx, scale, 1e-6);
        if !dd.ok() {
            failures.push(format!("{what} dx: {dd:?}"));
        }
        let stride = padded(f);
        assert!(
            (0..rows + 1)
                .all(|r| (0..stride)
                    .all(|col| (r < rows && col < f) || dx_all[r * stride + col] == 0.0)),
            "{what}: dx written outside its real rows and columns"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn batchnorm_check_catches_a_wrong_gradient() {
    // The same comparison as above on a dgamma with one element off by 1e-3
    // relative: it must fail, naming that element.
    let c = bn_case(17, 33, 5);
    let (x64, g64, b64) = (widen(&c.x), widen(&c.gamma), widen(&c.beta));
    let mut bn = BatchNormalization::default();
    bn.forward_train(&x64, &g64, &b64, 17);
    let dz = widen(&common::random_f32(17 * 33, 6));
    let (mut dgamma, mut dbeta) = (vec![0.0; 33], vec![0.0; 33]);
    bn.backward(&dz, &g64, &mut dgamma, &mut dbeta);
    let mut wrong = dgamma.clone();
    wrong[12] += 1e-3 * wrong[12].abs().max(1e-3);
    let mut failures = Vec::new();
    check("dgamma", &wrong, &dgamma, &mut failures);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("(12,"), "{failures:?}");
}

#[test]
fn dropout_mask_matches_the_cpu_bit_for_bit() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = DropoutKernel::new(&ctx);
    for (i, &(rows, f)) in SHAPES.iter().enumerate() {
        for ratio in [0.0f32, 0.2, 0.5, 0.9] {
            let x: Vec<f32> = common::random_f32(rows * f, 300 + i as u64)
                .iter()
                .map(|v| v.abs() + 0.5)
                .collect();
            let key = layer_key(7 + i as u64, 3, 2);
            let what = format!("{rows}x{f} ratio {ratio}");
            for train in [true, false] {
                let z = ctx.storage_init("z", &store(&x, rows, f, -1.0));
                let call = DropoutCall {
                    label: what.clone(),
                    rows,
                    features: f,
                    stride: padded(f),
                    ratio,
                    z: Slice::whole(&z),
                };
                let d = if train {
                    let d = kernel.train(&ctx, call).unwrap();
                    d.set_key(&ctx, key);
                    d.into_dispatch()
                } else {
                    kernel.eval(&ctx, call).unwrap()
                };
                ctx.run(&[&d]).unwrap();
                let out = ctx.read_f32(&z, 0, rows * padded(f), "z").unwrap();
                let gpu = real(&out, rows, f);
                let x64 = widen(&x);
                let cpu = if train {
                    Dropout::default().forward_train(&x64, key, ratio)
                } else {
                    Dropout::forward_eval(&x64, ratio)
                };
                if train {
                    // Kept elements are copied, dropped ones are 0: exact.
                    assert_eq!(gpu, cpu, "{what}: the GPU's mask differs from the CPU's");
                    let kept = (0..rows * f)
                        .filter(|&e| keep(key, e as u32, ratio))
                        .count();
                    if rows * f >= 2000 {
                        let share = kept as f64 / (rows * f) as f64;
                        assert!(
                            (share - (1.0 - ratio as f64)).abs() < 0.03,
                            "{what}: kept {share}"
                        );
                    }
                } else {
                    let d = diff(&gpu, &cpu, tol(&cpu), 1e-6);
                    assert!(d.ok(), "{what} evaluation: {d:?}");
                }
                let stride = padded(f);
                assert!(
                    (0..rows).all(|r| (f..stride).all(|c| out[r * stride + c] == -1.0)),
                    "{what}: touched the ones column or padding"
                );
            }
        }
    }
}

#[test]
fn dropout_masks_differ_between_steps_layers_and_seeds() {
    let mask = |key: u32| (0..1000u32).map(|e| keep(key, e, 0.5)).collect::<Vec<_>>();
    let base = mask(layer_key(1, 1, 1));
    for other in [
        layer_key(1, 2, 1),
        layer_key(1, 1, 2),
        layer_key(2, 1, 1),
        layer_key(1 << 32, 1, 1),
    ] {
        let same = mask(other)
            .iter()
            .zip(&base)
            .filter(|(a, b)| a == b)
            .count();
        assert!((400..600).contains(&same), "masks agree on {same} of 1000");
    }
    assert_eq!(mask(layer_key(1, 1, 1)), base);
}

/// `steps` updates of one rule on the GPU and the CPU from the same state.
fn run_optimizer(
    ctx: &GpuContext,
    rule: Optimizer,
    len: usize,
    steps: u64,
    seed: u64,
) -> Result<(), String> {
    let params = common::random_f32(len, seed);
    // Some zero gradients (as in padding), the rest of both signs.
    let grads: Vec<f32> = common::random_f32(len, seed + 1)
        .iter()
        .enumerate()
        .map(|(i, &g)| if i % 7 == 3 { 0.0 } else { g })
        .collect();
    let states: Vec<Vec<f32>> = (0..rule.kind.state_arrays())
        .map(|k| {
            let s = common::random_f32(len, seed + 2 + k as u64);
            // AdaGrad, RMSprop and Adam's v accumulate squares.
            if k == 1 || matches!(rule.kind, OptimizerKind::AdaGrad | OptimizerKind::RmsProp) {
                s.iter().map(|v| v.abs()).collect()
            } else {
                s
            }
        })
        .collect();
    let lr = 0.0625f32;
    let kernel = OptimizerKernel::new(ctx, rule);
    let p_buf = ctx.storage_init("params", &params);
    let g_buf = ctx.storage_init("grads", &grads);
    let s_bufs: Vec<_> = states
        .iter()
        .map(|s| ctx.storage_init("state", s))
        .collect();
    let spare = ctx.storage("spare", 16);
    let state = |k: usize| Slice::whole(s_bufs.get(k).unwrap_or(&spare));
    let buffers = OptimizerBuffers {
        params: Slice::whole(&p_buf),
        grads: Slice::whole(&g_buf),
        s1: state(0),
        s2: state(1),
    };
    let d = kernel
        .bind(ctx, "optimizer", buffers)
        .map_err(|e| e.to_string())?;
    let mut cpu = OptimizerState::new(rule, len);
    cpu.state = states.iter().map(|s| widen(s)).collect();
    let mut p64 = widen(&params);
    for t in 1..=steps {
        d.set_step_lr(ctx, rule.step_lr(lr as f64, t) as f32);
        ctx.run(&[&d]).map_err(|e| e.to_string())?;
        cpu.update(&mut p64, &widen(&grads), lr as f64);
    }
    let gpu = widen(&ctx.read_f32(&p_buf, 0, len, "params").unwrap());
    let mut failures = Vec::new();
    check(&format!("{} params", rule.kind), &gpu, &p64, &mut failures);
    for (k, buf) in s_bufs.iter().enumerate() {
        let g = widen(&ctx.read_f32(buf, 0, len, "state").unwrap());
        check(
            &format!("{} state {k}", rule.kind),
            &g,
            &cpu.state[k],
            &mut failures,
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn every_optimizer_matches_the_cpu_on_awkward_lengths() {
    let Some(ctx) = common::gpu() else { return };
    let mut failures = Vec::new();
    for kind in OptimizerKind::ALL {
        for (i, &len) in [4usize, 68, 3140, 784 * 4].iter().enumerate() {
            if let Err(e) = run_optimizer(&ctx, Optimizer::new(kind), len, 3, 400 + i as u64) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn optimizer_comparison_catches_a_wrong_rule() {
    // Momentum's hyperparameter on the GPU differs from the CPU's by 1%:
    // three steps must show it.
    let Some(ctx) = common::gpu() else { return };
    let params = common::random_f32(68, 1);
    let grads = common::random_f32(68, 2);
    let v0 = common::random_f32(68, 3);
    let gpu_rule = Optimizer {
        momentum: 0.9 * 1.01,
        ..Optimizer::new(OptimizerKind::Momentum)
    };
    let kernel = OptimizerKernel::new(&ctx, gpu_rule);
    let (p, g, v, spare) = (
        ctx.storage_init("p", &params),
        ctx.storage_init("g", &grads),
        ctx.storage_init("v", &v0),
        ctx.storage("spare", 16),
    );
    let buffers = OptimizerBuffers {
        params: Slice::whole(&p),
        grads: Slice::whole(&g),
        s1: Slice::whole(&v),
        s2: Slice::whole(&spare),
    };
    let d = kernel.bind(&ctx, "momentum", buffers).unwrap();
    let mut cpu = OptimizerState::new(Optimizer::new(OptimizerKind::Momentum), 68);
    cpu.state = vec![widen(&v0)];
    let mut p64 = widen(&params);
    for _ in 0..3 {
        d.set_step_lr(&ctx, 0.0625);
        ctx.run(&[&d]).unwrap();
        cpu.update(&mut p64, &widen(&grads), 0.0625);
    }
    let mut failures = Vec::new();
    check(
        "params",
        &widen(&ctx.read_f32(&p, 0, 68, "p").unwrap()),
        &p64,
        &mut failures,
    );
    assert_eq!(failures.len(), 1, "a 1% wrong momentum went unnoticed");
}
