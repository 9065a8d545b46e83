//! Shared by the integration tests: the GPU (or a one-line skip), the
//! bundled MNIST, seeded random data.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use gpu_net::core::data::{self, Mnist};
use gpu_net::gpu::{GpuContext, GpuError, GpuOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The device for GPU tests, on the adapter the CLI would pick (so
/// `WGPU_BACKEND=gl cargo test` runs them on GL). Without any adapter the
/// test is skipped with one line, unless [`gpu_required`] (as in CI), where
/// it fails; backends named by `WGPU_BACKEND` but absent always fail.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new(&GpuOptions::default()) {
        Ok(ctx) => {
            eprintln!("GPU tests on {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e @ GpuError::NoAdapter(_)) => {
            if gpu_required(std::env::var_os("GPU_NET_REQUIRE_GPU").as_deref()) {
                panic!("GPU_NET_REQUIRE_GPU is set but: {e}");
            }
            eprintln!("skipping GPU test: {e}");
            None
        }
        Err(e) => panic!("opening the GPU failed: {e}"),
    })
    .clone()
}

/// `GPU_NET_REQUIRE_GPU`'s meaning: unset or `0` is "not required", any
/// other value (`1`, `yes`, even empty) is "required".
pub fn gpu_required(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| v != "0")
}

pub fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| data::load_dir(&data::bundled_dir()).expect("bundled MNIST loads"))
}

/// Uniform values in [-1, 1), each exactly representable in f32.
pub fn random_f32(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn widen(v: &[f32]) -> Vec<f64> {
    gpu_net::core::compare::widen(v)
}

/// Runs the `gpu-net` binary with `args` (XDG_RUNTIME_DIR set, so a headless
/// Vulkan loader stays quiet).
pub fn run_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("gpu-net runs")
}

/// A checkpoint of `params` with the given rule and state and fixed run
/// metadata (seed 4, batch 100, 12 iterations, ...), for tests that need a
/// valid file to write, read or corrupt.
pub fn checkpoint(
    params: gpu_net::core::model::Params,
    optimizer: gpu_net::core::optim::Optimizer,
    optimizer_state: Vec<Vec<f64>>,
    weight_decay: f64,
    f64_values: bool,
) -> gpu_net::run::checkpoint::Checkpoint {
    let arch = &params.arch;
    let config = gpu_net::core::config::RunConfig {
        hidden: arch.hidden().to_vec(),
        conv: arch.conv,
        network: arch.layers.as_ref().map(|n| n.text()),
        batchnorm: arch.batchnorm,
        dropout: arch.dropout,
        weight_decay,
        init: gpu_net::core::model::Init::He,
        optimizer,
        lr: 0.001,
        batch: 100,
        seed: 4,
        train_size: Some(60000),
        data: Some("data/mnist".into()),
    };
    gpu_net::run::checkpoint::Checkpoint {
        params,
        config,
        f64_values,
        state: gpu_net::run::checkpoint::RunState {
            optimizer_state,
            iterations: 12,
            planned_iterations: Some(600),
            lr_schedule: vec![(0, 0.002), (6, 0.001)],
            sampler_position: 1234,
            test_accuracy: Some(0.5),
        },
    }
}

/// A checkpoint of plain SGD (no optimizer state) holding `params`.
pub fn sgd_checkpoint(
    params: gpu_net::core::model::Params,
) -> gpu_net::run::checkpoint::Checkpoint {
    let sgd = gpu_net::core::optim::Optimizer::new(gpu_net::core::optim::OptimizerKind::Sgd);
    checkpoint(params, sgd, vec![], 0.0, false)
}

/// The largest checkpoint gpu-net writes: the most hidden layers the
/// limits allow, with Batch Normalization and Adam's two state arrays (a
/// header of about a megabyte).
pub fn deepest_checkpoint() -> gpu_net::run::checkpoint::Checkpoint {
    use gpu_net::core::model::{Arch, MAX_HIDDEN_LAYERS, Params};
    let arch = Arch::mlp(784, &vec![1; MAX_HIDDEN_LAYERS], 10)
        .unwrap()
        .with_batchnorm(true);
    let params = Params::init(&arch, 3);
    let state = vec![vec![0.0; params.values.len()]; 2];
    let adam = gpu_net::core::optim::Optimizer::new(gpu_net::core::optim::OptimizerKind::Adam);
    checkpoint(params, adam, state, 0.0, false)
}

/// What a short run leaves, to compare two runs by: the parameters' bits,
/// the mean training loss's, and the test split's loss and accuracy.
pub type Outcome = (Vec<u64>, u64, (f64, f64));

/// `steps` steps of `batch` training images (a fixed walk through the
/// first `pool`) at learning rate `lr`, then the test split.
pub fn train_and_eval(
    t: &mut dyn gpu_net::core::trainer::Trainer<gpu_net::core::model::Params>,
    (steps, batch, pool): (usize, usize, usize),
    lr: f32,
) -> Outcome {
    for s in 0..steps {
        let indices = (0..batch).map(|i| ((s * 131 + i * 7) % pool) as u32);
        t.train_steps(&[indices.collect()], lr).unwrap();
    }
    let loss = t.take_mean_loss().unwrap().to_bits();
    let eval = t.evaluate(gpu_net::core::trainer::Split::Test).unwrap();
    let params = t.params().unwrap().values;
    (params.iter().map(|v| v.to_bits()).collect(), loss, eval)
}

/// A context on this adapter with the tiled product and `profile`'s plans
/// (a GPU's, to test what the planner does there).
pub fn planned_as(profile: gpu_net::gpu::DeviceProfile) -> Arc<GpuContext> {
    let options = GpuOptions {
        matmul: Some(gpu_net::gpu::MatmulAlgo::Tiled),
        ..GpuOptions::default()
    };
    let mut ctx = GpuContext::new(&options).unwrap();
    ctx.profile = profile;
    Arc::new(ctx)
}

/// This adapter's context, then one planning as a 132-unit GPU does with
/// the tiled product (split K, columns read in place, col2im by value):
/// what a discrete GPU runs, here. Empty without an adapter.
pub fn both_plans() -> Vec<(&'static str, Arc<GpuContext>)> {
    let Some(ctx) = gpu() else {
        return vec![];
    };
    let discrete = planned_as(gpu_net::gpu::DeviceProfile::discrete(132));
    vec![
        ("this adapter's plans", ctx),
        ("a 132-unit GPU's plans", discrete),
    ]
}
