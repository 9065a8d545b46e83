//! The jobs the command line runs, as one API it calls: a job takes a
//! request of plain settings and paths, tells its caller what happens
//! through a report trait as it goes, and returns what came of it. Nothing
//! here prints or parses: `src/cli/` does both.
//!
//! The requests' fields are named as the command line's flags, and the
//! errors and lines a job gives name a setting by its flag (`--save`,
//! `--lr`), as the user gave it.
//!
//! Beside the jobs, `run` holds what they share: the one epoch loop
//! (`epoch_loop`), the device a run computes on (`device`), checkpoints,
//! metrics, the evaluation, the gradient check and the benchmarks.
//!
//! May import: `report`, `cpu`, `gpu` and `core`; the command line and the
//! book's scripts sit above it.

mod advice;
pub mod bench;
pub mod checkpoint;
pub mod device;
pub mod epoch_loop;
mod epochs;
mod eval;
pub mod evaluation;
pub mod gradient_check;
pub mod metrics;
mod paths;
mod report;
mod request;
mod resume;
mod train;
mod usage;
mod verify;

pub use advice::software_adapter_note;
pub use eval::{EvalRequest, eval};
pub use report::{TrainOutcome, TrainPlan, TrainReport};
pub use request::{TrainRequest, check_batchnorm_batch, count, data_dir};
pub use train::train;
pub use usage::is_usage;
pub use verify::{VerifyRequest, verify};
