//! The library's training job (`gpu_net::run::train`) called as the command
//! line calls it, with a report that records instead of printing: what it
//! says, the plan, the epochs, a stop asked for before the first step, and
//! a bad request refused as a usage error. CPU only: no GPU needed.

use std::path::PathBuf;

use gpu_net::run::device::{Device, DeviceChoice};
use gpu_net::run::epoch_loop::{EpochReport, Split};
use gpu_net::run::{TrainOutcome, TrainPlan, TrainReport, TrainRequest};

/// Everything the run told it.
#[derive(Default)]
struct Recorder {
    lines: Vec<String>,
    plan: Option<TrainPlan>,
    steps: Vec<usize>,
    evaluated: Vec<Split>,
    epochs: Vec<usize>,
    finished: bool,
    /// Answer to `stop`: from the first time it is asked.
    stop_at_once: bool,
}

impl TrainReport for Recorder {
    fn say(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
    fn setting_up(&mut self, device: &Device) {
        assert!(matches!(device, Device::Cpu));
    }
    fn stop(&mut self) -> bool {
        self.stop_at_once
    }
    fn start(&mut self, plan: &TrainPlan) {
        self.plan = Some(*plan);
    }
    fn steps(&mut self, done: usize) {
        self.steps.push(done);
    }
    fn evaluating(&mut self, split: Split) {
        self.evaluated.push(split);
    }
    fn epoch(&mut self, report: &EpochReport) {
        self.epochs.push(report.iter);
    }
    fn finish(&mut self) {
        self.finished = true;
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-run-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A short CPU run on the first 200 training images: 2 epochs of 2 steps
/// of batch 100, then 1 more step.
fn request(save: Option<PathBuf>) -> TrainRequest {
    let mut req = TrainRequest {
        device: DeviceChoice::Cpu,
        iters: Some(5),
        steps_per_submit: 8,
        save,
        ..TrainRequest::default()
    };
    req.config.hidden = vec![8];
    req.config.train_size = Some(200);
    req.given = vec!["hidden".into(), "train_size".into()];
    req
}

#[test]
fn a_run_tells_its_report_and_writes_its_checkpoint() {
    let d = dir("runs");
    let save = d.join("run.safetensors");
    let mut rec = Recorder::default();
    let outcome = gpu_net::run::train(&request(Some(save.clone())), &mut rec).unwrap();
    let TrainOutcome::Ran {
        summary,
        save: saved,
    } = outcome
    else {
        panic!("the run did not run");
    };
    assert_eq!(saved.as_deref(), Some(save.as_path()));
    assert_eq!((summary.iters, summary.interrupted), (5, false));
    let plan = rec.plan.expect("start was told");
    assert_eq!(
        (plan.iters, plan.done, plan.batch, plan.per_epoch),
        (5, 0, 100, 2)
    );
    assert_eq!(rec.epochs, [2, 4, 5], "an epoch end each, the last partial");
    assert_eq!(*rec.steps.last().unwrap(), 5);
    assert_eq!(rec.evaluated.len(), 6, "both splits each epoch");
    assert!(rec.finished);
    assert!(
        rec.lines.iter().any(|l| l.starts_with("device: cpu")),
        "{:?}",
        rec.lines
    );
    assert!(
        rec.lines.iter().any(|l| l.starts_with("network 784-8-10")),
        "{:?}",
        rec.lines
    );
    let ck = gpu_net::run::checkpoint::Checkpoint::read(&save).unwrap();
    assert_eq!(ck.state.iterations, 5);
}

#[test]
fn a_stop_before_the_first_step_writes_nothing() {
    let d = dir("stop");
    let save = d.join("run.safetensors");
    let mut rec = Recorder {
        stop_at_once: true,
        ..Recorder::default()
    };
    let outcome = gpu_net::run::train(&request(Some(save.clone())), &mut rec).unwrap();
    assert!(matches!(outcome, TrainOutcome::StoppedBeforeStart));
    assert!(!save.exists() && rec.plan.is_none() && rec.epochs.is_empty());
}

#[test]
fn a_request_that_cannot_mean_anything_is_a_usage_error() {
    let mut req = request(None);
    req.config.train_size = Some(70_000);
    let e = gpu_net::run::train(&req, &mut Recorder::default()).unwrap_err();
    assert!(e.is_usage(), "{e}");
    assert!(e.to_string().contains("--train-size 70000"), "{e}");
    // A plot that is not SVG, named by its flag, before anything trains.
    let mut req = request(None);
    req.plot = Some(dir("plot").join("curves.png"));
    let mut rec = Recorder::default();
    let e = gpu_net::run::train(&req, &mut rec).unwrap_err();
    assert!(e.is_usage() && e.to_string() == "--plot", "{e}");
    let chain = format!("{}", anyhow::Error::from(e).chain().last().unwrap());
    assert!(chain.contains("name it .svg"), "{chain}");
    assert!(rec.plan.is_none());
}

/// The exit status's rule, for the library's errors and for the typed
/// errors of modules a caller uses directly: a size past a limit or a
/// setting that cannot mean anything is usage (2), a failure of valid
/// work is not (1), and a context keeps what it wraps.
#[test]
fn an_error_is_a_usage_error_by_its_kind() {
    use gpu_net::core::data::DataError;
    use gpu_net::core::error::{Context, Error};
    use gpu_net::core::limits::BadSize;
    use gpu_net::cpu::memory::MemoryError;
    use gpu_net::run::is_usage;
    let size = || BadSize {
        var: "GPU_NET_MEMORY_LIMIT",
        value: "lots".into(),
    };
    assert!(is_usage(&Error::Usage("--batch 0".into())));
    assert!(!is_usage(&Error::Failed("diverged".into())));
    assert!(is_usage(&size()));
    assert!(is_usage(&MemoryError::Limit(size())));
    assert!(is_usage(&DataError::Limit(size())));
    assert!(!is_usage(&DataError::BadHeader {
        path: "x".into(),
        what: "a header of 3 bytes".into()
    }));
    let wrapped: Result<(), Error> = Err(Error::Usage("--lr -1".into())).context("--resume r.st");
    assert!(is_usage(&wrapped.unwrap_err()));
    let wrapped: Result<(), Error> = Err(Error::Failed("no".into())).context("--resume r.st");
    assert!(!is_usage(&wrapped.unwrap_err()));
}
