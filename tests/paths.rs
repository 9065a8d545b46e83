//! The files and streams a user hands the CLI: a closed or full stdout, a
//! FIFO where a file belongs, two flags naming one file, an output name of
//! the wrong kind. Each ends in a clear message and exit status, never a
//! panic, a hang or a file destroyed.
#![cfg(unix)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-paths-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gpu-net"));
    c.args(args).env("XDG_RUNTIME_DIR", "/tmp");
    c
}

/// Runs to the end, or fails the test after 60 s (a hang).
fn finish(mut c: Command) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{c:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn fails(o: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
}

/// A small checkpoint to read.
fn model(d: &Path) -> PathBuf {
    let path = d.join("m.st");
    save_a_run(&path);
    path
}

/// Two iterations of a small network saved at `path`.
fn save_a_run(path: &Path) {
    save_a_run_of(path, "2");
}

/// `iters` iterations of a small network saved at `path`.
fn save_a_run_of(path: &Path, iters: &str) {
    let o = finish(cmd(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        iters,
        "--hidden",
        "8",
        "--save",
        s(path),
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `train --save path` (with `extra` flags) whose reader closes stdout, and
/// with `close_stderr` stderr too, before the first line (as `| head -0`
/// and `2>&1 | head -0` would): its exit status and what reached stderr.
fn train_with_streams_closed(
    path: &Path,
    extra: &[&str],
    close_stderr: bool,
) -> (std::process::ExitStatus, String) {
    let mut args = vec![
        "train",
        "--device",
        "cpu",
        "--iters",
        "200",
        "--train-size",
        "500",
        "--hidden",
        "8",
        "--save",
        s(path),
    ];
    args.extend(extra);
    let mut child = cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    if close_stderr {
        drop(child.stderr.take());
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (status, err)
}

#[test]
fn a_closed_stdout_ends_quietly_and_a_run_still_saves() {
    let d = dir("pipe");
    let path = d.join("p.st");
    let (status, err) = train_with_streams_closed(&path, &[], false);
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let ck = gpu_net::run::checkpoint::Checkpoint::read(&path).unwrap();
    assert_eq!(ck.state.iterations, 200);
    // With --json the human lines go to stderr: a reader gone from both
    // streams stops the lines, not the run.
    std::fs::remove_file(&path).unwrap();
    let (status, _) = train_with_streams_closed(&path, &["--json"], true);
    assert!(status.success(), "{status:?} with stdout and stderr closed");
    let ck = gpu_net::run::checkpoint::Checkpoint::read(&path).unwrap();
    assert_eq!(ck.state.iterations, 200);
    // A full disk is a failure, said.
    let full = std::fs::File::create("/dev/full").unwrap();
    let o = cmd(&["eval", "--device", "cpu", "--model", s(&path)])
        .stdout(full)
        .output()
        .unwrap();
    fails(&o, 1, &["writing to stdout: No space left on device"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_fifo_is_refused_wherever_a_file_is_read_or_written() {
    let d = dir("fifo");
    let m = model(&d);
    let fifo = d.join("f");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let f = s(&fifo);
    // FIFOs where show-weights writes its image and an experiment its CSV.
    let (png, out) = (d.join("w.png"), d.join("out"));
    std::fs::create_dir_all(&out).unwrap();
    for p in [png.clone(), out.join("optimizer-compare.csv")] {
        assert!(Command::new("mkfifo").arg(&p).status().unwrap().success());
    }
    let cases: Vec<Vec<&str>> = vec![
        vec!["show-weights", "--model", s(&m), "-o", s(&png)],
        vec![
            "experiment",
            "optimizer-compare",
            "--device",
            "cpu",
            "--iters",
            "1",
            "--out",
            s(&out),
        ],
        vec!["eval", "--device", "cpu", "--model", f],
        vec!["train", "--device", "cpu", "--resume", f],
        vec!["show-weights", "--model", f, "-o", "w.png"],
        vec!["predict", "--model", s(&m), f],
        vec!["plot", f, "-o", "x.svg"],
        vec!["train", "--device", "cpu", "--iters", "1", "--save", f],
        vec!["train", "--device", "cpu", "--iters", "1", "--plot", f],
        vec!["train", "--device", "cpu", "--iters", "1", "--metrics", f],
    ];
    for args in cases {
        let o = finish(cmd(&args));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("is a FIFO, not a regular file"),
            "{args:?}: {err}"
        );
        assert!(err.contains(s(&d)), "{args:?}: {err}");
    }
    // A FIFO in the data folder is named as what it is.
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let idx = data.join("train-images-idx3-ubyte");
    assert!(Command::new("mkfifo").arg(&idx).status().unwrap().success());
    let o = finish(cmd(&["train", "--device", "cpu", "--data", s(&data)]));
    fails(&o, 1, &["train-images-idx3-ubyte", "is a FIFO"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn two_flags_naming_one_file_are_refused_before_anything_is_written() {
    let d = dir("same");
    let m = model(&d);
    let before = std::fs::read(&m).unwrap();
    let alias = format!("{}/./m.st", d.display());
    let svg = d.join("c.svg");
    let svg_alias = format!("{}/./c.svg", d.display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--resume", s(&m), "--metrics", &alias], "--metrics"),
        (vec!["--save", s(&svg), "--plot", &svg_alias], "--save"),
        (vec!["--save", s(&m), "--metrics", s(&m)], "--save"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["train", "--device", "cpu", "--iters", "4"];
        args.extend(flags);
        let o = finish(cmd(&args));
        fails(&o, 2, &[needle, "are one file"]);
        assert_eq!(
            std::fs::read(&m).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
    // A metrics file over the dataset.
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    for e in std::fs::read_dir(&bundled).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    let labels = data.join("t10k-labels-idx1-ubyte.gz");
    let o = finish(cmd(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "1",
        "--data",
        s(&data),
        "--metrics",
        s(&labels),
    ]));
    fails(&o, 2, &["--metrics", "--data", "are one file"]);
    assert!(std::fs::metadata(&labels).unwrap().len() > 1000);
    // Saving back to the checkpoint resumed is what resume does.
    let o = finish(cmd(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "4",
        "--resume",
        s(&m),
        "--save",
        &alias,
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(&d).ok();
}

/// `--save` through a symbolic link writes the file the link points to
/// (relative to the link's folder, or not yet there) and leaves the link a
/// link.
#[cfg(unix)]
#[test]
fn a_save_through_a_symbolic_link_writes_its_target() {
    let d = dir("link");
    let (target, link) = (d.join("real.st"), d.join("link.st"));
    save_a_run(&target);
    std::os::unix::fs::symlink("real.st", &link).unwrap();
    save_a_run_of(&link, "4");
    let is_link = |p: &Path| {
        std::fs::symlink_metadata(p)
            .unwrap()
            .file_type()
            .is_symlink()
    };
    assert!(is_link(&link), "the link became a file");
    let ck = gpu_net::run::checkpoint::Checkpoint::read(&target).unwrap();
    assert_eq!(ck.state.iterations, 4);
    let dangling = d.join("dangling.st");
    std::os::unix::fs::symlink("new.st", &dangling).unwrap();
    save_a_run(&dangling);
    assert!(is_link(&dangling) && d.join("new.st").is_file());
    std::fs::remove_dir_all(&d).ok();
}

/// show-weights never draws over the checkpoint it reads, however the two
/// are spelled.
#[test]
fn show_weights_refuses_to_draw_over_its_model() {
    let d = dir("draw-over");
    let ck = d.join("ck.png");
    std::fs::rename(model(&d), &ck).unwrap();
    let before = std::fs::read(&ck).unwrap();
    let alias = format!("{}/./ck.png", d.display());
    for out in [s(&ck), &alias] {
        let o = finish(cmd(&["show-weights", "--model", s(&ck), "-o", out]));
        fails(&o, 2, &["-o", "--model", "one file"]);
        assert_eq!(
            std::fs::read(&ck).unwrap(),
            before,
            "the checkpoint changed"
        );
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn outputs_of_the_wrong_kind_are_refused_and_leave_nothing() {
    let d = dir("kind");
    let m = model(&d);
    let gif = d.join("w.gif");
    let o = finish(cmd(&["show-weights", "--model", s(&m), "-o", s(&gif)]));
    fails(&o, 2, &["w.gif", ".png, .jpg, .bmp or .pgm"]);
    assert!(!gif.exists(), "a refused image left a file");
    let png = d.join("w.png");
    let o = finish(cmd(&["show-weights", "--model", s(&m), "-o", s(&png)]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    // A figure is SVG: a .png name is refused before training.
    let o = finish(cmd(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "1",
        "--plot",
        s(&d.join("c.png")),
    ]));
    fails(&o, 2, &["c.png", "name it .svg"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("epoch"));
    // A device node is never replaced (it would be, as root, by a rename).
    let o = finish(cmd(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "1",
        "--save",
        "/dev/null",
    ]));
    fails(&o, 1, &["/dev/null", "is a device, not a regular file"]);
    // Something that is not a checkpoint is called so.
    let csv = d.join("run.csv");
    std::fs::write(&csv, "epoch,iteration,loss\n1,600,0.5\n").unwrap();
    let o = finish(cmd(&["eval", "--model", s(&csv)]));
    fails(
        &o,
        1,
        &[
            "run.csv",
            "not a safetensors checkpoint (made by `gpu-net train --save`)",
        ],
    );
    // An I/O error is said once.
    let o = finish(cmd(&["eval", "--model", s(&d.join("missing.st"))]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_binary_copied_out_of_its_checkout_finds_its_data_or_says_where_it_looked() {
    let d = dir("copied");
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("gpu-net");
    std::fs::copy(env!("CARGO_BIN_EXE_gpu-net"), &exe).unwrap();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.args(args)
            .current_dir(&work)
            .env("XDG_RUNTIME_DIR", "/tmp");
        finish(c)
    };
    let train = [
        "train", "--device", "cpu", "--iters", "2", "--hidden", "8", "--save", "m.st",
    ];
    let o = run(&train);
    let looked = bin.join("data").join("mnist");
    fails(
        &o,
        1,
        &["no MNIST found", "data/mnist", s(&looked), "--data DIR"],
    );
    // The data beside the binary.
    std::fs::create_dir_all(&looked).unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    for e in std::fs::read_dir(&bundled).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), looked.join(e.file_name())).unwrap();
    }
    let o = run(&train);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = gpu_net::run::checkpoint::Checkpoint::read(&work.join("m.st")).unwrap();
    let recorded = PathBuf::from(ck.config.data.unwrap());
    assert_eq!(recorded, looked.canonicalize().unwrap());
    // eval reads only the test set: the training files may be absent.
    for e in std::fs::read_dir(&looked).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("train-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let o = run(&["eval", "--device", "cpu", "--model", "m.st"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("test images: 10000"));
    // The data gone, a resume names the folder the checkpoint recorded and
    // where it looked.
    std::fs::remove_dir_all(&looked).unwrap();
    let o = run(&[
        "train", "--device", "cpu", "--resume", "m.st", "--iters", "4",
    ]);
    let gone = format!(
        "the checkpoint's data folder {} is not here",
        recorded.display()
    );
    fails(&o, 1, &[&gone, "no MNIST found", "--data DIR"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_long_save_name_and_a_link_loop_in_the_data_folder() {
    let d = dir("long");
    // 252 characters: legal, and its temporary file must be too.
    let name = format!("{}.st", "n".repeat(249));
    let path = d.join(&name);
    save_a_run(&path);
    assert!(gpu_net::run::checkpoint::Checkpoint::read(&path).is_ok());
    // A symbolic link that points at itself where a data file belongs.
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let link = data.join("train-images-idx3-ubyte");
    std::os::unix::fs::symlink(&link, &link).unwrap();
    let o = finish(cmd(&["train", "--device", "cpu", "--data", s(&data)]));
    fails(&o, 1, &["train-images-idx3-ubyte", "symbolic links"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_checkpoint_that_could_not_be_replaced_is_refused_before_training() {
    use std::os::unix::fs::{PermissionsExt, chown};
    use std::os::unix::process::CommandExt;
    // Needs root to make files of other users and to run as one.
    if current_uid() != 0 {
        eprintln!("skipping: not root, cannot act as two other users");
        return;
    }
    let d = dir("sticky");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = d.join("theirs.st");
    std::fs::write(&theirs, "another user's").unwrap();
    chown(&theirs, Some(1001), Some(1001)).unwrap();
    // User 1002 may create files here but not rename over user 1001's.
    let mut c = cmd(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "50",
        "--hidden",
        "4",
        "--save",
        s(&theirs),
    ]);
    c.uid(1002).gid(1002).current_dir(&d).env("HOME", &d);
    c.arg("--data").arg(gpu_net::core::data::bundled_dir());
    let o = finish(c);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(!o.status.success(), "{out}{err}");
    assert!(err.contains("belongs to another user"), "{err}");
    assert!(!out.contains("epoch"), "refused only after training: {out}");
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "another user's");
    std::fs::remove_dir_all(&d).ok();
}

/// This process's user id, from /proc (no libc dependency for one number).
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}
