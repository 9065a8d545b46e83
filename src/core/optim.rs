//! The update rules of the book's `common/optimizer.py`, described once for
//! both paths: the CPU applies them in f64 (`cpu::optimizer`), the GPU in one
//! elementwise kernel over the parameter arena (`shaders/optimizer.wgsl`).
//!
//! With `g` the gradient (weight decay included), `lr` the learning rate:
//!
//! | rule | state | update |
//! | --- | --- | --- |
//! | SGD | | `W -= lr·g` |
//! | Momentum | v | `v = m·v - lr·g; W += v` |
//! | Nesterov | v | `v = m·v - lr·g; W += m·m·v - (1 + m)·lr·g` |
//! | AdaGrad | h | `h += g²; W -= lr·g / (√h + 1e-7)` |
//! | RMSprop | h | `h = d·h + (1 - d)·g²; W -= lr·g / (√h + 1e-7)` |
//! | Adam | m, v | `m += (1-β1)(g-m); v += (1-β2)(g²-v); W -= lr_t·m / (√v + 1e-7)` |
//!
//! with Adam's `lr_t = lr·√(1-β2ᵗ)/(1-β1ᵗ)` at step t (1-based).

use std::fmt;

/// The `1e-7` the book adds to square roots of accumulated squares.
pub const EPS: f64 = 1e-7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptimizerKind {
    Sgd,
    Momentum,
    Nesterov,
    AdaGrad,
    RmsProp,
    Adam,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 6] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::AdaGrad,
        OptimizerKind::RmsProp,
        OptimizerKind::Adam,
    ];

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Ok(OptimizerKind::Sgd),
            "momentum" => Ok(OptimizerKind::Momentum),
            "nesterov" => Ok(OptimizerKind::Nesterov),
            "adagrad" => Ok(OptimizerKind::AdaGrad),
            "rmsprop" => Ok(OptimizerKind::RmsProp),
            "adam" => Ok(OptimizerKind::Adam),
            _ => Err(format!(
                "{s:?} is not one of sgd, momentum, nesterov, adagrad, rmsprop, adam"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::AdaGrad => "adagrad",
            OptimizerKind::RmsProp => "rmsprop",
            OptimizerKind::Adam => "adam",
        }
    }

    /// State arrays of the size of the arena the rule keeps (0, 1 or 2).
    pub fn state_arrays(&self) -> usize {
        match self {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Adam => 2,
            _ => 1,
        }
    }
}

/// Written by name, as `--optimizer` takes it.
impl serde::Serialize for OptimizerKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for OptimizerKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        OptimizerKind::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule with its hyperparameters (the book's defaults).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Optimizer {
    /// Named as the flag that chooses it.
    #[serde(rename = "optimizer")]
    pub kind: OptimizerKind,
    /// Momentum and Nesterov's `m`.
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// RMSprop's `d`.
    pub decay_rate: f64,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::new(OptimizerKind::Sgd)
    }
}

impl Optimizer {
    pub fn new(kind: OptimizerKind) -> Self {
        Optimizer {
            kind,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            decay_rate: 0.99,
        }
    }

    /// Adam's step size at step `t` (1-based); `lr` for the other rules.
    pub fn step_lr(&self, lr: f64, t: u64) -> f64 {
        match self.kind {
            OptimizerKind::Adam => {
                let t = t as f64;
                lr * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t))
            }
            _ => lr,
        }
    }

    /// The hyperparameters this rule reads, for printing.
    pub fn describe(&self) -> String {
        match self.kind {
            OptimizerKind::Sgd | OptimizerKind::AdaGrad => self.kind.to_string(),
            OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                format!("{} (momentum {})", self.kind, self.momentum)
            }
            OptimizerKind::RmsProp => format!("{} (decay rate {})", self.kind, self.decay_rate),
            OptimizerKind::Adam => {
                format!("{} (beta1 {}, beta2 {})", self.kind, self.beta1, self.beta2)
            }
        }
    }
}

/// How a training step changes the parameters: the update rule, weight
/// decay's λ, and the seed of Dropout's masks (the run's `--seed`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepRule {
    pub optimizer: Optimizer,
    pub weight_decay: f64,
    pub seed: u64,
}
