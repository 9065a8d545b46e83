//! The network's shape and its parameters: one description shared by the CPU
//! and the GPU path, so neither can drift from the other.
//!
//! All parameters live in one arena (a flat vector) with a table of offsets.
//! Layer `l` (1-based, as the book names `W1`, `b1`) stores `W_l` as an
//! `[I, O]` row-major matrix immediately followed by `b_l` (`[O]`), so the
//! pair is one `[I + 1, O]` matrix: `[X, 1]·[W; b] = X·W + b`, and the
//! gradient of the pair is one product `[X, 1]ᵀ·dY = [dW; db]`. The GPU keeps
//! the same blocks with padded rows (`gpu::layout`), and fuses the bias into its
//! matmuls that way. Each block starts on a multiple of 64 elements.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The book's `weight_init_std`.
pub const WEIGHT_INIT_STD: f64 = 0.01;

/// Most parameters a network may have (2^27: 1 GiB as f64 on the host).
pub const MAX_PARAMS: usize = 1 << 27;

/// Elements per alignment unit of the parameter arena (256 bytes of f32).
pub const ARENA_ALIGN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    #[error("--hidden: {0}")]
    Hidden(String),
}

/// Layer sizes from input to output, e.g. `[784, 50, 10]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arch {
    pub sizes: Vec<usize>,
}

/// Where one layer's parameters sit in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSlot {
    /// Inputs (`I`) and outputs (`O`) of the layer.
    pub inputs: usize,
    pub outputs: usize,
    /// Offset of `W` (`[I, O]`); `b` follows at `w + I·O`.
    pub w: usize,
}

impl LayerSlot {
    pub fn b(&self) -> usize {
        self.w + self.inputs * self.outputs
    }
    /// Elements of `[W; b]`.
    pub fn len(&self) -> usize {
        (self.inputs + 1) * self.outputs
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One named parameter tensor (`W1`, `b1`, ...) as a range of the arena.
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

impl Arch {
    pub fn new(sizes: Vec<usize>) -> Result<Self, ArchError> {
        if sizes.len() < 2 {
            return Err(ArchError::Hidden(
                "a network needs an input and an output size".into(),
            ));
        }
        if let Some(z) = sizes.iter().position(|&s| s == 0) {
            return Err(ArchError::Hidden(format!("layer {z} has size 0")));
        }
        let params: u128 = sizes
            .windows(2)
            .map(|io| (io[0] as u128 + 1) * io[1] as u128)
            .sum();
        if params > MAX_PARAMS as u128 {
            return Err(ArchError::Hidden(format!(
                "{sizes:?} has {params} parameters, over the limit of {MAX_PARAMS}"
            )));
        }
        Ok(Arch { sizes })
    }

    /// `inputs`, the hidden sizes, `outputs`.
    pub fn mlp(inputs: usize, hidden: &[usize], outputs: usize) -> Result<Self, ArchError> {
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(outputs);
        Arch::new(sizes)
    }

    /// Parses a comma list of hidden sizes (`"50"`, `"64,32"`).
    pub fn parse_hidden(list: &str) -> Result<Vec<usize>, ArchError> {
        list.split(',')
            .map(|s| {
                let s = s.trim();
                match s.parse::<usize>() {
                    Ok(0) => Err(ArchError::Hidden(format!(
                        "size 0 in {list:?}; sizes must be at least 1"
                    ))),
                    Ok(n) if n > 1 << 16 => Err(ArchError::Hidden(format!(
                        "size {n} in {list:?} is over the limit of 65536"
                    ))),
                    Ok(n) => Ok(n),
                    Err(_) => Err(ArchError::Hidden(format!(
                        "{s:?} in {list:?} is not a positive integer (expected e.g. 50 or 64,32)"
                    ))),
                }
            })
            .collect()
    }

    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }
    pub fn outputs(&self) -> usize {
        *self.sizes.last().unwrap()
    }
    pub fn hidden(&self) -> &[usize] {
        &self.sizes[1..self.sizes.len() - 1]
    }

    /// The arena layout: one slot per layer, 64-element aligned.
    pub fn slots(&self) -> Vec<LayerSlot> {
        let mut offset = 0;
        self.sizes
            .windows(2)
            .map(|io| {
                let slot = LayerSlot {
                    inputs: io[0],
                    outputs: io[1],
                    w: offset,
                };
                offset = (slot.w + slot.len()).next_multiple_of(ARENA_ALIGN);
                slot
            })
            .collect()
    }

    /// Total arena length, padding included.
    pub fn arena_len(&self) -> usize {
        let last = *self.slots().last().unwrap();
        (last.w + last.len()).next_multiple_of(ARENA_ALIGN)
    }

    /// Number of real parameters (no padding).
    pub fn param_count(&self) -> usize {
        self.slots().iter().map(|s| s.len()).sum()
    }

    /// The named tensors in book order: W1, b1, W2, b2, ...
    pub fn tensors(&self) -> Vec<Tensor> {
        self.slots()
            .iter()
            .enumerate()
            .flat_map(|(l, s)| {
                [
                    Tensor {
                        name: format!("W{}", l + 1),
                        offset: s.w,
                        shape: vec![s.inputs, s.outputs],
                    },
                    Tensor {
                        name: format!("b{}", l + 1),
                        offset: s.b(),
                        shape: vec![s.outputs],
                    },
                ]
            })
            .collect()
    }

    /// Multiply-adds ×2 of one training step's matmuls at batch `b`, counting
    /// the products the GPU really runs: forward `[X,1]·[W;b]` per layer, the
    /// gradient `[X,1]ᵀ·dY` per layer, and `dY·Wᵀ` for every layer but the first.
    pub fn train_step_flops(&self, batch: usize) -> f64 {
        self.slots()
            .iter()
            .enumerate()
            .map(|(l, s)| {
                let (i, o, b) = ((s.inputs + 1) as f64, s.outputs as f64, batch as f64);
                let dx = if l == 0 {
                    0.0
                } else {
                    2.0 * b * o * s.inputs as f64
                };
                2.0 * b * i * o * 2.0 + dx
            })
            .sum()
    }
}

/// Host-side parameters: the arena in f64. Every value is exactly
/// representable in f32, so the GPU (f32) and the CPU reference (f64) start
/// from identical weights and any difference between them is arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub arch: Arch,
    pub values: Vec<f64>,
}

impl Params {
    pub fn zeros(arch: &Arch) -> Self {
        Params {
            arch: arch.clone(),
            values: vec![0.0; arch.arena_len()],
        }
    }

    /// The book's initialisation: weights `N(0, 0.01²)`, biases zero, drawn
    /// from ChaCha8 seeded with `seed` (a named algorithm, so a seed means the
    /// same weights on every platform and version), rounded to f32.
    pub fn init(arch: &Arch, seed: u64) -> Self {
        let mut p = Params::zeros(arch);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, WEIGHT_INIT_STD).unwrap();
        for s in arch.slots() {
            for w in &mut p.values[s.w..s.b()] {
                *w = normal.sample(&mut rng) as f32 as f64;
            }
        }
        p
    }

    pub fn tensor(&self, t: &Tensor) -> &[f64] {
        &self.values[t.range()]
    }
}
