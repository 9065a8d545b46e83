//! The book's `SimpleConvNet` (`ch07/simple_convnet.py`) as an `Arch` with a
//! convolutional front: its tensors' names and shapes, its refusals, its
//! CPU backprop against central differences on `ch07/gradient_check.py`'s
//! network (input 1×10×10, 10 filters of 3×3, hidden 10), and the GPU's
//! gradient and training steps against the CPU on awkward shapes.

mod common;

use gpu_net::core::compare::{Tolerance, diff};
use gpu_net::core::conv::ConvFront;
use gpu_net::core::data::{Dataset, Mnist};
use gpu_net::core::model::{Arch, Init, Params};
use gpu_net::core::optim::{Optimizer, OptimizerKind, StepRule};
use gpu_net::cpu::{CpuTrainer, Labels, Net};
use gpu_net::gpu::{GpuContext, GpuTrainer};
use gpu_net::run::epoch_loop::{Sampler, Trainer};
use gpu_net::run::gradient_check::gpu_gradient;
use std::sync::Arc;

fn gradient_check_arch() -> Arch {
    let front = ConvFront {
        input_dim: [1, 10, 10],
        filter_num: 10,
        filter_size: 3,
        pad: 0,
        stride: 1,
    };
    Arch::simple_convnet(front, &[10], 10).unwrap()
}

/// Values in [-scale, scale) from a low-discrepancy sequence.
fn values(len: usize, scale: f64, seed: f64) -> Vec<f64> {
    (0..len)
        .map(|i| (((i as f64 + 1.0) * (0.754877666 + seed)).fract() * 2.0 - 1.0) * scale)
        .collect()
}

#[test]
fn the_books_names_shapes_and_layers() {
    let arch = Arch::simple_convnet(ConvFront::book(), &[100], 10).unwrap();
    let got: Vec<(String, Vec<usize>)> = arch
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let want = [
        ("W1", vec![30, 1, 5, 5]),
        ("b1", vec![30]),
        ("W2", vec![4320, 100]),
        ("b2", vec![100]),
        ("W3", vec![100, 10]),
        ("b3", vec![10]),
    ];
    assert_eq!(got, want.map(|(n, s)| (n.to_string(), s)));
    assert_eq!(arch.inputs(), 784);
    assert_eq!(arch.param_count(), 30 * 26 + 4321 * 100 + 101 * 10);
    assert_eq!(
        arch.describe(),
        "Conv1 Relu1 Pool1 Affine1 Relu2 Affine2 SoftmaxWithLoss"
    );
    // No two tensors overlap.
    let t = arch.tensors();
    for pair in t.windows(2) {
        assert!(pair[0].offset + pair[0].len() <= pair[1].offset, "{pair:?}");
    }
}

#[test]
fn shapes_that_do_not_slide_are_refused() {
    let refused = |front: ConvFront| {
        Arch::simple_convnet(front, &[100], 10)
            .unwrap_err()
            .to_string()
    };
    let odd = ConvFront {
        input_dim: [1, 25, 25],
        ..ConvFront::book()
    };
    let e = refused(odd);
    assert!(e.contains("(21 - 2) / 2 + 1 is not a whole number"), "{e}");
    let e = refused(ConvFront {
        filter_size: 31,
        ..ConvFront::book()
    });
    assert!(e.contains("larger than the padded image"), "{e}");
    let e = refused(ConvFront {
        stride: 0,
        ..ConvFront::book()
    });
    assert!(e.contains("stride is 0"), "{e}");
    let e = refused(ConvFront {
        filter_num: 0,
        ..ConvFront::book()
    });
    assert!(e.contains("filter count is 0"), "{e}");
    let bn = Arch::mlp(784, &[100], 10)
        .unwrap()
        .with_batchnorm(true)
        .with_conv(ConvFront::book());
    assert!(bn.unwrap_err().to_string().contains("Batch Normalization"));
}

/// `ch07/gradient_check.py`: backprop against central differences for
/// every parameter (a nudge crossing a Relu kink would show as one large
/// difference), and the comparison fails on a gradient off by 1%.
#[test]
fn backprop_matches_the_numerical_gradient() {
    let arch = gradient_check_arch();
    let net = Net::new(&arch);
    let mut p = Params::zeros(&arch);
    p.values = values(arch.arena_len(), 0.3, 0.01);
    let x = values(2 * 100, 1.0, 0.02);
    let t = [1u8, 7];
    let loss = |p: &Params| net.loss(p, &x, Labels::Index(&t), 2, 1);
    let (_, g) = net.gradient(&p, &x, Labels::Index(&t), 2, 1);
    let h = 1e-5;
    let mut worst = 0f64;
    for tensor in arch.tensors() {
        for i in tensor.range() {
            let (mut a, mut b) = (p.clone(), p.clone());
            a.values[i] += h;
            b.values[i] -= h;
            let num = (loss(&a) - loss(&b)) / (2.0 * h);
            worst = worst.max((num - g.values[i]).abs());
        }
    }
    assert!(worst < 1e-7, "largest difference {worst}");
    let (mut a, mut b) = (p.clone(), p.clone());
    a.values[0] += h;
    b.values[0] -= h;
    let num = (loss(&a) - loss(&b)) / (2.0 * h);
    assert!(g.values[0] != 0.0 && (num - g.values[0] * 1.01).abs() > 1e-7);
}

/// Weight decay reaches the filters: the gradient of `½λ·ΣW²` is `λ·W`
/// there too, and not on the biases.
#[test]
fn weight_decay_covers_the_filters() {
    let arch = gradient_check_arch();
    let mut p = Params::zeros(&arch);
    p.values = values(arch.arena_len(), 0.3, 0.01);
    let x = values(2 * 100, 1.0, 0.02);
    let t = [1u8, 7];
    let plain = Net::new(&arch).gradient(&p, &x, Labels::Index(&t), 2, 1).1;
    let decayed = Net::new(&arch)
        .with_weight_decay(0.5)
        .gradient(&p, &x, Labels::Index(&t), 2, 1)
        .1;
    let s = arch.conv_slot().unwrap();
    for i in s.w..s.b() {
        let want = plain.values[i] + 0.5 * p.values[i];
        assert!((decayed.values[i] - want).abs() < 1e-12);
    }
    for i in s.b()..s.b() + s.outputs {
        assert_eq!(decayed.values[i], plain.values[i]);
    }
}

/// Fronts on awkward shapes: channels 1 and 3, images that are not square,
/// filters 1, 3, 5 and 7, stride 1 and 2, pad 0, 1 and 2, and the book's.
fn awkward_fronts() -> Vec<ConvFront> {
    let front = |input_dim, filter_num, filter_size, stride, pad| ConvFront {
        input_dim,
        filter_num,
        filter_size,
        pad,
        stride,
    };
    vec![
        front([1, 28, 28], 30, 5, 1, 0),
        front([3, 10, 6], 7, 3, 1, 1),
        front([1, 15, 11], 3, 5, 2, 2),
        front([2, 12, 8], 1, 1, 1, 0),
        front([3, 10, 12], 5, 7, 1, 2),
    ]
}

/// `n` images of `front`'s size with random pixels and labels.
fn images(front: &ConvFront, n: usize, seed: u64) -> Dataset {
    let [c, h, w] = front.input_dim;
    let per = c * h * w;
    let r = common::random_f32(n * (per + 1), seed);
    let pixels = (0..n * per).map(|i| ((r[i] + 1.0) * 127.9) as u8).collect();
    let labels = (0..n)
        .map(|i| ((r[n * per + i] + 1.0) * 4.99) as u8)
        .collect();
    Dataset::from_parts(pixels, labels, c * h, w)
}

/// The GPU's gradient (gather, im2col, the products, pooling, and back)
/// against the CPU's f64 backprop, batches of 1 and 3, with this adapter's
/// plans and a 132-unit GPU's.
#[test]
fn the_gpu_gradient_matches_the_cpu_on_awkward_shapes() {
    for (plans, ctx) in common::both_plans() {
        gradient_matches_the_cpu(plans, &ctx);
    }
}

fn gradient_matches_the_cpu(plans: &str, ctx: &Arc<GpuContext>) {
    for front in awkward_fronts() {
        let arch = Arch::simple_convnet(front, &[17], 10).unwrap();
        let params = Params::init_with(&arch, Init::He, 5);
        let train = images(&front, 5, 6);
        for indices in [vec![2], vec![4, 0, 3]] {
            let rule = StepRule::default();
            let (gl, g) = gpu_gradient(ctx.clone(), &params, &train, &indices, &rule).unwrap();
            let x = train.batch_f64(&indices);
            let t = train.batch_labels(&indices);
            let (cl, c) = Net::new(&arch).gradient(&params, &x, Labels::Index(&t), t.len(), 1);
            assert!(
                (gl - cl).abs() < 1e-5 * cl.abs().max(1.0),
                "{front:?}, {plans}: loss {gl} {cl}"
            );
            for tensor in arch.tensors() {
                let d = diff(
                    g.tensor(&tensor),
                    c.tensor(&tensor),
                    Tolerance {
                        atol: 1e-5,
                        rtol: 1e-3,
                    },
                    1e-3,
                );
                assert!(
                    d.ok(),
                    "{front:?} batch {}, {plans}: {}: {d:?}",
                    t.len(),
                    tensor.name
                );
            }
        }
    }
}

/// The check above fails on a GPU gradient that is off: the filters'
/// gradient scaled by 1.01 is outside its tolerance.
#[test]
fn the_gradient_comparison_catches_a_wrong_filter_gradient() {
    let Some(ctx) = common::gpu() else { return };
    let front = awkward_fronts()[1];
    let arch = Arch::simple_convnet(front, &[17], 10).unwrap();
    let params = Params::init_with(&arch, Init::He, 5);
    let train = images(&front, 3, 6);
    let (_, g) = gpu_gradient(ctx, &params, &train, &[0, 1, 2], &StepRule::default()).unwrap();
    let w1 = &arch.tensors()[0];
    let wrong: Vec<f64> = g.tensor(w1).iter().map(|v| v * 1.01).collect();
    let d = diff(
        &wrong,
        g.tensor(w1),
        Tolerance {
            atol: 1e-5,
            rtol: 1e-3,
        },
        1e-3,
    );
    assert!(!d.ok(), "{d:?}");
}

/// `steps` training steps of `rule` on both paths from the same weights
/// and minibatches: the worst relative difference per tensor.
fn both_paths(
    arch: &Arch,
    data: &Mnist,
    rule: &StepRule,
    lr: f32,
    steps: usize,
) -> Vec<(String, f64)> {
    let Some(ctx) = common::gpu() else {
        return vec![];
    };
    let params = Params::init(arch, 7);
    let mut sampler = Sampler::new(7, data.train.len());
    let batches: Vec<Vec<u32>> = (0..steps).map(|_| sampler.batch(20)).collect();
    let mut gpu = GpuTrainer::new(ctx, &params, data, 20, 8, lr, rule).unwrap();
    gpu.train_steps(&batches, lr).unwrap();
    let g = gpu.params().unwrap();
    let mut cpu = CpuTrainer::new(arch, params, data, rule);
    cpu.train_steps(&batches, lr).unwrap();
    let tol = Tolerance {
        atol: 1e-6,
        rtol: 1e-3,
    };
    arch.tensors()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                diff(g.tensor(t), cpu.params.tensor(t), tol, 1e-3).max_rel,
            )
        })
        .collect()
}

/// 50 steps of SGD (fused into the gradient product) and of Momentum (the
/// gradient stored, then an optimizer pass over the arena) agree with the
/// CPU within the MLP's step tolerance, on the book's network over MNIST.
/// (The adaptive rules are not compared free-running, as for the MLP in
/// `tests/gpu_train.rs`: they turn f32's rounding of a near-zero gradient
/// into whole steps, and the two trajectories part while each step is right.)
#[test]
fn fifty_steps_agree_with_the_cpu() {
    let data = common::mnist();
    let small = Mnist {
        train: data.train.first(1000),
        test: data.test.first(100),
    };
    let arch = Arch::simple_convnet(ConvFront::book(), &[100], 10).unwrap();
    let momentum = StepRule {
        optimizer: Optimizer {
            kind: OptimizerKind::Momentum,
            ..Optimizer::default()
        },
        ..StepRule::default()
    };
    for (rule, lr) in [(StepRule::default(), 0.1), (momentum, 0.01)] {
        let worst = both_paths(&arch, &small, &rule, lr, 50);
        eprintln!("{:?}: {worst:?}", rule.optimizer.kind);
        for (name, rel) in worst {
            assert!(rel <= 1e-3, "{:?} {name}: {rel:.3e}", rule.optimizer.kind);
        }
    }
}

/// The same seed repeats a run bit for bit (col2im is not in training;
/// pooling's backward and every reduction run in a fixed order).
#[test]
fn the_same_seed_gives_the_same_bits() {
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let small = Mnist {
        train: data.train.first(500),
        test: data.test.first(100),
    };
    let arch = Arch::simple_convnet(ConvFront::book(), &[100], 10).unwrap();
    let params = Params::init(&arch, 2);
    let run = || {
        let mut sampler = Sampler::new(2, small.train.len());
        let batches: Vec<Vec<u32>> = (0..10).map(|_| sampler.batch(50)).collect();
        let rule = StepRule::default();
        let mut gpu = GpuTrainer::new(ctx.clone(), &params, &small, 50, 4, 0.1, &rule).unwrap();
        gpu.train_steps(&batches, 0.1).unwrap();
        gpu.params().unwrap().values
    };
    let (a, b) = (run(), run());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_ne!(a, params.values);
}

/// `gpu-net verify` on a SimpleConvNet over `train`: (report, W1's tensor).
fn verify_convnet(
    arch: &Arch,
    train: &Dataset,
    (batch, init): (usize, Init),
    tamper: Option<&dyn Fn(&mut Params)>,
) -> Option<gpu_net::run::gradient_check::VerifyReport> {
    let ctx = common::gpu()?;
    let cfg = gpu_net::run::gradient_check::VerifyConfig {
        batch,
        init,
        seed: 3,
        ..Default::default()
    };
    Some(gpu_net::run::gradient_check::verify(ctx, arch, train, &cfg, tamper).unwrap())
}

/// `ch07/gradient_check.py`'s network (input 1×10×10, 10 filters of 3×3,
/// hidden 10) on random images, checked three ways (numerical, CPU and GPU
/// backprop): at its batch of 1 and init 0.01, and at batch 3 with He's
/// init, whose larger outputs keep almost every nudge off Relu's kink.
/// Every tensor agrees, and a filter gradient 1% off fails.
#[test]
fn verify_checks_the_books_gradient_check_network_three_ways() {
    let arch = gradient_check_arch();
    let train = images(&arch.conv.unwrap(), 5, 11);
    // At 0.01 a bias nudge of 2h moves 64 outputs a filter, and about one
    // output in a hundred lies that close to 0: some b1 elements kink.
    for (batch, init, most) in [(1, Init::default(), 2), (3, Init::He, 10)] {
        let Some(r) = verify_convnet(&arch, &train, (batch, init), None) else {
            return;
        };
        let text = gpu_net::run::gradient_check::render(&r);
        assert!(r.ok, "batch {batch}:\n{text}");
        // Its header names the network as train does, the front first.
        assert!(
            text.starts_with("network SimpleConvNet (input 1×10×10, 10 filters 3×3"),
            "{text}"
        );
        for t in &r.tensors {
            assert!(t.kinked < t.checked, "{}: {} kinked", t.name, t.kinked);
            assert!(!t.all_zero, "{}", t.name);
        }
        let (kinked, checked) = r
            .tensors
            .iter()
            .fold((0, 0), |(k, c), t| (k + t.kinked, c + t.checked));
        assert!(
            kinked * most < checked,
            "batch {batch}: {kinked} of {checked} kinked"
        );
    }
    let w1 = arch.tensors()[0].clone();
    let tamper = move |g: &mut Params| {
        for v in &mut g.values[w1.range()] {
            *v *= 1.01;
        }
    };
    let r = verify_convnet(&arch, &train, (3, Init::He), Some(&tamper)).unwrap();
    assert!(!r.ok);
    let failed: Vec<String> = r.failures();
    assert!(failed.iter().all(|f| f.contains("W1")), "{failed:?}");
}
