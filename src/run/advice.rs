//! What a training run says of itself, as lines its caller prints: what the
//! run is, the notes for settings that usually go wrong, and the setting
//! most likely to blame when training diverges.
//!
//! Part of `run`: imports `config`, `device`, `error`, `model`, `optim`.

use crate::core::config::RunConfig;
use crate::core::error::Error;
use crate::core::model::{Arch, Init};
use crate::core::optim::{OptimizerKind, StepRule};
use crate::run::device::Device;

use super::request::count;

/// What the run is: the network and its length, and how it differs from
/// the book's chapter 5 run when it does. `train` is the training images
/// and whether they are the whole set.
pub(super) fn run_lines(
    config: &RunConfig,
    arch: &Arch,
    iters: usize,
    per_epoch: usize,
    train: (usize, bool),
) -> Vec<String> {
    let mut lines = vec![format!(
        "network {}, {} parameters; {} of batch {} ({per_epoch} per epoch), lr {}, seed {}",
        arch.shape(),
        arch.param_count(),
        count(iters, "iteration"),
        config.batch,
        config.lr,
        config.seed
    )];
    if !is_the_books_run(config, arch, train.1) {
        lines.push(format!(
            "layers: {}; init {}; optimizer {}; weight decay {}; {} training images",
            arch.describe(),
            config.init,
            config.optimizer.describe(),
            config.weight_decay,
            train.0
        ));
    }
    lines
}

/// The book's chapter 5 run (whatever the seed) prints as it always did;
/// any run that uses chapter 6 says how.
fn is_the_books_run(config: &RunConfig, arch: &Arch, all_images: bool) -> bool {
    let rule = config.rule();
    !arch.batchnorm
        && arch.dropout == 0.0
        && rule
            == StepRule {
                seed: rule.seed,
                ..StepRule::default()
            }
        && config.init == Init::default()
        && all_images
}

/// One line each for what usually goes wrong with these settings: the
/// default rate with Adam or RMSprop, the book's 0.01 init in a deeper net
/// (settings the user gave, or a resumed run, are taken as meant), and a
/// software adapter that may be slower than `--device cpu`.
pub(super) fn advice(
    device: &Device,
    config: &RunConfig,
    resumed: bool,
    given: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut lines = vec![];
    let kind = config.optimizer.kind;
    let default_lr = config.lr == RunConfig::default().lr;
    if !resumed
        && !given("lr")
        && default_lr
        && matches!(kind, OptimizerKind::Adam | OptimizerKind::RmsProp)
    {
        lines.push(format!(
            "note: {kind} at the default --lr {} often learns badly: the book uses --lr 0.001 for Adam and RMSprop",
            config.lr
        ));
    }
    let deep = config.hidden.len() >= 2;
    if !resumed && !given("init") && deep && config.init == Init::default() && !config.batchnorm {
        lines.push(format!(
            "note: the book's --init {} keeps a net of {} hidden layers from learning; --init he is the usual choice",
            config.init,
            config.hidden.len()
        ));
    }
    let convolutional = config.conv.is_some() || config.is_list();
    lines.extend(software_adapter_note(device, convolutional).map(String::from));
    lines
}

/// One line for a software adapter (lavapipe, llvmpipe, WARP), where the
/// shaders run on the CPU and the CPU path may be faster at small batches
/// of a network of Affine layers (not of a convolutional one, whose f64
/// reference is many times slower); said by the commands that train.
pub fn software_adapter_note(device: &Device, convolutional: bool) -> Option<&'static str> {
    match device {
        Device::Gpu(ctx) if ctx.is_software() && !convolutional => Some(
            "note: this is a software adapter (the shaders run on the CPU); --device cpu may be faster at small batches",
        ),
        _ => None,
    }
}

/// Where the rates of a diverged run came from: `resumed` (its settings are
/// the checkpoint's) and `lr_from_checkpoint` (no `--lr` was given).
#[derive(Clone, Copy)]
pub(super) struct Origin {
    pub resumed: bool,
    pub lr_from_checkpoint: bool,
}

/// The library's errors, with the setting most likely to blame when
/// training diverged: an init or weight decay far past any usual value,
/// else the learning rate.
pub(super) fn with_hint(e: Error, config: &RunConfig, origin: Origin) -> Error {
    let Error::Diverged { lr, .. } = e else {
        return e;
    };
    let from = |yes: bool| if yes { " (from the checkpoint)" } else { "" };
    let std = match config.init {
        Init::Std(s) => s,
        _ => 0.0,
    };
    let hint = if std > 1.0 {
        format!(
            "try a smaller --init{} (it is {}; the book uses 0.01, or he)",
            from(origin.resumed),
            config.init
        )
    } else if config.weight_decay > 1.0 {
        format!(
            "try a smaller --weight-decay{} (it is {}; the book uses 0.1)",
            from(origin.resumed),
            config.weight_decay
        )
    } else {
        format!(
            "try a lower --lr{} (it is {lr})",
            from(origin.lr_from_checkpoint)
        )
    };
    Error::Failed(format!("{e}; {hint}"))
}
