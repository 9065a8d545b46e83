//! The command line: bad input gets a clear error and exit status 2 (usage)
//! or 1 (failure), never a panic; --json prints one object on stdout.

mod common;

use std::process::{Command, Output};

fn gpu_net(args: &[&str]) -> Output {
    gpu_net_with(&[], args)
}

/// `gpu-net args` with the environment variables `vars` set.
fn gpu_net_with(vars: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(args)
        .envs(vars.iter().copied())
        .env(
            "XDG_RUNTIME_DIR",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()),
        )
        .output()
        .expect("gpu-net runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_fails(args: &[&str], code: i32, needles: &[&str]) {
    let o = gpu_net(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    assert_fails(&["train", "--hidden", "0"], 2, &["--hidden", "at least 1"]);
    assert_fails(&["train", "--hidden", "50,x"], 2, &["--hidden", "\"x\""]);
    assert_fails(&["train", "--batch", "0"], 2, &["--batch"]);
    assert_fails(&["train", "--lr=-1"], 2, &["--lr"]);
    assert_fails(&["train", "--lr", "nan"], 2, &["--lr"]);
    assert_fails(&["train", "--device", "tpu"], 2, &["--device"]);
    assert_fails(
        &["train", "--backend", "glide"],
        2,
        &["--backend", "vulkan"],
    );
    assert_fails(
        &["train", "--iters", "5", "--epochs", "1"],
        2,
        &["--epochs"],
    );
    assert_fails(&["frobnicate"], 2, &["frobnicate"]);
}

/// A file given where a flag was due gets the flag it needs.
#[test]
fn a_file_without_its_flag_is_told_the_flag() {
    assert_fails(
        &["eval", "model.safetensors"],
        2,
        &["`--model model.safetensors`"],
    );
    assert_fails(
        &["show-weights", "--model", "m.st", "w.png"],
        2,
        &["`-o w.png`"],
    );
    assert_fails(
        &["show-weights", "m.st", "-o", "w.png"],
        2,
        &["`--model m.st`"],
    );
}

/// A negative number after a flag is that flag's value, refused by its
/// range as `--flag=-1` is (not "unexpected argument '-1'").
#[test]
fn negative_values_get_the_flags_own_message() {
    for (args, needle) in [
        (&["train", "--lr", "-1"][..], "not a positive number"),
        (&["train", "--momentum", "-0.5"], "in [0, 1)"),
        (&["train", "--beta1", "-0.5"], "in [0, 1)"),
        (&["train", "--dropout", "-0.2"], "ratio in [0, 1)"),
        (&["train", "--weight-decay", "-1"], ">= 0"),
        (&["train", "--init", "-0.01"], "not a positive number"),
        (&["bench", "--seconds", "-1"], "seconds"),
        (&["verify", "--tolerance-scale", "-2"], "factor"),
        // Numbers f32, where the GPU computes, makes infinite or 0.
        (&["train", "--lr", "1e39"], "outside f32's range"),
        (&["train", "--lr", "1e-46"], "outside f32's range"),
        (&["train", "--weight-decay", "1e39"], "outside f32's range"),
        (&["verify", "--init", "1e-50"], "outside f32's range"),
    ] {
        let flag = args[1];
        assert_fails(
            args,
            2,
            &[&format!("invalid value '{}' for '{flag}", args[2]), needle],
        );
    }
}

/// The README names as taking `--net` exactly the commands that do.
#[test]
fn the_readme_says_which_commands_take_net() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let claim = readme
        .split("\n\n")
        .find(|p| p.contains("as `--net simple-convnet`"))
        .expect("the README says which commands take --net simple-convnet");
    let before = &claim[..claim.find("take it as").unwrap()];
    for cmd in [
        "train",
        "verify",
        "bench",
        "eval",
        "predict",
        "show-weights",
    ] {
        let help = String::from_utf8(gpu_net(&[cmd, "--help"]).stdout).unwrap();
        let takes = help.contains("--net <");
        let named = before.contains(&format!("`{cmd}`"));
        assert_eq!(
            named, takes,
            "{cmd}: the README says {named}, --help says {takes}"
        );
    }
}

/// Every file the README's tour writes into the repository root is one
/// `.gitignore` ignores (a root pattern `/*.EXT`).
#[test]
fn the_tours_outputs_are_ignored_by_git() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let ignore = std::fs::read_to_string(format!("{root}/.gitignore")).unwrap();
    let mut outputs = vec![];
    for flag in ["--save ", "--plot ", "--metrics ", "-o "] {
        for (at, _) in readme.match_indices(flag) {
            let name: String = readme[at + flag.len()..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '`')
                .collect();
            if name.contains('.') && !name.contains('/') {
                outputs.push(name);
            }
        }
    }
    assert!(outputs.len() >= 5, "{outputs:?}");
    for name in outputs {
        let ext = name.rsplit('.').next().unwrap();
        let pattern = format!("/*.{ext}");
        assert!(
            ignore.lines().any(|l| l.trim() == pattern),
            "{name}: no {pattern} in .gitignore"
        );
    }
}

/// The help says what the program trains, lists chapter 7's experiment,
/// and files --seed and --init under Model, not the convnet's flags.
#[test]
fn help_names_every_chapter_and_files_flags_under_their_heading() {
    let top = String::from_utf8(gpu_net(&["--help"]).stdout).unwrap();
    assert!(!top.contains("Train an MLP"), "{top}");
    assert!(
        top.contains("train-deepnet") && top.contains("chapters 5 to 8"),
        "{top}"
    );
    let train = String::from_utf8(gpu_net(&["train", "-h"]).stdout).unwrap();
    // The lines under a heading, up to the next heading (an unindented line).
    let section = |heading: &str| -> String {
        let lines = train.lines().skip_while(|l| *l != heading).skip(1);
        let body = lines.take_while(|l| l.is_empty() || l.starts_with(' '));
        body.collect::<Vec<_>>().join("\n")
    };
    let (model, conv) = (section("Model:"), section("Model (simple-convnet):"));
    for flag in ["--seed", "--init", "--hidden", "--net"] {
        assert!(
            model.contains(flag) && !conv.contains(flag),
            "{flag}:\n{train}"
        );
    }
    assert!(conv.contains("--filter-size"), "{train}");
}

#[test]
fn missing_data_names_the_file_and_the_flag() {
    let dir = std::env::temp_dir().join("gpu-net-cli-empty");
    std::fs::create_dir_all(&dir).unwrap();
    assert_fails(
        &["train", "--device", "cpu", "--data", dir.to_str().unwrap()],
        1,
        &["train-images-idx3-ubyte", "--data"],
    );
}

#[test]
fn cpu_train_json_is_one_object_on_stdout() {
    let o = gpu_net(&["train", "--device", "cpu", "--iters", "20", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is one JSON object");
    for key in [
        "device",
        "iters",
        "seconds",
        "samples_per_sec",
        "final_loss",
        "train_accuracy",
        "test_accuracy",
    ] {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    assert_eq!(v["iters"], 20);
    assert!(v["device"].as_str().unwrap().starts_with("cpu"));
    assert!(stderr(&o).contains("epoch"), "human output goes to stderr");
    // The evaluations' time is reported apart from the steps' (on the CPU
    // path they take longer than 20 steps).
    let eval = v["eval_seconds"].as_f64().expect("eval_seconds");
    assert!(eval > 0.0, "{v}");
    assert!(
        stderr(&o).contains(&format!("and {eval:.1} s of evaluation")),
        "{}",
        stderr(&o)
    );
    // The numbers are the book's run of 20 iterations (seed 0), as the
    // library trains it: the same bits.
    let data = common::mnist();
    let arch = gpu_net::core::model::Arch::mlp(784, &[50], 10).unwrap();
    let rule = gpu_net::core::optim::StepRule::default();
    let mut cpu = gpu_net::cpu::CpuTrainer::new(
        &arch,
        gpu_net::core::model::Params::init(&arch, 0),
        data,
        &rule,
    );
    let cfg = gpu_net::run::epoch_loop::TrainConfig {
        iters: 20,
        ..Default::default()
    };
    let s =
        gpu_net::run::epoch_loop::train(&mut cpu, data.train.len(), &cfg, 32, &mut |_| {}).unwrap();
    assert_eq!(v["final_loss"].as_f64(), Some(s.final_loss));
    assert_eq!(v["train_accuracy"].as_f64(), Some(s.train_accuracy));
    assert_eq!(v["test_accuracy"].as_f64(), Some(s.test_accuracy));
}

#[test]
fn gpu_train_json_names_the_adapter() {
    if common::gpu().is_none() {
        return;
    }
    let o = gpu_net(&["train", "--device", "gpu", "--iters", "20", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let device = v["device"].as_str().unwrap();
    assert!(
        device.starts_with("gpu: ") && device.contains('('),
        "{device}"
    );
    // The GPU's setup (kernels, buffers) is measured apart from training,
    // and said when it is long enough to notice.
    let setup = v["setup_seconds"].as_f64().unwrap();
    assert!(setup > 0.0, "{v}");
    assert_eq!(
        stderr(&o).contains("setting up the GPU took"),
        setup > 2.0,
        "{}",
        stderr(&o)
    );
}

#[test]
fn device_limits_are_refused_before_gpu_work() {
    let Some(ctx) = common::gpu() else { return };
    // One row more than the input batch (788 f32 per row) can hold in one
    // storage binding of this device.
    let batch = ctx.binding_limit() / (788 * 4) + 1;
    if batch <= 1 << 20 {
        let b = batch.to_string();
        assert_fails(
            &["train", "--device", "gpu", "--batch", &b, "--iters", "1"],
            1,
            &["cannot hold", &format!("batch {b}")],
        );
    }
    assert_fails(
        &["train", "--device", "gpu", "--adapter", "99"],
        1,
        &["--adapter 99"],
    );
}

#[test]
fn verify_and_bench_reject_bad_input() {
    assert_fails(&["train", "--batch", "2000000"], 2, &["--batch", "limit"]);
    assert_fails(&["train", "--epochs", "1000000"], 2, &["--epochs"]);
    assert_fails(&["verify", "--sample", "0"], 2, &["--sample"]);
    assert_fails(&["verify", "--batch", "x"], 2, &["--batch"]);
    assert_fails(&["bench", "--matmul", "1,2"], 2, &["--matmul", "M,N,K"]);
    assert_fails(&["bench", "--split-k", "4"], 2, &["--split-k", "--matmul"]);
    assert_fails(&["bench", "--batch", "100,0"], 2, &["--batch"]);
    assert_fails(&["bench", "--seconds", "0"], 2, &["--seconds"]);
    assert_fails(&["bench", "--hidden", "64,0"], 2, &["--hidden"]);
    assert_fails(
        &["bench", "--hidden", "50;;64"],
        2,
        &["--hidden", "\"50;;64\": a network between ';'s is empty"],
    );
    assert_fails(
        &["bench", "--hidden", "64:32"],
        2,
        &["--hidden", "comma separated as in train"],
    );
    assert_fails(
        &["train", "--matmul-kernel", "fast"],
        2,
        &["--matmul-kernel"],
    );
    // A network past the limits is a flag out of range: usage, as the
    // Limits table says.
    assert_fails(
        &["train", "--device", "cpu", "--hidden", "65536,65536"],
        2,
        &["--hidden", "parameters"],
    );
    // A batch past the training set, as --train-size past it.
    assert_fails(
        &["verify", "--batch", "70000"],
        2,
        &["--batch 70000", "60000"],
    );
    if common::gpu().is_some() {
        assert_fails(
            &["bench", "--matmul", "60000,60000,60000"],
            1,
            &["--matmul 60000,60000,60000", "cannot hold"],
        );
    }
}

#[test]
fn devices_lists_adapters() {
    let o = gpu_net(&["devices"]);
    if common::gpu().is_some() {
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("0: "));
    } else {
        assert_eq!(o.status.code(), Some(1));
    }
}

/// GPU_NET_COMPUTE_UNITS sets the planner's compute units,
/// GPU_NET_T128_SPEEDUP the large tile's speed, GPU_NET_FUSED_HEAD
/// whether it may fuse the head, GPU_NET_IMPLICIT_CONV whether
/// convolutions read their columns in place and GPU_NET_GATHER_AHEAD
/// whether a submission's batches are gathered at once (bench reports all
/// five); a value that is none of them is a usage error naming the variable.
#[test]
fn compute_units_come_from_the_environment() {
    if common::gpu().is_none() {
        return;
    }
    for bad in ["0", "many", "1.5"] {
        let o = gpu_net_with(
            &[("GPU_NET_COMPUTE_UNITS", bad)],
            &["train", "--iters", "1"],
        );
        assert_fails_output(&o, 2, &["GPU_NET_COMPUTE_UNITS", "whole number"]);
    }
    let o = gpu_net_with(&[("GPU_NET_FUSED_HEAD", "yes")], &["train", "--iters", "1"]);
    assert_fails_output(&o, 2, &["GPU_NET_FUSED_HEAD", "1 (on) or 0 (off)"]);
    let o = gpu_net_with(
        &[("GPU_NET_IMPLICIT_CONV", "2")],
        &["train", "--iters", "1"],
    );
    assert_fails_output(&o, 2, &["GPU_NET_IMPLICIT_CONV", "1 (on) or 0 (off)"]);
    let o = gpu_net_with(
        &[("GPU_NET_GATHER_AHEAD", "on")],
        &["train", "--iters", "1"],
    );
    assert_fails_output(&o, 2, &["GPU_NET_GATHER_AHEAD", "1 (on) or 0 (off)"]);
    let args = [
        "bench",
        "--batch",
        "100",
        "--hidden",
        "50",
        "--seconds",
        "0.2",
    ];
    let o = gpu_net_with(
        &[
            ("GPU_NET_COMPUTE_UNITS", "132"),
            ("GPU_NET_T128_SPEEDUP", "1.25"),
            ("GPU_NET_FUSED_HEAD", "0"),
            ("GPU_NET_IMPLICIT_CONV", "0"),
            ("GPU_NET_GATHER_AHEAD", "0"),
        ],
        &[&args[..], &["--repeats", "1", "--json"]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["adapter"]["compute_units"], 132);
    assert_eq!(v["adapter"]["compute_units_from"], "Environment");
    assert_eq!(v["adapter"]["t128_speedup"], 1.25);
    assert_eq!(v["adapter"]["fused_head"], false);
    assert_eq!(v["adapter"]["implicit_conv"], false);
    assert_eq!(v["adapter"]["gather_ahead"], false);
}

/// The tiled kernel trains as the CPU does, with the plans of the
/// development machine and with those of a 132-unit GPU (products split
/// along K, 128×128 tiles where they pay).
#[test]
fn gpu_train_with_the_tiled_kernel() {
    if common::gpu().is_none() {
        return;
    }
    for units in ["2", "132"] {
        tiled_training_matches_the_cpu(units);
    }
}

fn tiled_training_matches_the_cpu(units: &str) {
    let o = gpu_net_with(
        &[("GPU_NET_COMPUTE_UNITS", units)],
        &[
            "train",
            "--device",
            "gpu",
            "--matmul-kernel",
            "tiled",
            "--iters",
            "30",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The same 30 steps on the f64 CPU path: the mean loss agrees to f32's
    // rounding, and the accuracies to a few of the 70000 predictions.
    let cpu = gpu_net(&["train", "--device", "cpu", "--iters", "30", "--json"]);
    assert!(cpu.status.success(), "{}", stderr(&cpu));
    let c: serde_json::Value = serde_json::from_slice(&cpu.stdout).unwrap();
    let (g, c) = (
        |k: &str| v[k].as_f64().unwrap(),
        |k: &str| c[k].as_f64().unwrap(),
    );
    assert!(
        (g("final_loss") - c("final_loss")).abs() <= 1e-5 * c("final_loss"),
        "tiled {} cpu {}",
        g("final_loss"),
        c("final_loss")
    );
    for k in ["train_accuracy", "test_accuracy"] {
        assert!(
            (g(k) - c(k)).abs() <= 5e-4,
            "{k}: tiled {} cpu {}",
            g(k),
            c(k)
        );
    }
    // And it learned: from chance (0.1) to 0.28 in 30 steps of the 0.01 init.
    assert!(c("test_accuracy") > 0.2, "{}", c("test_accuracy"));
}

#[test]
fn chapter6_flags_refuse_bad_values() {
    assert_fails(
        &["train", "--optimizer", "adamw"],
        2,
        &["--optimizer", "adamw", "adam"],
    );
    assert_fails(
        &["train", "--init", "glorot"],
        2,
        &["--init", "xavier", "he"],
    );
    assert_fails(&["train", "--init=-0.1"], 2, &["--init"]);
    assert_fails(&["train", "--init", "inf"], 2, &["--init"]);
    assert_fails(&["train", "--dropout", "1"], 2, &["--dropout", "[0, 1)"]);
    assert_fails(&["train", "--dropout=-0.1"], 2, &["--dropout"]);
    assert_fails(&["train", "--weight-decay=-0.1"], 2, &["--weight-decay"]);
    assert_fails(&["train", "--weight-decay", "nan"], 2, &["--weight-decay"]);
    assert_fails(&["train", "--momentum", "inf"], 2, &["--momentum"]);
    assert_fails(&["train", "--beta1", "1"], 2, &["--beta1"]);
    assert_fails(&["train", "--beta2", "NaN"], 2, &["--beta2"]);
    assert_fails(&["train", "--decay-rate", "1.5"], 2, &["--decay-rate"]);
    assert_fails(&["train", "--train-size", "0"], 2, &["--train-size"]);
    assert_fails(
        &["train", "--train-size", "60001"],
        2,
        &["--train-size 60001", "60000"],
    );
    assert_fails(
        &["train", "--batchnorm", "--batch", "1"],
        2,
        &["--batch 1", "--batchnorm"],
    );
    assert_fails(
        &["train", "--batchnorm", "--train-size", "1"],
        2,
        &["a training set of 1 image", "--batchnorm", "--train-size"],
    );
    assert_fails(
        &["verify", "--batchnorm", "--batch", "1"],
        2,
        &["--batch 1", "--batchnorm"],
    );
    assert_fails(
        &["bench", "--batchnorm", "--batch", "100,1"],
        2,
        &["--batch 1", "--batchnorm"],
    );
    assert_fails(&["bench", "--optimizer", "lion"], 2, &["--optimizer"]);
}

#[test]
fn chapter6_cpu_run_says_what_it_trains() {
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "6",
        "--train-size",
        "300",
        "--hidden",
        "20,20",
        "--batchnorm",
        "--dropout",
        "0.2",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--init",
        "he",
        "--weight-decay",
        "0.1",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("layers: Affine1 BatchNorm1 Relu1 Dropout1(0.2) Affine2 BatchNorm2 Relu2 Dropout2(0.2) Affine3 SoftmaxWithLoss; init he; optimizer adam (beta1 0.9, beta2 0.999); weight decay 0.1; 300 training images"),
        "{out}"
    );
    // 300 images at batch 100: 3 iterations per epoch, as the book counts.
    assert!(
        out.contains("(3 per epoch)") && out.contains("epoch   2  iter      6"),
        "{out}"
    );
    // The book's own runs print exactly as before.
    let plain = gpu_net(&["train", "--device", "cpu", "--iters", "1"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("layers:"));
}

/// `gpu-net ARGS` (a shell line after the binary) on a pseudo-terminal, as
/// `script` (util-linux) runs it: its status and what the terminal showed.
fn on_a_terminal(shell: &str) -> (bool, String) {
    let bin = env!("CARGO_BIN_EXE_gpu-net");
    let line = shell.replace("gpu-net", bin);
    let o = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("script (util-linux) runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// On a terminal, the line shown while the kernels compile promises a cache
/// only where the backend keeps one (GL compiles every run).
fn compiling_note_says_when_shaders_are_cached() {
    for (backend, cached) in [("gl", false), ("vulkan", true)] {
        let wanted = gpu_net::gpu::adapter::parse_backends(backend).unwrap();
        if !gpu_net::gpu::adapter::missing_backends(wanted).is_empty() {
            continue; // no adapter on that backend here
        }
        let (ok, tty) = on_a_terminal(&format!(
            "gpu-net train --backend {backend} --iters 1 --batch 10"
        ));
        assert!(ok, "{tty}");
        assert!(tty.contains("compiling shaders"), "{backend}: {tty}");
        assert_eq!(tty.contains("first run only"), cached, "{backend}: {tty}");
    }
}

#[test]
fn progress_bar_on_a_terminal_only() {
    compiling_note_says_when_shaders_are_cached();
    let (ok, tty) = on_a_terminal("gpu-net train --device cpu --iters 40 --batch 50");
    assert!(ok, "{tty}");
    assert!(
        tty.contains("iter ") && tty.contains("samples/s") && tty.contains(" left"),
        "{tty}"
    );
    // On an 80-column terminal no line of it is wider.
    let (_, tty) = on_a_terminal("stty cols 80; gpu-net train --device cpu --iters 400 --batch 50");
    let mut plain = String::new();
    let mut chars = tty.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence: ESC [ ... final letter.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let bars: Vec<&str> = plain
        .split(['\r', '\n'])
        .filter(|l| l.contains(" left"))
        .collect();
    assert!(!bars.is_empty(), "{plain}");
    for line in bars {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    // Piped, and with --json: not a trace of it.
    for args in [
        &["train", "--device", "cpu", "--iters", "40", "--batch", "50"][..],
        &[
            "train", "--device", "cpu", "--iters", "40", "--batch", "50", "--json",
        ][..],
    ] {
        let o = gpu_net(args);
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(
            !all.contains(" left") && !all.contains('\u{1b}'),
            "{args:?}: {all}"
        );
    }
}

#[test]
fn a_diverging_run_stops_with_exit_1_and_writes_no_checkpoint() {
    if common::gpu().is_none() {
        return;
    }
    let path = std::env::temp_dir().join(format!("gpu-net-nan-{}.safetensors", std::process::id()));
    let o = gpu_net(&[
        "train",
        "--device",
        "gpu",
        "--lr",
        "1e10",
        "--iters",
        "700",
        "--save",
        path.to_str().unwrap(),
    ]);
    assert_fails_output(
        &o,
        1,
        &["training loss is NaN", "iterations 1..600", "lower --lr"],
    );
    assert!(
        !path.exists(),
        "a checkpoint was written from a diverged run"
    );
    // An init past any usual value is named instead of the learning rate.
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--init",
        "1e38",
        "--iters",
        "2",
        "--train-size",
        "100",
    ]);
    assert_fails_output(&o, 1, &["smaller --init", "1e38"]);
    assert!(!stderr(&o).contains("--lr"), "{}", stderr(&o));
}

fn assert_fails_output(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
}

#[test]
fn a_headless_first_run_prints_no_driver_noise() {
    // Without XDG_RUNTIME_DIR (a fresh headless machine), Mesa's drivers
    // would print "XDG_RUNTIME_DIR is invalid or not set" twice.
    for env in [None, Some("/nonexistent-runtime-dir")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpu-net"));
        cmd.args(["train", "--iters", "1", "--batch", "10"]);
        match env {
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
            Some(v) => cmd.env("XDG_RUNTIME_DIR", v),
        };
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            !stderr(&o).contains("XDG_RUNTIME_DIR"),
            "{env:?}: {}",
            stderr(&o)
        );
    }
}

/// Every numeric flag's documented range: (commands, flag, least, most).
/// `None` for a bound that is not a number of its own (the training set's
/// size). `--matmul` takes M,N,K, each in the range; `--seconds` and
/// `--tolerance-scale` are real numbers above their least value.
const RANGES: &[(&[&str], &str, &str, Option<&str>)] = &[
    (
        &["train", "verify", "bench"],
        "--batch",
        "1",
        Some("1048576"),
    ),
    (&["bench"], "--matmul", "1", Some("1048576")),
    (&["train"], "--iters", "1", Some("1000000000")),
    (&["train"], "--epochs", "1", Some("100000")),
    (&["train", "bench"], "--steps-per-submit", "1", Some("1024")),
    (&["train"], "--train-size", "1", None),
    (&["verify"], "--sample", "1", Some("134217728")),
    (&["bench"], "--repeats", "1", Some("1000")),
    (&["bench"], "--split-k", "1", Some("1024")),
    (&["bench"], "--seconds", "0", Some("3600")),
    (&["verify"], "--tolerance-scale", "0", Some("1")),
    (&["experiment"], "--iters", "1", Some("100000")),
    (&["experiment"], "--epochs", "1", Some("100000")),
    (&["experiment"], "--trials", "1", Some("100000")),
    (&["experiment"], "--stds", "1", Some("16")),
    (
        &["train", "verify", "bench"],
        "--filter-num",
        "1",
        Some("65536"),
    ),
    (
        &["train", "verify", "bench"],
        "--filter-size",
        "1",
        Some("65536"),
    ),
    (
        &["train", "verify", "bench"],
        "--stride",
        "1",
        Some("65536"),
    ),
    (&["train", "verify", "bench"], "--pad", "0", Some("65536")),
    (
        &["train", "verify", "bench"],
        "--hidden",
        "1",
        Some("65536"),
    ),
    (
        &["train", "verify", "experiment"],
        "--seed",
        "0",
        Some("18446744073709551615"),
    ),
];

/// The limits table in docs/cli.md: (commands, flag, range) per row.
fn readme_ranges() -> Vec<(String, String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let section = readme
        .split("\n### Limits\n")
        .nth(1)
        .expect("docs/cli.md has a Limits section");
    section
        .lines()
        .take_while(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with("| "))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].to_string(),
                cells[2].to_string(),
                cells[3].to_string(),
            )
        })
        .collect()
}

#[test]
fn every_numeric_flag_refuses_values_past_its_documented_range() {
    let missing = std::env::temp_dir().join("gpu-net-cli-no-data");
    let _ = std::fs::create_dir_all(&missing);
    let data = missing.to_str().unwrap();
    let readme = readme_ranges();
    for &(commands, flag, least, most) in RANGES {
        for &cmd in commands {
            let run = |value: &str| {
                let value = if flag == "--matmul" {
                    format!("{value},1,1")
                } else {
                    value.to_string()
                };
                let mut args = vec![cmd];
                if cmd == "experiment" {
                    // One that takes the flag (the others refuse it).
                    args.push(match flag {
                        "--iters" => "optimizer-compare",
                        "--trials" => "hyperparameter-search",
                        "--stds" => "batch-norm",
                        _ => "dropout",
                    });
                }
                if ["--filter-num", "--filter-size", "--stride", "--pad"].contains(&flag) {
                    args.extend(["--net", "simple-convnet"]);
                }
                if flag == "--split-k" {
                    args.extend(["--matmul", "4,4,4"]);
                }
                args.extend([flag, &value, "--data", data]);
                (gpu_net(&args), args.join(" "))
            };
            // Inside the range the flag parses and the run stops at the
            // missing data (exit 1); one past either end is a usage error
            // naming the flag.
            let inside = |value: &str| {
                let (o, args) = run(value);
                let err = stderr(&o);
                assert_eq!(o.status.code(), Some(1), "{args}: {err}");
                assert!(err.contains("train-images-idx3-ubyte"), "{args}: {err}");
            };
            let outside = |value: &str| {
                let (o, args) = run(value);
                let err = stderr(&o);
                assert_eq!(o.status.code(), Some(2), "{args}: {err}");
                assert!(
                    err.contains(flag) && !err.contains("panicked"),
                    "{args}: {err}"
                );
            };
            let n = |v: &str| v.parse::<u128>().unwrap();
            if ["--seconds", "--tolerance-scale"].contains(&flag) {
                // Real numbers in (least, most]: least itself is outside.
                let most = most.unwrap();
                outside(least);
                inside("0.001");
                inside(most);
                outside(&(most.parse::<f64>().unwrap() + 0.5).to_string());
            } else {
                if n(least) > 0 {
                    outside(&(n(least) - 1).to_string());
                }
                inside(least);
                if let Some(most) = most {
                    inside(most);
                    outside(&(n(most) + 1).to_string());
                }
            }
            // docs/cli.md lists the same range.
            let (_, _, range) = readme
                .iter()
                .find(|(cmds, f, _)| *f == format!("`{flag}`") && cmds.contains(cmd))
                .unwrap_or_else(|| panic!("docs/cli.md's Limits list no range for {cmd} {flag}"));
            let want = format!("{least} to {}", most.unwrap_or(""));
            let at = range.find(&want).map(|i| i + want.len());
            let whole =
                at.is_some_and(|end| !range[end..].starts_with(|c: char| c.is_ascii_digit()));
            assert!(
                whole,
                "docs/cli.md: {cmd} {flag} is {range:?}, not {want:?}"
            );
        }
    }
    // Epochs within range whose iterations are not.
    assert_fails(
        &["train", "--epochs", "100000", "--batch", "1"],
        2,
        &[
            "--epochs 100000",
            "60000 iterations per epoch",
            "1000000000",
        ],
    );
    // A count too large for any integer type is refused the same way.
    assert_fails(
        &["bench", "--repeats", "10000000000000000000000"],
        2,
        &["--repeats", "limit"],
    );
}

/// `gpu-net args` with `GPU_NET_CPU_MEMORY` set to `limit`.
fn with_cpu_limit(limit: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env("GPU_NET_CPU_MEMORY", limit)
        .output()
        .expect("gpu-net runs")
}

#[test]
fn the_cpu_path_refuses_what_it_cannot_hold_before_running() {
    // Batch 8192 on the CPU path needs about 170 MB: refused under a 64 MB
    // limit (naming the flag and the variable), run under 1 GB.
    let args = [
        "train", "--device", "cpu", "--batch", "8192", "--iters", "1",
    ];
    let o = with_cpu_limit("64M", &args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for needle in [
        "--batch 8192",
        "on the CPU path",
        "about 164 MiB",
        "limit of 64 MiB",
        "GPU_NET_CPU_MEMORY=1G",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!String::from_utf8_lossy(&o.stdout).contains("epoch"));
    let o = with_cpu_limit("1G", &args);
    assert!(o.status.success(), "{}", stderr(&o));
    // bench --cpu and verify are held to the same limit, before any work.
    let o = with_cpu_limit(
        "1M",
        &["bench", "--cpu", "--batch", "100", "--hidden", "50"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("bench --cpu of 784-50-10 at --batch 100"));
    let o = with_cpu_limit("1M", &["verify", "--hidden", "50"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("verify of 784-50-10 at --batch 3"));
    let d = std::env::temp_dir().join(format!("gpu-net-cli-mem-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let model = d.join("m.safetensors");
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "1",
        "--hidden",
        "10",
        "--save",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = with_cpu_limit(
        "1M",
        &[
            "eval",
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("evaluating") && stderr(&o).contains("m.safetensors"),
        "{}",
        stderr(&o)
    );
    // eval has no --batch or --hidden to offer.
    assert!(
        stderr(&o).contains("--device gpu") && !stderr(&o).contains("--batch"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&d).ok();
    // A value that is not a size names the variable.
    let o = with_cpu_limit("lots", &args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("GPU_NET_CPU_MEMORY=\"lots\" is not a size"));
    // The default limit: 2^20 rows would be 20 GiB. Under a 2 GB address
    // space, a regression aborts here instead of filling the machine.
    let bin = env!("CARGO_BIN_EXE_gpu-net");
    let o = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -v 2000000; exec {bin} train --device cpu --batch 1048576 --iters 1"),
        ])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env_remove("GPU_NET_CPU_MEMORY")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("20.3 GiB") && err.contains("limit of 4.0 GiB"),
        "{err}"
    );
}

#[test]
fn the_idx_limit_is_a_variable_and_names_the_file() {
    let o = Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["train", "--device", "cpu", "--iters", "1"])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env("GPU_NET_IDX_LIMIT", "1M")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("train-images-idx3-ubyte.gz")
            && err.contains("47040000 data bytes")
            && err.contains("GPU_NET_IDX_LIMIT"),
        "{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["train", "--device", "cpu", "--iters", "1"])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env("GPU_NET_IDX_LIMIT", "50M")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // A value that means nothing is a usage error, as WGPU_BACKEND's is.
    for (var, value, device) in [
        ("GPU_NET_IDX_LIMIT", "junk", "cpu"),
        ("GPU_NET_CPU_MEMORY", "junk", "cpu"),
        ("WGPU_BACKEND", "bogus", "auto"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_gpu-net"))
            .args(["train", "--device", device, "--iters", "1"])
            .env("XDG_RUNTIME_DIR", "/tmp")
            .env(var, value)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{var}={value}: {err}");
        assert!(err.contains(var), "{err}");
    }
}

#[test]
fn epochs_count_the_books_iterations_and_report_each() {
    // 250 images at batch 100: 2 iterations per epoch (the book's count
    // drops the remainder), so --epochs 3 is 6 iterations, reported thrice.
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--train-size",
        "250",
        "--epochs",
        "3",
        "--json",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("6 iterations of batch 100 (2 per epoch)"),
        "{err}"
    );
    let epochs: Vec<&str> = err.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 3, "{err}");
    for (line, (e, i)) in epochs.iter().zip([(1, 2), (2, 4), (3, 6)]) {
        assert!(
            line.starts_with(&format!("epoch {e:>3}  iter {i:>6}  loss")),
            "{line}"
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["iters"], 6);
}

/// Environment that hides every adapter from wgpu on Linux: no Vulkan
/// driver manifests (either loader's variable) and no EGL vendor for GL.
const NO_ADAPTER: [(&str, &str); 3] = [
    ("VK_ICD_FILENAMES", "/nonexistent/icd.json"),
    ("VK_DRIVER_FILES", "/nonexistent/icd.json"),
    ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json"),
];

fn without_adapters(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpu-net"));
    // No backend chosen (CI sets WGPU_BACKEND): with one chosen, a missing
    // adapter is an error rather than a fallback (tests/backends.rs).
    cmd.args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env_remove("WGPU_BACKEND")
        .env_remove("WGPU_ADAPTER_NAME");
    for (k, v) in NO_ADAPTER {
        cmd.env(k, v);
    }
    cmd.output().expect("gpu-net runs")
}

#[test]
fn device_auto_falls_back_to_the_cpu_without_an_adapter() {
    let listed = without_adapters(&["devices"]);
    if listed.status.success() {
        // Elsewhere (Metal, DX12) these variables hide nothing; on Linux
        // they must, or the fallback would go untested.
        if cfg!(target_os = "linux") {
            panic!("adapters still listed: {listed:?}");
        }
        eprintln!("skipping: cannot hide this platform's adapters");
        return;
    }
    let o = without_adapters(&["train", "--iters", "3", "--batch", "10", "--json"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: no GPU adapter found")
            && err.contains("training on the CPU instead"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["device"].as_str().unwrap().starts_with("cpu"), "{v}");
    assert_eq!(v["iters"], 3);
    // --device gpu makes the same situation an error that says what to install.
    let o = without_adapters(&["train", "--device", "gpu", "--iters", "3"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no GPU adapter found") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
}

#[test]
fn settings_that_usually_fail_get_one_line_naming_the_usual_value() {
    let base = [
        "train",
        "--device",
        "CPU",
        "--iters",
        "1",
        "--train-size",
        "100",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        let o = gpu_net(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(run(&["--optimizer", "Adam"]).contains("the book uses --lr 0.001 for Adam"));
    assert!(!run(&["--optimizer", "adam", "--lr", "0.001"]).contains("--lr 0.001"));
    assert!(run(&["--hidden", "20,10"]).contains("--init he is the usual choice"));
    assert!(!run(&["--hidden", "20,10", "--init", "he"]).contains("usual choice"));
    let book = run(&[]);
    assert!(!book.contains("note:"), "the book's run gets no advice");
    // Sizes as verify writes them, and counts in the singular when one.
    assert!(
        book.contains("network 784-50-10, 39760 parameters; 1 iteration of batch 100"),
        "{book}"
    );
    assert!(book.contains("done: 1 iteration in"), "{book}");
    // A software adapter says what it is.
    if let Some(ctx) = common::gpu() {
        let o = gpu_net(&[
            "train",
            "--device",
            "gpu",
            "--iters",
            "1",
            "--train-size",
            "100",
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.contains("software adapter"), ctx.is_software(), "{out}");
        // So does an experiment, which trains too.
        let o = gpu_net(&[
            "experiment",
            "weight-init-compare",
            "--device",
            "gpu",
            "--iters",
            "1",
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(out.contains("software adapter"), ctx.is_software(), "{out}");
    }
}

#[test]
fn data_mistakes_are_told_apart() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let pics = std::env::temp_dir().join(format!("gpu-net-cli-pics-{}", std::process::id()));
    std::fs::create_dir_all(&pics).unwrap();
    std::fs::write(pics.join("seven.png"), b"not really").unwrap();
    // A real model, so eval gets as far as the data.
    let model = pics.join("m.st");
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "1",
        "--hidden",
        "4",
        "--save",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let parent = root.join("data");
    let gz = root.join("data/mnist/t10k-images-idx3-ubyte.gz");
    let cases: [(&std::path::Path, &[&str]); 4] = [
        (
            std::path::Path::new("/nonexistent/mnist"),
            &["/nonexistent/mnist", "does not exist"],
        ),
        (&parent, &["did you mean --data", "mnist"]),
        (&gz, &["is a file", "--data takes the folder"]),
        (&pics, &["image folders are not IDX data"]),
    ];
    for (dir, needles) in cases {
        let args = [
            "train",
            "--device",
            "cpu",
            "--iters",
            "1",
            "--data",
            dir.to_str().unwrap(),
        ];
        assert_fails(&args, 1, needles);
        let args = [
            "eval",
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "--data",
            dir.to_str().unwrap(),
        ];
        assert_fails(&args, 1, needles);
    }
    std::fs::remove_dir_all(&pics).ok();
}

#[test]
fn experiment_flags_that_do_not_apply_are_usage_errors() {
    assert_fails(
        &["experiment", "weight-decay", "--iters", "5"],
        2,
        &["--iters does not apply to weight-decay", "--epochs"],
    );
    assert_fails(
        &[
            "experiment",
            "optimizer-compare",
            "--trials",
            "3",
            "--stds",
            "2",
        ],
        2,
        &["--trials does not apply to optimizer-compare", "--iters"],
    );
}

#[test]
fn train_help_groups_its_flags_and_bench_prints_its_table_once() {
    let o = gpu_net(&["train", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for heading in [
        "Training:",
        "Model:",
        "Optimizer:",
        "Data:",
        "Output:",
        "Device:",
    ] {
        assert!(help.contains(heading), "{heading:?} not in {help}");
    }
    // The result lines as they come go to stderr; stdout holds the table.
    let o = gpu_net(&[
        "bench",
        "--cpu",
        "--batch",
        "10",
        "--hidden",
        "5",
        "--seconds",
        "0.05",
        "--repeats",
        "1",
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "{err}");
    let progress: Vec<&str> = err.lines().filter(|l| l.contains("steps/s")).collect();
    assert!(!progress.is_empty(), "{err}");
    for line in progress {
        assert!(!out.contains(line.trim()), "{line:?} printed twice");
    }
    assert!(out.contains("steps/s"), "{out}");
}

#[test]
fn bench_takes_networks_as_train_writes_them() {
    // The hidden sizes of each network bench timed on the CPU path.
    let nets = |hidden: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec![
            "bench",
            "--cpu",
            "--json",
            "--batch",
            "10",
            "--seconds",
            "0.02",
            "--repeats",
            "1",
        ];
        for h in hidden {
            args.extend(["--hidden", h]);
        }
        let o = gpu_net(&args);
        assert!(o.status.success(), "{hidden:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == "cpu")
            .map(|r| r["hidden"].clone())
            .collect()
    };
    let (one, two) = (serde_json::json!([8, 4]), serde_json::json!([8]));
    assert_eq!(
        nets(&["8,4"]),
        std::slice::from_ref(&one),
        "784-8-4-10, as in train"
    );
    assert_eq!(nets(&["8,4", "8"]), [one.clone(), two.clone()]);
    assert_eq!(nets(&["8,4;8"]), [one, two]);
}

#[test]
fn an_epoch_cut_short_says_so() {
    // 1000 images at batch 100: 10 iterations an epoch; 25 end half way
    // through the third.
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--train-size",
        "1000",
        "--hidden",
        "4",
        "--iters",
        "25",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    let epochs: Vec<&str> = out.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 3, "{out}");
    assert!(
        !epochs[0].contains("partial") && !epochs[1].contains("partial"),
        "{out}"
    );
    assert!(
        epochs[2].ends_with("(partial: 5 of 10 iterations)"),
        "{out}"
    );
}

/// `--net simple-convnet`'s shapes that cannot work are usage errors naming
/// the flag and the sizes, before any training.
#[test]
fn simple_convnet_shapes_that_cannot_work_are_refused() {
    let conv = |extra: &[&str]| {
        let mut args = vec!["train", "--net", "simple-convnet", "--iters", "1"];
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    for (extra, needles) in [
        (
            &["--filter-size", "31"][..],
            &[
                "the convolution: its filter's height 31 is larger than the padded image's height 28",
            ][..],
        ),
        (
            &["--filter-size", "4", "--pad", "1"],
            &[
                "the 2×2 max pooling after it: its output height (27 - 2) / 2 + 1 is not a whole number",
                "the convolution's output's height of 27",
            ],
        ),
        (
            &["--filter-size", "28"],
            &[
                "the 2×2 max pooling after it: its window's height 2 is larger than the convolution's output's height 1",
            ],
        ),
        (
            &["--filter-num", "65536", "--filter-size", "1"],
            &[
                "--net simple-convnet: input 1×28×28, 65536 filters",
                "pools each image to 12845056 values",
            ],
        ),
        (
            &["--filter-size", "5", "--stride", "2"],
            &["(28 - 5) / 2 + 1 is not a whole number"],
        ),
        (&["--stride", "0"], &["--stride", "0"]),
        (&["--filter-num", "0"], &["--filter-num", "0"]),
        (
            &["--input-dim", "3,28,28"],
            &["--input-dim 3,28,28 is 2352 values an image", "784"],
        ),
        (&["--input-dim", "1,28"], &["not three sizes C,H,W"]),
        (&["--batchnorm"], &["no Batch Normalization or Dropout"]),
        (
            &["--dropout", "0.5"],
            &["no Batch Normalization or Dropout"],
        ),
    ] {
        let args = conv(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_fails(&args, 2, needles);
    }
    // A convolution's flag without the convolution.
    assert_fails(
        &["train", "--filter-num", "3", "--iters", "1"],
        2,
        &["--filter-num", "--net simple-convnet"],
    );
    assert_fails(
        &["verify", "--net", "simple-convnet", "--filter-size", "29"],
        2,
        &["larger than the padded image"],
    );
    assert_fails(
        &[
            "bench",
            "--net",
            "simple-convnet",
            "--pad",
            "1",
            "--filter-size",
            "4",
        ],
        2,
        &["not a whole number"],
    );
}

/// A SimpleConvNet trains, saves, evaluates, predicts, shows its filters
/// and resumes; given to `--resume` as another network, it is refused.
#[test]
fn a_simple_convnet_checkpoint_works_with_every_command() {
    if common::gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("gpu-net-cli-convnet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = dir.join("conv.safetensors");
    let ck = ck.to_str().unwrap();
    let train = [
        "train",
        "--net",
        "simple-convnet",
        "--filter-num",
        "4",
        "--hidden",
        "16",
        "--iters",
        "30",
        "--batch",
        "20",
        "--train-size",
        "600",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--save",
        ck,
    ];
    let o = gpu_net(&train);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("Conv1 Relu1 Pool1 Affine1 Relu2 Affine2"),
        "{said}"
    );
    let o = gpu_net(&["eval", "--model", ck]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seven = concat!(env!("CARGO_MANIFEST_DIR"), "/data/examples/seven-photo.png");
    let o = gpu_net(&["predict", "--model", ck, seven]);
    assert!(o.status.success(), "{}", stderr(&o));
    for initial in [false, true] {
        let png = dir.join(format!("filters-{initial}.png"));
        let mut args = vec!["show-weights", "--model", ck, "-o", png.to_str().unwrap()];
        if initial {
            args.push("--initial");
        }
        let o = gpu_net(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("4 filters of W1"), "{out}");
        assert_eq!(image_size(&png), (2 * 81 + 1, 2 * 81 + 1), "{png:?}");
    }
    let o = gpu_net(&["train", "--resume", ck, "--iters", "40"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails(
        &["train", "--resume", ck, "--net", "mlp"],
        2,
        &["--net mlp contradicts the checkpoint's simple-convnet"],
    );
    assert_fails(
        &[
            "train",
            "--resume",
            ck,
            "--net",
            "simple-convnet",
            "--filter-num",
            "5",
        ],
        2,
        &["contradicts the checkpoint's simple-convnet (input 1×28×28, 4 filters"],
    );
    // A list, or deep-convnet, is a network the checkpoint's is not.
    assert_fails(
        &["train", "--resume", ck, "--net", "deep-convnet"],
        2,
        &["--net deep-convnet contradicts the checkpoint's simple-convnet"],
    );
    assert_fails(
        &[
            "train",
            "--resume",
            ck,
            "--net",
            "affine 50, relu, affine 10",
        ],
        2,
        &["--net \"input 1x28x28, affine 50, relu, affine 10, softmax\" contradicts"],
    );
    // The convolution's flags alone: the checkpoint says them.
    assert_fails(
        &["train", "--resume", ck, "--filter-size", "5"],
        2,
        &[
            "--filter-size is a setting of the convolution, which a resumed run takes from its checkpoint",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn image_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    // PNG: the IHDR chunk's width and height, big-endian, at bytes 16..24.
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}
