//! Checkpoints: exact resume on both paths, atomic writes under a crash,
//! strict reading of every malformed case, and flags that contradict the
//! checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gpu_net::cpu::CpuTrainer;
use gpu_net::run::checkpoint::Checkpoint;
use gpu_net::run::epoch_loop::{Split, Trainer};

fn gpu_net(args: &[&str]) -> Output {
    common::run_cli(args)
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-ck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The same run, chapter 6 layers and Adam, in one go and in two halves
/// (the half ends mid-epoch): the checkpoints must hold the same bits.
fn resume_is_exact(device: &str) {
    let d = dir(device);
    let (whole, half) = (d.join("whole.safetensors"), d.join("half.safetensors"));
    let common = [
        "--device",
        device,
        "--train-size",
        "1000",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--batchnorm",
        "--dropout",
        "0.2",
        "--hidden",
        "30,20",
        "--seed",
        "3",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend(extra);
        let o = gpu_net(&args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    run(&[&common[..], &["--iters", "30", "--save", s(&whole)]].concat());
    run(&[&common[..], &["--iters", "15", "--save", s(&half)]].concat());
    let first = Checkpoint::read(&half).unwrap();
    assert_eq!(first.state.iterations, 15);
    // Flags may be left out: they come from the checkpoint.
    let o = run(&[
        "--device",
        device,
        "--iters",
        "30",
        "--resume",
        s(&half),
        "--save",
        s(&half),
        "--json",
    ]);
    // Its time and samples/s are of the iterations it ran, and it says so.
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("done: iterations 16 to 30 (15 iterations) in"),
        "{said}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["iters"].as_u64(), v["first_iter"].as_u64()),
        (Some(30), Some(15))
    );
    let (a, b) = (
        Checkpoint::read(&whole).unwrap(),
        Checkpoint::read(&half).unwrap(),
    );
    assert_eq!(a.state.iterations, 30);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&a.params.values),
        bits(&b.params.values),
        "{device}: parameters differ"
    );
    assert_eq!(
        bits(&a.params.running),
        bits(&b.params.running),
        "{device}: running statistics differ"
    );
    assert_eq!(a.state.optimizer_state.len(), 2);
    for (x, y) in a.state.optimizer_state.iter().zip(&b.state.optimizer_state) {
        assert_eq!(bits(x), bits(y), "{device}: optimizer state differs");
    }
    assert_eq!(a.state.sampler_position, b.state.sampler_position);
    assert_eq!(a, b);
    assert_eq!(a.f64_values, device == "cpu");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn resume_is_exact_on_the_gpu() {
    if common::gpu().is_none() {
        return;
    }
    resume_is_exact("gpu");
}

#[test]
fn resume_is_exact_on_the_cpu() {
    resume_is_exact("cpu");
}

#[test]
fn checkpoint_round_trips_and_numpy_can_read_the_book_names() {
    let d = dir("roundtrip");
    let path = d.join("m.safetensors");
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "3",
        "--hidden",
        "20",
        "--optimizer",
        "momentum",
        "--save",
        s(&path),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = Checkpoint::read(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(Checkpoint::from_bytes(&path, &ck.to_bytes()).unwrap(), ck);
    // The header a numpy user reads: the book's names and shapes.
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["W1"]["shape"], serde_json::json!([784, 20]));
    assert_eq!(header["b1"]["shape"], serde_json::json!([20]));
    assert_eq!(header["W2"]["shape"], serde_json::json!([20, 10]));
    assert_eq!(
        header["optimizer/v/W1"]["shape"],
        serde_json::json!([784, 20])
    );
    assert_eq!(header["__metadata__"]["optimizer"], "momentum");
    assert_eq!(header["__metadata__"]["iterations"], "3");
    std::fs::remove_dir_all(&d).ok();
}

/// A valid checkpoint's bytes, written by the library.
fn sample() -> (Checkpoint, Vec<u8>) {
    let arch = gpu_net::core::model::Arch::mlp(784, &[8], 10)
        .unwrap()
        .with_batchnorm(true);
    let params = gpu_net::core::model::Params::init(&arch, 1);
    // State in the tensors; the arena's padding between them is always 0.
    let state = |v: f64| {
        let mut s = vec![0.0; params.values.len()];
        for t in arch.tensors() {
            s[t.range()].fill(v);
        }
        s
    };
    let optimizer_state = vec![state(0.25), state(0.5)];
    let ck = common::checkpoint(
        params,
        gpu_net::core::optim::Optimizer::new(gpu_net::core::optim::OptimizerKind::Adam),
        optimizer_state,
        0.0,
        false,
    );
    let bytes = ck.to_bytes();
    (ck, bytes)
}

/// One checkpoint is always the same bytes: its header's keys, the
/// metadata's among them, in sorted order (a checksum or `cmp` of two
/// same-seed runs' files says what their bits say).
#[test]
fn a_checkpoint_is_always_the_same_bytes() {
    let (ck, bytes) = sample();
    for _ in 0..8 {
        assert!(ck.to_bytes() == bytes, "a second serialization differs");
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0, "the data starts 8-byte aligned");
    let text = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let meta_at = text.find("\"__metadata__\":{").unwrap();
    let meta = &text[meta_at..text[meta_at..].find('}').unwrap() + meta_at];
    let keys: Vec<&str> = meta
        .split("\",\"")
        .filter_map(|kv| kv.split("\":").next())
        .collect();
    assert!(keys.len() > 10, "{keys:?}");
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "the metadata's keys in order");
    let d = dir("same-bytes");
    let path = d.join("ck.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let back = Checkpoint::read(&path).unwrap();
    assert!(
        back.to_bytes() == bytes,
        "read back and written again differs"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// What the reader refuses is never written: a NaN, or a weight whose
/// square overflows f32, is named and no file is made.
#[test]
fn values_a_reader_refuses_are_never_written() {
    let d = dir("unwritable");
    for (value, needle) in [(f64::NAN, "element 3 is NaN"), (1e300, "past")] {
        let (mut ck, _) = sample();
        let w1 = ck.params.arch.tensors()[0].clone();
        ck.params.values[w1.range()][3] = value;
        let path = d.join("ck.safetensors");
        let e = ck.write(&path).expect_err("refused").to_string();
        assert!(e.contains("W1") && e.contains(needle), "{e}");
        assert!(!path.exists(), "a file was written");
    }
    std::fs::remove_dir_all(&d).ok();
}

fn refused(bytes: &[u8], needle: &str) {
    let d = dir("bad");
    let path = d.join("bad.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let e = Checkpoint::read(&path)
        .expect_err("a malformed checkpoint was accepted")
        .to_string();
    assert!(
        e.contains("bad.safetensors") && e.contains(needle),
        "{needle:?} not in {e}"
    );
    std::fs::remove_dir_all(&d).ok();
}

/// The header as JSON, edited, and the file rebuilt around it.
fn with_header(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut h);
    let text = serde_json::to_vec(&h).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn every_malformed_checkpoint_is_refused_by_name() {
    let (ck, good) = sample();
    let d = dir("good");
    let path = d.join("good.safetensors");
    ck.write(&path).unwrap();
    assert_eq!(Checkpoint::read(&path).unwrap(), ck);

    refused(&good[..5], "too short");
    refused(&good[..good.len() - 4], "bytes");
    refused(&[good.clone(), vec![0; 4]].concat(), "bytes");
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    refused(
        &huge,
        "not a safetensors checkpoint (made by `gpu-net train --save`)",
    );
    let mut garbled = good.clone();
    garbled[9] = b'#';
    refused(&garbled, "not JSON");
    refused(
        &with_header(&good, |h| {
            h.as_object_mut().unwrap().remove("__metadata__");
        }),
        "__metadata__",
    );
    // One metadata value made wrong at a time: (key, value, what the error names).
    for (key, value, needle) in [
        ("format", "other", "format"),
        ("sizes", "[784, 9, 10]", "bytes"),
        ("sizes", "lots", "sizes"),
        ("optimizer", "lion", "optimizer"),
        ("beta1", "NaN", "beta1"),
        ("beta1", "1", "beta1"),
        ("batch", "0", "batch"),
        ("batch", "1000000000000", "batch"),
        ("train_size", "0", "train_size"),
        ("weight_decay", "-1", "weight_decay"),
        ("test_accuracy", "inf", "test_accuracy"),
        ("iterations", "-1", "iterations"),
    ] {
        refused(
            &with_header(&good, |h| h["__metadata__"][key] = value.into()),
            needle,
        );
    }
    refused(
        &with_header(&good, |h| {
            h["__metadata__"]["sizes"] =
                "[1, 18446744073709551615, 18446744073709551615, 10]".into()
        }),
        "parameters",
    );
    refused(
        &with_header(&good, |h| {
            h["__metadata__"].as_object_mut().unwrap().remove("seed");
        }),
        "seed",
    );
    refused(
        &with_header(&good, |h| h["W1"]["shape"] = serde_json::json!([8, 784])),
        "W1",
    );
    refused(
        &with_header(&good, |h| h["W1"]["dtype"] = "F16".into()),
        "safetensors",
    );
    refused(
        &with_header(&good, |h| {
            let o = h.as_object_mut().unwrap();
            let w = o.remove("W1").unwrap();
            o.insert("W7".into(), w);
        }),
        "W7",
    );
    refused(
        &with_header(&good, |h| {
            h["b1"]["data_offsets"] = serde_json::json!([0, 99999999])
        }),
        "safetensors",
    );
    // A tensor missing from the header, or one too many: named, not sized.
    refused(
        &with_header(&good, |h| {
            h.as_object_mut().unwrap().remove("b2");
        }),
        "tensor \"b2\" is missing",
    );
    refused(
        &with_header(
            &good,
            |h| h["W9"] = serde_json::json!({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}),
        ),
        "tensor \"W9\" is not one of its network's and optimizer's",
    );
    // A non-finite value in a tensor.
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&good[8..8 + n]).unwrap();
    let start = h["gamma1"]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    let mut nan = good.clone();
    nan[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    refused(&nan, "gamma1");
    // Finite values no training gives: a negative variance, and a weight
    // whose square overflows f32.
    let at = |name: &str| h[name]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    let mut negative = good.clone();
    negative[at("running_var1") + 8..at("running_var1") + 12]
        .copy_from_slice(&(-0.5f32).to_le_bytes());
    refused(&negative, "running_var1[2] is -0.5");
    let mut huge = good.clone();
    huge[at("W2")..at("W2") + 4].copy_from_slice(&3e38f32.to_le_bytes());
    refused(&huge, "W2[0] is 3.00e38");
    // Zero variances (the book's initial running_var) are fine.
    let mut zero = good.clone();
    zero[at("running_var1")..at("running_var1") + 4].copy_from_slice(&0f32.to_le_bytes());
    let path = d.join("zero.safetensors");
    std::fs::write(&path, &zero).unwrap();
    Checkpoint::read(&path).unwrap();
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_reader_never_sees_half_a_checkpoint() {
    // One thread rewrites the checkpoint over and over (two versions);
    // another reads it as fast as it can. Every read must be one version or
    // the other, whole: writing straight into the file would show truncated
    // ones.
    let (ck, _) = sample();
    let d = dir("atomic");
    let path = d.join("run.safetensors");
    ck.write(&path).unwrap();
    let mut other = ck.clone();
    other.state.iterations = 99;
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let got = Checkpoint::read(&path).unwrap_or_else(|e| panic!("read {n}: {e}"));
                assert!(got.state.iterations == 12 || got.state.iterations == 99);
                n += 1;
            }
            n
        });
        for i in 0..60 {
            if i % 2 == 0 { &other } else { &ck }.write(&path).unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    assert!(reads > 10, "only {reads} reads overlapped the writes");
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_killed_training_run_leaves_a_readable_checkpoint_or_none() {
    // Kill `train --save` at moments spread over its run: whatever is at the
    // path then is a checkpoint that reads.
    let d = dir("kill");
    let path = d.join("k.safetensors");
    for (i, ms) in [150u64, 400, 700, 1000, 3000].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpu-net"))
            .args([
                "train",
                "--device",
                "cpu",
                "--train-size",
                "200",
                "--batch",
                "20",
                "--hidden",
                "64",
                "--iters",
                "100000",
                "--seed",
                &i.to_string(),
                "--save",
                s(&path),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        child.kill().unwrap();
        child.wait().unwrap();
        if path.exists() {
            let ck =
                Checkpoint::read(&path).unwrap_or_else(|e| panic!("killed after {ms} ms: {e}"));
            assert!(ck.state.iterations > 0);
        }
    }
    assert!(path.exists(), "no checkpoint was written in 3 s");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn flags_that_contradict_the_checkpoint_are_refused_naming_both() {
    let d = dir("contra");
    let path = d.join("c.safetensors");
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "2",
        "--hidden",
        "20",
        "--save",
        s(&path),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (flags, needle) in [
        (
            vec!["--hidden", "30"],
            "--hidden 30 contradicts the checkpoint's 20",
        ),
        (
            vec!["--optimizer", "adam"],
            "--optimizer adam contradicts the checkpoint's sgd",
        ),
        (
            vec!["--batchnorm"],
            "--batchnorm true contradicts the checkpoint's false",
        ),
        (
            vec!["--seed", "5"],
            "--seed 5 contradicts the checkpoint's 0",
        ),
    ] {
        let mut args = vec![
            "train",
            "--device",
            "cpu",
            "--iters",
            "4",
            "--resume",
            s(&path),
        ];
        args.extend(&flags);
        let o = gpu_net(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    // Already done: nothing to continue.
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "2",
        "--resume",
        s(&path),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already done 2"));
    // A path that cannot be written is refused before training.
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "2",
        "--save",
        "/nonexistent-dir/x.st",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--save"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("epoch"));
    // A missing checkpoint names the file.
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--resume",
        "/nonexistent-dir/x.st",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent-dir/x.st"));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn metrics_csv_has_a_row_per_epoch_and_continues_on_resume() {
    let d = dir("metrics");
    let (csv, ck) = (d.join("m.csv"), d.join("m.safetensors"));
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--train-size",
        "500",
        "--iters",
        "10",
        "--metrics",
        s(&csv),
        "--save",
        s(&ck),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "20",
        "--resume",
        s(&ck),
        "--metrics",
        s(&csv),
        "--plot",
        s(&d.join("m.svg")),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The figure draws the whole run, the epochs before the resume too: a
    // curve of 4 points.
    let svg = std::fs::read_to_string(d.join("m.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let mut curves = doc.descendants().filter_map(|n| n.attribute("points"));
    assert!(
        curves.any(|p| p.split_whitespace().count() == 4),
        "no curve of 4 points: {svg}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,iteration,loss,train_accuracy,test_accuracy,seconds,samples_per_sec"
    );
    let iters: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(iters, ["5", "10", "15", "20"]);
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), 7);
        assert!(
            l.split(',')
                .all(|v| v.parse::<f64>().map(f64::is_finite).unwrap_or(false)),
            "{l}"
        );
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn eval_reports_what_train_reported_for_the_same_weights() {
    let gpu = common::gpu().is_some();
    for device in if gpu { vec!["gpu", "cpu"] } else { vec!["cpu"] } {
        let d = dir(&format!("eval-{device}"));
        let path = d.join("m.safetensors");
        let o = gpu_net(&[
            "train",
            "--device",
            device,
            "--iters",
            "60",
            "--hidden",
            "32",
            "--batchnorm",
            "--dropout",
            "0.1",
            "--json",
            "--save",
            s(&path),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let trained: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let o = gpu_net(&["eval", "--device", device, "--model", s(&path), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["accuracy"], trained["test_accuracy"], "{device}");
        let confusion: Vec<Vec<u64>> = serde_json::from_value(v["confusion"].clone()).unwrap();
        assert_eq!(confusion.len(), 10);
        let total: u64 = confusion.iter().flatten().sum();
        let right: u64 = (0..10).map(|c| confusion[c][c]).sum();
        assert_eq!(total, 10_000);
        // (serde_json's float parsing may be an ulp off: compare to 1e-12.)
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(
            close(right as f64 / total as f64, v["accuracy"].as_f64().unwrap()),
            "{device}"
        );
        let per_class: Vec<f64> = serde_json::from_value(v["per_class"].clone()).unwrap();
        for c in 0..10 {
            let n: u64 = confusion[c].iter().sum();
            assert!(close(per_class[c], confusion[c][c] as f64 / n as f64));
        }
        // The loss is the test set's, of these weights: the f64 reference
        // path's evaluation of the checkpoint, exactly on the CPU and to
        // f32's rounding on the GPU.
        let ck = Checkpoint::read(&path).unwrap();
        let rule = ck.config.rule();
        let mut cpu = CpuTrainer::new(&ck.params.arch, ck.params.clone(), common::mnist(), &rule);
        let (loss, _) = cpu.evaluate(Split::Test).unwrap();
        let got = v["loss"].as_f64().unwrap();
        let tolerance = if device == "cpu" { 1e-12 } else { 1e-5 };
        assert!(
            (got - loss).abs() <= tolerance * loss,
            "{device}: eval says {got}, the weights give {loss}"
        );
        std::fs::remove_dir_all(&d).ok();
    }
}

/// `eval --misclassified`: the book's figure of the first 20 test digits
/// the network gets wrong (4 rows of 5), those digits in the JSON, each
/// one whose prediction (the f64 reference's) is not its label; a name
/// for another format refused before any work, naming the flag.
#[test]
fn eval_draws_the_first_misclassified_digits() {
    let d = dir("eval-misclassified");
    let (model, figure) = (d.join("m.safetensors"), d.join("mis.png"));
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "30",
        "--save",
        s(&model),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args = [
        "eval",
        "--device",
        "cpu",
        "--model",
        s(&model),
        "--misclassified",
        s(&figure),
    ];
    let o = gpu_net(&[&args[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let misses = v["misclassified"].as_array().unwrap();
    assert_eq!(misses.len(), 20);
    let ck = Checkpoint::read(&model).unwrap();
    let rule = ck.config.rule();
    let mut cpu = CpuTrainer::new(&ck.params.arch, ck.params.clone(), common::mnist(), &rule);
    let predicted = cpu.predictions(Split::Test).unwrap();
    let labels = &common::mnist().test.labels;
    let wrong: Vec<usize> = (0..labels.len())
        .filter(|&i| predicted[i] != labels[i])
        .take(20)
        .collect();
    let listed: Vec<usize> = misses
        .iter()
        .map(|m| m["index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(listed, wrong);
    assert_eq!(
        misses[0]["predicted"].as_u64(),
        Some(predicted[wrong[0]] as u64)
    );
    let img = image::open(&figure).unwrap();
    // 5 cells across, 4 down, each a 3× digit with its margins and caption.
    assert_eq!(
        (img.width(), img.height()),
        (5 * (84 + 12), 4 * (84 + 12 + 16))
    );
    let o = gpu_net(
        &args[..5]
            .iter()
            .chain(&["--misclassified", "m.svg"])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--misclassified: m.svg: name the image .png")
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn eval_refuses_a_broken_model_naming_it() {
    let d = dir("eval-bad");
    let path = d.join("broken.safetensors");
    std::fs::write(&path, b"not a checkpoint at all").unwrap();
    let o = gpu_net(&["eval", "--device", "cpu", "--model", s(&path)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.safetensors") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn eval_of_weights_that_overflow_is_a_failure_not_a_number() {
    use gpu_net::core::model::{Arch, Params};
    // Each value passes the reader's check (its square fits f32), but 20
    // layers of them multiply past f64's range.
    let arch = Arch::mlp(784, &[1; 20], 10).unwrap();
    let mut params = Params::init(&arch, 3);
    params.values.iter_mut().for_each(|v| *v = 1e18);
    let ck = common::sgd_checkpoint(params);
    let d = dir("overflow");
    let path = d.join("big.safetensors");
    ck.write(&path).unwrap();
    let o = gpu_net(&["eval", "--device", "cpu", "--model", s(&path)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("do not evaluate to numbers"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_deepest_network_the_limits_allow_writes_a_checkpoint_that_reads() {
    use gpu_net::core::model::MAX_HIDDEN_LAYERS;
    let ck = common::deepest_checkpoint();
    let d = dir("deep");
    let path = d.join("deep.safetensors");
    ck.write(&path).unwrap();
    let header = u64::from_le_bytes(std::fs::read(&path).unwrap()[..8].try_into().unwrap());
    // About 1 kB a layer: a header of a megabyte, read back whole.
    assert!(header > 1_000_000, "the header is {header} bytes");
    assert_eq!(Checkpoint::read(&path).unwrap(), ck);
    // One layer more is refused before anything runs, as a usage error.
    let hidden = vec!["1"; MAX_HIDDEN_LAYERS + 1].join(",");
    let o = gpu_net(&["train", "--device", "cpu", "--hidden", &hidden]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("over the limit of 1000"));
    std::fs::remove_dir_all(&d).ok();
}

/// A data folder with the bundled test set and the first `n` training
/// images.
fn small_mnist(d: &Path, n: u32) -> PathBuf {
    use std::io::{Read, Write};
    let out = d.join("small");
    std::fs::create_dir_all(&out).unwrap();
    let bundled = gpu_net::core::data::bundled_dir();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(bundled.join(name), out.join(name)).unwrap();
    }
    for (name, header, per) in [
        ("train-images-idx3-ubyte.gz", 16, 784),
        ("train-labels-idx1-ubyte.gz", 8, 1),
    ] {
        let mut all = Vec::new();
        let file = std::fs::File::open(bundled.join(name)).unwrap();
        flate2::read::GzDecoder::new(file)
            .take((header + n as usize * per) as u64)
            .read_to_end(&mut all)
            .unwrap();
        all[4..8].copy_from_slice(&n.to_be_bytes());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&all).unwrap();
        std::fs::write(out.join(name), gz.finish().unwrap()).unwrap();
    }
    out
}

#[test]
fn settings_that_come_from_the_checkpoint_say_so() {
    let d = dir("from-ck");
    let ck = d.join("c.st");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--device", "cpu", "--hidden", "4"];
        args.extend(extra);
        gpu_net(&args)
    };
    let o = train(&["--iters", "1", "--save", s(&ck)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A smaller --data than the run's 60000 training images: the count the
    // user never typed is named as the checkpoint's.
    let small = small_mnist(&d, 100);
    let resume = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--device",
            "cpu",
            "--iters",
            "2",
            "--resume",
            s(&ck),
        ];
        args.extend(extra);
        gpu_net(&args)
    };
    let o = resume(&["--data", s(&small)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the checkpoint's train_size 60000") && err.contains("only 100 images"),
        "{err}"
    );
    assert!(!err.contains("--train-size"), "{err}");
    // The data folder the checkpoint names is gone: the bundled data is
    // read, and the note says which and why.
    let mut c = Checkpoint::read(&ck).unwrap();
    c.config.data = Some("/nonexistent/mnist".into());
    c.write(&ck).unwrap();
    let o = resume(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("the checkpoint's data folder /nonexistent/mnist is not here"),
        "{err}"
    );
    // A checkpoint of Batch Normalization at batch 1 (which train refuses
    // to start): the batch is named as the checkpoint's, not as a flag.
    use gpu_net::core::model::{Arch, Params};
    let arch = Arch::mlp(784, &[4], 10).unwrap().with_batchnorm(true);
    let mut bn = common::sgd_checkpoint(Params::init(&arch, 1));
    bn.config.batch = 1;
    bn.write(&ck).unwrap();
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "20",
        "--resume",
        s(&ck),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the checkpoint's batch 1 with Batch Normalization"),
        "{err}"
    );
    // A checkpoint whose rate diverges (f32 on the GPU, as the CLI's own
    // divergence test): the advice names the rate as the checkpoint's, and
    // a --lr the user gives as theirs.
    if common::gpu().is_some() {
        let arch = Arch::mlp(784, &[50], 10).unwrap();
        let mut wild = common::sgd_checkpoint(Params::init(&arch, 1));
        wild.config.lr = 1e10;
        wild.state.lr_schedule = vec![(0, 1e10)];
        wild.write(&ck).unwrap();
        let diverge = |extra: &[&str]| {
            let mut args = vec![
                "train",
                "--device",
                "gpu",
                "--iters",
                "700",
                "--resume",
                s(&ck),
            ];
            args.extend(extra);
            String::from_utf8_lossy(&gpu_net(&args).stderr).into_owned()
        };
        let err = diverge(&[]);
        assert!(
            err.contains("try a lower --lr (from the checkpoint) (it is 10000000000)"),
            "{err}"
        );
        let err = diverge(&["--lr", "1e9"]);
        assert!(err.contains("try a lower --lr (it is 1000000000)"), "{err}");
    }
    std::fs::remove_dir_all(&d).ok();
}
