//! `gpu-net eval`: a checkpoint's loss and accuracy on the test set, per
//! class, and the confusion matrix.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use gpu_net::checkpoint::Checkpoint;
use gpu_net::cpu::memory as cpu_memory;
use gpu_net::data;
use gpu_net::device::{Device, Workspace};
use gpu_net::gpu::GpuEvaluator;

use super::args::{DeviceArg, GpuArgs, data_dir};
use super::output::{self, Output};

#[derive(Args)]
pub struct EvalArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    pub model: PathBuf,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, ignore_case = true, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Print one JSON object (accuracy, loss, per_class, confusion, ...) instead.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let ck = Checkpoint::read(&args.model)?;
    // eval reads the test set only.
    let data = data::load_test_only(&data_dir(&args.data)?)?;
    let arch = &ck.params.arch;
    anyhow::ensure!(
        arch.inputs() == data.test.pixels() && arch.outputs() == data::CLASSES,
        "{}: the network {} does not fit the data's {} pixels and {} classes",
        args.model.display(),
        arch.shape(),
        data.test.pixels(),
        data::CLASSES
    );
    let device = Device::open(args.device.into(), &args.gpu.options(), &mut |e| {
        say_err!("warning: {e}; evaluating on the CPU instead")
    })?;
    let name = args.model.display().to_string();
    let report = match device {
        // Only the parameters, the test split and one chunk's activations.
        Device::Gpu(ctx) => {
            let mut evaluator = GpuEvaluator::new(ctx, &ck.params, &data.test)?;
            gpu_net::eval::evaluate(&mut evaluator, &data.test.labels, data::CLASSES, &name)?
        }
        Device::Cpu => {
            cpu_memory::check_or(
                || format!("evaluating {name} ({})", arch.shape()),
                cpu_memory::training_bytes(arch, 0, ck.config.optimizer.kind.state_arrays()),
                "evaluate on the GPU (--device gpu), or ",
            )?;
            // A step workspace of batch 2 and one slot: eval never trains.
            let workspace = Workspace { batch: 2, slots: 1 };
            let rule = ck.config.rule();
            let mut trainer = device.trainer(&ck.params, &data, workspace, ck.config.lr, &rule)?;
            gpu_net::eval::evaluate(trainer.as_mut(), &data.test.labels, data::CLASSES, &name)?
        }
    };
    anyhow::ensure!(
        report.loss.is_finite(),
        "{name}: the test loss is {} on {}: these weights do not evaluate to numbers",
        report.loss,
        report.device
    );
    let out = Output::new(args.json);
    out.object(&report, true)?;
    if !out.json {
        output::print(&gpu_net::eval::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
