//! The command line: bad input gets a clear error and exit status 2 (usage)
//! or 1 (failure), never a panic; --json prints one object on stdout.

mod common;

use std::process::{Command, Output};

fn gpu_net(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(args)
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
}

#[test]
fn device_limits_are_refused_before_gpu_work() {
    if common::gpu().is_none() {
        return;
    }
    // 200000 × 784 f32 = 627 MB of inputs: over any storage-binding limit here.
    assert_fails(
        &[
            "train", "--device", "gpu", "--batch", "200000", "--iters", "1",
        ],
        1,
        &["cannot hold", "--batch"],
    );
    assert_fails(
        &["train", "--device", "gpu", "--adapter", "99"],
        1,
        &["--adapter 99"],
    );
}
