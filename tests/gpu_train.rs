//! Whole GPU training steps against the f64 CPU path, determinism, and a
//! short GPU run's accuracy.

mod common;

use gpu_net::compare::{Tolerance, diff};
use gpu_net::model::Init;
use gpu_net::optim::StepRule;
use std::sync::Arc;

use gpu_net::data::{Dataset, Mnist};
use gpu_net::gpu::kernels::MatmulAlgo;
use gpu_net::gpu::{GpuContext, GpuOptions, GpuTrainer};
use gpu_net::model::{Arch, Params};
use gpu_net::train::{self, CpuTrainer, Sampler, Split, TrainConfig, Trainer};

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
}

/// `steps` training steps of `rule` at learning rate `lr` on both paths
/// (through the trainers, so Dropout's steps and Adam's t count alike), from
/// the same weights (He init) and minibatches; the worst relative difference
/// per tensor, running statistics included.
pub fn both_paths_with(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    rule: &StepRule,
    lr: f32,
    steps: usize,
    seed: u64,
    batch: usize,
) -> Vec<(String, f64)> {
    let data = common::mnist();
    let init = if rule == &StepRule::default() { Init::default() } else { Init::He };
    let params = Params::init_with(arch, init, seed);
    let mut sampler = Sampler::new(seed, data.train.len());
    let batches: Vec<Vec<u32>> = (0..steps).map(|_| sampler.batch(batch)).collect();

    let mut gpu = GpuTrainer::new(ctx, &params, data, batch, 8, lr, rule).unwrap();
    gpu.train_steps(&batches, lr).unwrap();
    let g = gpu.params().unwrap();

    let mut cpu = CpuTrainer::new(arch, params, data, rule);
    cpu.train_steps(&batches, lr).unwrap();
    let c = &cpu.params;
    let exact = Tolerance {
        atol: 0.0,
        rtol: 0.0,
    };
    let mut out: Vec<(String, f64)> = arch
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), diff(g.tensor(t), c.tensor(t), exact, FLOOR).max_rel))
        .collect();
    for t in arch.running_tensors() {
        let d = diff(&g.running[t.range()], &c.running[t.range()], exact, FLOOR);
        out.push((t.name.clone(), d.max_rel));
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
        let mut gpu =
            GpuTrainer::new(ctx.clone(), &Params::init(&arch, 9), data, 100, 8, 0.1, &StepRule::default()).unwrap();
        let cfg = TrainConfig {
            iters: 120,
            seed: 9,
            ..Default::default()
        };
        let s = train::train(&mut gpu, data.train.len(), &cfg, 40, &mut |_| {}).unwrap();
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
    let mut gpu = GpuTrainer::new(ctx, &Params::init(&arch, 0), data, 100, 8, 0.1, &StepRule::default()).unwrap();
    let cfg = TrainConfig {
        iters: 600,
        ..Default::default()
    };
    let s = train::train(&mut gpu, data.train.len(), &cfg, 32, &mut |_| {}).unwrap();
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
        MatmulAlgo::Vec4 => MatmulAlgo::Tiled,
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
