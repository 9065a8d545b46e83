//! What the GPU will hold is checked before anything is made: a
//! configuration the device cannot hold allocates nothing, and the plan that
//! is checked accounts for what a trainer really allocates.

mod common;

use std::sync::Arc;

use gpu_net::core::data::{Dataset, Mnist};
use gpu_net::core::model::{Arch, Params};
use gpu_net::core::optim::{Optimizer, OptimizerKind, StepRule};
use gpu_net::gpu::eval::ParamsEvaluator;
use gpu_net::gpu::kernels::MatmulAlgo;
use gpu_net::gpu::{GpuContext, GpuError, GpuEvaluator, GpuOptions, GpuTrainer};

/// A context of its own: `allocated()` counts only this test's buffers.
fn own_context() -> Option<Arc<GpuContext>> {
    common::gpu()?;
    Some(Arc::new(GpuContext::new(&GpuOptions::default()).unwrap()))
}

fn trainer(
    ctx: &Arc<GpuContext>,
    arch: &Arch,
    data: &Mnist,
    batch: usize,
    rule: &StepRule,
) -> Result<GpuTrainer, GpuError> {
    GpuTrainer::new(
        ctx.clone(),
        &Params::init(arch, 0),
        data,
        batch,
        8,
        0.1,
        rule,
    )
}

#[test]
fn a_configuration_the_device_cannot_hold_allocates_nothing() {
    let Some(ctx) = own_context() else { return };
    let limit = ctx.binding_limit();
    // A batch whose input rows (788 f32 each) pass one binding: refused
    // before the 55 MB of MNIST are uploaded.
    let mnist = common::mnist();
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let batch = (limit / (788 * 4) + 1) as usize;
    let before = ctx.allocated();
    let e = trainer(&ctx, &arch, mnist, batch, &StepRule::default())
        .err()
        .expect("a batch past the binding limit was accepted");
    assert!(
        matches!(&e, GpuError::TooLarge { what, .. } if what.contains("layer 0's activations")),
        "{e}"
    );
    assert_eq!(
        ctx.allocated(),
        before,
        "buffers were made before the refusal"
    );

    // One-pixel images: the labels (a u32 each) pass the limit where the
    // images (a byte each) do not, and are refused by name.
    let n = (limit / 4 + 1) as usize;
    let big = Dataset::from_parts(vec![0; n], vec![0; n], 1, 1);
    let data = Mnist {
        test: big.first(4),
        train: big,
    };
    let arch = Arch::mlp(1, &[4], 10).unwrap();
    let e = trainer(&ctx, &arch, &data, 10, &StepRule::default())
        .err()
        .expect("labels past the binding limit were accepted");
    assert!(
        matches!(&e, GpuError::TooLarge { what, .. } if what.contains("train labels")),
        "{e}"
    );
    assert_eq!(
        ctx.allocated(),
        before,
        "buffers were made before the refusal"
    );
}

#[test]
fn the_plan_accounts_for_what_a_trainer_allocates() {
    // Both matmul kernels: they split different products, and the vec4
    // kernel stages its operands in textures (or not).
    for algo in [MatmulAlgo::Vec4, MatmulAlgo::Vec4Buffers, MatmulAlgo::Tiled] {
        plan_matches_allocation(algo, false);
    }
    // A GPU's plans: the tiled product, and the batches of a submission's
    // steps gathered at once.
    plan_matches_allocation(MatmulAlgo::Tiled, true);
}

fn plan_matches_allocation(algo: MatmulAlgo, gpu_plans: bool) {
    if common::gpu().is_none() {
        return;
    }
    let ctx = match gpu_plans {
        true => common::planned_as(gpu_net::gpu::DeviceProfile::discrete(132)),
        false => Arc::new(
            GpuContext::new(&GpuOptions {
                matmul: Some(algo),
                ..Default::default()
            })
            .unwrap(),
        ),
    };
    let mnist = common::mnist();
    let data = Mnist {
        train: mnist.train.first(3000),
        test: mnist.test.first(700),
    };
    // Batch 2048 splits the first weight gradient's K on either kernel, and
    // its partial sums are buffers of their own.
    for (arch, rule, batch) in [
        (Arch::mlp(784, &[50], 10).unwrap(), StepRule::default(), 100),
        (
            Arch::mlp(784, &[16], 10).unwrap(),
            StepRule::default(),
            2048,
        ),
        (
            Arch::mlp(784, &[64, 32], 10)
                .unwrap()
                .with_batchnorm(true)
                .with_dropout(0.2)
                .unwrap(),
            StepRule {
                optimizer: Optimizer::new(OptimizerKind::Adam),
                ..Default::default()
            },
            100,
        ),
        // The book's SimpleConvNet: im2col's columns are its largest buffer
        // where they are stored.
        (
            Arch::simple_convnet(gpu_net::core::conv::ConvFront::book(), &[100], 10).unwrap(),
            StepRule::default(),
            30,
        ),
    ] {
        let before = ctx.allocated();
        let t = trainer(&ctx, &arch, &data, batch, &rule).unwrap();
        let made = ctx.allocated() - before;
        let plan = GpuTrainer::plan(&ctx, &arch, &data, batch, t.step().slots, &rule);
        // Every configuration's 8 batches fit the bound.
        assert_eq!(t.step().regions.count > 1, gpu_plans, "{algo:?}");
        if batch == 2048 {
            assert!(
                plan.buffers
                    .iter()
                    .any(|(what, _)| what.contains("partial sums")),
                "{:?}",
                plan.buffers
            );
        }
        if arch.conv.is_some() {
            // The tiled product reads the columns in place: none stored.
            let stored = plan.buffers.iter().any(|(what, _)| what.contains("im2col"));
            assert_eq!(stored, algo != MatmulAlgo::Tiled, "{algo:?}");
        }
        assert_eq!(
            plan.textures.len(),
            if algo == MatmulAlgo::Vec4 { 2 } else { 0 },
            "{algo:?}: {:?}",
            plan.textures
        );
        // Beyond the plan's storage buffers only uniforms and a few
        // statistics: small, whatever the configuration.
        assert!(
            plan.total() <= made && made - plan.total() < 64 << 10,
            "{:?}: planned {} bytes, made {made}",
            arch.sizes,
            plan.total()
        );
    }
}

/// `GpuEvaluator` gives `gpu-net eval` the report a trainer gives (the
/// same bits: loss, accuracy, confusion matrix), for networks with and
/// without Batch Normalization and Dropout, while allocating what its plan
/// says: no gradients, no optimizer state, no training split.
#[test]
fn the_evaluator_matches_a_trainers_evaluation_without_its_buffers() {
    let Some(ctx) = own_context() else { return };
    let data = common::mnist();
    let adam = StepRule {
        optimizer: Optimizer::new(OptimizerKind::Adam),
        ..Default::default()
    };
    for (arch, rule) in [
        (Arch::mlp(784, &[50], 10).unwrap(), StepRule::default()),
        (
            Arch::mlp(784, &[64, 32], 10)
                .unwrap()
                .with_batchnorm(true)
                .with_dropout(0.2)
                .unwrap(),
            adam,
        ),
    ] {
        let params = Params::init(&arch, 3);
        // As `gpu-net eval` has done it: a trainer with a batch of 2.
        let before = ctx.allocated();
        let mut trainer = GpuTrainer::new(ctx.clone(), &params, data, 2, 1, 0.1, &rule).unwrap();
        let trainer_bytes = ctx.allocated() - before;
        let want =
            gpu_net::run::evaluation::evaluate(&mut trainer, &data.test.labels, 10, "m").unwrap();
        drop(trainer);

        let before = ctx.allocated();
        let evaluator = GpuEvaluator::new(ctx.clone(), &params, &data.test).unwrap();
        let made = ctx.allocated() - before;
        let mut evaluator: Box<dyn ParamsEvaluator> = Box::new(evaluator);
        let got =
            gpu_net::run::evaluation::evaluate(evaluator.as_mut(), &data.test.labels, 10, "m")
                .unwrap();
        assert_eq!(got.loss.to_bits(), want.loss.to_bits(), "{:?}", arch.sizes);
        assert_eq!(got.accuracy.to_bits(), want.accuracy.to_bits());
        assert_eq!(got.confusion, want.confusion);
        assert_eq!(got.device, want.device);

        let plan = GpuEvaluator::plan(&ctx, &arch, &data.test);
        assert!(
            plan.buffers
                .iter()
                .all(|(what, _)| !what.contains("train") && !what.contains("gradient")),
            "{:?}",
            plan.buffers
        );
        assert!(
            plan.total() <= made && made - plan.total() < 64 << 10,
            "{:?}: planned {} bytes, made {made}",
            arch.sizes,
            plan.total()
        );
        // At least the training images (u8) fewer than the trainer made.
        let train_images = (data.train.len() * data.train.pixels()) as u64;
        assert!(
            made + train_images <= trainer_bytes,
            "evaluator {made} bytes, trainer {trainer_bytes}"
        );
    }
}
