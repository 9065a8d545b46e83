//! Whole GPU training steps against the f64 CPU path, determinism, and a
//! short GPU run's accuracy.

mod common;

use gpu_net::core::compare::{Tolerance, diff};
use gpu_net::core::optim::{Optimizer, OptimizerKind, StepRule};
use std::sync::Arc;

use gpu_net::core::data::{Dataset, Mnist};
use gpu_net::core::model::{Arch, Params};
use gpu_net::cpu::CpuTrainer;
use gpu_net::gpu::kernels::MatmulAlgo;
use gpu_net::gpu::{GpuContext, GpuOptions, GpuTrainer};
use gpu_net::run::epoch_loop::{self, Sampler, Split, TrainConfig, Trainer};

/// Max over a tensor of |gpu - cpu| / max(|cpu|, FLOOR). Weights are
/// O(1e-2). Biases start at 0 and after one step are -lr·Σrows dY, a sum of
/// terms ~1e-3 that cancel to ~1e-4: f32 rounds its partial sums to ~1e-9,
/// a "relative" 1e-5 of a value that small. The floor keeps the measure
/// about the parameters, not about cancellation.
const FLOOR: f64 = 1e-3;

/// Runs `steps` SGD steps of batch 100 on both paths from the same weights and
/// minibatch order; returns the worst relative difference per tensor.
fn both_paths(arch: &Arch, steps: usize, seed: u64) -> Vec<(String, f64)> {
    match common::gpu() {
        Some(ctx) => both_paths_on(ctx, arch, steps, seed, 100),
        None => vec![],
    }
}

fn both_paths_on(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    steps: usize,
    seed: u64,
    batch: usize,
) -> Vec<(String, f64)> {
    both_paths_with(ctx, arch, &StepRule::default(), 0.1, steps, seed, batch)
        .into_iter()
        .map(|(name, d)| (name, d.max_rel))
        .collect()
}

/// Within 1e-3 relative (FLOOR as above) per element, as [`assert_within`].
const STEP_TOLERANCE: Tolerance = Tolerance {
    atol: 1e-3 * FLOOR,
    rtol: 1e-3,
};

/// `steps` training steps of `rule` at learning rate `lr` on both paths
/// (through the trainers, so Dropout's steps and Adam's t count alike), from
/// the same weights and minibatches; the worst relative difference
/// per tensor, running statistics included, judged against [`STEP_TOLERANCE`].
pub fn both_paths_with(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    rule: &StepRule,
    lr: f32,
    steps: usize,
    seed: u64,
    batch: usize,
) -> Vec<(String, gpu_net::core::compare::Diff)> {
    let data = common::mnist();
    let params = Params::init(arch, seed);
    let mut sampler = Sampler::new(seed, data.train.len());
    let batches: Vec<Vec<u32>> = (0..steps).map(|_| sampler.batch(batch)).collect();

    let mut gpu = GpuTrainer::new(ctx, &params, data, batch, 8, lr, rule).unwrap();
    gpu.train_steps(&batches, lr).unwrap();
    let g = gpu.params().unwrap();

    let mut cpu = CpuTrainer::new(arch, params, data, rule);
    cpu.train_steps(&batches, lr).unwrap();
    let c = &cpu.params;
    let mut out: Vec<_> = arch
        .tensors()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                diff(g.tensor(t), c.tensor(t), STEP_TOLERANCE, FLOOR),
            )
        })
        .collect();
    for t in arch.running_tensors() {
        let d = diff(
            &g.running[t.range()],
            &c.running[t.range()],
            STEP_TOLERANCE,
            FLOOR,
        );
        out.push((t.name.clone(), d));
    }
    out
}

fn assert_within(worst: &[(String, f64)], bound: f64) {
    for (name, rel) in worst {
        assert!(
            *rel <= bound,
            "{name}: max relative difference {rel:.3e} > {bound:e}"
        );
    }
}

#[test]
fn one_step_agrees_with_cpu_within_1e_5() {
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let worst = both_paths(&arch, 1, 3);
    eprintln!("{worst:?}");
    assert_within(&worst, 1e-5);
}

#[test]
fn fifty_steps_agree_with_cpu_within_1e_3() {
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let worst = both_paths(&arch, 50, 4);
    eprintln!("{worst:?}");
    assert_within(&worst, 1e-3);
}

#[test]
fn deeper_network_steps_agree_with_cpu() {
    let arch = Arch::mlp(784, &[64, 32], 10).unwrap();
    assert_within(&both_paths(&arch, 1, 5), 1e-5);
    assert_within(&both_paths(&arch, 50, 6), 1e-3);
}

#[test]
fn the_comparison_catches_a_wrong_update() {
    // The same measure as above, on parameters where one W1 element moved by
    // a relative 1e-4 more than the CPU's.
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let p = Params::init(&arch, 1);
    let mut q = p.clone();
    let w1 = &arch.tensors()[0];
    let i = w1.offset + 300;
    q.values[i] += 1e-4 * q.values[i].abs().max(FLOOR);
    let d = diff(
        q.tensor(w1),
        p.tensor(w1),
        Tolerance {
            atol: 0.0,
            rtol: 0.0,
        },
        FLOOR,
    );
    assert!(d.max_rel > 1e-5 && d.worst.unwrap().0 == 300, "{d:?}");
}

#[test]
fn same_seed_gives_bit_identical_parameters() {
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let run = || {
        let mut gpu = GpuTrainer::new(
            ctx.clone(),
            &Params::init(&arch, 9),
            data,
            100,
            8,
            0.1,
            &StepRule::default(),
        )
        .unwrap();
        let cfg = TrainConfig {
            iters: 120,
            seed: 9,
            ..Default::default()
        };
        let s = epoch_loop::train(&mut gpu, data.train.len(), &cfg, 40, &mut |_| {}).unwrap();
        (gpu.params().unwrap(), s.final_loss, s.test_accuracy)
    };
    let (a, b) = (run(), run());
    assert!(
        a.0.values
            .iter()
            .zip(&b.0.values)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert_eq!((a.1.to_bits(), a.2), (b.1.to_bits(), b.2));
}

#[test]
fn six_hundred_gpu_iterations_pass_90_percent() {
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let mut gpu = GpuTrainer::new(
        ctx,
        &Params::init(&arch, 0),
        data,
        100,
        8,
        0.1,
        &StepRule::default(),
    )
    .unwrap();
    let cfg = TrainConfig {
        iters: 600,
        ..Default::default()
    };
    let s = epoch_loop::train(&mut gpu, data.train.len(), &cfg, 32, &mut |_| {}).unwrap();
    assert!(s.test_accuracy > 0.90, "test accuracy {}", s.test_accuracy);
}

#[test]
fn batch_not_a_multiple_of_four_agrees_with_cpu() {
    // 37 rows: the GPU pads the batch to 40 with zero rows, which must add
    // nothing to the gradients.
    let Some(ctx) = common::gpu() else { return };
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    assert_within(&both_paths_on(ctx.clone(), &arch, 1, 7, 37), 1e-5);
    assert_within(&both_paths_on(ctx, &arch, 50, 8, 37), 1e-3);
}

#[test]
fn the_other_matmul_kernel_agrees_with_cpu_too() {
    // The kernel the adapter did not get by default (the tiled one on
    // lavapipe), through whole training steps.
    let Some(default) = common::gpu() else { return };
    let other = match default.matmul_algo {
        MatmulAlgo::Tiled => MatmulAlgo::Vec4,
        MatmulAlgo::Vec4 | MatmulAlgo::Vec4Buffers => MatmulAlgo::Tiled,
    };
    let ctx = Arc::new(
        GpuContext::new(&GpuOptions {
            matmul: Some(other),
            ..Default::default()
        })
        .unwrap(),
    );
    assert_eq!(ctx.matmul_algo, other);
    let arch = Arch::mlp(784, &[64, 32], 10).unwrap();
    assert_within(&both_paths_on(ctx.clone(), &arch, 1, 9, 100), 1e-5);
    assert_within(&both_paths_on(ctx, &arch, 50, 10, 37), 1e-3);
}

/// An MNIST-shaped set of `n` images of 3×5 pixels (15: not a multiple of 4).
fn synthetic(n: usize, seed: u64) -> Dataset {
    let r = common::random_f32(n * 16, seed);
    let images: Vec<u8> = (0..n * 15).map(|i| ((r[i] + 1.0) * 127.9) as u8).collect();
    let labels: Vec<u8> = (0..n)
        .map(|i| ((r[n * 15 + i] + 1.0) * 4.99) as u8)
        .collect();
    Dataset::from_parts(images, labels, 3, 5)
}

#[test]
fn evaluation_with_a_partial_chunk_and_odd_image_size_agrees_with_cpu() {
    // 5003 training images: evaluation runs in chunks of 5000, so the last
    // chunk has 3 rows; images of 15 pixels take the gather's unaligned path.
    let Some(ctx) = common::gpu() else { return };
    let data = Mnist {
        train: synthetic(5003, 1),
        test: synthetic(7, 2),
    };
    let arch = Arch::mlp(15, &[9], 10).unwrap();
    let params = Params::init(&arch, 3);
    let mut gpu = GpuTrainer::new(ctx, &params, &data, 37, 4, 0.5, &StepRule::default()).unwrap();
    let mut cpu = CpuTrainer::new(&arch, params, &data, &StepRule::default());
    let mut sampler = Sampler::new(3, data.train.len());
    let batches: Vec<Vec<u32>> = (0..20).map(|_| sampler.batch(37)).collect();
    gpu.train_steps(&batches, 0.5).unwrap();
    cpu.train_steps(&batches, 0.5).unwrap();
    for split in [Split::Train, Split::Test] {
        let (gl, ga) = gpu.evaluate(split).unwrap();
        let (cl, ca) = cpu.evaluate(split).unwrap();
        assert!(
            (gl - cl).abs() <= 1e-4 * cl.abs(),
            "{split:?} loss: gpu {gl} cpu {cl}"
        );
        // A prediction can flip only where two logits tie within f32 noise.
        assert!(
            (ga - ca).abs() <= 1e-3,
            "{split:?} accuracy: gpu {ga} cpu {ca}"
        );
    }
    let g = gpu.params().unwrap();
    for t in arch.tensors() {
        let d = diff(
            g.tensor(&t),
            cpu.params.tensor(&t),
            Tolerance {
                atol: 0.0,
                rtol: 0.0,
            },
            FLOOR,
        );
        assert!(d.max_rel < 1e-3, "{}: {d:?}", t.name);
    }
}

/// The book's rates: 0.1 (ch. 5) for the SGD family, 0.01 for AdaGrad and
/// 0.001 for RMSprop and Adam (ch. 6).
fn book_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::AdaGrad => 0.01,
        OptimizerKind::RmsProp | OptimizerKind::Adam => 0.001,
        _ => 0.1,
    }
}

/// Each configuration of the matrix: (Batch Normalization, Dropout ratio,
/// weight decay λ).
const LAYER_MATRIX: [(bool, f32, f64); 4] = [
    (false, 0.0, 0.01),
    (true, 0.0, 0.0),
    (false, 0.3, 0.01),
    (true, 0.3, 0.0),
];

fn matrix_arch(bn: bool, dropout: f32) -> Arch {
    Arch::mlp(784, &[64, 32], 10)
        .unwrap()
        .with_batchnorm(bn)
        .with_dropout(dropout)
        .unwrap()
}

/// Under Batch Normalization a hidden layer's bias has no effect (the batch
/// mean takes it away) and a gradient of pure rounding noise: 0 in f64,
/// ~1e-9 in f32. An adaptive rule divides that noise by its own size and
/// steps by up to lr in its sign, so the two paths' biases take different
/// steps while nothing else can see them.
fn idle_bias(name: &str, bn: bool, kind: OptimizerKind, layers: usize) -> bool {
    let adaptive = matches!(
        kind,
        OptimizerKind::AdaGrad | OptimizerKind::RmsProp | OptimizerKind::Adam
    );
    bn && adaptive && name.starts_with('b') && name != format!("b{layers}")
}

#[test]
fn sgd_momentum_and_nesterov_agree_with_cpu_after_50_free_steps() {
    // Free-running: 50 steps on each path from the same start, as the
    // plain-SGD tests above, with Batch Normalization, Dropout and weight
    // decay on and off.
    let Some(ctx) = common::gpu() else { return };
    let mut failures = Vec::new();
    for (i, kind) in [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
    ]
    .into_iter()
    .enumerate()
    {
        for (j, (bn, dropout, decay)) in LAYER_MATRIX.into_iter().enumerate() {
            let rule = StepRule {
                optimizer: Optimizer::new(kind),
                weight_decay: decay,
                seed: (i * 4 + j) as u64,
            };
            let arch = matrix_arch(bn, dropout);
            let worst =
                both_paths_with(ctx.clone(), &arch, &rule, book_lr(kind), 50, rule.seed, 100);
            for (name, d) in worst {
                if d.max_rel > 1e-3 {
                    failures.push(format!(
                        "{kind} bn {bn} dropout {dropout}: {name} {:.3e}",
                        d.max_rel
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether the GPU's last training forward left the same hidden units
/// active (output > 0, after Relu and Dropout) as the CPU's: a unit whose
/// input is within rounding of 0 can land on either side of the kink.
fn same_active_units(gpu: &GpuTrainer, cpu_active: &[Vec<bool>], rows: usize) -> bool {
    // Every region's view shares the hidden layers' buffers.
    let act = &gpu.step().acts[0];
    cpu_active.iter().enumerate().all(|(l, want)| {
        let h = want.len() / rows;
        let stride = gpu_net::gpu::layout::padded(h);
        let z = gpu
            .net
            .ctx
            .read_f32(&act.z[l], 0, rows * stride, "Z")
            .unwrap();
        (0..rows * h).all(|e| (z[e / h * stride + e % h] > 0.0) == want[e])
    })
}

/// A tensor's name, its GPU and CPU values, and each element's allowance for
/// the update's sensitivity to f32 rounding of the gradient.
type Compared = (String, Vec<f64>, Vec<f64>, Vec<f64>);

/// `steps` steps of `rule`, each started on the CPU from the GPU's state
/// (parameters, running statistics, optimizer state, step count), and each
/// step's result compared: parameters, running statistics and optimizer
/// state within [`STEP_TOLERANCE`], plus, for the adaptive rules, the
/// step's sensitivity to f32's rounding of the gradient (see below).
/// Returns the failures and the steps left out because a hidden unit landed
/// on the other side of its Relu kink on the GPU.
fn stepwise(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    rule: &StepRule,
    lr: f32,
    steps: usize,
) -> (Vec<String>, usize) {
    stepwise_with(ctx, arch, rule, rule, lr, steps)
}

/// [`stepwise`] with the GPU trained by `gpu_rule` (tests of the test).
fn stepwise_with(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    rule: &StepRule,
    gpu_rule: &StepRule,
    lr: f32,
    steps: usize,
) -> (Vec<String>, usize) {
    let data = common::mnist();
    let params = Params::init(arch, rule.seed);
    let mut sampler = Sampler::new(rule.seed, data.train.len());
    let mut gpu = GpuTrainer::new(ctx, &params, data, 100, 1, lr, gpu_rule).unwrap();
    let mut cpu = CpuTrainer::new(arch, params, data, rule);
    let net = gpu_net::cpu::Net::new(arch)
        .with_weight_decay(rule.weight_decay)
        .with_seed(rule.seed);
    let layers = arch.sizes.len() - 1;
    let tensors = arch.tensors();
    let (mut failures, mut flipped) = (Vec::new(), 0);
    for k in 0..steps {
        cpu.params = gpu.params().unwrap();
        cpu.optimizer.state = gpu.optimizer_state().unwrap();
        assert_eq!(cpu.optimizer.t, gpu.steps_done());
        let step = k as u32 + 1;
        let batch = sampler.batch(100);
        let idx: Vec<usize> = batch.iter().map(|&i| i as usize).collect();
        let (x, t) = (data.train.batch_f64(&idx), data.train.batch_labels(&idx));
        let active = net.active_units(&cpu.params, &x, 100, step);
        // The update's sensitivity to the gradient: f32 rounds each layer's
        // gradient to about δ = 16·√K·ε32·max|g| of the layer (verify's
        // bound); the update from g ± δ bounds what that rounding can move.
        // For SGD-like rules this is lr·δ, far inside the tolerance; an
        // adaptive rule divides by the gradient's own size, so where g is
        // near δ its step has few correct digits in any f32 computation.
        let (_, g) = net.gradient(&cpu.params, &x, gpu_net::cpu::Labels::Index(&t), 100, step);
        let mut delta = vec![0.0; g.values.len()];
        for tensor in &tensors {
            let layer = tensor
                .name
                .trim_start_matches(|c: char| !c.is_ascii_digit());
            let scale = tensors
                .iter()
                .filter(|u| u.name.trim_start_matches(|c: char| !c.is_ascii_digit()) == layer)
                .flat_map(|u| g.tensor(u).iter())
                .fold(0.0f64, |m, v| m.max(v.abs()));
            let d = 16.0 * 785f64.sqrt() * gpu_net::core::compare::EPS_F32 * scale;
            delta[tensor.range()].fill(d);
        }
        let nudged = |sign: f64| {
            let mut opt = cpu.optimizer.clone();
            let mut p = cpu.params.values.clone();
            let gs: Vec<f64> = g
                .values
                .iter()
                .zip(&delta)
                .map(|(v, d)| v + sign * d)
                .collect();
            opt.update(&mut p, &gs, lr as f64);
            p
        };
        let (up, down) = (nudged(1.0), nudged(-1.0));

        gpu.train_steps(std::slice::from_ref(&batch), lr).unwrap();
        cpu.train_steps(std::slice::from_ref(&batch), lr).unwrap();
        if !same_active_units(&gpu, &active, 100) {
            flipped += 1;
            continue;
        }
        let gp = gpu.params().unwrap();
        let c = &cpu.params;
        let mut compared: Vec<Compared> = tensors
            .iter()
            .map(|t| {
                let sens = t.range().map(|e| (up[e] - down[e]).abs() / 2.0).collect();
                (
                    t.name.clone(),
                    gp.tensor(t).to_vec(),
                    c.tensor(t).to_vec(),
                    sens,
                )
            })
            .collect();
        for t in arch.running_tensors() {
            let zero = vec![0.0; t.len()];
            compared.push((
                t.name.clone(),
                gp.running[t.range()].to_vec(),
                c.running[t.range()].to_vec(),
                zero,
            ));
        }
        for (s, (gs, cs)) in gpu
            .optimizer_state()
            .unwrap()
            .iter()
            .zip(&cpu.optimizer.state)
            .enumerate()
        {
            for t in &tensors {
                let zero = vec![0.0; t.len()];
                compared.push((
                    format!("state{s}:{}", t.name),
                    gs[t.range()].to_vec(),
                    cs[t.range()].to_vec(),
                    zero,
                ));
            }
        }
        for (name, a, b, sens) in compared {
            let base = name.rsplit(':').next().unwrap();
            if idle_bias(base, arch.batchnorm, rule.optimizer.kind, layers) {
                continue;
            }
            let tol = |i: usize| Tolerance {
                atol: STEP_TOLERANCE.atol + sens[i],
                rtol: STEP_TOLERANCE.rtol,
            };
            let d = gpu_net::core::compare::diff_each(&a, &b, tol, FLOOR, |_| true);
            if !d.ok() {
                failures.push(format!(
                    "step {step}: {name} {:.3e} ({} elements, first {:?})",
                    d.max_rel, d.failures, d.first_failures
                ));
            }
        }
    }
    (failures, flipped)
}

#[test]
fn every_optimizer_agrees_with_cpu_step_by_step_for_50_steps() {
    // Every rule with Batch Normalization, Dropout and weight decay on and
    // off: 50 steps, each one compared from the same state on both paths.
    // (Free-running, adaptive rules amplify rounding: their step divides
    // each gradient by its own size, so after a unit near its kink rounds
    // differently the trajectories part. Step by step, each update is held to
    // the tolerance of the tests above.)
    let Some(ctx) = common::gpu() else { return };
    let (mut failures, mut skipped) = (Vec::new(), 0);
    for (i, kind) in OptimizerKind::ALL.into_iter().enumerate() {
        for (j, (bn, dropout, decay)) in LAYER_MATRIX.into_iter().enumerate() {
            let rule = StepRule {
                optimizer: Optimizer::new(kind),
                weight_decay: decay,
                seed: (100 + i * 4 + j) as u64,
            };
            let (f, s) = stepwise(
                ctx.clone(),
                &matrix_arch(bn, dropout),
                &rule,
                book_lr(kind),
                50,
            );
            failures.extend(
                f.into_iter()
                    .map(|f| format!("{kind} bn {bn} dropout {dropout}: {f}")),
            );
            skipped += s;
        }
    }
    eprintln!(
        "steps left out, a unit on the other side of its Relu kink on the GPU: {skipped} of {}",
        24 * 50
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        skipped < 24 * 50 / 20,
        "{skipped} steps left out: the paths disagree too often to be rounding"
    );
}

#[test]
fn stepwise_comparison_catches_a_wrong_adam_step_and_a_wrong_mask() {
    let Some(ctx) = common::gpu() else { return };
    let rule = StepRule {
        optimizer: Optimizer::new(OptimizerKind::Adam),
        seed: 5,
        ..Default::default()
    };
    // β2 of 0.99 on the GPU against the book's 0.999 on the CPU.
    let mut wrong = rule;
    wrong.optimizer.beta2 = 0.99;
    let (failures, _) = stepwise_with(
        ctx.clone(),
        &matrix_arch(true, 0.0),
        &rule,
        &wrong,
        0.001,
        3,
    );
    assert!(
        failures.iter().any(|f| f.contains("W1")),
        "a wrong β2 went unnoticed"
    );
    // Dropout's masks from another seed: the units differ, every step.
    let mut other = rule;
    other.seed = 6;
    let (_, flipped) = stepwise_with(ctx, &matrix_arch(false, 0.3), &rule, &other, 0.001, 3);
    assert_eq!(flipped, 3, "a different mask went unnoticed");
}

/// The learning rate docs/cli.md (`--lr`) and docs/chapter6.md name for each
/// rule on the book's network.
fn readme_lr(kind: OptimizerKind) -> f32 {
    match kind {
        OptimizerKind::RmsProp | OptimizerKind::Adam => 0.001,
        _ => 0.1,
    }
}

#[test]
fn every_optimizer_trains_the_book_network_past_93_percent_in_2000_iterations() {
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let mut results = Vec::new();
    for kind in OptimizerKind::ALL {
        let rule = StepRule {
            optimizer: Optimizer::new(kind),
            ..Default::default()
        };
        let lr = readme_lr(kind);
        let mut gpu = GpuTrainer::new(
            ctx.clone(),
            &Params::init(&arch, 0),
            data,
            100,
            8,
            lr,
            &rule,
        )
        .unwrap();
        let cfg = TrainConfig {
            iters: 2000,
            lr,
            ..Default::default()
        };
        let s = epoch_loop::train(&mut gpu, data.train.len(), &cfg, 32, &mut |_| {}).unwrap();
        results.push((kind, s.test_accuracy));
    }
    eprintln!("{results:?}");
    assert!(results.iter().all(|(_, a)| *a >= 0.93), "{results:?}");
}

#[test]
fn a_learning_rate_changed_between_calls_reaches_the_gpu() {
    // Fused SGD rewrites the products' uniforms; the other rules write the
    // optimizer pass's per step. Both paths see 0.1 for 3 steps, then 0.02.
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let arch = Arch::mlp(784, &[32], 10).unwrap();
    for kind in [OptimizerKind::Sgd, OptimizerKind::Momentum] {
        let rule = StepRule {
            optimizer: Optimizer::new(kind),
            ..Default::default()
        };
        let params = Params::init(&arch, 2);
        let mut sampler = Sampler::new(2, data.train.len());
        let batches: Vec<Vec<u32>> = (0..6).map(|_| sampler.batch(100)).collect();
        let mut gpu = GpuTrainer::new(ctx.clone(), &params, data, 100, 8, 0.1, &rule).unwrap();
        let mut cpu = CpuTrainer::new(&arch, params.clone(), data, &rule);
        let mut unchanged = CpuTrainer::new(&arch, params, data, &rule);
        for (trainer, second) in [
            (&mut gpu as &mut dyn Trainer, 0.02),
            (&mut cpu, 0.02),
            (&mut unchanged, 0.1),
        ] {
            trainer.train_steps(&batches[..3], 0.1).unwrap();
            trainer.train_steps(&batches[3..], second).unwrap();
        }
        let w1 = &arch.tensors()[0];
        let g = gpu.params().unwrap();
        let d = diff(g.tensor(w1), cpu.params.tensor(w1), STEP_TOLERANCE, FLOOR);
        assert!(d.ok(), "{kind}: {d:?}");
        let stale = diff(
            g.tensor(w1),
            unchanged.params.tensor(w1),
            STEP_TOLERANCE,
            FLOOR,
        );
        assert!(!stale.ok(), "{kind}: the new rate made no difference");
    }
}

#[test]
fn split_k_steps_agree_with_cpu_and_repeat_bit_for_bit_on_both_kernels() {
    // Batch 2048 makes the first weight gradient's K long enough to split
    // on either kernel (the vec4 kernel for cache, the tiled one because
    // 785 × 16 is 13 tiles).
    if common::gpu().is_none() {
        return;
    }
    let arch = Arch::mlp(784, &[16], 10).unwrap();
    let data = common::mnist();
    let batch = 2048;
    for algo in [MatmulAlgo::Tiled, MatmulAlgo::Vec4] {
        let ctx = Arc::new(
            GpuContext::new(&GpuOptions {
                matmul: Some(algo),
                ..Default::default()
            })
            .unwrap(),
        );
        let batches: Vec<Vec<u32>> = {
            let mut s = Sampler::new(4, data.train.len());
            (0..3).map(|_| s.batch(batch)).collect()
        };
        let run = || {
            let mut gpu = GpuTrainer::new(
                ctx.clone(),
                &Params::init(&arch, 4),
                data,
                batch,
                4,
                0.1,
                &StepRule::default(),
            )
            .unwrap();
            let splits: Vec<u32> = gpu.step().step_dispatches().map(|d| d.split_k()).collect();
            gpu.train_steps(&batches, 0.1).unwrap();
            let trained = gpu.params().unwrap();
            // A new learning rate reaches the reduction, where a split
            // product applies the SGD update: at 0 a step changes nothing.
            gpu.train_steps(&batches[..1], 0.0).unwrap();
            assert_eq!(
                gpu.params().unwrap().values,
                trained.values,
                "lr 0 moved the weights"
            );
            (trained, splits)
        };
        let ((a, splits), (b, _)) = (run(), run());
        assert!(
            splits.iter().any(|&s| s > 1),
            "{algo:?}: nothing split: {splits:?}"
        );
        assert!(
            a.values
                .iter()
                .zip(&b.values)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{algo:?}: two runs differ"
        );
        assert_within(&both_paths_on(ctx.clone(), &arch, 1, 4, batch), 1e-5);
        assert_within(&both_paths_on(ctx, &arch, 3, 5, batch), 1e-3);
    }
}

#[test]
fn texture_operands_train_to_the_same_bits_as_buffer_operands() {
    // The vec4 kernel reads its operands from texture copies or from the
    // buffers; the arithmetic is the same, so whole steps (the book's batch,
    // and a batch whose first weight gradient splits K) and the evaluation
    // after them agree bit for bit.
    if common::gpu().is_none() {
        return;
    }
    let data = common::mnist();
    let arch = Arch::mlp(784, &[16], 10).unwrap();
    for batch in [100, 2048] {
        let batches: Vec<Vec<u32>> = {
            let mut s = Sampler::new(6, data.train.len());
            (0..3).map(|_| s.batch(batch)).collect()
        };
        let run = |algo| {
            let ctx = Arc::new(
                GpuContext::new(&GpuOptions {
                    matmul: Some(algo),
                    ..Default::default()
                })
                .unwrap(),
            );
            let mut gpu = GpuTrainer::new(
                ctx,
                &Params::init(&arch, 6),
                data,
                batch,
                3,
                0.1,
                &StepRule::default(),
            )
            .unwrap();
            let staged = gpu
                .step()
                .step_dispatches()
                .filter(|d| !d.copies.is_empty())
                .count();
            gpu.train_steps(&batches, 0.1).unwrap();
            let test = gpu.evaluate(Split::Test).unwrap();
            (gpu.params().unwrap(), test, staged)
        };
        let (textures, test_t, staged) = run(MatmulAlgo::Vec4);
        let (buffers, test_b, unstaged) = run(MatmulAlgo::Vec4Buffers);
        // Two forward products, two weight gradients and one input gradient.
        assert_eq!((staged, unstaged), (5, 0), "batch {batch}");
        assert!(
            textures
                .values
                .iter()
                .zip(&buffers.values)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "batch {batch}: the parameters differ"
        );
        assert_eq!(test_t.0.to_bits(), test_b.0.to_bits(), "batch {batch}");
        assert_eq!(test_t.1, test_b.1, "batch {batch}");
    }
}

/// On a GPU's plans, where a submission's batches fit
/// `plan::GATHER_AHEAD_BYTES`, one gather writes them all and each step
/// reads its own region: 8 steps to a submission train to the bits of 1 to
/// a submission, with Dropout (a key a step) and Adam, plain SGD (fused
/// into the products), and the SimpleConvNet; a batch too large to gather
/// ahead gathers a step at a time.
#[test]
fn steps_gathered_together_train_to_the_bits_of_steps_gathered_alone() {
    if common::gpu().is_none() {
        return;
    }
    let ctx = common::planned_as(gpu_net::gpu::DeviceProfile::discrete(132));
    let data = common::mnist();
    let adam = StepRule {
        optimizer: Optimizer {
            kind: OptimizerKind::Adam,
            ..Optimizer::default()
        },
        weight_decay: 0.0,
        seed: 3,
    };
    let front = gpu_net::core::conv::ConvFront::book();
    let cases = [
        (matrix_arch(false, 0.3), adam, 0.001),
        (Arch::mlp(784, &[50], 10).unwrap(), StepRule::default(), 0.1),
        (Arch::simple_convnet(front, &[20], 10).unwrap(), adam, 0.001),
    ];
    let (batch, steps) = (20, 16);
    let batches: Vec<Vec<u32>> = (0..steps)
        .map(|s| {
            (0..batch)
                .map(|i| ((s * 97 + i * 13) % 5000) as u32)
                .collect()
        })
        .collect();
    for (arch, rule, lr) in cases {
        let params = Params::init(&arch, 5);
        let run = |slots: usize| {
            let mut t =
                GpuTrainer::new(ctx.clone(), &params, data, batch, slots, lr, &rule).unwrap();
            let count = t.step().regions.count;
            t.train_steps(&batches, lr).unwrap();
            let loss = t.take_mean_loss().unwrap().to_bits();
            let bits: Vec<u32> = t
                .params()
                .unwrap()
                .values
                .iter()
                .map(|v| (*v as f32).to_bits())
                .collect();
            (count, bits, loss)
        };
        let (together, alone) = (run(8), run(1));
        assert_eq!((together.0, alone.0), (8, 1), "{:?}", arch.sizes);
        let differ = (together.1.iter().zip(&alone.1))
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differ, 0, "parameters that differ, {:?}", arch.sizes);
        assert_eq!(together.2, alone.2, "training loss, {:?}", arch.sizes);
    }
    // 8 batches of 4096 inputs are over the bound: a gather a step.
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let t = GpuTrainer::new(
        ctx,
        &Params::init(&arch, 5),
        data,
        4096,
        8,
        0.1,
        &StepRule::default(),
    );
    assert_eq!(t.unwrap().step().regions.count, 1);
}

#[test]
fn a_submission_never_carries_more_indices_than_the_limit() {
    // Batch 65536 with 1024 steps per submission would be a 256 MB index
    // buffer (and 1024 sets of per-step dispatches); the trainer records 64.
    let Some(ctx) = common::gpu() else { return };
    let data = Mnist {
        train: synthetic(100, 11),
        test: synthetic(10, 12),
    };
    let arch = Arch::mlp(15, &[9], 10).unwrap();
    let batch = 1 << 16;
    let gpu = GpuTrainer::new(
        ctx,
        &Params::init(&arch, 1),
        &data,
        batch,
        1024,
        0.1,
        &StepRule::default(),
    )
    .unwrap();
    let slots = gpu_net::core::limits::MAX_INDICES_PER_SUBMIT / batch;
    assert_eq!((gpu.step().slots, slots), (64, 64));
    assert_eq!(gpu.step().idx.size(), (slots * batch * 4) as u64);
}

#[test]
fn each_epochs_training_loss_agrees_with_the_cpus() {
    // Three epochs of 20 steps through the training loop on both paths: the
    // loss each epoch reports (the GPU sums it on the device and reads it
    // back once an epoch) and the accuracies evaluated after it.
    let Some(ctx) = common::gpu() else { return };
    let full = common::mnist();
    let data = Mnist {
        train: full.train.first(2000),
        test: full.test.first(1000),
    };
    let arch = Arch::mlp(784, &[40], 10).unwrap();
    let cfg = TrainConfig {
        iters: 60,
        seed: 21,
        ..Default::default()
    };
    let rule = StepRule::default();
    let run = |trainer: &mut dyn Trainer| {
        let mut reports = Vec::new();
        epoch_loop::train(trainer, data.train.len(), &cfg, 8, &mut |r| {
            reports.push(r.clone())
        })
        .unwrap();
        reports
    };
    let params = Params::init(&arch, 21);
    let gpu = run(&mut GpuTrainer::new(ctx, &params, &data, 100, 8, 0.1, &rule).unwrap());
    let cpu = run(&mut CpuTrainer::new(&arch, params, &data, &rule));
    assert_eq!(gpu.len(), 3);
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!((g.epoch, g.iter), (c.epoch, c.iter));
        assert!(
            (g.loss - c.loss).abs() <= 1e-5 * c.loss,
            "epoch {}: gpu loss {} cpu {}",
            g.epoch,
            g.loss,
            c.loss
        );
        // An image whose two best logits tie within f32's rounding may go
        // either way: allow one of 2000 (train) and of 1000 (test).
        assert!(
            (g.train_accuracy - c.train_accuracy).abs() <= 1.0 / 2000.0,
            "{g:?} {c:?}"
        );
        assert!(
            (g.test_accuracy - c.test_accuracy).abs() <= 1.0 / 1000.0,
            "{g:?} {c:?}"
        );
    }
    // The epochs differ from each other by far more than the paths do.
    assert!(cpu[0].loss - cpu[2].loss > 0.1, "{cpu:?}");
}

/// Indices of the GPU arena `v` that are padding (not W, b, gamma or beta
/// of any layer) and hold something other than zero.
fn nonzero_padding(layout: &gpu_net::gpu::layout::GpuLayout, v: &[f32]) -> Vec<usize> {
    let mut real = vec![false; layout.len];
    for g in &layout.layers {
        for r in 0..=g.inputs {
            for c in 0..g.outputs {
                real[g.offset + r * g.cols() + c] = true;
            }
        }
    }
    for b in &layout.bn {
        real[b.gamma..b.gamma + 2 * b.features].fill(true);
    }
    (0..layout.len)
        .filter(|&i| !real[i] && v[i] != 0.0)
        .collect()
}

#[test]
fn the_gpu_layouts_padding_stays_zero_through_training() {
    // The padding rows and columns of every block are part of each product
    // (K and N run over them): one nonzero would leak into the real values.
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let cases = [
        // Fused SGD with weight decay, an odd batch.
        (matrix_arch(false, 0.0), OptimizerKind::Sgd, 0.01, 37),
        (
            Arch::mlp(784, &[33, 17], 10)
                .unwrap()
                .with_batchnorm(true)
                .with_dropout(0.3)
                .unwrap(),
            OptimizerKind::Adam,
            0.01,
            50,
        ),
        (
            Arch::mlp(784, &[45], 10).unwrap(),
            OptimizerKind::Momentum,
            0.0,
            100,
        ),
    ];
    for (arch, kind, decay, batch) in cases {
        let rule = StepRule {
            optimizer: Optimizer::new(kind),
            weight_decay: decay,
            seed: 3,
        };
        let lr = book_lr(kind);
        let mut gpu = GpuTrainer::new(
            ctx.clone(),
            &Params::init(&arch, 3),
            data,
            batch,
            8,
            lr,
            &rule,
        )
        .unwrap();
        let mut sampler = Sampler::new(3, data.train.len());
        let batches: Vec<Vec<u32>> = (0..30).map(|_| sampler.batch(batch)).collect();
        gpu.train_steps(&batches, lr).unwrap();
        gpu.finish().unwrap();
        let net = &gpu.net;
        let mut arenas = vec![("params", &net.params), ("grads", net.grads())];
        arenas.extend(gpu.step().optimizer_state.iter().map(|b| ("state", b)));
        for (what, buffer) in arenas {
            let v = net.ctx.read_f32(buffer, 0, net.layout.len, what).unwrap();
            let bad = nonzero_padding(&net.layout, &v);
            assert!(
                bad.is_empty(),
                "{:?} {kind}: {what} padding not zero at {:?}",
                arch.sizes,
                &bad[..bad.len().min(8)]
            );
        }
        // The training moved the real values (the check looked at live data).
        let p = gpu.params().unwrap();
        assert!(p.values != Params::init(&arch, 3).values);
    }
    // The check finds a padding element that is not zero.
    let layout = gpu_net::gpu::layout::GpuLayout::new(&Arch::mlp(5, &[3], 10).unwrap());
    let mut v = vec![0f32; layout.len];
    let g = layout.layers[0];
    v[g.offset + 6 * g.cols() + 1] = 1.0; // row 6: past b's row 5
    v[g.offset + 2 * g.cols() + 3] = 1.0; // column 3 of 3 outputs
    v[g.offset + 5 * g.cols() + 2] = 1.0; // b itself: real
    assert_eq!(
        nonzero_padding(&layout, &v),
        [g.offset + 2 * g.cols() + 3, g.offset + 6 * g.cols() + 1]
    );
}
