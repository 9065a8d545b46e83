//! `gpu-net plot`: learning curves from `train --metrics` CSV files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::args::UsageError;
use super::output;

#[derive(Args)]
pub struct PlotArgs {
    /// `train --metrics` CSV files, one run's curves each (the legend names the
    /// file), or one `experiment --out` table (its script's figure).
    #[arg(required = true)]
    pub csv: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(short, long)]
    pub out: PathBuf,
}

pub fn run(args: PlotArgs) -> anyhow::Result<ExitCode> {
    use gpu_net::report::plot::{self, Table};
    let mut runs = vec![];
    for p in &args.csv {
        match plot::read_csv(p)? {
            Table::Metrics(c) => runs.push(c),
            Table::Experiment(figure) if args.csv.len() == 1 => {
                plot::write(&figure, &args.out)?;
                let panels = figure.panels.len();
                let what = if panels == 1 {
                    "1 panel".into()
                } else {
                    format!("{panels} panels")
                };
                output::print(&format!("{what} written to {}\n", args.out.display()));
                return Ok(ExitCode::SUCCESS);
            }
            Table::Experiment(_) => {
                return Err(UsageError(format!(
                    "{}: an experiment's table is drawn alone, not with other CSV files",
                    p.display()
                ))
                .into());
            }
        }
    }
    plot::draw(&runs, &args.out)?;
    let curves = match runs.len() {
        1 => "1 run's curves".to_string(),
        n => format!("{n} runs' curves"),
    };
    output::print(&format!("{curves} written to {}\n", args.out.display()));
    Ok(ExitCode::SUCCESS)
}
