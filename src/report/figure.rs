//! Figures as the book's scripts draw them with matplotlib: a grid of
//! panels, each with lines (solid or dashed, a marker at every point so a
//! single point shows) and a legend that draws each line as it is drawn.
//! SVG through plotters' SVG backend (no fonts needed: text is left to the
//! viewer), written whole or not at all.
//!
//! May import: files.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

/// One line of a panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Its legend entry (names cut with [`legend_name`]); empty for none.
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Its colour, as an index into plotters' 99-colour palette.
    pub colour: usize,
    pub dashed: bool,
}

/// One chart: a title, axes and lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The y axis from 0 to this (accuracy: 1.0), or the data's largest.
    pub y_max: Option<f64>,
    /// Ticks on whole numbers only (epochs, iterations).
    pub whole_x: bool,
    /// The legend in the upper right corner (falling curves, as a loss),
    /// else the lower right (rising ones, as an accuracy).
    pub legend_upper: bool,
    pub lines: Vec<Line>,
}

/// Panels in rows of `columns`.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub panels: Vec<Panel>,
    pub columns: usize,
}

/// Curves of at most this many points get a marker at each.
const MAX_MARKED: usize = 20;

/// The longest legend entry, in characters: longer names are cut with `…`.
pub const MAX_NAME: usize = 28;

/// A panel's size in pixels: larger alone, smaller in a grid.
fn panel_size(count: usize) -> (u32, u32) {
    if count <= 2 { (500, 420) } else { (320, 260) }
}

/// Draws `figure` to the SVG file `out`.
pub fn write_svg(figure: &Figure, out: &Path) -> Result<(), String> {
    let columns = figure.columns.clamp(1, figure.panels.len().max(1));
    let rows = figure.panels.len().div_ceil(columns).max(1);
    let (w, h) = panel_size(figure.panels.len());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w * columns as u32, h * rows as u32))
            .into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| format!("drawing the figure failed: {e}"))?;
        let areas = root.split_evenly((rows, columns));
        for (panel, area) in figure.panels.iter().zip(&areas) {
            draw_panel(panel, area, figure.panels.len() <= 2)
                .map_err(|e| format!("drawing the figure failed: {e}"))?;
        }
        root.present()
            .map_err(|e| format!("drawing the figure failed: {e}"))?;
    }
    crate::core::files::write(out, svg.as_bytes()).map_err(|e| e.error.to_string())
}

/// `name` cut to [`MAX_NAME`] characters, ending in `…` when cut.
pub fn legend_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME {
        return name.to_string();
    }
    let cut: String = name.chars().take(MAX_NAME - 1).collect();
    cut + "…"
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
    large: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = axes(panel, area, large)?;
    let mut named = false;
    for line in &panel.lines {
        named |= draw_line(&mut chart, line)?;
    }
    if named {
        chart
            .configure_series_labels()
            .position(if panel.legend_upper {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// The panel's caption and axes: x from 0 to the data's largest (at least
/// 1), y from 0 to `y_max` or 5% over the data's largest.
fn axes<'a, DB: DrawingBackend>(
    panel: &Panel,
    area: &'a DrawingArea<DB, Shift>,
    large: bool,
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let points = || panel.lines.iter().flat_map(|l| l.points.iter());
    let x_max = points().map(|p| p.0).fold(1.0f64, f64::max);
    let y_data = points().map(|p| p.1).fold(0.1f64, f64::max).min(1e300);
    let y_max = panel.y_max.unwrap_or(y_data * 1.05);
    let font = if large { 18 } else { 14 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", font))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    let whole = panel.whole_x;
    let ticks = if whole {
        (x_max as usize).clamp(1, 10) + 1
    } else {
        10
    };
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(ticks)
        .x_label_formatter(&|x| {
            // Whole epochs only: no tick reads 0.2 of an epoch.
            match whole {
                true if (x - x.round()).abs() > 1e-9 => String::new(),
                true => format!("{}", x.round() as i64),
                false => format!("{x}"),
            }
        })
        .draw()?;
    Ok(chart)
}

/// One line, its legend entry (drawn as the line is: two dashes, or one
/// stroke) and, on a short curve, a marker at each point; whether it has a
/// legend entry.
fn draw_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    line: &Line,
) -> Result<bool, DrawingAreaErrorKind<DB::ErrorType>> {
    let colour = Palette99::pick(line.colour).to_rgba();
    let style = colour.stroke_width(2);
    let dashed = line.dashed;
    let series = if dashed {
        chart.draw_series(DashedLineSeries::new(line.points.clone(), 6, 4, style))?
    } else {
        chart.draw_series(LineSeries::new(line.points.clone(), style))?
    };
    let named = !line.name.is_empty();
    if named {
        series.label(line.name.clone()).legend(move |(x, y)| {
            // Coordinates relative to the entry's anchor.
            let (first, second) = if dashed {
                (vec![(0, 0), (7, 0)], vec![(11, 0), (18, 0)])
            } else {
                (vec![(0, 0), (18, 0)], vec![])
            };
            EmptyElement::at((x, y))
                + PathElement::new(first, style)
                + PathElement::new(second, style)
        });
    }
    // A curve of a single point still shows; a long one stays a line.
    if line.points.len() <= MAX_MARKED {
        let markers = line
            .points
            .iter()
            .map(|&p| Circle::new(p, 3, colour.filled()));
        chart.draw_series(markers)?;
    }
    Ok(named)
}
