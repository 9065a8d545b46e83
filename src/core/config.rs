//! One training run's settings, written once: the network's shape, the
//! initialisation, the update rule and its hyperparameters, the learning
//! rate, the batch, the seed and the data. The command line fills it from
//! flags, a checkpoint stores it whole (as JSON in its metadata), and a
//! resumed run takes the checkpoint's copy with the flags the user gave laid
//! over it field by field ([`RunConfig::overlay`]). A new hyperparameter is
//! one field here: the checkpoint and the resume check follow from serde.
//!
//! May import: model, network, optim, data (the types of its fields).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::conv::ConvFront;
use crate::core::data::CLASSES;
use crate::core::model::{Arch, ArchError, Init};
use crate::core::network::{Layer, Network, Values};
use crate::core::optim::{Optimizer, StepRule};

/// The book's chapter 5 run (`ch05/train_neuralnet.py`) by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Hidden layer sizes: the network is inputs, these, then 10 classes.
    pub hidden: Vec<usize>,
    /// The book's `SimpleConvNet`: this convolutional front before the
    /// Affine layers (`--net simple-convnet`); none for the MLP.
    #[serde(default)]
    pub conv: Option<ConvFront>,
    /// A network given as a list of layers (`--net deep-convnet`, a list
    /// or a file), in its text form with its input first
    /// (`Network::text`); `hidden`, `conv`, `batchnorm` and `dropout` then
    /// say nothing.
    #[serde(default)]
    pub network: Option<String>,
    /// Batch Normalization between each hidden Affine and its Relu.
    pub batchnorm: bool,
    /// Dropout ratio after each hidden Relu (0 for none).
    #[serde(with = "f32_decimal")]
    pub dropout: f32,
    /// Weight decay λ: ½λ·ΣW² added to the loss.
    pub weight_decay: f64,
    pub init: Init,
    /// The rule (`optimizer`) and its hyperparameters.
    #[serde(flatten)]
    pub optimizer: Optimizer,
    #[serde(with = "f32_decimal")]
    pub lr: f32,
    pub batch: usize,
    /// Seed of the weights, the minibatches and Dropout's masks.
    pub seed: u64,
    /// The first N training images only; all of them when `None`.
    pub train_size: Option<usize>,
    /// The IDX folder, as text (a record: the command line loads from its
    /// own path); the bundled MNIST when `None`.
    pub data: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            hidden: vec![50],
            conv: None,
            network: None,
            batchnorm: false,
            dropout: 0.0,
            weight_decay: 0.0,
            init: Init::default(),
            optimizer: Optimizer::default(),
            lr: 0.1,
            batch: 100,
            seed: 0,
            train_size: None,
            data: None,
        }
    }
}

/// Fields a resumed run may take from the command line although the
/// checkpoint says otherwise: the same files can have two names, and the
/// learning rate may change from one part of a run to the next (a schedule
/// by hand, fine-tuning; the checkpoint records each rate). What would make
/// the saved state mean nothing (the network, the rule, the seed) may not.
pub const MAY_DIFFER_ON_RESUME: &[&str] = &["data", "lr"];

/// A setting the user gave that says otherwise than the checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The field's name (the flag's, with `_` for `-`).
    pub field: String,
    pub given: String,
    pub stored: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", .0.iter().map(|c| format!("{} {} contradicts the checkpoint's {}", c.field, c.given, c.stored)).collect::<Vec<_>>().join("; "))]
    Contradicts(Vec<Conflict>),
    /// One field's value is missing, of the wrong kind or out of range.
    #[error("{field} {why}")]
    Field { field: String, why: String },
    #[error("the run configuration is not valid: {0}")]
    Invalid(String),
}

/// A setting that cannot mean anything.
impl crate::core::error::LayerError for ConfigError {
    fn is_usage(&self) -> bool {
        true
    }
}

fn field_error(field: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        why: why.into(),
    }
}

/// The network a list's text describes (its `input` item first, as
/// `Network::text` writes it; without one, a vector of the data's values),
/// for data of `inputs` values an image; refused where its input is not
/// that many values, where its last layer does not give a score for each
/// of the data's classes, where it does not plan, and with Batch
/// Normalization (which trains only as `--batchnorm`'s: a list's keeps no
/// running statistics).
fn list_arch(text: &str, inputs: usize) -> Result<Arch, ArchError> {
    let network =
        Network::parse(text, Values::Flat(inputs)).map_err(|e| ArchError::List(e.to_string()))?;
    if network.inputs() != inputs {
        return Err(ArchError::List(format!(
            "its input {} is {} values an image, but the data's images have {inputs}",
            network.input,
            network.inputs()
        )));
    }
    if network.layers.contains(&Layer::BatchNorm) {
        return Err(ArchError::List(
            "a list's BatchNorm layers train only through --batchnorm (MultiLayerNetExtend); drop them from the list".into(),
        ));
    }
    let arch = Arch::from_network(network).map_err(|e| ArchError::List(e.to_string()))?;
    if arch.outputs() != CLASSES {
        return Err(ArchError::List(format!(
            "it ends in {} scores, but the data has {CLASSES} classes: end it with affine {CLASSES}",
            arch.outputs()
        )));
    }
    Ok(arch)
}

/// Fields a checkpoint's metadata does not hold: the network's `sizes`,
/// stored beside them, say the hidden sizes.
const NOT_IN_METADATA: &[&str] = &["hidden"];

/// Fields a checkpoint may lack, read as `null`: checkpoints written before
/// networks could have a convolutional front, or be given as a list.
const MAY_BE_MISSING: &[&str] = &["conv", "network"];

/// Fields written to a checkpoint only when given: a text field, which
/// `null` would read back as the text "null".
const WRITTEN_WHEN_GIVEN: &[&str] = &["network"];

impl RunConfig {
    /// The network for data of `inputs` pixels; a convolutional front's
    /// image (C·H·W) must be that many values.
    pub fn arch(&self, inputs: usize) -> Result<Arch, ArchError> {
        if let Some(text) = &self.network {
            return list_arch(text, inputs);
        }
        let mlp = Arch::mlp(inputs, &self.hidden, CLASSES)?
            .with_batchnorm(self.batchnorm)
            .with_dropout(self.dropout)?;
        match self.conv {
            Some(front) if front.pixels() != inputs => {
                let [c, h, w] = front.input_dim;
                Err(ArchError::Conv(format!(
                    "--input-dim {c},{h},{w} is {} values an image, but the data's images have {inputs}",
                    front.pixels()
                )))
            }
            Some(front) => mlp.with_conv(front),
            None => Ok(mlp),
        }
    }

    /// Whether the network is a list of layers ([`RunConfig::network`]).
    pub fn is_list(&self) -> bool {
        self.network.is_some()
    }

    /// What a step needs besides the learning rate.
    pub fn rule(&self) -> StepRule {
        StepRule {
            optimizer: self.optimizer,
            weight_decay: self.weight_decay,
            seed: self.seed,
        }
    }

    /// Every field by name, as serde writes it.
    pub fn fields(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => unreachable!("a struct serializes to a JSON object"),
        }
    }

    /// The names of every field.
    pub fn field_names() -> Vec<String> {
        RunConfig::default().fields().keys().cloned().collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a RunConfig serializes")
    }

    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The fields that serde writes as text (named values, paths), found
    /// from a configuration whose optional fields are all given.
    fn text_fields() -> Vec<String> {
        let all_given = RunConfig {
            conv: Some(ConvFront::book()),
            network: Some(String::new()),
            train_size: Some(1),
            data: Some(String::new()),
            ..RunConfig::default()
        };
        all_given
            .fields()
            .into_iter()
            .filter(|(_, v)| v.is_string())
            .map(|(k, _)| k)
            .collect()
    }

    /// The fields as a checkpoint's `__metadata__` holds them (a map of
    /// strings): one key a field, text bare, everything else as JSON.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        self.fields()
            .into_iter()
            .filter(|(k, _)| !NOT_IN_METADATA.contains(&k.as_str()))
            .filter(|(k, v)| !(v.is_null() && WRITTEN_WHEN_GIVEN.contains(&k.as_str())))
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()
    }

    /// Reads what [`RunConfig::to_metadata`] wrote (`get` looks a key up),
    /// with the hidden sizes from the network; every field checked, and an
    /// error names the field.
    pub fn from_metadata<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        hidden: &[usize],
    ) -> Result<Self, ConfigError> {
        let text = Self::text_fields();
        let mut fields = Map::new();
        for name in Self::field_names() {
            let value = if name == "hidden" {
                serde_json::json!(hidden)
            } else if get(&name).is_none() && MAY_BE_MISSING.contains(&name.as_str()) {
                Value::Null
            } else {
                let raw = get(&name).ok_or_else(|| field_error(&name, "is missing"))?;
                if text.contains(&name) {
                    Value::String(raw.into())
                } else {
                    serde_json::from_str(raw)
                        .map_err(|_| field_error(&name, format!("{raw:?} is not a value")))?
                }
            };
            // Each field alone in an otherwise default configuration, so a
            // value of the wrong kind is reported by its field's name.
            let mut alone = RunConfig::default().fields();
            alone.insert(name.clone(), value.clone());
            if let Err(e) = serde_json::from_value::<RunConfig>(Value::Object(alone)) {
                return Err(field_error(&name, format!("{}: {e}", value_text(&value))));
            }
            fields.insert(name, value);
        }
        let config: RunConfig = serde_json::from_value(Value::Object(fields))
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// The ranges the flags enforce, for a configuration read from a file.
    pub fn check(&self) -> Result<(), ConfigError> {
        let o = &self.optimizer;
        for (field, v) in [
            ("momentum", o.momentum),
            ("beta1", o.beta1),
            ("beta2", o.beta2),
            ("decay_rate", o.decay_rate),
        ] {
            // A rule divides by 1 - itself.
            if !(0.0..1.0).contains(&v) {
                return Err(field_error(field, format!("{v} is not in [0, 1)")));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            let why = format!("{} is not a finite number >= 0", self.weight_decay);
            return Err(field_error("weight_decay", why));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            let why = format!("{} is not a positive number", self.lr);
            return Err(field_error("lr", why));
        }
        if !(1..=crate::core::limits::MAX_BATCH).contains(&self.batch) {
            let why = format!(
                "{} is not in 1..={}",
                self.batch,
                crate::core::limits::MAX_BATCH
            );
            return Err(field_error("batch", why));
        }
        if self.train_size == Some(0) {
            return Err(field_error("train_size", "is 0"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            let why = format!("{} is not a ratio in [0, 1)", self.dropout);
            return Err(field_error("dropout", why));
        }
        Ok(())
    }

    /// This (a checkpoint's) configuration with the fields named in `given`
    /// taken from `flags`. A given field that says otherwise than this one is
    /// a [`Conflict`], unless it is one that [`MAY_DIFFER_ON_RESUME`].
    pub fn overlay(&self, flags: &RunConfig, given: &[&str]) -> Result<RunConfig, ConfigError> {
        let mut out = self.fields();
        let theirs = flags.fields();
        let mut conflicts = vec![];
        for &field in given {
            let (Some(stored), Some(wanted)) = (out.get(field), theirs.get(field)) else {
                continue; // a flag that is not a setting of the run
            };
            if MAY_DIFFER_ON_RESUME.contains(&field) {
                out.insert(field.into(), wanted.clone());
            } else if stored != wanted {
                conflicts.push(Conflict {
                    field: field.into(),
                    given: value_text(wanted),
                    stored: value_text(stored),
                });
            }
        }
        if !conflicts.is_empty() {
            return Err(ConfigError::Contradicts(conflicts));
        }
        serde_json::from_value(Value::Object(out)).map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

/// An f32 written as its shortest decimal (`0.1`, not the
/// `0.10000000149011612` of its widening to f64), read back to the same f32.
mod f32_decimal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        let decimal: f64 = v.to_string().parse().expect("an f32 prints as a number");
        s.serialize_f64(decimal)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(f64::deserialize(d)? as f32)
    }
}

/// A value as a flag would spell it: lists comma separated, strings bare.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(","),
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_takes_the_checkpoint_and_refuses_a_contradiction() {
        let stored = RunConfig {
            lr: 0.5,
            seed: 3,
            ..RunConfig::default()
        };
        let flags = RunConfig::default();
        // Nothing given: the checkpoint's value.
        assert_eq!(stored.overlay(&flags, &[]).unwrap().lr, 0.5);
        assert_eq!(stored.overlay(&flags, &[]).unwrap().seed, 3);
        // Given and different: refused, naming both values.
        let err = stored.overlay(&flags, &["seed"]).unwrap_err();
        assert_eq!(err.to_string(), "seed 0 contradicts the checkpoint's 3");
        // Given and equal: fine.
        assert!(stored.overlay(&stored, &["seed"]).is_ok());
        // The learning rate may change.
        assert_eq!(stored.overlay(&flags, &["lr"]).unwrap().lr, 0.1);
        // The data folder may be named otherwise.
        let moved = RunConfig {
            data: Some("elsewhere".into()),
            ..RunConfig::default()
        };
        let out = stored.overlay(&moved, &["data"]).unwrap();
        assert_eq!(out.data.as_deref(), Some("elsewhere"));
    }

    #[test]
    fn metadata_round_trips_and_names_a_bad_field() {
        let c = RunConfig {
            hidden: vec![7, 3],
            train_size: Some(300),
            data: Some("d".into()),
            ..RunConfig::default()
        };
        let meta: std::collections::HashMap<String, String> = c.to_metadata().into_iter().collect();
        assert!(!meta.contains_key("hidden"));
        assert_eq!(meta["optimizer"], "sgd");
        let back = RunConfig::from_metadata(|k| meta.get(k).map(String::as_str), &[7, 3]);
        assert_eq!(back.unwrap(), c);
        for (key, value) in [("beta1", "1"), ("batch", "0.5"), ("init", "lots")] {
            let mut bad = meta.clone();
            bad.insert(key.into(), value.into());
            let err = RunConfig::from_metadata(|k| bad.get(k).map(String::as_str), &[7, 3])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(key), "{key}={value}: {err}");
        }
        // Checkpoints of MLPs may lack `conv`: it reads as none.
        let mut old = meta.clone();
        old.remove("conv");
        let back = RunConfig::from_metadata(|k| old.get(k).map(String::as_str), &[7, 3]);
        assert_eq!(back.unwrap().conv, None);
        let mut missing = meta.clone();
        missing.remove("seed");
        let err = RunConfig::from_metadata(|k| missing.get(k).map(String::as_str), &[7, 3]);
        assert_eq!(err.unwrap_err().to_string(), "seed is missing");
    }

    #[test]
    fn every_f32_learning_rate_round_trips() {
        let mut bits: u32 = 0x3dcc_cccd; // 0.1
        for _ in 0..200_000 {
            bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let lr = f32::from_bits(bits & 0x7fff_ffff);
            if !lr.is_finite() {
                continue;
            }
            let c = RunConfig {
                lr,
                ..RunConfig::default()
            };
            assert_eq!(
                RunConfig::from_json(&c.to_json()).unwrap().lr.to_bits(),
                lr.to_bits()
            );
        }
        let c = RunConfig::default();
        assert_eq!(value_text(&c.fields()["lr"]), "0.1");
    }

    #[test]
    fn values_are_spelled_as_flags() {
        let c = RunConfig {
            hidden: vec![100, 50],
            ..RunConfig::default()
        };
        let f = c.fields();
        assert_eq!(value_text(&f["hidden"]), "100,50");
        assert_eq!(value_text(&f["optimizer"]), "sgd");
        assert_eq!(value_text(&f["init"]), "0.01");
        assert_eq!(value_text(&f["train_size"]), "none");
    }
}
