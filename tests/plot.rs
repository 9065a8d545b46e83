//! `gpu-net plot` and `train --plot`: well-formed SVG with a curve per run
//! and a legend naming each file; bad CSVs named.

use std::process::{Command, Output};

fn gpu_net(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("gpu-net runs")
}

/// The SVG parsed: the curves (polylines of `points` points: one per
/// epoch) by stroke colour, and the texts it holds.
fn svg_texts(path: &std::path::Path, points: usize) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let lines = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| {
            n.attribute("points")
                .is_some_and(|p| p.split_whitespace().count() == points)
        })
        .map(|n| n.attribute("stroke").unwrap_or("").to_string())
        .collect();
    let texts = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    (lines, texts)
}

#[test]
fn curves_of_several_runs_in_one_figure() {
    let d = std::env::temp_dir().join(format!("gpu-net-plot-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let (a, b, svg, own) = (
        d.join("slow.csv"),
        d.join("fast.csv"),
        d.join("both.svg"),
        d.join("own.svg"),
    );
    let base = [
        "train",
        "--device",
        "cpu",
        "--train-size",
        "500",
        "--iters",
        "20",
    ];
    let o = gpu_net(
        &[
            &base[..],
            &["--lr", "0.01", "--metrics", a.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = gpu_net(
        &[
            &base[..],
            &[
                "--metrics",
                b.to_str().unwrap(),
                "--plot",
                own.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = gpu_net(&[
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // 500 images, batch 100: 5 iterations an epoch, 4 epochs. Per run a
    // solid train-accuracy curve and a loss curve of 4 points each, in the
    // run's own colour (the dashed test curve is drawn in pieces).
    let (mut lines, texts) = svg_texts(&svg, 4);
    lines.sort();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0] == lines[1] && lines[2] == lines[3] && lines[1] != lines[2],
        "{lines:?}"
    );
    for label in [
        "slow train",
        "slow test",
        "fast train",
        "fast test",
        "epoch",
        "accuracy",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "{label:?} not in {texts:?}"
        );
    }
    let (lines, _) = svg_texts(&own, 4);
    assert_eq!(lines.len(), 2, "train --plot drew {lines:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_csv_that_is_not_metrics_is_refused_by_name() {
    let d = std::env::temp_dir().join(format!("gpu-net-plot-bad-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let out = d.join("x.svg");
    for (name, body, needle) in [
        ("header.csv", "a,b\n1,2\n", "header"),
        (
            "empty.csv",
            "epoch,iteration,loss,train_accuracy,test_accuracy,seconds,samples_per_sec\n",
            "no rows",
        ),
        (
            "nan.csv",
            "epoch,iteration,loss,train_accuracy,test_accuracy,seconds,samples_per_sec\n1,2,NaN,0.5,0.5,1,1\n",
            "line 2",
        ),
    ] {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        let o = gpu_net(&["plot", p.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(name) && err.contains(needle), "{err}");
    }
    let o = gpu_net(&["plot", "/nonexistent.csv", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.csv"));
    std::fs::remove_dir_all(&d).ok();
}
