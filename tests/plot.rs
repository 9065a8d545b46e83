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
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 runs' curves written"));
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
    // A file the figure would replace that is not SVG (a checkpoint named
    // without an extension) is refused and kept; an SVG is replaced.
    let metrics = d.join("run.csv");
    std::fs::write(&metrics, "epoch,iteration,loss,train_accuracy,test_accuracy,seconds,samples_per_sec\n1,600,0.5,0.9,0.9,1,1\n").unwrap();
    let model = d.join("mymodel");
    std::fs::write(&model, b"\x08\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    let o = gpu_net(&[
        "plot",
        metrics.to_str().unwrap(),
        "-o",
        model.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("mymodel") && err.contains("not SVG"), "{err}");
    assert!(std::fs::read(&model).unwrap().starts_with(b"\x08"));
    for _ in 0..2 {
        let o = gpu_net(&[
            "plot",
            metrics.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Every `polyline` of the SVG: its number of points and its stroke.
fn lines_of(svg: &str) -> Vec<(usize, String)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .map(|n| {
            let points = n
                .attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count();
            (points, n.attribute("stroke").unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn one_epoch_long_names_and_the_legend_are_drawn_as_they_are() {
    use gpu_net::report::plot::{Curves, draw};
    let d = std::env::temp_dir().join(format!("gpu-net-plot-one-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let out = d.join("one.svg");
    let mut run = Curves::named("a-run-whose-name-goes-on-and-on-for-ever".into());
    run.push(1, 0.7, 0.9, 0.91);
    draw(&[run], &out).unwrap();
    let svg = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // A single point still shows: a marker on each of its three curves.
    let circles = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "circle")
        .count();
    assert!(circles >= 3, "{circles} markers");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    // Names cut to 28 characters, each curve still named; whole epochs
    // only on the axis ("0" and "1", where the y axes read "0.0" to "1.0").
    let cut = "a-run-whose-name-goes-on-an…";
    for label in [
        format!("{cut} train"),
        format!("{cut} test"),
        cut.to_string(),
    ] {
        assert!(texts.contains(&label), "{label:?} not in {texts:?}");
    }
    assert!(
        texts.iter().any(|t| t == "0") && texts.iter().any(|t| t == "1"),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .all(|t| t.chars().count() <= 28 + " train".len()),
        "{texts:?}"
    );
    // The legend draws the dashed test curve as two dashes, the solid ones
    // as one stroke: 2-point paths for train (1), test (2) and loss (1).
    let run_colour = lines_of(&svg)
        .into_iter()
        .find(|(n, _)| *n == 1)
        .map(|(_, stroke)| stroke)
        .expect("the one-point curves");
    let legend = lines_of(&svg)
        .into_iter()
        .filter(|(n, stroke)| *n == 2 && *stroke == run_colour)
        .count();
    assert_eq!(legend, 4, "{:?}", lines_of(&svg));
    // train --plot without --save: "train" and "test", not "train train".
    let own = d.join("own.svg");
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--train-size",
        "200",
        "--iters",
        "2",
        "--plot",
        own.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, texts) = svg_texts(&own, 1);
    assert!(
        texts.iter().any(|t| t == "train") && texts.iter().any(|t| t == "test"),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("train train")),
        "{texts:?}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn an_experiment_table_is_drawn_as_its_scripts_figure() {
    let d = std::env::temp_dir().join(format!("gpu-net-plot-exp-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let (csv, svg) = (d.join("batch-norm.csv"), d.join("bn.svg"));
    let mut body = String::from("weight_std,series,epoch,train_acc\n");
    for w in ["1", "0.5"] {
        for e in 0..3 {
            body += &format!("{w},plain,{e},0.{e}\n{w},batchnorm,{e},0.{}\n", e + 3);
        }
    }
    std::fs::write(&csv, body).unwrap();
    let o = gpu_net(&["plot", csv.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 panels written"));
    let (_, texts) = svg_texts(&svg, 3);
    for t in [
        "W: 1",
        "W: 0.5",
        "Batch Normalization",
        "Normal (without BatchNorm)",
    ] {
        assert!(texts.iter().any(|x| x == t), "{t:?} not in {texts:?}");
    }
    // Not mixed with metrics files.
    let o = gpu_net(&[
        "plot",
        csv.to_str().unwrap(),
        csv.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // experiment --plot draws it at the end of a run.
    let fig = d.join("wi.svg");
    let o = gpu_net(&[
        "experiment",
        "weight-init-compare",
        "--device",
        "cpu",
        "--iters",
        "30",
        "--plot",
        fig.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, texts) = svg_texts(&fig, 30);
    assert!(
        texts.iter().any(|t| t.starts_with("training loss")),
        "{texts:?}"
    );
    std::fs::remove_dir_all(&d).ok();
}
