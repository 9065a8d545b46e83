//! The library's one error type. Each module keeps its own typed error
//! (data, checkpoint, GPU, ...); the jobs above them (training, verify,
//! bench, experiments, evaluation) return [`Error`], whose kind tells the
//! command line which exit status to give. Messages name values and files;
//! the command line says which flag set them.
//!
//! May import: the leaf error types of the modules below it, nothing else.

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::config::ConfigError;
use crate::cpu::memory::MemoryError;
use crate::data::DataError;
use crate::gpu::GpuError;
use crate::limits::BadSize;
use crate::model::ArchError;
use crate::plot::PlotError;
use crate::predict::PredictError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that cannot mean anything, alone or with the data and the
    /// other settings: the command line's exit status 2.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Size(#[from] BadSize),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// A file the library writes (metrics, experiment tables).
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The training loss stopped being a number.
    #[error(
        "the training loss is {loss} in iterations {from}..{to}: training diverged at learning rate {lr}"
    )]
    Diverged {
        loss: f64,
        from: usize,
        to: usize,
        lr: f32,
    },
    /// The computation failed on valid input: training diverged, a state
    /// does not fit its network.
    #[error("{0}")]
    Failed(String),
    /// `source`, where it happened: the setting or file that led to it
    /// (`--plot`, `--resume run.safetensors`). Printed with its source
    /// after it, as `{context}: {source}`.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether the user asked for something that cannot mean anything (exit
    /// status 2), as opposed to a failure of valid work (exit status 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Usage(_) | Error::Config(_) | Error::Arch(_) | Error::Size(_) => true,
            Error::Memory(e) => memory_is_usage(e),
            Error::Data(e) => data_is_usage(e),
            Error::Gpu(e) => gpu_is_usage(e),
            Error::Plot(e) => plot_is_usage(e),
            Error::Predict(e) => e.misnamed,
            Error::Context { source, .. } => source.is_usage(),
            _ => false,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |error| Error::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Whether `e`, an [`Error`] or the typed error of a module called
/// directly, is a usage error: [`Error::is_usage`]'s rule for its type.
pub fn is_usage(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<Error>() {
        return e.is_usage();
    }
    e.downcast_ref::<ConfigError>().is_some()
        || e.downcast_ref::<ArchError>().is_some()
        || e.downcast_ref::<BadSize>().is_some()
        || e.downcast_ref::<MemoryError>().is_some_and(memory_is_usage)
        || e.downcast_ref::<DataError>().is_some_and(data_is_usage)
        || e.downcast_ref::<GpuError>().is_some_and(gpu_is_usage)
        || e.downcast_ref::<PlotError>().is_some_and(plot_is_usage)
        || e.downcast_ref::<PredictError>().is_some_and(|e| e.misnamed)
}

/// A size past the memory limit, not memory that ran out.
fn memory_is_usage(e: &MemoryError) -> bool {
    matches!(e, MemoryError::Limit(_))
}

/// An IDX file past the size limit, not a file that is wrong.
fn data_is_usage(e: &DataError) -> bool {
    matches!(e, DataError::Limit(_))
}

/// An environment variable that cannot mean anything.
fn gpu_is_usage(e: &GpuError) -> bool {
    matches!(e, GpuError::BadEnv { .. })
}

/// A figure named for another format.
fn plot_is_usage(e: &PlotError) -> bool {
    matches!(e, PlotError::Misnamed { .. })
}

/// `.context(what)` on any result whose error converts to [`Error`]: the
/// error wrapped in [`Error::Context`].
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
    fn with_context<S: std::fmt::Display>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.with_context(|| what.to_string())
    }

    fn with_context<S: std::fmt::Display>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: what().to_string(),
            source: Box::new(e.into()),
        })
    }
}

/// `ensure!` for [`Error::Failed`].
macro_rules! fail_unless {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::error::Error::Failed(format!($($arg)+)));
        }
    };
}
pub(crate) use fail_unless;
