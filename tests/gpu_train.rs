//! Whole GPU training steps against the f64 CPU path, determinism, and a
//! short GPU run's accuracy.

mod common;

use gpu_net::compare::{Tolerance, diff};
use gpu_net::cpu::Net;
use gpu_net::gpu::GpuTrainer;
use gpu_net::model::{Arch, Params};
use gpu_net::train::{self, Sampler, TrainConfig, Trainer};

/// Max over a tensor of |gpu - cpu| / max(|cpu|, FLOOR). Weights are
/// O(1e-2). Biases start at 0 and after one step are -lr·Σrows dY, a sum of
/// terms ~1e-3 that cancel to ~1e-4: f32 rounds its partial sums to ~1e-9,
/// a "relative" 1e-5 of a value that small. The floor keeps the measure
/// about the parameters, not about cancellation.
const FLOOR: f64 = 1e-3;

/// Runs `steps` SGD steps of batch 100 on both paths from the same weights and
/// minibatch order; returns the worst relative difference per tensor.
fn both_paths(arch: &Arch, steps: usize, seed: u64) -> Vec<(String, f64)> {
    let Some(ctx) = common::gpu() else {
        return vec![];
    };
    let data = common::mnist();
    let params = Params::init(arch, seed);
    let mut sampler = Sampler::new(seed, data.train.len());
    let batches: Vec<Vec<u32>> = (0..steps).map(|_| sampler.batch(100)).collect();

    let mut gpu = GpuTrainer::new(ctx, &params, data, 100, 8, 0.1).unwrap();
    gpu.train_steps(&batches, 0.1).unwrap();
    let gpu_params = gpu.params().unwrap();

    let net = Net::new(arch);
    let mut cpu = params.clone();
    for b in &batches {
        let idx: Vec<usize> = b.iter().map(|&i| i as usize).collect();
        net.sgd_step(
            &mut cpu,
            &data.train.batch_f64(&idx),
            &data.train.batch_labels(&idx),
            0.1f32 as f64,
        );
    }
    arch.tensors()
        .iter()
        .map(|t| {
            let d = diff(
                gpu_params.tensor(t),
                cpu.tensor(t),
                Tolerance {
                    atol: 0.0,
                    rtol: 0.0,
                },
                FLOOR,
            );
            (t.name.clone(), d.max_rel)
        })
        .collect()
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
            GpuTrainer::new(ctx.clone(), &Params::init(&arch, 9), data, 100, 8, 0.1).unwrap();
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
    let mut gpu = GpuTrainer::new(ctx, &Params::init(&arch, 0), data, 100, 8, 0.1).unwrap();
    let cfg = TrainConfig {
        iters: 600,
        ..Default::default()
    };
    let s = train::train(&mut gpu, data.train.len(), &cfg, 32, &mut |_| {}).unwrap();
    assert!(s.test_accuracy > 0.90, "test accuracy {}", s.test_accuracy);
}
