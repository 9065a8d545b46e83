//! `gpu-net predict` (classify your own images of digits) and
//! `gpu-net show-weights` (the first layer's weights as images).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use gpu_net::core::data;
use gpu_net::core::model::Params;
use gpu_net::run::checkpoint::Checkpoint;

use super::args::UsageError;
use super::output;

#[derive(Args)]
pub struct PredictArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    pub model: PathBuf,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Take each image as it is: already 28×28, light digit on dark, as MNIST.
    #[arg(long)]
    pub raw: bool,
    /// Print the 28×28 input the network saw, as text.
    #[arg(long)]
    pub show: bool,
    /// Dark ink on light paper (yes), light ink on dark as MNIST (no), or
    /// decided from each picture (auto: the median pixel is paper).
    #[arg(long, value_enum, ignore_case = true, default_value_t = InvertArg::Auto)]
    pub invert: InvertArg,
    /// Print a JSON list of {file, label, probabilities} instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum InvertArg {
    Auto,
    Yes,
    No,
}

impl From<InvertArg> for gpu_net::report::predict::Invert {
    fn from(a: InvertArg) -> Self {
        match a {
            InvertArg::Auto => Self::Auto,
            InvertArg::Yes => Self::Yes,
            InvertArg::No => Self::No,
        }
    }
}

#[derive(Args)]
pub struct ShowWeightsArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    pub model: PathBuf,
    /// The image to write (.png, .jpg, .bmp or .pgm).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Pixels a weight of a 28×28 tile, 1 to 16 (3: tiles of 84 pixels);
    /// a convolution's smaller filters are drawn at about the same size.
    #[arg(long, default_value_t = gpu_net::report::predict::DEFAULT_SCALE, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub scale: u32,
    /// Draw the weights the run started from (its seed and init give them
    /// exactly), as the book's visualize_filter.py shows them before training.
    #[arg(long)]
    pub initial: bool,
}

pub fn run(args: PredictArgs) -> anyhow::Result<ExitCode> {
    use gpu_net::report::predict;
    let ck = Checkpoint::read(&args.model)?;
    let arch = &ck.params.arch;
    anyhow::ensure!(
        arch.inputs() == predict::SIDE * predict::SIDE && arch.outputs() == data::CLASSES,
        "{}: the network {} does not take 28×28 images into 10 classes",
        args.model.display(),
        arch.shape()
    );
    let (mut results, mut failed) = (Vec::new(), 0);
    for path in &args.images {
        let pixels = match predict::load(path, args.raw, args.invert.into()) {
            Ok(p) => p,
            Err(e) => {
                say_err!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let p = predict::classify(&ck.params, &pixels);
        let order = predict::ranked(&p);
        if !args.json {
            let top: Vec<String> = order[..3]
                .iter()
                .map(|&c| format!("{c} ({:.3})", p[c]))
                .collect();
            output::print(&format!("{}: {}\n", path.display(), top.join("  ")));
            if args.show {
                output::print(&predict::show(&pixels));
            }
        }
        results.push(serde_json::json!({
            "file": path.display().to_string(),
            "label": order[0],
            "probabilities": p,
        }));
    }
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&results)?));
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run_show_weights(args: ShowWeightsArgs) -> anyhow::Result<ExitCode> {
    use gpu_net::report::predict::{Tiles, weight_grid};
    if gpu_net::core::files::same_file(&args.out, &args.model) {
        return Err(UsageError(format!(
            "-o {} and --model {} are one file: the picture would overwrite the checkpoint it draws",
            args.out.display(),
            args.model.display()
        ))
        .into());
    }
    let ck = Checkpoint::read(&args.model)?;
    let arch = &ck.params.arch;
    gpu_net::report::predict::image_format(&args.out).context("-o")?;
    // The weights the run started from: its seed and init say them exactly.
    let params = match args.initial {
        true => Params::init_with(arch, ck.config.init, ck.config.seed),
        false => ck.params.clone(),
    };
    let Some(tiles) = Tiles::first_layer(&params) else {
        anyhow::bail!(
            "{}: the first layer takes {} inputs, not 28×28 images",
            args.model.display(),
            arch.inputs()
        );
    };
    let asked = tiles.pixels_per_weight(args.scale);
    let px = tiles.fitting(asked);
    let units = tiles.tiles.len();
    if px < asked {
        say_err!(
            "note: {units} units at --scale {} would pass {} pixels; drawing at {px} pixels a weight",
            args.scale,
            gpu_net::report::predict::MAX_GRID_PIXELS
        );
    }
    let img = weight_grid(&tiles, px);
    let (width, height) = img.dimensions();
    gpu_net::report::predict::save_image(&img.into(), &args.out).context("-o")?;
    let what = match arch.conv {
        Some(_) => "filters of W1 (channel 0)",
        None => "units of W1",
    };
    let when = if args.initial { ", as initialised" } else { "" };
    output::print(&format!(
        "{units} {what} drawn to {} ({width}×{height}){when}\n",
        args.out.display(),
    ));
    Ok(ExitCode::SUCCESS)
}
