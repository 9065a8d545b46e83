//! The parsers of flag values: each takes the text and gives the value, or
//! says what is wrong with it. The numeric ranges come from
//! `gpu_net::core::limits`, which says why each bound is what it is.

use gpu_net::core::limits;
use gpu_net::core::model::Arch;
use gpu_net::run::bench;

/// `--input-dim C,H,W`: three sizes, each a [`conv_size`].
pub fn parse_input_dim(s: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = s
        .split(',')
        .map(conv_size)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{s:?}: {e}"))?;
    dims.try_into()
        .map_err(|_| format!("{s:?} is not three sizes C,H,W (e.g. 1,28,28)"))
}

/// `--filter-num`, `--filter-size`, `--stride` and each of `--input-dim`.
pub fn conv_size(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_CONV_SIZE)
}

/// `--pad`.
pub fn conv_pad(s: &str) -> Result<usize, String> {
    limits::count(s, 0, limits::MAX_CONV_SIZE)
}

pub fn dropout_ratio(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a ratio in [0, 1)")),
    }
}

pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    limits::positive_f32(s, true)
}

pub fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number in [0, 1)")),
    }
}

/// The hidden sizes as one value (clap would split a `Vec` into many).
#[derive(Clone, Debug)]
pub struct Hidden(pub Vec<usize>);

pub fn parse_hidden(s: &str) -> Result<Hidden, String> {
    Arch::parse_hidden(s)
        .map(Hidden)
        .map_err(|e| e.to_string().trim_start_matches("--hidden: ").to_string())
}

/// Largest network file `--net` reads: a list is a few lines.
const MAX_NET_FILE: u64 = 1 << 20;

/// The network's kind, named after the book's classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetKind {
    /// MultiLayerNetExtend (chapters 5 and 6): Affine layers (`mlp`, and
    /// `two-layer` for TwoLayerNet).
    Mlp,
    /// The book's MultiLayerNet of chapter 6: by default six hidden layers of 100.
    MultiLayer,
    /// SimpleConvNet (chapter 7): Conv → Relu → Pool, then the Affine layers.
    SimpleConvnet,
    /// DeepConvNet (chapter 8), a list of layers trained by default as the
    /// book's `train_deepnet.py` trains it (Adam, lr 0.001).
    DeepConvnet,
    /// A list of layers (given, or a file holding one): its text.
    List(String),
}

impl NetKind {
    /// A list's text: DeepConvNet's, or the one given.
    pub fn list(&self) -> Option<String> {
        match self {
            NetKind::DeepConvnet => Some(gpu_net::core::network::Network::deep_convnet().text()),
            NetKind::List(text) => Some(text.clone()),
            _ => None,
        }
    }
}

/// `--net`: a preset's name, a file holding a list of layers, or a list.
pub fn parse_net(s: &str) -> Result<NetKind, String> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "mlp" | "two-layer" => NetKind::Mlp,
        "multi-layer" => NetKind::MultiLayer,
        "simple-convnet" => NetKind::SimpleConvnet,
        "deep-convnet" => NetKind::DeepConvnet,
        _ if std::path::Path::new(s).exists() => NetKind::List(read_net_file(s)?),
        // A path that names nothing: say so, rather than read it as layers.
        _ if s.contains(['/', '\\']) => return Err(format!("{s}: no such file")),
        // A list, of one layer ("affine 10") or more.
        _ if s.contains([',', '\n', ' ']) => NetKind::List(s.to_string()),
        _ => {
            return Err(format!(
                "{s:?} is not two-layer, mlp, multi-layer, simple-convnet, deep-convnet, a file, or a list of layers (\"conv 16 3x3 pad 1, relu, pool 2x2, affine 10\")"
            ));
        }
    })
}

/// A network file's text, or why it cannot be read (naming it): a folder,
/// a FIFO or a device is not a file of layers.
fn read_net_file(path: &str) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    if !meta.is_file() {
        let kind = gpu_net::core::files::kind_of(&meta);
        return Err(format!("{path} is {kind}, not a regular file"));
    }
    let len = meta.len();
    if len > MAX_NET_FILE {
        return Err(format!(
            "{path}: {len} bytes, over the {MAX_NET_FILE} a list of layers may take"
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

// The numeric flags' ranges (src/core/limits.rs says why each bound is what it is).

pub fn positive_usize(s: &str) -> Result<usize, String> {
    limits::count(s, 1, usize::MAX)
}

pub fn batch_size(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_BATCH)
}

pub fn iterations(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_ITERS)
}

/// `--epochs`, `--trials` and the experiments' `--iters`.
pub fn up_to_max_epochs(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_EPOCHS)
}

pub fn steps_per_submit(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_STEPS_PER_SUBMIT)
}

pub fn repeats(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_REPEATS)
}

pub fn weight_scales(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_STDS)
}

/// More elements than a tensor has checks all of it; no network has more
/// than `MAX_PARAMS`.
pub fn sample_size(s: &str) -> Result<usize, String> {
    limits::count(s, 1, gpu_net::core::model::MAX_PARAMS)
}

pub fn positive_f32(s: &str) -> Result<f32, String> {
    limits::positive_f32(s, false).map(|v| v as f32)
}

#[derive(Clone, Debug)]
pub struct UsizeList(pub Vec<usize>);

#[derive(Clone, Debug)]
pub struct Nets(pub Vec<Vec<usize>>);

pub fn parse_list(s: &str) -> Result<UsizeList, String> {
    s.split(',')
        .map(|v| batch_size(v.trim()))
        .collect::<Result<_, _>>()
        .map(UsizeList)
}

/// Networks in train's syntax (`64,32` is 784-64-32-10), several joined
/// by `;` (the flag may also be given again).
pub fn parse_nets(s: &str) -> Result<Nets, String> {
    if s.contains(':') {
        return Err(format!(
            "{s:?}: layers are comma separated as in train (64,32 is 784-64-32-10); give --hidden again, or join networks with ';', for several"
        ));
    }
    s.split(';')
        .map(|net| match net.trim() {
            "" => Err(format!("{s:?}: a network between ';'s is empty")),
            net => parse_hidden(net).map(|h| h.0),
        })
        .collect::<Result<_, _>>()
        .map(Nets)
}

pub fn parse_matmul(s: &str) -> Result<bench::MatmulBench, String> {
    use bench::MatmulForm::*;
    let (sizes, form) = match s.rsplit_once(',') {
        Some((sizes, "at")) => (sizes, Atb),
        Some((sizes, "bt")) => (sizes, Abt),
        _ => (s, Ab),
    };
    match parse_list(sizes)?.0[..] {
        [m, n, k] => Ok(bench::MatmulBench { m, n, k, form }),
        _ => Err(format!(
            "{s:?}: expected M,N,K (three sizes), optionally followed by ,at or ,bt"
        )),
    }
}

pub fn tolerance_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a factor in (0, 1]")),
    }
}

pub fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= limits::MAX_SECONDS => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds in (0, {}]",
            limits::MAX_SECONDS
        )),
    }
}
