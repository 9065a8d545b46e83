//! What every parameter arena shares, whichever network it holds (an
//! `Arch`'s or a list of layers'): its alignment and limit, its named
//! tensors, and how the weights are first drawn.
//!
//! Imports nothing of the crate.

/// The book's `weight_init_std`.
pub const WEIGHT_INIT_STD: f64 = 0.01;

/// Most parameters a network may have (2^27: 1 GiB as f64 on the host).
pub const MAX_PARAMS: usize = 1 << 27;

/// Elements per alignment unit of the parameter arena (256 bytes of f32).
pub const ARENA_ALIGN: usize = 64;

/// One named tensor (`W1`, `b1`, `gamma1`, ...) as a range of an arena.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    pub name: String,
    pub offset: usize,
    pub shape: Vec<usize>,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// How the weights are drawn: `N(0, std²)` with a fixed std (the book's
/// chapter 5 uses 0.01), or scaled by each layer's inputs `n`: Xavier
/// `√(1/n)`, He `√(2/n)`. Biases start at 0, `gamma` at 1, `beta` at 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Std(f64),
    Xavier,
    He,
}

impl Default for Init {
    fn default() -> Self {
        Init::Std(WEIGHT_INIT_STD)
    }
}

impl Init {
    /// Parses `--init`: a positive number, `xavier` or `he`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "xavier" | "sigmoid" => Ok(Init::Xavier),
            "he" | "relu" => Ok(Init::He),
            other if other.parse::<f64>().is_ok_and(|v| v > 0.0) => {
                crate::core::limits::positive_f32(other, false).map(Init::Std)
            }
            _ => Err(format!("{s:?} is not a positive number, `xavier` or `he`")),
        }
    }

    /// The standard deviation for a layer with `inputs` inputs.
    pub fn std(&self, inputs: usize) -> f64 {
        match *self {
            Init::Std(s) => s,
            Init::Xavier => (1.0 / inputs as f64).sqrt(),
            Init::He => (2.0 / inputs as f64).sqrt(),
        }
    }
}

/// Written as `--init` takes it: a number, `xavier` or `he`.
impl serde::Serialize for Init {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Init {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Init::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // 1e300, not three hundred digits (both read back the same).
            Init::Std(s) if *s != 0.0 && (s.abs() >= 1e6 || s.abs() < 1e-4) => write!(f, "{s:e}"),
            Init::Std(s) => write!(f, "{s}"),
            Init::Xavier => write!(f, "xavier"),
            Init::He => write!(f, "he"),
        }
    }
}
