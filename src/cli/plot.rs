//! `gpu-net plot`: learning curves from `train --metrics` CSV files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output;

#[derive(Args)]
pub struct PlotArgs {
    /// `train --metrics` CSV files, one curve each (the legend names the file).
    #[arg(required = true)]
    pub csv: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(short, long)]
    pub out: PathBuf,
}

pub fn run(args: PlotArgs) -> anyhow::Result<ExitCode> {
    let runs = args
        .csv
        .iter()
        .map(|p| gpu_net::plot::read_metrics(p))
        .collect::<Result<Vec<_>, _>>()?;
    gpu_net::plot::draw(&runs, &args.out)?;
    let curves = match runs.len() {
        1 => "1 curve".to_string(),
        n => format!("{n} curves"),
    };
    output::print(&format!("{curves} written to {}\n", args.out.display()));
    Ok(ExitCode::SUCCESS)
}
