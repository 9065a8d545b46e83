//! A network given as a list of layers from the command line: `--net
//! deep-convnet`, a list, or a file holding one, through train (saved,
//! resumed to the same bits, evaluated), verify, and the book's
//! `ch08/train_deepnet.py` (`experiment train-deepnet`); and the lists and
//! flags refused with exit status 2, naming what is wrong.

mod common;

use std::path::{Path, PathBuf};

use common::run_cli as gpu_net;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-list-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What a run printed: its lines (stdout) and its notes and errors (stderr).
fn printed(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(o)
}

/// A small convolutional list, in a file with a comment and one layer a line.
fn list_file(d: &Path) -> PathBuf {
    let path = d.join("small.net");
    let text = "# two convolutions, the second strided\nconv 4 3x3 pad 1\nrelu\n\
                conv 6 4x4 stride 2 pad 1, relu\npool 2x2\naffine 16\nrelu\ndropout 0.2\naffine 10\n";
    std::fs::write(&path, text).unwrap();
    path
}

/// On the GPU where there is one (CI has lavapipe), else the CPU.
fn device() -> &'static str {
    if common::gpu().is_some() {
        "gpu"
    } else {
        "cpu"
    }
}

#[test]
fn a_list_trains_resumes_to_the_same_bits_and_evaluates() {
    let d = dir("train");
    let net = list_file(&d);
    let train = |iters: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--device",
            device(),
            "--net",
            s(&net),
            "--train-size",
            "200",
            "--batch",
            "50",
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
            "--seed",
            "3",
            "--iters",
            iters,
        ];
        args.extend(extra);
        gpu_net(&args)
    };
    let (whole, part) = (d.join("whole.st"), d.join("part.st"));
    let o = train("6", &["--save", s(&whole)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        printed(&o).contains("a list of 9 layers on 1×28×28"),
        "{}",
        printed(&o)
    );
    let o = train("3", &["--save", s(&part)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gpu_net(&[
        "train",
        "--device",
        device(),
        "--iters",
        "6",
        "--resume",
        s(&part),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&part).unwrap(),
        "a run resumed at iteration 3 differs from one run whole"
    );
    let saved = gpu_net_lib_accuracy(&whole);
    let o = gpu_net(&["eval", "--device", device(), "--model", s(&whole), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["accuracy"].as_f64(),
        Some(saved),
        "eval's accuracy is train's"
    );
    let o = gpu_net(&[
        "show-weights",
        "--model",
        s(&whole),
        "--out",
        s(&d.join("w.png")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(printed(&o).contains("4 units of W1"), "{}", printed(&o));
}

/// The test accuracy a checkpoint records.
fn gpu_net_lib_accuracy(path: &Path) -> f64 {
    let ck = gpu_net::run::checkpoint::Checkpoint::read(path).unwrap();
    ck.state.test_accuracy.unwrap()
}

#[test]
fn verify_proves_deep_convnets_gradient_three_ways() {
    if common::gpu().is_none() {
        return;
    }
    let o = gpu_net(&["verify", "--net", "deep-convnet", "--batch", "2"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("network DeepConvNet on 1×28×28"), "{out}");
    assert!(
        out.contains("OK: every tensor agrees on every pair"),
        "{out}"
    );
    for tensor in ["W1 ", "W6 ", "W8 ", "b8 "] {
        assert!(
            out.lines().any(|l| l.starts_with(tensor)),
            "{tensor}: {out}"
        );
    }
}

#[test]
fn lists_and_flags_that_cannot_be_are_usage_errors() {
    let d = dir("refused");
    let net = list_file(&d);
    for (args, says) in [
        (
            vec!["--net", "deep-net"],
            "is not two-layer, mlp, multi-layer, simple-convnet, deep-convnet",
        ),
        (
            vec!["--net", "conv 2 3x3, relu, pool 2x2"],
            "needs an Affine",
        ),
        (
            vec!["--net", "conv 2 3x3, pool 3x3, affine 10"],
            "layer 2 (pool 3x3)",
        ),
        (
            vec!["--net", "deep-convnet", "--hidden", "50"],
            "--hidden is a setting of two-layer, multi-layer and simple-convnet; deep-convnet and a list",
        ),
        (
            vec!["--net", s(&net), "--dropout", "0.5"],
            "--dropout is a setting of two-layer and multi-layer; deep-convnet",
        ),
        (
            vec!["--net", "deep-convnet", "--filter-num", "8"],
            "--filter-num is a setting of simple-convnet",
        ),
        (
            vec!["--net", "affine 50, batchnorm, relu, affine 10"],
            "BatchNorm layers train only through --batchnorm",
        ),
        (
            vec!["--net", "conv 2 3x3, affine 10", "--input-dim", "1,8,8"],
            "its input 1×8×8 is 64 values an image",
        ),
        (
            vec!["--net", "affine 20, affine 5"],
            "it ends in 5 scores, but the data has 10 classes",
        ),
        (
            vec!["--net", "conv 8 3x3 pad -1, affine 10"],
            "the pad \"-1\" is not a whole number",
        ),
        (
            vec!["--net", "/no/such/layers.net"],
            "/no/such/layers.net: no such file",
        ),
        (vec!["--net", s(&d)], "is a folder, not a regular file"),
    ] {
        let mut all = vec!["train", "--device", "cpu", "--iters", "1"];
        all.extend(args.iter().copied());
        let o = gpu_net(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // verify and bench read the list the same way.
    for command in [vec!["verify"], vec!["bench", "--cpu", "--seconds", "0.1"]] {
        let o = gpu_net(&[&command[..], &["--net", "affine 12"]].concat());
        assert_eq!(o.status.code(), Some(2), "{command:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("it ends in 12 scores"),
            "{command:?}: {}",
            stderr(&o)
        );
    }
}

/// A list of one layer needs no comma (softmax regression).
#[test]
fn a_list_of_one_layer_trains() {
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "2",
        "--train-size",
        "100",
        "--net",
        "affine 10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("final test accuracy"));
}

#[test]
fn a_list_the_gpu_does_not_run_names_the_layer_and_trains_on_the_cpu() {
    let list = "conv 2 3x3, dropout 0.5, affine 10";
    let args = |device| {
        vec![
            "train",
            "--device",
            device,
            "--iters",
            "1",
            "--train-size",
            "100",
            "--net",
            list,
        ]
    };
    if common::gpu().is_some() {
        let o = gpu_net(&args("gpu"));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("layer 2 (dropout 0.5)") && err.contains("--device cpu"),
            "{err}"
        );
    }
    let o = gpu_net(&args("cpu"));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The book's ch08/train_deepnet.py through the one epoch loop, cut to one
/// epoch of two steps on 200 training images: the script's lines, a row,
/// the whole test set's accuracy.
#[test]
fn train_deepnet_runs_the_books_script() {
    use gpu_net::core::data::Mnist;
    use gpu_net::run::device::Device;
    let full = common::mnist();
    let data = Mnist {
        train: full.train.first(200),
        test: full.test.first(300),
    };
    let device = common::gpu().map_or(Device::Cpu, Device::Gpu);
    let mut lines = vec![];
    let (_, rows, summary) =
        gpu_net::book::train_convnet::train_deepnet(&device, &data, (1, Some(1), None), &mut |l| {
            lines.push(l)
        })
        .unwrap();
    assert!(
        lines[0].starts_with("DeepConvNet (conv 16 3x3 pad 1, relu,"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("1 epoch(s) of 2 iterations, batch 100, Adam lr 0.001"),
        "{lines:?}"
    );
    assert_eq!(rows.len(), 1);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("=== epoch:1, train acc:")),
        "{lines:?}"
    );
    let acc = summary["test_acc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(lines.last().unwrap(), &format!("test acc:{acc}"));
}
