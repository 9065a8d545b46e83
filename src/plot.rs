//! `gpu-net plot`: the learning curves the book draws (accuracy and loss
//! against epoch) from `train --metrics` CSV files, several runs in one
//! figure with a legend naming each file, as SVG (plotters' SVG backend,
//! which needs no fonts: text is left to the viewer).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

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
}

/// The columns `train --metrics` writes.
const COLUMNS: [&str; 7] = [
    "epoch",
    "iteration",
    "loss",
    "train_accuracy",
    "test_accuracy",
    "seconds",
    "samples_per_sec",
];

/// Reads a metrics CSV: its header must be [`COLUMNS`], every value finite.
pub fn read_metrics(path: &Path) -> Result<Curves, PlotError> {
    let bad = |why: String| PlotError::Input {
        path: path.to_path_buf(),
        why,
    };
    crate::files::check_regular(path).map_err(|e| bad(e.error.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
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

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One panel: its caption, epochs 0..`max_epoch` across, 0..`y_max` up.
fn axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    y_max: f64,
    max_epoch: f64,
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..max_epoch, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

// Longer than a screen on purpose: plotters' builder calls for two
// panels, in the order they are drawn.
/// Draws accuracy (train solid, test dashed) and loss against epoch, one
/// colour per run, into an SVG at `out` (written whole or not at all; a
/// name that promises another format is refused before anything is drawn).
pub fn draw(runs: &[Curves], out: &Path) -> Result<(), PlotError> {
    let fail = |why: String| PlotError::Output {
        path: out.to_path_buf(),
        why,
    };
    check_output(out)?;
    let mut svg = String::new();
    draw_on(
        SVGBackend::with_string(&mut svg, (1000, 420)).into_drawing_area(),
        runs,
    )
    .map_err(fail)?;
    crate::files::write(out, svg.as_bytes()).map_err(|e| fail(e.error.to_string()))
}

/// Whether [`draw`] can write `out`: named `.svg` (or without an
/// extension), and writable ([`crate::files::check_writable`]).
pub fn check_output(out: &Path) -> Result<(), PlotError> {
    let fail = |why: String| PlotError::Output {
        path: out.to_path_buf(),
        why,
    };
    check_svg_name(out).map_err(fail)?;
    crate::files::check_writable(out).map_err(fail)
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

/// The figure of [`draw`] on any plotters backend.
fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    runs: &[Curves],
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("drawing the figure failed: {e}");
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(500);
    let max_epoch = runs
        .iter()
        .flat_map(|r| r.epoch.iter().copied())
        .fold(1.0f64, f64::max);
    let max_loss = runs
        .iter()
        .flat_map(|r| r.loss.iter().copied())
        .fold(0.1f64, f64::max)
        .min(1e300); // finite after the 5% headroom

    let mut acc = axes(&left, "accuracy", "accuracy", 1.0, max_epoch).map_err(|e| fail(&e))?;
    let mut loss =
        axes(&right, "training loss", "loss", max_loss * 1.05, max_epoch).map_err(|e| fail(&e))?;

    for (i, r) in runs.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = |ys: &[f64]| -> Vec<(f64, f64)> {
            r.epoch.iter().copied().zip(ys.iter().copied()).collect()
        };
        acc.draw_series(LineSeries::new(
            points(&r.train_accuracy),
            color.stroke_width(2),
        ))
        .map_err(|e| fail(&e))?
        .label(format!("{} train", r.name))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        acc.draw_series(DashedLineSeries::new(
            points(&r.test_accuracy),
            6,
            4,
            color.stroke_width(2),
        ))
        .map_err(|e| fail(&e))?
        .label(format!("{} test", r.name))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(1)));
        loss.draw_series(LineSeries::new(points(&r.loss), color.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(r.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    acc.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    loss.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
