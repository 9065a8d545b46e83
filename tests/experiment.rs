//! `gpu-net experiment`: each of the book's chapter 6 scripts, cut short,
//! prints the script's lines and keeps one table row per point the book
//! plots; the CLI writes it as CSV and JSON.

mod common;

use gpu_net::book::experiment::{Experiment, ExperimentConfig, run};
use gpu_net::run::device::Device;

fn device() -> Device {
    common::gpu().map_or(Device::Cpu, Device::Gpu)
}

fn short(
    which: Experiment,
    cfg: ExperimentConfig,
) -> (Vec<String>, gpu_net::book::experiment::ExperimentReport) {
    let mut lines = Vec::new();
    let r = run(which, &device(), common::mnist(), &cfg, &mut |l| {
        lines.push(l)
    })
    .unwrap();
    (lines, r)
}

#[test]
fn comparisons_print_every_100_iterations_and_keep_every_loss() {
    let cfg = ExperimentConfig {
        iters: Some(101),
        ..Default::default()
    };
    let (lines, r) = short(Experiment::OptimizerCompare, cfg.clone());
    assert_eq!(r.columns, ["series", "iteration", "loss"]);
    assert_eq!(r.rows.len(), 4 * 101);
    for head in [
        "===========iteration:0===========",
        "===========iteration:100===========",
    ] {
        assert!(lines.iter().any(|l| l == head), "{lines:?}");
    }
    for name in ["SGD:", "Momentum:", "AdaGrad:", "Adam:"] {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(name)).count(),
            2,
            "{lines:?}"
        );
    }
    // Every network starts from the same weights and batch: the same first loss.
    let first: Vec<f64> = r.rows[..4]
        .iter()
        .map(|row| row[2].as_f64().unwrap())
        .collect();
    assert!(first.iter().all(|&l| l == first[0]), "{first:?}");
    // After 100 iterations the adaptive rules are ahead of plain SGD (lr 0.01).
    let loss_at = |series: &str| -> f64 {
        r.rows
            .iter()
            .filter(|row| row[0] == series && row[1].as_u64().unwrap() >= 80)
            .map(|row| row[2].as_f64().unwrap())
            .sum::<f64>()
            / 21.0
    };
    assert!(loss_at("Adam") < loss_at("SGD") && loss_at("AdaGrad") < loss_at("SGD"));

    let (lines, r) = short(Experiment::WeightInitCompare, cfg);
    assert_eq!(r.rows.len(), 3 * 101);
    assert!(lines.iter().any(|l| l.starts_with("Xavier:")), "{lines:?}");
    // std 0.01 barely learns in 100 iterations of a 5-layer network; He does.
    let last = |series: &str| {
        r.rows.iter().rfind(|row| row[0] == series).unwrap()[2]
            .as_f64()
            .unwrap()
    };
    assert!(
        last("He") < last("std=0.01") - 0.3,
        "{} vs {}",
        last("He"),
        last("std=0.01")
    );
}

#[test]
fn batch_norm_compares_both_networks_per_weight_scale() {
    let (lines, r) = short(
        Experiment::BatchNorm,
        ExperimentConfig {
            stds: Some(2),
            epochs: Some(3),
            ..Default::default()
        },
    );
    assert_eq!(r.columns, ["weight_std", "series", "epoch", "train_acc"]);
    assert_eq!(r.rows.len(), 2 * 2 * 3);
    assert_eq!(lines.iter().filter(|l| l.starts_with("epoch:")).count(), 6);
    assert!(
        lines
            .iter()
            .any(|l| l == "============== 2/16 ==============")
    );
    // numpy's logspace(0, -4, 16): 1, then 10^(-4/15).
    assert_eq!(r.rows[0][0].as_f64().unwrap(), 1.0);
    let second = r.rows[6][0].as_f64().unwrap();
    assert!((second - 10f64.powf(-4.0 / 15.0)).abs() < 1e-12, "{second}");
}

#[test]
fn overfitting_experiments_evaluate_every_epoch_of_300_images() {
    let (lines, r) = short(
        Experiment::WeightDecay,
        ExperimentConfig {
            epochs: Some(4),
            ..Default::default()
        },
    );
    assert_eq!(
        r.columns,
        [
            "epoch",
            "iteration",
            "loss",
            "train_accuracy",
            "test_accuracy",
            "seconds",
            "samples_per_sec"
        ]
    );
    // 300 images at batch 100: evaluated after iterations 1, 4, 7, 10.
    let iters: Vec<u64> = r.rows.iter().map(|row| row[1].as_u64().unwrap()).collect();
    assert_eq!(iters, [1, 4, 7, 10]);
    assert!(
        lines.iter().any(|l| l.starts_with("epoch:3, train acc:")),
        "{lines:?}"
    );
    // Train accuracy is over 300 images: a multiple of 1/300.
    let acc = r.rows[3][3].as_f64().unwrap();
    assert!((acc * 300.0 - (acc * 300.0).round()).abs() < 1e-6, "{acc}");

    let (lines, r) = short(
        Experiment::Dropout,
        ExperimentConfig {
            epochs: Some(3),
            ..Default::default()
        },
    );
    let iters: Vec<u64> = r.rows.iter().map(|row| row[1].as_u64().unwrap()).collect();
    assert_eq!(iters, [1, 4, 7]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("=== epoch:3, train acc:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "=============== Final Test Accuracy ===============")
    );
}

#[test]
fn hyperparameter_search_ranks_its_trials() {
    let csv = std::env::temp_dir().join(format!("gpu-net-hp-{}.csv", std::process::id()));
    let (lines, r) = short(
        Experiment::HyperparameterSearch,
        ExperimentConfig {
            trials: Some(3),
            epochs: Some(2),
            csv: Some(csv.clone()),
            ..Default::default()
        },
    );
    // Written row by row as the run went: the same table.
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), r.csv());
    std::fs::remove_file(&csv).ok();
    assert_eq!(r.rows.len(), 3 * 2);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("val acc:")).count(),
        3
    );
    let best: Vec<f64> = r.summary["best"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["val_acc"].as_f64().unwrap())
        .collect();
    assert_eq!(best.len(), 3);
    assert!(best.windows(2).all(|w| w[0] >= w[1]), "{best:?}");
    for row in &r.rows {
        let (lr, wd) = (row[1].as_f64().unwrap(), row[2].as_f64().unwrap());
        assert!(
            (1e-6..1e-2).contains(&lr) && (1e-8..1e-4).contains(&wd),
            "{row:?}"
        );
        // 100 validation images: accuracy in steps of 0.01.
        let v = row[5].as_f64().unwrap();
        assert!((v * 100.0 - (v * 100.0).round()).abs() < 1e-9, "{v}");
    }
    assert!(lines.iter().any(|l| l.starts_with("Best-1(val acc:")));
}

/// Under 5 training images a fifth holds none back: no trial could be
/// ranked, so the search is refused rather than ranked on accuracy 0.
#[test]
fn hyperparameter_search_refuses_data_with_no_validation_images() {
    use gpu_net::core::data::{Dataset, Mnist};
    let four = Dataset::from_parts(vec![9; 4 * 784], vec![1, 2, 3, 4], 28, 28);
    let data = Mnist {
        train: four.clone(),
        test: four,
    };
    let cfg = ExperimentConfig {
        trials: Some(1),
        epochs: Some(1),
        ..Default::default()
    };
    let e = run(
        Experiment::HyperparameterSearch,
        &Device::Cpu,
        &data,
        &cfg,
        &mut |_| {},
    )
    .expect_err("refused");
    assert!(e.is_usage(), "{e}");
    assert!(e.to_string().contains("4 leave none"), "{e}");
}

#[test]
fn cli_writes_csv_and_json_and_refuses_bad_names() {
    let dir = std::env::temp_dir().join(format!("gpu-net-exp-{}", std::process::id()));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args([
            "experiment",
            "weight-decay",
            "--epochs",
            "2",
            "--json",
            "--out",
        ])
        .arg(&dir)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["experiment"], "weight-decay");
    let csv = std::fs::read_to_string(dir.join("weight-decay.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,iteration,loss,train_accuracy,test_accuracy,seconds,samples_per_sec"
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("0,1,"), "{csv}");
    // The same columns as `train --metrics`: `gpu-net plot` draws it.
    let svg = dir.join("wd.svg");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["plot"])
        .arg(dir.join("weight-decay.csv"))
        .arg("-o")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A file at NAME.csv that is not this table (a checkpoint copied
    // there) is refused and kept.
    std::fs::write(dir.join("weight-decay.csv"), "{\"model\": 1}\n").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["experiment", "weight-decay", "--epochs", "1", "--out"])
        .arg(&dir)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("weight-decay.csv") && err.contains("not this table's header"),
        "{err}"
    );
    let kept = std::fs::read_to_string(dir.join("weight-decay.csv")).unwrap();
    assert_eq!(kept, "{\"model\": 1}\n");
    std::fs::remove_dir_all(&dir).ok();

    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["experiment", "optimiser-compare"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("optimizer-compare"));
    // --out naming a file, not a folder.
    let file = std::env::temp_dir().join(format!("gpu-net-exp-file-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["experiment", "dropout", "--epochs", "1", "--out"])
        .arg(&file)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out"));
    std::fs::remove_file(&file).ok();
}
