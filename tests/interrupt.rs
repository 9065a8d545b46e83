//! Runs that stop and runs that continue: Ctrl-C (SIGINT) finishes the steps
//! in flight, saves the checkpoint and the metrics row, says how to go on
//! and exits 130; a second Ctrl-C stops at once and leaves the previous
//! checkpoint whole and no temporary file; `--resume` alone saves to its own
//! file and continues to the run's planned end, the same bits as a run never
//! stopped; the learning rate may change on resume and is recorded.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gpu_net::run::checkpoint::Checkpoint;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-int-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 3000 iterations of batch 10 on 1000 images (30 epochs of 100), small
/// enough for the CPU to take a few seconds.
fn run_args(save: &Path, metrics: &Path) -> Vec<String> {
    [
        "train",
        "--device",
        "cpu",
        "--train-size",
        "1000",
        "--batch",
        "10",
        "--hidden",
        "16",
        "--iters",
        "3000",
        "--save",
        s(save),
        "--metrics",
        s(metrics),
    ]
    .map(String::from)
    .to_vec()
}

fn gpu_net(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("gpu-net runs")
}

/// A running `gpu-net`, and its stdout's and stderr's lines as they come.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    err_lines: mpsc::Receiver<String>,
    err_seen: Vec<String>,
}

/// The lines of `stream` as they come, on a channel that closes at its end.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

impl Running {
    fn start(args: &[String]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpu-net"))
            .args(args)
            .env("XDG_RUNTIME_DIR", "/tmp")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        let err_lines = lines_of(child.stderr.take().unwrap());
        Running {
            child,
            lines,
            seen: vec![],
            err_lines,
            err_seen: vec![],
        }
    }

    /// Waits (up to a minute) for a line of stderr that contains `text`.
    fn wait_for_err(&mut self, text: &str) {
        while let Ok(line) = self.err_lines.recv_timeout(Duration::from_secs(60)) {
            self.err_seen.push(line.clone());
            if line.contains(text) {
                return;
            }
        }
        panic!("no line with {text:?} in {:?}", self.err_seen);
    }

    /// Waits (up to a minute) for a line of stdout that starts with `prefix`.
    fn wait_for(&mut self, prefix: &str) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            self.seen.push(line.clone());
            if line.starts_with(prefix) {
                return;
            }
        }
        panic!("no line starting {prefix:?} in {:?}", self.seen);
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(ok.success());
    }

    /// Exit status, and all of stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        self.err_seen.extend(self.err_lines.iter());
        (
            status.code(),
            self.seen.join("\n"),
            self.err_seen.join("\n"),
        )
    }
}

fn temporary_files(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn ctrl_c_saves_and_resume_alone_finishes_the_run_bit_for_bit() {
    let d = dir("stop");
    let (whole, whole_csv) = (d.join("whole.st"), d.join("whole.csv"));
    let o = gpu_net(&run_args(&whole, &whole_csv));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (path, csv) = (d.join("stopped.st"), d.join("stopped.csv"));
    let mut run = Running::start(&run_args(&path, &csv));
    run.wait_for("epoch   2 ");
    run.signal("-INT");
    let (code, out, err) = run.finish();
    assert_eq!(code, Some(130), "{out}\n{err}");
    assert!(err.contains("stopping after the steps in flight"), "{err}");
    let ck = Checkpoint::read(&path).unwrap();
    let n = ck.state.iterations;
    assert!((200..3000).contains(&n), "stopped at {n}");
    let said = format!(
        "interrupted at iteration {n}; saved {p}; continue with `gpu-net train --resume {p}`",
        p = path.display()
    );
    assert!(out.contains(&said), "{said:?} not in {out}");
    // The last epoch's line says it is partial, unless the stop fell on an
    // epoch's end.
    if !n.is_multiple_of(100) {
        let partial = format!("(partial: {} of 100 iterations)", n % 100);
        assert!(out.contains(&partial), "{partial:?} not in {out}");
    }
    assert_eq!(ck.state.planned_iterations, Some(3000));
    // The metrics row of the last, partial epoch is there.
    let rows = std::fs::read_to_string(&csv).unwrap();
    let last = rows.lines().last().unwrap();
    assert!(last.contains(&format!(",{n},")), "{last}");
    assert!(temporary_files(&d).is_empty());

    // --resume alone (on the same device): to the planned 3000, saving to
    // the file it resumed.
    let o = gpu_net(&[
        "train".into(),
        "--device".into(),
        "cpu".into(),
        "--resume".into(),
        s(&path).into(),
        "--metrics".into(),
        s(&csv).into(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains(&format!("saving to {}", path.display())),
        "{out}"
    );
    assert!(out.contains(&format!("saved {} (iteration 3000,", path.display())));
    let (done, want) = (
        Checkpoint::read(&path).unwrap(),
        Checkpoint::read(&whole).unwrap(),
    );
    assert_eq!(done.state.iterations, 3000);
    assert!(
        done.params == want.params,
        "stopped and resumed differs from whole"
    );
    assert_eq!(done.state.optimizer_state, want.state.optimizer_state);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_leaves_the_last_checkpoint_whole() {
    let d = dir("twice");
    let (path, csv) = (d.join("k.st"), d.join("k.csv"));
    // Stopped over and over again within an epoch: sometimes during a save.
    // Epoch 2's line comes after epoch 1's checkpoint was written.
    // The second signal is sent once the first is taken (two sent at once
    // may arrive as one), and a hidden layer of 256 makes the first
    // request's evaluation of the test set last about a second on the CPU,
    // so the second always comes before the first has saved.
    let mut args = run_args(&path, &csv);
    let hidden = args.iter().position(|a| a == "--hidden").unwrap() + 1;
    args[hidden] = "256".into();
    for _ in 0..3 {
        let mut run = Running::start(&args);
        run.wait_for("epoch   2 ");
        run.signal("-INT");
        run.wait_for_err("stopping after the steps in flight");
        run.signal("-INT");
        let (code, out, err) = run.finish();
        assert_eq!(code, Some(130), "{out}\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("stopped at once"), "{err}");
        assert!(!out.contains("interrupted at iteration"), "{out}");
        let ck = Checkpoint::read(&path).unwrap_or_else(|e| panic!("{e}: {err}"));
        // An epoch's checkpoint, not the interrupted run's.
        assert!(
            ck.state.iterations >= 100 && ck.state.iterations.is_multiple_of(100),
            "{}",
            ck.state.iterations
        );
        assert!(temporary_files(&d).is_empty(), "{:?}", temporary_files(&d));
    }
    // SIGTERM is the same request as Ctrl-C (another network: saved apart,
    // since --save refuses to replace another run's checkpoint).
    let mut run = Running::start(&run_args(&d.join("term.st"), &csv));
    run.wait_for("epoch   1 ");
    run.signal("-TERM");
    let (code, out, _) = run.finish();
    assert_eq!(code, Some(130));
    assert!(out.contains("interrupted at iteration"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn resume_may_change_the_learning_rate_and_records_it() {
    let d = dir("lr");
    let path = d.join("c.st");
    let base = |iters: &str| -> Vec<String> {
        [
            "train",
            "--device",
            "cpu",
            "--train-size",
            "500",
            "--batch",
            "50",
            "--hidden",
            "8",
        ]
        .into_iter()
        .chain(["--iters", iters])
        .map(String::from)
        .collect()
    };
    let mut first = base("20");
    first.extend(["--save".into(), s(&path).into()]);
    let o = gpu_net(&first);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!(
        "saved {} (iteration 20, test accuracy",
        path.display()
    )));

    let mut more = base("30");
    more.extend([
        "--resume".into(),
        s(&path).into(),
        "--lr".into(),
        "0.05".into(),
    ]);
    let o = gpu_net(&more);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("learning rate 0.1 → 0.05 from iteration 20"),
        "{out}"
    );
    let ck = Checkpoint::read(&path).unwrap();
    assert_eq!((ck.state.iterations, ck.config.lr), (30, 0.05));
    assert_eq!(ck.state.lr_schedule, [(0, 0.1), (20, 0.05)]);
    assert_eq!(ck.state.planned_iterations, Some(30));

    // Resume alone once the run is complete: nothing to do, said so.
    let o = gpu_net(&["train".into(), "--resume".into(), s(&path).into()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("complete (30 of its 30 iterations)"), "{err}");

    // Another run's checkpoint is replaced only with --overwrite: without
    // it, exit 2 naming what the file holds, the file untouched.
    let refused = |args: &[String], holds: &str| {
        let before = std::fs::read(&path).unwrap();
        let o = gpu_net(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("holds {holds}")) && err.contains("--overwrite"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
        let mut overwrite = args.to_vec();
        overwrite.push("--overwrite".into());
        let o = gpu_net(&overwrite);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.contains(&format!("replaces {holds}")), "{out}");
    };
    let with_seed = |iters: &str| {
        let mut a = base(iters);
        a.extend([
            "--seed".into(),
            "3".into(),
            "--save".into(),
            s(&path).into(),
        ]);
        a
    };
    refused(
        &with_seed("10"),
        "the checkpoint of another run (network 784-8-10, sgd, seed 0, 30 iterations, test accuracy",
    );
    // The same run, shorter: refused; the same run again: replaced in silence.
    let shorter = with_seed("5");
    refused(&shorter, "the checkpoint of a longer run");
    let o = gpu_net(&shorter);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("replaces"));
    // Another shape, and a file that is no checkpoint.
    let mut wider = shorter.clone();
    let h = wider.iter().position(|a| a == "--hidden").unwrap();
    wider[h + 1] = "9".into();
    refused(&wider, "the checkpoint of another run (network 784-8-10");
    std::fs::write(&path, "notes").unwrap();
    refused(&shorter, "a file that is not a gpu-net checkpoint");
    std::fs::remove_dir_all(&d).ok();
}
