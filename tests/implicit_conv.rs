//! Convolutions reading im2col's matrix in place (`plan::implicit_columns`,
//! `kernels::Columns`): SimpleConvNet and a list with convolutions over
//! images and over a convolution's output, trained on a 132-unit GPU's
//! plans, give the bits the same networks give with the matrix written
//! out, run no im2col, and evaluate to the same loss; the planner reads in
//! place with the tiled product only, and never with the switch off. The
//! kernel itself is held to the CPU on awkward shapes in
//! `tests/conv_kernels.rs` (`in_place`).

mod common;

use gpu_net::core::conv::ConvFront;
use gpu_net::core::data::Mnist;
use gpu_net::core::model::{Arch, Init, Params};
use gpu_net::core::network::{Network, Values};
use gpu_net::core::optim::{Optimizer, OptimizerKind, StepRule};
use gpu_net::core::trainer::Trainer;
use gpu_net::gpu::kernels::MatmulAlgo;
use gpu_net::gpu::plan::implicit_columns;
use gpu_net::gpu::stages::Stages;
use gpu_net::gpu::{DeviceProfile, GpuContext, GpuTrainer};
use std::sync::Arc;

/// A 132-unit GPU's plans on this adapter with the tiled product,
/// convolutions reading their columns in place or not.
fn gpu_planned(implicit_conv: bool) -> Arc<GpuContext> {
    common::planned_as(DeviceProfile {
        implicit_conv,
        ..DeviceProfile::discrete(132)
    })
}

/// The first 300 training images and 200 test images.
fn small_mnist() -> Mnist {
    let mnist = common::mnist();
    Mnist {
        train: mnist.train.first(300),
        test: mnist.test.first(200),
    }
}

/// Three steps of batch 20 with Adam, then the test split.
fn train_and_eval(t: &mut dyn Trainer<Params>) -> common::Outcome {
    common::train_and_eval(t, (3, 20, 300), 0.01)
}

fn rule() -> StepRule {
    StepRule {
        optimizer: Optimizer::new(OptimizerKind::Adam),
        weight_decay: 0.01,
        seed: 4,
    }
}

#[test]
fn simple_convnet_trains_to_the_same_bits_reading_its_columns_in_place() {
    if common::gpu().is_none() {
        return;
    }
    let arch = Arch::simple_convnet(ConvFront::book(), &[100], 10).unwrap();
    let params = Params::init_with(&arch, Init::He, 5);
    let run = |implicit: bool| {
        let ctx = gpu_planned(implicit);
        let data = small_mnist();
        let mut t = GpuTrainer::new(ctx, &params, &data, 20, 2, 0.01, &rule()).unwrap();
        let labels: Vec<String> = t
            .step()
            .step_dispatches()
            .map(|d| d.label.clone())
            .collect();
        (train_and_eval(&mut t), labels)
    };
    let ((in_place, labels), (stored, stored_labels)) = (run(true), run(false));
    assert_eq!(in_place.0, stored.0, "parameters");
    assert_eq!(in_place.1, stored.1, "training loss");
    assert_eq!(in_place.2, stored.2, "test loss and accuracy");
    assert!(stored_labels.iter().any(|l| l.contains("im2col")));
    assert!(!labels.iter().any(|l| l.contains("im2col")), "{labels:?}");
}

#[test]
fn a_list_trains_to_the_same_bits_reading_its_columns_in_place() {
    if common::gpu().is_none() {
        return;
    }
    // The second convolution reads the first's output (positions, C = 4,
    // padded), with padding 1 and stride 2.
    let text = "conv 4 3x3 pad 1, relu, conv 6 4x4 stride 2 pad 1, relu, pool 2x2, \
                affine 16, relu, affine 10";
    let network = Network::parse(text, Values::Image { c: 1, h: 28, w: 28 }).unwrap();
    let arch = Arch::from_network(network.clone()).unwrap();
    let params = Params::init_with(&arch, Init::He, 6);
    let run = |implicit: bool| {
        let stages = Stages::new(&network.plan().unwrap()).unwrap();
        let ctx = gpu_planned(implicit);
        let data = small_mnist();
        let mut t =
            GpuTrainer::for_list(ctx, (&params, stages), &data, (20, 2), 0.01, &rule()).unwrap();
        let labels: Vec<String> = t
            .step()
            .step_dispatches()
            .map(|d| d.label.clone())
            .collect();
        (train_and_eval(&mut t), labels)
    };
    let ((in_place, labels), (stored, _)) = (run(true), run(false));
    assert_eq!(in_place, stored, "{network}");
    assert!(!labels.iter().any(|l| l.contains("im2col")), "{labels:?}");
}

#[test]
fn the_planner_reads_columns_in_place_with_the_tiled_product_only() {
    let gpu = DeviceProfile::discrete(132);
    assert!(implicit_columns(&gpu, MatmulAlgo::Tiled));
    assert!(!implicit_columns(&gpu, MatmulAlgo::Vec4));
    assert!(!implicit_columns(&gpu, MatmulAlgo::Vec4Buffers));
    let off = DeviceProfile {
        implicit_conv: false,
        ..gpu
    };
    assert!(
        !implicit_columns(&off, MatmulAlgo::Tiled),
        "GPU_NET_IMPLICIT_CONV=0"
    );
}
