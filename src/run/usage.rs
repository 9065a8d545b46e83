//! Which exit status an error met on its own gets: a library [`Error`] or
//! the typed error of a module the command line called directly, each
//! classified by its own rule ([`LayerError`], beside the type). This is
//! the one place that knows every module's error type, so it sits in
//! `run`, above them all.

use crate::core::config::ConfigError;
use crate::core::data::DataError;
use crate::core::error::{Error, LayerError};
use crate::core::limits::BadSize;
use crate::core::model::ArchError;
use crate::core::network::NetworkError;
use crate::cpu::memory::MemoryError;
use crate::gpu::GpuError;
use crate::report::plot::PlotError;
use crate::report::predict::PredictError;
use crate::run::checkpoint::CheckpointError;

/// Whether `e`, an [`Error`] or the typed error of a module called
/// directly, is a usage error (exit status 2) rather than a failure (1).
pub fn is_usage(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<Error>() {
        return e.is_usage();
    }
    fn by<T: LayerError>(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
        e.downcast_ref::<T>().map(T::is_usage)
    }
    by::<ConfigError>(e)
        .or_else(|| by::<ArchError>(e))
        .or_else(|| by::<NetworkError>(e))
        .or_else(|| by::<BadSize>(e))
        .or_else(|| by::<DataError>(e))
        .or_else(|| by::<MemoryError>(e))
        .or_else(|| by::<GpuError>(e))
        .or_else(|| by::<PlotError>(e))
        .or_else(|| by::<PredictError>(e))
        .or_else(|| by::<CheckpointError>(e))
        .unwrap_or(false)
}
