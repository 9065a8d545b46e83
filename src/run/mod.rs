//! The jobs the command line runs, as one API it calls: a job takes a
//! request of plain settings and paths, tells its caller what happens
//! through a report trait as it goes, and returns what came of it. Nothing
//! here prints or parses: `src/cli/` does both.
//!
//! The requests' fields are named as the command line's flags, and the
//! errors and lines a job gives name a setting by its flag (`--save`,
//! `--lr`), as the user gave it.
//!
//! May import everything below the commands (model, data, device, train,
//! checkpoint, config, metrics, plot, limits, error).

mod advice;
mod epochs;
mod eval;
mod paths;
mod report;
mod request;
mod resume;
mod train;
mod verify;

pub use advice::software_adapter_note;
pub use eval::{EvalRequest, eval};
pub use report::{TrainOutcome, TrainPlan, TrainReport};
pub use request::{TrainRequest, check_batchnorm_batch, count, data_dir};
pub use train::train;
pub use verify::{VerifyRequest, verify};
