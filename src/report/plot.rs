//! `gpu-net plot`: the learning curves the book draws (accuracy and loss
//! against epoch) from `train --metrics` CSV files, several runs in one
//! figure with a legend naming each file, and an experiment's table as its
//! script's figure (`book_figures`); drawn as SVG by `figure`.
//!
//! May import: figure, book_figures, files.

use std::path::{Path, PathBuf};

use crate::report::figure::{self, Figure, Line, Panel};

/// One run's curves, read from a metrics CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct Curves {
    pub name: String,
    pub epoch: Vec<f64>,
    pub loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub test_accuracy: Vec<f64>,
}

impl Curves {
    /// No points yet; the legend will say `name`.
    pub fn named(name: String) -> Self {
        Curves {
            name,
            epoch: vec![],
            loss: vec![],
            train_accuracy: vec![],
            test_accuracy: vec![],
        }
    }

    /// One epoch's point on each curve.
    pub fn push(&mut self, epoch: usize, loss: f64, train_accuracy: f64, test_accuracy: f64) {
        self.epoch.push(epoch as f64);
        self.loss.push(loss);
        self.train_accuracy.push(train_accuracy);
        self.test_accuracy.push(test_accuracy);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{}: {why}", path.display())]
    Input { path: PathBuf, why: String },
    #[error("{}: {why}", path.display())]
    Output { path: PathBuf, why: String },
    /// An output named for a format it cannot be (a usage error).
    #[error("{}: {why}", path.display())]
    Misnamed { path: PathBuf, why: String },
}

/// A figure named for another format.
impl crate::core::error::LayerError for PlotError {
    fn is_usage(&self) -> bool {
        matches!(self, PlotError::Misnamed { .. })
    }
}

use crate::report::book_figures::METRICS_COLUMNS as COLUMNS;

/// Reads a metrics CSV: its header must be [`COLUMNS`], every value finite.
pub fn read_metrics(path: &Path) -> Result<Curves, PlotError> {
    let bad = |why: String| PlotError::Input {
        path: path.to_path_buf(),
        why,
    };
    let text = read_text(path)?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    if header.split(',').collect::<Vec<_>>() != COLUMNS {
        return Err(bad(format!(
            "the header is {header:?}; expected the `train --metrics` columns {}",
            COLUMNS.join(",")
        )));
    }
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let mut c = Curves {
        name,
        epoch: vec![],
        loss: vec![],
        train_accuracy: vec![],
        test_accuracy: vec![],
    };
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Vec<f64> = line
            .split(',')
            .map(|x| x.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect::<Option<Vec<_>>>()
            .filter(|v| v.len() == COLUMNS.len())
            .ok_or_else(|| {
                bad(format!(
                    "line {}: {line:?} is not {} finite numbers",
                    i + 2,
                    COLUMNS.len()
                ))
            })?;
        c.epoch.push(v[0]);
        c.loss.push(v[2]);
        c.train_accuracy.push(v[3]);
        c.test_accuracy.push(v[4]);
    }
    if c.epoch.is_empty() {
        return Err(bad("no rows: nothing to plot".into()));
    }
    Ok(c)
}

/// The book's learning-curve figure for runs: accuracy (train solid, test
/// dashed) and training loss against epoch, one colour per run; a run
/// without a name is labelled by its curves alone.
pub fn learning_curves(runs: &[Curves]) -> Figure {
    // The run's name cut, not the label: "… train" and "… test" stay apart.
    let label = |name: &str, what: &str| {
        if name.is_empty() {
            what.to_string()
        } else {
            format!("{} {what}", figure::legend_name(name))
        }
    };
    let points = |r: &Curves, ys: &[f64]| -> Vec<(f64, f64)> {
        r.epoch.iter().copied().zip(ys.iter().copied()).collect()
    };
    let (mut accuracy, mut loss) = (vec![], vec![]);
    for (i, r) in runs.iter().enumerate() {
        let line = |name: String, ys: &[f64], dashed| Line {
            name,
            points: points(r, ys),
            colour: i,
            dashed,
        };
        accuracy.push(line(label(&r.name, "train"), &r.train_accuracy, false));
        accuracy.push(line(label(&r.name, "test"), &r.test_accuracy, true));
        let name = if r.name.is_empty() {
            "train".into()
        } else {
            figure::legend_name(&r.name)
        };
        loss.push(line(name, &r.loss, false));
    }
    let panel = |title: &str, y: &str, y_max: Option<f64>, lines| Panel {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y.into(),
        y_max,
        whole_x: true,
        legend_upper: y_max.is_none(),
        lines,
    };
    Figure {
        panels: vec![
            panel("accuracy", "accuracy", Some(1.0), accuracy),
            panel("training loss", "loss", None, loss),
        ],
        columns: 2,
    }
}

/// Draws [`learning_curves`] into an SVG at `out` (written whole or not at
/// all; a name that promises another format is refused before anything is
/// drawn).
pub fn draw(runs: &[Curves], out: &Path) -> Result<(), PlotError> {
    write(&learning_curves(runs), out)
}

/// Draws any figure into an SVG at `out`, as [`draw`].
pub fn write(figure: &Figure, out: &Path) -> Result<(), PlotError> {
    check_output(out)?;
    figure::write_svg(figure, out).map_err(|why| PlotError::Output {
        path: out.to_path_buf(),
        why,
    })
}

/// What a CSV holds: a run's `train --metrics` rows, or an experiment's
/// table (drawn as its script's figure).
pub enum Table {
    Metrics(Curves),
    Experiment(Figure),
}

/// The figure of a table with `columns` (the `train --metrics` ones: its
/// learning curves, named `name`; an experiment's: its script's figure).
pub fn table_figure(name: &str, columns: &[&str], rows: &[Vec<String>]) -> Result<Figure, String> {
    if columns != COLUMNS {
        return crate::report::book_figures::from_table(columns, rows);
    }
    let mut c = Curves::named(name.to_string());
    for r in rows {
        let v: Vec<f64> = r.iter().map(|x| x.parse().unwrap_or(f64::NAN)).collect();
        if v.len() != COLUMNS.len() || v.iter().any(|x| !x.is_finite()) {
            return Err(format!(
                "{:?} is not {} finite numbers",
                r.join(","),
                COLUMNS.len()
            ));
        }
        c.epoch.push(v[0]);
        c.loss.push(v[2]);
        c.train_accuracy.push(v[3]);
        c.test_accuracy.push(v[4]);
    }
    Ok(learning_curves(&[c]))
}

/// A CSV's text: a regular file (never a FIFO), read whole.
fn read_text(path: &Path) -> Result<String, PlotError> {
    let bad = |why: String| PlotError::Input {
        path: path.to_path_buf(),
        why,
    };
    crate::core::files::check_regular(path).map_err(|e| bad(e.error.to_string()))?;
    std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))
}

/// Reads a `train --metrics` CSV or an `experiment --out` table.
pub fn read_csv(path: &Path) -> Result<Table, PlotError> {
    let bad = |why: String| PlotError::Input {
        path: path.to_path_buf(),
        why,
    };
    let text = read_text(path)?;
    let columns: Vec<&str> = text.lines().next().unwrap_or("").split(',').collect();
    if columns == COLUMNS {
        return read_metrics(path).map(Table::Metrics);
    }
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
        .collect();
    if rows.is_empty() {
        return Err(bad("no rows: nothing to plot".into()));
    }
    crate::report::book_figures::from_table(&columns, &rows)
        .map(Table::Experiment)
        .map_err(|why| {
            bad(format!(
                "{why} (`train --metrics` has {})",
                COLUMNS.join(",")
            ))
        })
}

/// Whether [`draw`] can write `out`: [`check_output_name`], and not
/// holding something else already (a checkpoint, notes).
pub fn check_output(out: &Path) -> Result<(), PlotError> {
    check_output_name(out)?;
    if holds_other_than_svg(out) {
        return Err(PlotError::Misnamed {
            path: out.to_path_buf(),
            why: "holds a file that is not SVG: remove it, or give another path".into(),
        });
    }
    Ok(())
}

/// Whether `out` is named `.svg` (or without an extension) and writable
/// ([`crate::core::files::check_writable`]), whatever it holds: `train`
/// asks this first, and what it holds once no two flags name one file.
pub fn check_output_name(out: &Path) -> Result<(), PlotError> {
    let fail = |why: String| PlotError::Output {
        path: out.to_path_buf(),
        why,
    };
    check_svg_name(out).map_err(|why| PlotError::Misnamed {
        path: out.to_path_buf(),
        why,
    })?;
    crate::core::files::check_writable(out).map_err(fail)
}

/// Whether `out` is a file with something in it that does not start as an
/// SVG picture does (`<svg` or an XML declaration).
fn holds_other_than_svg(out: &Path) -> bool {
    crate::core::files::head(out, 5)
        .is_some_and(|head| !(head.starts_with(b"<svg") || head.starts_with(b"<?xml")))
}

/// `.svg`, or no extension at all: a `.png` file holding SVG would not open.
fn check_svg_name(out: &Path) -> Result<(), String> {
    match out.extension().map(|e| e.to_string_lossy().to_lowercase()) {
        None => Ok(()),
        Some(e) if e == "svg" => Ok(()),
        Some(e) => Err(format!(
            "the figure is SVG: name it .svg (a .{e} file would hold SVG)"
        )),
    }
}
