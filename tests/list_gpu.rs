//! A network given as a list of layers on the GPU (`gpu::stages`,
//! `gpu::sequential`): its gradient against the CPU reference
//! (`cpu::sequential`, itself held to the numerical gradient in
//! `tests/network.rs`) on awkward lists — stride 2 and pad 2, odd sizes,
//! C > 1, overlapping pools, convolution after convolution with and
//! without Relu, a convolution flattened into an Affine, Dropout after a
//! Relu and on the logits — and on the book's DeepConvNet, each with this
//! adapter's plans and with a 132-unit GPU's (the tiled product, split K,
//! columns read in place, the head); a comparison
//! shown to catch a 1% error; the lists an `Arch` also describes trained
//! to the `Arch` path's very bits; the same seed, the same bits; and the
//! lists the GPU does not run refused naming the layer.

mod common;

use gpu_net::core::compare::{Tolerance, diff};
use gpu_net::core::conv::ConvFront;
use gpu_net::core::data::Dataset;
use gpu_net::core::model::{Arch, Init, Params};
use gpu_net::core::network::{Network, Values};
use gpu_net::core::optim::{Optimizer, OptimizerKind, StepRule};
use gpu_net::core::trainer::Trainer;
use gpu_net::cpu::Labels;
use gpu_net::cpu::sequential::{Sequential, Weights};
use gpu_net::gpu::list_trainer::list_gradient;
use gpu_net::gpu::stages::Stages;
use gpu_net::gpu::{GpuContext, GpuTrainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// Random images of `input` (u8, as a dataset holds them) with labels below `classes`.
fn images(input: Values, batch: usize, classes: u8, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels = (0..batch * input.len()).map(|_| rng.random()).collect();
    let labels = (0..batch).map(|_| rng.random_range(0..classes)).collect();
    Dataset::from_parts(pixels, labels, 1, input.len())
}

/// Weight decay and Dropout's seed for the gradients compared.
fn rule() -> StepRule {
    StepRule {
        optimizer: Optimizer::default(),
        weight_decay: 0.01,
        seed: 9,
    }
}

/// Where `gpu` differs from the f64 reference `cpu` past f32's reach:
/// `1e-4·max|cpu| + 1e-3·|cpu|` an element.
fn compare(what: &str, gpu: &[f64], cpu: &[f64]) -> Result<(), String> {
    let scale = cpu.iter().fold(0f64, |m, v| m.max(v.abs()));
    let tol = Tolerance {
        atol: 1e-4 * scale,
        rtol: 1e-3,
    };
    let d = diff(gpu, cpu, tol, 1e-12);
    match d.ok() {
        true => Ok(()),
        false => Err(format!(
            "{what}: {} elements off, first {:?}",
            d.failures, d.first_failures
        )),
    }
}

/// The GPU's and the CPU's (loss, gradient) of `network` at its He
/// initialisation on `data`, at training step 3.
fn both(
    ctx: &Arc<GpuContext>,
    network: &Network,
    data: &Dataset,
) -> ((f64, Vec<f64>), (f64, Vec<f64>)) {
    let plan = network.plan().unwrap();
    let stages = Stages::new(&plan).unwrap();
    let arch = Arch::from_network(network.clone()).unwrap();
    let params = Params::init_with(&arch, Init::He, 4);
    let (values, running) = (&params.values, &params.running);
    let gpu = list_gradient(ctx.clone(), (&params, stages), data, (&rule(), 3)).unwrap();
    let mut seq = Sequential::new(plan);
    (seq.weight_decay, seq.seed) = (rule().weight_decay, rule().seed);
    let all: Vec<usize> = (0..data.len()).collect();
    let w = Weights { values, running };
    let x = data.batch_f64(&all);
    let cpu = seq.gradient(w, &x, Labels::Index(&data.labels), data.len(), 3);
    (gpu, cpu)
}

/// Lists every stage and rule of `gpu::stages` meets, on their inputs.
fn awkward() -> Vec<(&'static str, Values, u8)> {
    let image = |c, h, w| Values::Image { c, h, w };
    vec![
        // Stride 2 with pad 2, a padded 2×2 filter, conv → relu → conv,
        // an overlapping pool, Dropout after a Relu and on the logits.
        (
            "conv 3 3x3 stride 2 pad 2, relu, conv 4 2x2 pad 1, relu, pool 2x2 stride 1, \
             affine 5, relu, dropout 0.3, affine 3, dropout 0.5",
            image(2, 7, 7),
            3,
        ),
        // DeepConvNet's shape, small: a pool then a convolution (images
        // read and written one row per image).
        (
            "conv 2 3x3 pad 1, relu, conv 2 3x3 pad 1, relu, pool 2x2, conv 3 3x3 pad 1, relu, \
             conv 3 3x3 pad 2, relu, pool 2x2, affine 4, relu, dropout 0.5, affine 10, dropout 0.5",
            image(1, 8, 8),
            10,
        ),
        // Convolution after convolution without a Relu, then one flattened
        // into an Affine (masked by its Relu), Dropout after an Affine alone.
        (
            "conv 3 3x3, conv 2 3x3 stride 2 pad 1, relu, affine 4, dropout 0.2, affine 3",
            image(3, 5, 5),
            3,
        ),
        // An MLP of odd widths.
        (
            "affine 17, relu, affine 33, relu, affine 3",
            Values::Flat(127),
            3,
        ),
    ]
}

#[test]
fn gpu_gradients_of_every_stage_match_the_cpu_reference() {
    for (plans, ctx) in common::both_plans() {
        every_stage_matches_the_cpu(plans, &ctx);
    }
}

fn every_stage_matches_the_cpu(plans: &str, ctx: &Arc<GpuContext>) {
    for (text, input, classes) in awkward() {
        let network = Network::parse(text, input).unwrap();
        for batch in [1, 3] {
            let data = images(input, batch, classes, batch as u64);
            let ((gpu_loss, gpu), (cpu_loss, cpu)) = both(ctx, &network, &data);
            let what = format!("{text} (batch {batch}, {plans})");
            assert!(
                (gpu_loss - cpu_loss).abs() <= 1e-5 * cpu_loss,
                "{what}: loss {gpu_loss} vs {cpu_loss}"
            );
            compare(&what, &gpu, &cpu).unwrap();
            assert!(
                cpu.iter().filter(|&&g| g != 0.0).count() * 2 > cpu.len() / 2,
                "{what}: a gradient mostly 0"
            );
        }
    }
}

#[test]
fn deep_convnets_gpu_gradient_matches_the_cpu_on_mnist_digits() {
    let data = common::mnist().train.first(2);
    for (plans, ctx) in common::both_plans() {
        let ((gpu_loss, gpu), (cpu_loss, cpu)) = both(&ctx, &Network::deep_convnet(), &data);
        assert!(
            (gpu_loss - cpu_loss).abs() <= 1e-5 * cpu_loss,
            "{plans}: loss {gpu_loss} vs {cpu_loss}"
        );
        compare(&format!("DeepConvNet, {plans}"), &gpu, &cpu).unwrap();
    }
}

#[test]
fn the_comparison_catches_a_one_percent_error() {
    let Some(ctx) = common::gpu() else { return };
    let (text, input, classes) = awkward().swap_remove(0);
    let network = Network::parse(text, input).unwrap();
    let data = images(input, 3, classes, 1);
    let ((_, gpu), (_, cpu)) = both(&ctx, &network, &data);
    compare("as computed", &gpu, &cpu).unwrap();
    let largest = (0..cpu.len())
        .max_by(|&a, &b| cpu[a].abs().total_cmp(&cpu[b].abs()))
        .unwrap();
    let mut wrong = gpu.clone();
    wrong[largest] *= 1.01;
    assert!(compare("one element 1% off", &wrong, &cpu).is_err());
}

/// `steps` steps of batch 20 at learning rate `lr` on the first 200
/// training images.
fn train<P>(trainer: &mut dyn Trainer<P>, steps: usize, lr: f32) -> P {
    for s in 0..steps {
        let batch: Vec<u32> = (0..20).map(|i| ((s * 37 + i * 11) % 200) as u32).collect();
        trainer.train_steps(&[batch], lr).unwrap();
    }
    trainer.params().unwrap()
}

#[test]
fn a_list_an_arch_describes_trains_to_the_arch_paths_bits() {
    let Some(ctx) = common::gpu() else { return };
    let data = common::mnist();
    let simple = Arch::simple_convnet(ConvFront::book(), &[100], 10).unwrap();
    let mlp = Arch::mlp(784, &[50], 10).unwrap();
    for (arch, kind) in [(mlp, OptimizerKind::Sgd), (simple, OptimizerKind::Adam)] {
        let rule = StepRule {
            optimizer: Optimizer::new(kind),
            weight_decay: 0.0,
            seed: 1,
        };
        let params = Params::init_with(&arch, Init::He, 2);
        let mut old = GpuTrainer::new(ctx.clone(), &params, data, 20, 4, 0.05, &rule).unwrap();
        let old = train(&mut old, 6, 0.01).values;
        let network = arch.network();
        let plan = network.plan().unwrap();
        let stages = Stages::new(&plan).unwrap();
        let list = Params {
            arch: Arch::from_network(network.clone()).unwrap(),
            ..params.clone()
        };
        let model = (&list, stages);
        let mut new = GpuTrainer::for_list(ctx.clone(), model, data, (20, 4), 0.05, &rule).unwrap();
        let new = train(&mut new, 6, 0.01).values;
        assert!(
            old.iter()
                .zip(&new)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{network}: not the same bits"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_bits_and_training_lowers_the_loss() {
    let Some(ctx) = common::gpu() else { return };
    let text = "conv 4 3x3 pad 1, relu, pool 2x2, conv 8 3x3 pad 1, relu, pool 2x2, \
                affine 32, relu, dropout 0.5, affine 10";
    let network = Network::parse(text, Values::Image { c: 1, h: 28, w: 28 }).unwrap();
    let run = || {
        let plan = network.plan().unwrap();
        let stages = Stages::new(&plan).unwrap();
        let arch = Arch::from_network(network.clone()).unwrap();
        let list = Params::init_with(&arch, Init::He, 3);
        let rule = StepRule {
            optimizer: Optimizer::new(OptimizerKind::Adam),
            ..rule()
        };
        let mut t = GpuTrainer::for_list(
            ctx.clone(),
            (&list, stages),
            common::mnist(),
            (20, 4),
            0.01,
            &rule,
        )
        .unwrap();
        let before = t.evaluate(gpu_net::core::trainer::Split::Test).unwrap().0;
        let params = train(&mut t, 40, 0.003);
        let after = t.evaluate(gpu_net::core::trainer::Split::Test).unwrap().0;
        (params.values, before, after)
    };
    let (a, before, after) = run();
    assert!(after < before * 0.8, "loss {before} → {after}");
    let (b, _, _) = run();
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}

#[test]
fn lists_the_gpu_does_not_run_are_refused_naming_the_layer() {
    let image = Values::Image { c: 1, h: 8, w: 8 };
    let refusal = |text: &str| {
        let plan = Network::parse(text, image).unwrap().plan().unwrap();
        Stages::new(&plan).unwrap_err().to_string()
    };
    for (text, says) in [
        ("affine 5, batchnorm, relu, affine 3", "layer 2 (batchnorm)"),
        (
            "conv 2 3x3, relu, relu, affine 3",
            "layer 3 (relu): on the GPU a Relu follows",
        ),
        ("relu, affine 3", "layer 1 (relu)"),
        (
            "conv 2 3x3, pool 3x3 stride 1, pool 2x2, affine 3",
            "layer 3 (pool 2x2): on the GPU a pooling takes",
        ),
        ("conv 2 3x3, dropout 0.5, affine 3", "layer 2 (dropout 0.5)"),
        (
            "dropout 0.5, affine 3",
            "layer 1 (dropout 0.5): on the GPU a Dropout follows a layer",
        ),
    ] {
        let e = refusal(text);
        assert!(
            e.starts_with(says) && e.ends_with("(--device cpu) runs it"),
            "{text}: {e}"
        );
    }
    // What it runs, it plans.
    for (text, input, _) in awkward() {
        Stages::new(&Network::parse(text, input).unwrap().plan().unwrap()).unwrap();
    }
}
