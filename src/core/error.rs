//! The library's one error type, and the trait every module's typed error
//! implements to travel in it. Each module keeps its own typed error (data,
//! checkpoint, GPU, ...) and says of it, in its own file, whether it is a
//! usage error ([`LayerError`]); the jobs above them (training, verify,
//! bench, experiments, evaluation) return [`Error`], whose kind tells the
//! command line which exit status to give. Messages name values and files;
//! the command line says which flag set them. `run::is_usage` classifies
//! a typed error met on its own.
//!
//! May import: nothing of the crate (a leaf of `core`).

use std::path::PathBuf;

/// A module's typed error, as the jobs above it carry it in [`Error`].
pub trait LayerError: std::error::Error + Send + Sync + 'static {
    /// Whether the user asked for something that cannot mean anything
    /// (exit status 2), as opposed to a failure of valid work (exit 1).
    fn is_usage(&self) -> bool;
}

/// A module's typed error inside [`Error`]: its message and source as its
/// own, its kind through [`LayerError`].
#[derive(Debug)]
pub struct Layered(pub Box<dyn LayerError>);

impl std::fmt::Display for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Layered {
    /// The typed error inside, if it is a `T`.
    pub fn get<T: LayerError>(&self) -> Option<&T> {
        let e: &(dyn std::error::Error + 'static) = &*self.0;
        e.downcast_ref::<T>()
    }
}

impl std::error::Error for Layered {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that cannot mean anything, alone or with the data and the
    /// other settings: the command line's exit status 2.
    #[error("{0}")]
    Usage(String),
    /// A module's typed error (data, checkpoint, GPU, memory, ...).
    #[error(transparent)]
    Layer(Layered),
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

impl<E: LayerError> From<E> for Error {
    fn from(e: E) -> Self {
        Error::Layer(Layered(Box::new(e)))
    }
}

impl Error {
    /// Whether the user asked for something that cannot mean anything (exit
    /// status 2), as opposed to a failure of valid work (exit status 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Usage(_) => true,
            Error::Layer(e) => e.0.is_usage(),
            Error::Context { source, .. } => source.is_usage(),
            Error::Io { .. } | Error::Diverged { .. } | Error::Failed(_) => false,
        }
    }

    /// The module's typed error this is, if it is a `T`.
    pub fn layer<T: LayerError>(&self) -> Option<&T> {
        match self {
            Error::Layer(e) => e.get(),
            _ => None,
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
            return Err($crate::core::error::Error::Failed(format!($($arg)+)));
        }
    };
}
pub(crate) use fail_unless;
