//! The CPU path's memory estimate against what the allocator sees: never
//! below the peak (so the limit refuses before the machine runs out), never
//! more than 2.5 times it (so the limit does not refuse what would fit).
//!
//! One test in this binary: it measures every thread's allocations.

mod alloc_meter;
mod common;

use gpu_net::core::model::{Arch, Init, Params};
use gpu_net::core::optim::{Optimizer, OptimizerKind, StepRule};
use gpu_net::cpu::CpuTrainer;
use gpu_net::cpu::memory::{training_bytes, verify_bytes};
use gpu_net::cpu::numerical::numerical_gradient;
use gpu_net::cpu::{Labels, Net};
use gpu_net::run::checkpoint::Checkpoint;
use gpu_net::run::epoch_loop::{Sampler, Split, Trainer};

fn arch(hidden: &[usize], bn: bool, dropout: f32) -> Arch {
    Arch::mlp(784, hidden, 10)
        .unwrap()
        .with_batchnorm(bn)
        .with_dropout(dropout)
        .unwrap()
}

#[test]
fn the_estimates_bound_the_cpu_paths_peak_within_a_factor_of_2_5() {
    // A test split of one evaluation chunk: the same peak, a tenth of the time.
    let full = common::mnist();
    let data = &gpu_net::core::data::Mnist {
        train: full.train.first(10_000),
        test: full.test.first(gpu_net::cpu::memory::EVAL_ROWS),
    };
    let mut report = Vec::new();
    let mut judge = |what: String, peak: usize, estimate: u64| {
        let ratio = estimate as f64 / peak as f64;
        report.push(format!(
            "{what}: peak {peak}, estimate {estimate} ({ratio:.2}x)"
        ));
        (1.0..=2.5).contains(&ratio)
    };
    let mut ok = true;
    for (hidden, bn, dropout, batch, kind) in [
        (&[50][..], false, 0.0, 100, OptimizerKind::Sgd),
        (&[50], false, 0.0, 4000, OptimizerKind::Sgd),
        (&[512], false, 0.0, 200, OptimizerKind::Momentum),
        (&[100, 100], true, 0.2, 1000, OptimizerKind::Adam),
        (&[300], true, 0.0, 3000, OptimizerKind::RmsProp),
        (&[2000, 1000], false, 0.0, 50, OptimizerKind::Adam),
    ] {
        let arch = arch(hidden, bn, dropout);
        let rule = StepRule {
            optimizer: Optimizer::new(kind),
            ..Default::default()
        };
        let batches = vec![Sampler::new(0, data.train.len()).batch(batch)];
        // A training step, an evaluation, and a checkpoint's bytes.
        let (_, peak) = alloc_meter::global_peak_of(|| {
            let mut t = CpuTrainer::new(&arch, Params::init(&arch, 0), data, &rule);
            t.train_steps(&batches, 0.01).unwrap();
            t.evaluate(Split::Test).unwrap();
            let ck = Checkpoint {
                params: t.params().unwrap(),
                config: gpu_net::core::config::RunConfig {
                    hidden: arch.hidden().to_vec(),
                    batchnorm: arch.batchnorm,
                    dropout: arch.dropout,
                    optimizer: rule.optimizer,
                    init: Init::default(),
                    lr: 0.01,
                    batch,
                    train_size: Some(data.train.len()),
                    data: Some(String::new()),
                    ..Default::default()
                },
                f64_values: true,
                state: gpu_net::run::checkpoint::RunState {
                    optimizer_state: t.optimizer_state().unwrap(),
                    iterations: 1,
                    planned_iterations: None,
                    lr_schedule: vec![(0, 0.01)],
                    sampler_position: 0,
                    test_accuracy: None,
                },
            };
            ck.to_bytes().len()
        });
        let estimate = training_bytes(&arch, batch, kind.state_arrays());
        ok &= judge(
            format!("train {:?} {kind} batch {batch}", arch.sizes),
            peak,
            estimate,
        );
    }
    // verify's CPU side: backprop and the numerical gradient's workers.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (hidden, bn, batch) in [(&[50][..], false, 3), (&[200, 100][..], true, 400)] {
        let arch = arch(hidden, bn, 0.0);
        let idx: Vec<usize> = (0..batch).collect();
        let (x, t) = (data.train.batch_f64(&idx), data.train.batch_labels(&idx));
        let tensors: Vec<_> = arch
            .tensors()
            .into_iter()
            .map(|t| (t, (0..2 * threads).collect::<Vec<_>>()))
            .collect();
        let (_, peak) = alloc_meter::global_peak_of(|| {
            let params = Params::init(&arch, 0);
            let net = Net::new(&arch);
            let g = net.gradient(&params, &x, Labels::Index(&t), batch, 1);
            let n = numerical_gradient(
                |p| net.loss_and_signature(p, &x, Labels::Index(&t), batch, 1),
                &params,
                &tensors,
            );
            (g, n.kinked.len())
        });
        let estimate = verify_bytes(&arch, batch, threads);
        ok &= judge(
            format!("verify {:?} batch {batch}", arch.sizes),
            peak,
            estimate,
        );
    }
    assert!(ok, "{}", report.join("\n"));
    eprintln!("{}", report.join("\n"));
}
