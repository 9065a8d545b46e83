//! The files a training run reads and writes, checked before it trains:
//! each output can be written, no two are one file, and the data is found
//! (the flag's folder, else the checkpoint's, else where the data is found).
//!
//! Part of `run`: imports `checkpoint`, `config`, `data`, `error`, `files`,
//! `plot`.

use std::path::{Path, PathBuf};

use crate::core::config::RunConfig;
use crate::core::data::{self, Mnist};
use crate::core::error::{Context, Error, Result};
use crate::core::files;
use crate::run::checkpoint;

use super::request::TrainRequest;

/// The flag that names where checkpoints go: `--save`, or else the
/// checkpoint resumed.
pub(super) fn save_flag(req: &TrainRequest) -> &'static str {
    if req.save.is_some() {
        "--save"
    } else {
        "--resume"
    }
}

/// The files the run will write can be written, before it trains.
pub(super) fn check_outputs(req: &TrainRequest, save: Option<&Path>) -> Result<()> {
    if let Some(path) = save {
        checkpoint::check_writable(path).context(save_flag(req))?;
    }
    if let Some(path) = &req.plot {
        crate::report::plot::check_output_name(path).context("--plot")?;
    }
    Ok(())
}

/// No two of the files the run reads and writes are one file (a metrics
/// CSV appended to the checkpoint, a figure over the dataset), except a
/// resumed checkpoint saved back to itself.
pub(super) fn check_distinct(
    req: &TrainRequest,
    save: Option<&Path>,
    data_dir: &Path,
) -> Result<()> {
    let mut named: Vec<(&str, &Path)> = vec![];
    named.extend(save.map(|p| (save_flag(req), p)));
    named.extend(req.metrics.as_deref().map(|p| ("--metrics", p)));
    named.extend(req.plot.as_deref().map(|p| ("--plot", p)));
    let writes = named.len();
    named.extend(req.resume.as_deref().map(|p| ("--resume", p)));
    let data_files = data::files_read(data_dir);
    named.extend(data_files.iter().map(|p| ("--data", p.as_path())));
    for (i, (flag, path)) in named.iter().enumerate().take(writes) {
        for (other, other_path) in &named[i + 1..] {
            let resaved = *flag == "--save" && *other == "--resume" || flag == other;
            if !resaved && files::same_file(path, other_path) {
                let what = if *other == "--data" || *other == "--resume" {
                    "reads"
                } else {
                    "writes"
                };
                return Err(Error::Usage(format!(
                    "{flag} {} and {other} {} are one file: the run would overwrite what it {what}",
                    path.display(),
                    other_path.display(),
                )));
            }
        }
    }
    // Distinct, the figure may still land on a file that is not one.
    if let Some(path) = &req.plot {
        crate::report::plot::check_output(path).context("--plot")?;
    }
    Ok(())
}

/// The data (its training set cut to `train_size`), the folder it came
/// from, and whether the training set is whole; `warn` hears where it is
/// read from when the checkpoint's folder is gone.
pub(super) fn training_data(
    req: &TrainRequest,
    config: &RunConfig,
    warn: &mut dyn FnMut(&str),
) -> Result<(Mnist, PathBuf, bool)> {
    // The flag's own path (not its text) when given, else the checkpoint's
    // while it exists, else where the data is found.
    let stored = config.data.as_ref().map(PathBuf::from);
    let dir = match (&req.data, stored) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) if d.is_dir() => d,
        (None, Some(d)) => {
            let found = data::default_dir().with_context(|| {
                format!("the checkpoint's data folder {} is not here", d.display())
            })?;
            warn(&format!(
                "note: the checkpoint's data folder {} is not here; reading {} (--data DIR says otherwise)",
                d.display(),
                found.display()
            ));
            found
        }
        (None, None) => data::default_dir()?,
    };
    let mut data = data::load_dir(&dir)?;
    let all = data.train.len();
    if let Some(n) = config.train_size {
        if n > all {
            let said = if req.given("train_size") {
                "--train-size"
            } else {
                "the checkpoint's train_size"
            };
            return Err(Error::Usage(format!(
                "{said} {n}: the training set in {} has only {all} images",
                dir.display()
            )));
        }
        data.train = data.train.first(n);
    }
    let whole = data.train.len() == all;
    Ok((data, dir, whole))
}

/// `path` made absolute (symbolic links resolved) when it exists.
pub(super) fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
