//! Continuing a run from its checkpoint: the settings given laid over the
//! checkpoint's, what is left of the run, the learning-rate schedule, and
//! the trainer put back where the run stood; and what `--save` would
//! replace that is not an earlier state of this run.
//!
//! Part of `run`: imports `checkpoint`, `config`, `error`, `limits`, `network`,
//! `model`, `epoch_loop`.

use std::path::{Path, PathBuf};

use crate::core::config::{ConfigError, RunConfig};
use crate::core::error::{Context, Error, Result};
use crate::core::limits;
use crate::core::model::Arch;
use crate::core::network::Network;
use crate::run::checkpoint::Checkpoint;
use crate::run::epoch_loop::{self, Precision, Trainer};

use super::request::TrainRequest;
use super::request::count;

/// The book's `iters_num`, when neither the request nor a resumed
/// checkpoint says how long the run is.
const DEFAULT_ITERS: usize = 10_000;

/// A run resumed from its checkpoint.
pub(super) struct Resumed {
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
}

/// Reads the checkpoint and lays the settings the user gave over its own;
/// a setting that says otherwise is a usage error naming both values.
pub(super) fn resume(path: &Path, req: &TrainRequest) -> Result<Resumed> {
    let mut checkpoint = Checkpoint::read(path)?;
    let given: Vec<&str> = req.given.iter().map(String::as_str).collect();
    checkpoint.config = match checkpoint.config.overlay(&req.config, &given) {
        Ok(c) => c,
        Err(ConfigError::Contradicts(conflicts)) => {
            // The convolution and the list are one network, said once.
            let network = ["conv", "network"];
            let mut said: Vec<String> = conflicts
                .iter()
                .filter(|c| !network.contains(&c.field.as_str()))
                .map(|c| {
                    format!(
                        "--{} {} contradicts the checkpoint's {}",
                        c.field.replace('_', "-"),
                        c.given,
                        c.stored
                    )
                })
                .collect();
            if conflicts
                .iter()
                .any(|c| network.contains(&c.field.as_str()))
            {
                let (given, stored) = (net_name(&req.config), net_name(&checkpoint.config));
                said.insert(
                    0,
                    format!("--net {given} contradicts the checkpoint's {stored}"),
                );
            }
            let why = format!("--resume {}: {}", path.display(), said.join("; "));
            return Err(Error::Usage(why));
        }
        Err(e) => return Err(e).with_context(|| format!("--resume {}", path.display())),
    };
    Ok(Resumed {
        path: path.to_path_buf(),
        checkpoint,
    })
}

/// A configuration's network as `--net` names it: `mlp`, `simple-convnet`
/// with its settings, `deep-convnet`, or a list's text.
fn net_name(config: &RunConfig) -> String {
    match (&config.network, config.conv) {
        (Some(text), _) if *text == Network::deep_convnet().text() => "deep-convnet".into(),
        (Some(text), _) => format!("\"{text}\""),
        (None, Some(front)) => format!("simple-convnet ({})", front.describe()),
        (None, None) => "mlp".into(),
    }
}

/// `iters`, or `epochs` of the epoch's iterations, or else the planned
/// end of the run resumed, or the book's 10000.
pub(super) fn planned_iterations(
    req: &TrainRequest,
    per_epoch: usize,
    resumed: Option<&Resumed>,
) -> Result<usize> {
    Ok(match (req.iters, req.epochs) {
        (Some(i), _) => i,
        (None, Some(e)) => match e.checked_mul(per_epoch) {
            Some(i) if i <= limits::MAX_ITERS => i,
            _ => {
                return Err(Error::Usage(format!(
                    "--epochs {e}: {e} × {per_epoch} iterations per epoch is over the limit of {} iterations",
                    limits::MAX_ITERS
                )));
            }
        },
        (None, None) => resumed
            .and_then(|r| r.checkpoint.state.planned_iterations)
            .map_or(DEFAULT_ITERS, |n| n as usize),
    })
}

/// The checkpoint's network fits the data and it has iterations left of
/// `planned` (the iterations, and whether the request said so); returns the
/// iterations it has done.
pub(super) fn check_fits(
    r: &Resumed,
    arch: &Arch,
    planned: (usize, bool),
    pixels: usize,
) -> Result<usize> {
    let (iters, said) = planned;
    let ck = &r.checkpoint;
    let done = ck.state.iterations as usize;
    if &ck.params.arch != arch {
        return Err(Error::Usage(format!(
            "--resume {}: the checkpoint's network {} does not fit the data's {pixels} inputs",
            r.path.display(),
            ck.params.arch.shape(),
        )));
    }
    if done >= iters && !said {
        return Err(Error::Usage(format!(
            "--resume {}: the run is complete ({done} of its {iters} iterations); --iters or --epochs past that continues it",
            r.path.display(),
        )));
    }
    if done >= iters {
        return Err(Error::Usage(format!(
            "--iters {iters}: the checkpoint has already done {} (--iters and --epochs count the whole run)",
            count(done, "iteration")
        )));
    }
    Ok(done)
}

/// The checkpoint's learning rates, with the one this run trains at added
/// (and said) when a setting changed it.
pub(super) fn lr_schedule(r: &Resumed, say: &mut dyn FnMut(&str)) -> Vec<(u64, f32)> {
    let mut schedule = r.checkpoint.state.lr_schedule.clone();
    let lr = r.checkpoint.config.lr;
    let at = r.checkpoint.state.iterations;
    let previous = schedule.last().map(|&(_, lr)| lr);
    if previous != Some(lr) {
        say(&format!(
            "learning rate {} → {lr} from iteration {at}",
            previous.map_or("?".into(), |p| p.to_string())
        ));
        // Resumed twice at one iteration: the later rate is the one used.
        schedule.retain(|&(i, _)| i < at);
        schedule.push((at, lr));
    }
    schedule
}

/// Puts the checkpoint's optimizer state and step count into the trainer;
/// where the loop starts.
pub(super) fn restore(
    r: &Resumed,
    trainer: &mut dyn Trainer,
    say: &mut dyn FnMut(&str),
) -> Result<epoch_loop::Resume> {
    let ck = &r.checkpoint;
    trainer.restore(&ck.state.optimizer_state, ck.state.iterations)?;
    let stored = if ck.f64_values {
        Precision::F64
    } else {
        Precision::F32
    };
    if stored != trainer.precision() {
        say(&format!(
            "note: the checkpoint was trained in {}, this run continues in {}: it will not repeat the original run's bits",
            stored.describe(),
            trainer.precision().describe()
        ));
    }
    say(&format!(
        "resuming {} at iteration {}",
        r.path.display(),
        ck.state.iterations
    ));
    Ok(epoch_loop::Resume {
        done: ck.state.iterations as usize,
        sampler_position: ck.state.sampler_position,
    })
}

/// What `path` holds that the run would replace and that is not an earlier
/// state of this run: a checkpoint of another seed, network or rule, a
/// longer run, or a file that is no checkpoint at all. None for nothing,
/// the checkpoint being resumed, or an earlier state of the same run.
pub(super) fn replaced_run(
    path: &Path,
    resumed: Option<&Resumed>,
    config: &RunConfig,
    arch: &Arch,
    iters: usize,
) -> Option<String> {
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !path.is_file() || resumed.is_some_and(|r| same_file(&r.path, path)) {
        return None;
    }
    let old = match Checkpoint::read(path) {
        Ok(old) => old,
        Err(e) => return Some(format!("a file that is not a gpu-net checkpoint ({e})")),
    };
    let c = &old.config;
    let another_run = c.seed != config.seed
        || &old.params.arch != arch
        || c.optimizer.kind != config.optimizer.kind;
    let longer = old.state.iterations as usize > iters;
    (another_run || longer).then(|| {
        format!(
            "the checkpoint of {} (network {}, {}, seed {}, {}{})",
            if another_run {
                "another run"
            } else {
                "a longer run"
            },
            old.params.arch.shape(),
            c.optimizer.kind,
            c.seed,
            count(old.state.iterations as usize, "iteration"),
            old.state
                .test_accuracy
                .map_or(String::new(), |a| format!(", test accuracy {a:.4}")),
        )
    })
}
