//! The paths the Python bindings use, without Python: `HostFedNet` (batches
//! of any f32 values written from the host, in the padded layout with the
//! ones column) against the CPU reference on awkward shapes, and the book's
//! Trainer loop (`book::trainer`), whose per-step loss log must not change
//! a training run's bits.

mod common;

use gpu_net::book::trainer::{BookTrainerConfig, train_book};
use gpu_net::core::model::{Arch, Params};
use gpu_net::core::optim::StepRule;
use gpu_net::cpu::Net;
use gpu_net::cpu::layers::Labels;
use gpu_net::gpu::{Form, GpuTrainer, HostFedNet};
use gpu_net::run::epoch_loop::{Sampler, Trainer};

/// GPU gradient (f32) and CPU gradient (f64) of one batch of values in
/// [-1, 1), for `arch`; the worst difference over the arena.
fn host_fed_gradient_gap(arch: &Arch, rows: usize, scale_b2: f64) -> Option<f64> {
    let ctx = common::gpu()?;
    let mut p = Params::init_with(arch, gpu_net::core::model::Init::Std(0.3), 4);
    let last = arch.tensors().last().unwrap().clone();
    for v in &mut p.values[last.range()] {
        *v = scale_b2; // a bias that is not zero
    }
    let x32 = common::random_f32(rows * arch.inputs(), 9);
    let t: Vec<u32> = (0..rows as u32)
        .map(|r| (r * 7) % arch.outputs() as u32)
        .collect();
    let mut gpu = HostFedNet::new(ctx, &p, 0.01, 3).unwrap();
    let (stats, grads) = gpu.gradient(&x32, &t).unwrap();
    let t8: Vec<u8> = t.iter().map(|&v| v as u8).collect();
    let net = Net::new(arch).with_weight_decay(0.01).with_seed(3);
    let (loss, cpu) = net.gradient(&p, &common::widen(&x32), Labels::Index(&t8), rows, 1);
    assert!((stats.mean_loss() - loss).abs() < 1e-4 * loss.max(1.0));
    let worst = grads
        .values
        .iter()
        .zip(&cpu.values)
        .fold(0f64, |m, (g, c)| m.max((g - c).abs()));
    Some(worst / cpu.values.iter().fold(0f64, |m, v| m.max(v.abs())))
}

#[test]
fn host_fed_gradients_agree_with_the_cpu_on_awkward_shapes() {
    for (sizes, rows) in [
        (vec![1, 3, 2], 1),
        (vec![3, 17, 10], 3),
        (vec![33, 127, 10], 17),
        (vec![784, 50, 10], 33),
    ] {
        let arch = Arch::new(sizes.clone()).unwrap();
        if let Some(gap) = host_fed_gradient_gap(&arch, rows, 0.1) {
            assert!(gap < 1e-4, "{sizes:?} × {rows}: relative gap {gap}");
        }
    }
    let bn = Arch::mlp(33, &[17, 3], 10).unwrap().with_batchnorm(true);
    if let Some(gap) = host_fed_gradient_gap(&bn, 17, 0.1) {
        assert!(gap < 1e-3, "with Batch Normalization: relative gap {gap}");
    }
}

/// A call's one read-back carries what separate reads would: the
/// gradients `gradient` returns are the gradient arena's.
#[test]
fn host_fed_gradient_reads_back_the_gradient_arena() {
    let Some(ctx) = common::gpu() else { return };
    let arch = Arch::new(vec![7, 5, 3]).unwrap();
    let p = Params::init(&arch, 2);
    let mut gpu = HostFedNet::new(ctx, &p, 0.0, 0).unwrap();
    let x = common::random_f32(3 * 7, 4);
    let (stats, grads) = gpu.gradient(&x, &[0, 1, 2]).unwrap();
    assert_eq!(stats.rows, 3);
    assert_eq!(grads.values, gpu.net.read_grads().unwrap().values);
    assert!(grads.values.iter().any(|&g| g != 0.0));
}

#[test]
fn host_fed_logits_follow_written_parameters() {
    let Some(ctx) = common::gpu() else { return };
    let arch = Arch::new(vec![5, 3, 4]).unwrap();
    let mut p = Params::init(&arch, 0);
    let mut gpu = HostFedNet::new(ctx, &p, 0.0, 0).unwrap();
    let x = common::random_f32(2 * 5, 1);
    let (stats, before) = gpu.forward_logits(&x, &[0, 1], Form::Eval).unwrap();
    assert_eq!(stats, gpu.forward(&x, &[0, 1], Form::Eval).unwrap());
    let b2 = arch.tensors()[3].clone();
    p.values[b2.range()].copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
    gpu.write_params(&p);
    let (_, after) = gpu.forward_logits(&x, &[0, 1], Form::Eval).unwrap();
    assert_eq!(after.len(), 2 * 4);
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        assert!(
            (a - b - (i % 4 + 1) as f32).abs() < 1e-5,
            "logit {i}: {b} then {a}"
        );
    }
}

#[test]
fn the_loss_log_keeps_a_runs_bits_and_logs_each_step() {
    let Some(ctx) = common::gpu() else { return };
    let data = gpu_net::core::data::Mnist {
        train: common::mnist().train.first(1000),
        test: common::mnist().test.first(500),
    };
    let arch = Arch::mlp(784, &[30], 10).unwrap();
    let p = Params::init(&arch, 5);
    let rule = StepRule::default();
    let cfg = BookTrainerConfig {
        max_iter: 25,
        batch: 100,
        lr: 0.1,
        rule,
        eval_samples: Some(200),
        seed: 5,
    };
    let mut epochs = vec![];
    let logged = train_book(
        ctx.clone(),
        &p,
        &data,
        &cfg,
        &mut |e| epochs.push(e.clone()),
        &mut || false,
    )
    .unwrap();
    assert_eq!(logged.train_loss.len(), 25);
    assert_eq!(
        epochs
            .iter()
            .map(|e| e.accuracies.is_some())
            .collect::<Vec<_>>(),
        [true, true, false]
    );
    // The same steps through GpuTrainer without the log: the same bits,
    // and the mean of its stats the mean of the logged losses.
    let mut plain = GpuTrainer::new(ctx, &p, &data, 100, 8, 0.1, &rule).unwrap();
    let mut sampler = Sampler::new(5, 1000);
    let batches: Vec<Vec<u32>> = (0..25).map(|_| sampler.batch(100)).collect();
    plain.train_steps(&batches, 0.1).unwrap();
    let mean = plain.take_mean_loss().unwrap();
    assert_eq!(Trainer::params(&mut plain).unwrap(), logged.params);
    let logged_mean = logged.train_loss.iter().sum::<f64>() / 25.0;
    assert!(
        (mean - logged_mean).abs() < 1e-5 * mean,
        "{mean} vs {logged_mean}"
    );
    assert!(logged.train_loss[24] < logged.train_loss[0]);
}
