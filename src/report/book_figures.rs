//! The figures the book's chapter 6 scripts show at their `plt.show()`, drawn
//! from the tables `gpu-net experiment` writes (by their columns, so a CSV
//! from `--out` draws the same figure as `--plot`):
//! - `series,iteration,loss` (optimizer_compare_mnist.py,
//!   weight_init_compare.py): each series' loss against iteration, smoothed
//!   as the scripts' `smooth_curve`;
//! - `weight_std,series,epoch,train_acc` (batch_norm_test.py): a panel per
//!   weight scale, Batch Normalization solid, without it dashed;
//! - `trial,lr,weight_decay,epoch,train_acc,val_acc`
//!   (hyperparameter_optimization.py): the 20 best trials by final
//!   validation accuracy, validation solid and training dashed.
//!
//! (The overfitting scripts' tables are `train --metrics` rows, drawn as
//! learning curves by `plot`.)
//!
//! May import: figure. (experiment and `train --metrics` write their
//! tables with these columns.)

use crate::report::figure::{Figure, Line, Panel};

/// The columns of `train --metrics`, also the overfitting experiments'
/// tables (so `gpu-net plot` draws both).
pub const METRICS_COLUMNS: [&str; 7] = [
    "epoch",
    "iteration",
    "loss",
    "train_accuracy",
    "test_accuracy",
    "seconds",
    "samples_per_sec",
];

/// The columns of each experiment's table (its CSV header).
pub const LOSS_COLUMNS: [&str; 3] = ["series", "iteration", "loss"];
pub const BATCH_NORM_COLUMNS: [&str; 4] = ["weight_std", "series", "epoch", "train_acc"];
pub const SEARCH_COLUMNS: [&str; 6] = [
    "trial",
    "lr",
    "weight_decay",
    "epoch",
    "train_acc",
    "val_acc",
];

/// The figure for a table with these columns and rows (CSV fields), or why
/// there is none.
pub fn from_table(columns: &[&str], rows: &[Vec<String>]) -> Result<Figure, String> {
    let num = |r: &Vec<String>, i: usize| -> Result<f64, String> {
        r.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{:?} has no number in column {}", r.join(","), columns[i]))
    };
    // A run stopped mid-row leaves a short last line: named, never indexed.
    if let Some((i, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.len() != columns.len())
    {
        return Err(format!(
            "row {} has {} fields, the header {}",
            i + 2,
            r.len(),
            columns.len()
        ));
    }
    match columns {
        c if c == LOSS_COLUMNS => loss_curves(rows, &num),
        c if c == BATCH_NORM_COLUMNS => batch_norm(rows, &num),
        c if c == SEARCH_COLUMNS => best_trials(rows, &num),
        _ => Err(format!(
            "the header {:?} is neither `train --metrics` nor an experiment's table",
            columns.join(",")
        )),
    }
}

type Num<'a> = &'a dyn Fn(&Vec<String>, usize) -> Result<f64, String>;

/// (key, points) in the order keys first appear.
fn group(
    rows: &[Vec<String>],
    key: impl Fn(&Vec<String>) -> String,
) -> Vec<(String, Vec<&Vec<String>>)> {
    let mut out: Vec<(String, Vec<&Vec<String>>)> = vec![];
    for r in rows {
        let k = key(r);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(r),
            None => out.push((k, vec![r])),
        }
    }
    out
}

fn loss_curves(rows: &[Vec<String>], num: Num) -> Result<Figure, String> {
    let mut lines = vec![];
    for (i, (name, rs)) in group(rows, |r| r[0].clone()).into_iter().enumerate() {
        let xs: Vec<f64> = rs.iter().map(|r| num(r, 1)).collect::<Result<_, _>>()?;
        let ys: Vec<f64> = rs.iter().map(|r| num(r, 2)).collect::<Result<_, _>>()?;
        let smooth = smooth_curve(&ys);
        lines.push(Line {
            name: crate::report::figure::legend_name(&name),
            points: xs.into_iter().zip(smooth).collect(),
            colour: i,
            dashed: false,
        });
    }
    Ok(Figure {
        panels: vec![Panel {
            title: "training loss (smoothed as the book's smooth_curve)".into(),
            x_label: "iterations".into(),
            y_label: "loss".into(),
            y_max: Some(
                1.0f64.max(
                    lines
                        .iter()
                        .flat_map(|l| l.points.iter().map(|p| p.1))
                        .fold(0.0, f64::max)
                        .min(2.5),
                ),
            ),
            whole_x: true,
            legend_upper: true,
            lines,
        }],
        columns: 1,
    })
}

fn batch_norm(rows: &[Vec<String>], num: Num) -> Result<Figure, String> {
    let mut panels = vec![];
    for (std, rs) in group(rows, |r| r[0].clone()) {
        let mut lines = vec![];
        for (series, rs) in group(&rs.into_iter().cloned().collect::<Vec<_>>(), |r| {
            r[1].clone()
        }) {
            let points = rs
                .iter()
                .map(|r| Ok((num(r, 2)?, num(r, 3)?)))
                .collect::<Result<Vec<_>, String>>()?;
            let bn = series != "plain";
            lines.push(Line {
                name: if bn {
                    "Batch Normalization"
                } else {
                    "Normal (without BatchNorm)"
                }
                .into(),
                points,
                colour: if bn { 0 } else { 1 },
                dashed: !bn,
            });
        }
        panels.push(Panel {
            title: format!("W: {std}"),
            x_label: "epochs".into(),
            y_label: "accuracy".into(),
            y_max: Some(1.0),
            whole_x: true,
            legend_upper: false,
            lines,
        });
    }
    Ok(Figure { panels, columns: 4 })
}

fn best_trials(rows: &[Vec<String>], num: Num) -> Result<Figure, String> {
    let mut trials = vec![];
    for (trial, rs) in group(rows, |r| r[0].clone()) {
        let val = rs
            .iter()
            .map(|r| Ok((num(r, 3)?, num(r, 5)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let train = rs
            .iter()
            .map(|r| Ok((num(r, 3)?, num(r, 4)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let (lr, wd) = (num(rs[0], 1)?, num(rs[0], 2)?);
        let last = val.last().map_or(0.0, |p| p.1);
        trials.push((last, trial, lr, wd, val, train));
    }
    // The best first, as the script sorts by final validation accuracy.
    trials.sort_by(|a, b| b.0.total_cmp(&a.0));
    let panels = trials
        .into_iter()
        .take(20)
        .enumerate()
        .map(|(i, (acc, trial, lr, wd, val, train))| Panel {
            title: format!(
                "Best-{} (trial {trial}): val acc {acc:.3}, lr {lr:.2e}, decay {wd:.2e}",
                i + 1
            ),
            x_label: "epochs".into(),
            y_label: "accuracy".into(),
            y_max: Some(1.0),
            whole_x: true,
            legend_upper: false,
            lines: vec![
                Line {
                    name: String::new(),
                    points: val,
                    colour: 0,
                    dashed: false,
                },
                Line {
                    name: String::new(),
                    points: train,
                    colour: 1,
                    dashed: true,
                },
            ],
        })
        .collect();
    Ok(Figure { panels, columns: 5 })
}

/// The book's `smooth_curve` (common/util.py): a Kaiser window of 11
/// (β = 2) over the values mirrored at both ends, the same length out.
pub fn smooth_curve(x: &[f64]) -> Vec<f64> {
    const N: usize = 11;
    if x.len() < N {
        return x.to_vec();
    }
    // s = np.r_[x[N-1:0:-1], x, x[-1:-N:-1]]: x[10..=1], x, x[L-1..=L-10]
    let mut s: Vec<f64> = x[1..N].iter().rev().copied().collect();
    s.extend_from_slice(x);
    s.extend(x[x.len() - (N - 1)..].iter().rev());
    let w: Vec<f64> = (0..N)
        .map(|n| {
            let r = 2.0 * n as f64 / (N - 1) as f64 - 1.0;
            bessel_i0(2.0 * (1.0 - r * r).sqrt()) / bessel_i0(2.0)
        })
        .collect();
    let total: f64 = w.iter().sum();
    // np.convolve(w/w.sum(), s, mode='valid'), then y[5:len(y)-5].
    let y: Vec<f64> = (0..=s.len() - N)
        .map(|i| (0..N).map(|k| w[N - 1 - k] / total * s[i + k]).sum())
        .collect();
    y[5..y.len() - 5].to_vec()
}

/// The modified Bessel function I0 (for the Kaiser window), by its series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 1..50 {
        term *= (x / 2.0) * (x / 2.0) / (k * k) as f64;
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_curve_is_the_books() {
        // numpy (the book's function): smooth_curve(np.arange(20.0) ** 2)
        // is 20 long, starts 7.69905393, 8.69905393, 11.69905393 and ends
        // 295.4264934532205.
        let x: Vec<f64> = (0..20).map(|i| (i * i) as f64).collect();
        let y = smooth_curve(&x);
        assert_eq!(y.len(), 20);
        for (got, want) in y[..3].iter().zip([7.69905393, 8.69905393, 11.69905393]) {
            assert!((got - want).abs() < 1e-7, "{got} {want}");
        }
        assert!((y[19] - 295.4264934532205).abs() < 1e-9, "{}", y[19]);
        // A linear ramp is kept away from the ends (the window is symmetric).
        let ramp: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let s = smooth_curve(&ramp);
        for i in 10..20 {
            assert!((s[i] - ramp[i]).abs() < 1e-9, "{i}: {}", s[i]);
        }
        // Kaiser(11, 2)'s ends against numpy's np.kaiser(11, 2)[0] = 0.4386762798370488
        let end = bessel_i0(0.0) / bessel_i0(2.0);
        assert!((end - 0.438_676_279_837_048_8).abs() < 1e-12, "{end}");
    }

    #[test]
    fn a_short_row_is_refused_by_its_line_not_indexed() {
        // A run stopped mid-row, as `experiment --out` can leave it.
        let rows = vec![
            vec!["1".to_string(), "bn".into(), "0".into(), "0.5".into()],
            vec!["1".to_string()],
        ];
        let e = from_table(&BATCH_NORM_COLUMNS, &rows).err().unwrap();
        assert!(e.contains("row 3 has 1 fields"), "{e}");
    }

    #[test]
    fn each_table_draws_its_scripts_figure() {
        let rows = |t: &[&[&str]]| -> Vec<Vec<String>> {
            t.iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect()
        };
        let f = from_table(
            &LOSS_COLUMNS,
            &rows(&[
                &["SGD", "0", "2.3"],
                &["Adam", "0", "2.2"],
                &["SGD", "1", "2.1"],
            ]),
        )
        .unwrap();
        assert_eq!(f.panels[0].lines.len(), 2);
        let f = from_table(
            &BATCH_NORM_COLUMNS,
            &rows(&[
                &["1", "plain", "0", "0.1"],
                &["1", "batchnorm", "0", "0.2"],
                &["0.5", "plain", "0", "0.1"],
            ]),
        )
        .unwrap();
        assert_eq!(f.panels.len(), 2);
        assert!(
            f.panels[0]
                .lines
                .iter()
                .any(|l| l.dashed && l.name.starts_with("Normal"))
        );
        let mut t = vec![];
        for trial in 0..25 {
            for epoch in 0..2 {
                let acc = format!("{}", trial as f64 / 100.0);
                t.push(vec![
                    trial.to_string(),
                    "0.001".into(),
                    "1e-6".into(),
                    epoch.to_string(),
                    acc.clone(),
                    acc,
                ]);
            }
        }
        let f = from_table(&SEARCH_COLUMNS, &t).unwrap();
        assert_eq!(f.panels.len(), 20);
        assert!(
            f.panels[0].title.starts_with("Best-1 (trial 24)"),
            "{}",
            f.panels[0].title
        );
        assert!(from_table(&["a", "b"], &[]).is_err());
        assert!(from_table(&LOSS_COLUMNS, &rows(&[&["SGD", "x", "1"]])).is_err());
    }
}
