//! The run configuration, walked field by field from the struct (serde's
//! view of it, not a hand list): every field differs in `other()`, survives
//! a checkpoint, and a contradicting value given on resume is refused.

use gpu_net::core::config::{ConfigError, MAY_DIFFER_ON_RESUME, RunConfig};
use gpu_net::core::conv::ConvFront;
use gpu_net::core::model::{Init, Params};
use gpu_net::core::optim::{Optimizer, OptimizerKind};
use gpu_net::run::checkpoint::Checkpoint;

/// A configuration with every field away from its default (a network no
/// run could have: a SimpleConvNet has no Batch Normalization or Dropout;
/// [`networks`] splits it into two that can).
fn other() -> RunConfig {
    RunConfig {
        hidden: vec![7, 5],
        conv: Some(ConvFront {
            input_dim: [1, 28, 28],
            filter_num: 3,
            filter_size: 3,
            pad: 1,
            stride: 1,
        }),
        network: Some(LIST.into()),
        batchnorm: true,
        dropout: 0.25,
        weight_decay: 0.125,
        init: Init::He,
        optimizer: Optimizer {
            kind: OptimizerKind::Adam,
            momentum: 0.5,
            beta1: 0.75,
            beta2: 0.875,
            decay_rate: 0.625,
        },
        lr: 0.003,
        batch: 17,
        seed: 9,
        train_size: Some(300),
        data: Some("somewhere/else".into()),
    }
}

#[test]
fn other_differs_in_every_field() {
    let (a, b) = (RunConfig::default().fields(), other().fields());
    for name in RunConfig::field_names() {
        assert_ne!(a[&name], b[&name], "other() leaves {name} at its default");
    }
}

/// [`other`]'s list of layers: its hidden sizes' Affines behind a convolution.
const LIST: &str = "input 1x28x28, conv 3 3x3 pad 1, relu, pool 2x2, affine 7, relu, affine 5, relu, affine 10, softmax";

/// [`other`] as three networks a run can have: the MLP with Batch
/// Normalization and Dropout, the SimpleConvNet without them, and the list.
fn networks() -> [RunConfig; 3] {
    let conv = RunConfig {
        batchnorm: false,
        dropout: 0.0,
        network: None,
        ..other()
    };
    [
        RunConfig {
            conv: None,
            network: None,
            ..other()
        },
        conv,
        RunConfig {
            conv: None,
            batchnorm: false,
            dropout: 0.0,
            ..other()
        },
    ]
}

fn checkpoint_of(config: RunConfig) -> Checkpoint {
    let arch = config.arch(784).unwrap();
    let params = Params::init(&arch, 1);
    // State in every tensor (the arena's padding between them is not stored).
    let mut state = vec![vec![0.0; arch.arena_len()]; config.optimizer.kind.state_arrays()];
    for t in arch.tensors() {
        for s in &mut state {
            s[t.range()].fill(0.5);
        }
    }
    let lr = config.lr;
    Checkpoint {
        params,
        config,
        f64_values: false,
        state: gpu_net::run::checkpoint::RunState {
            optimizer_state: state,
            iterations: 3,
            planned_iterations: Some(9),
            lr_schedule: vec![(0, lr)],
            sampler_position: 77,
            test_accuracy: None,
        },
    }
}

#[test]
fn every_field_round_trips_through_a_checkpoint() {
    for config in networks() {
        round_trips(config);
    }
}

fn round_trips(config: RunConfig) {
    let ck = checkpoint_of(config);
    let path = std::path::Path::new("config.safetensors");
    let back = Checkpoint::from_bytes(path, &ck.to_bytes()).unwrap();
    let (want, got) = (ck.config.fields(), back.config.fields());
    for name in RunConfig::field_names() {
        assert_eq!(
            want[&name], got[&name],
            "{name} did not survive the checkpoint"
        );
    }
    // The rest of the checkpoint as well (compared apart: a failure prints
    // the part that differs, not every weight).
    assert!(back.params == ck.params, "the parameters differ");
    assert!(
        back.state.optimizer_state == ck.state.optimizer_state,
        "the state differs"
    );
    assert_eq!(
        (
            back.state.iterations,
            back.state.sampler_position,
            back.state.test_accuracy,
            back.f64_values
        ),
        (
            ck.state.iterations,
            ck.state.sampler_position,
            ck.state.test_accuracy,
            ck.f64_values
        )
    );
}

#[test]
fn every_contradicting_field_is_refused_on_resume() {
    let stored = RunConfig {
        train_size: Some(60000),
        data: Some("data/mnist".into()),
        ..RunConfig::default()
    };
    let flags = other();
    for name in RunConfig::field_names() {
        let result = stored.overlay(&flags, &[name.as_str()]);
        if MAY_DIFFER_ON_RESUME.contains(&name.as_str()) {
            let taken = result.unwrap().fields();
            assert_eq!(taken[&name], flags.fields()[&name], "{name} not taken");
            continue;
        }
        match result {
            Err(ConfigError::Contradicts(c)) => {
                assert_eq!(c.len(), 1, "{name}: {c:?}");
                assert_eq!(c[0].field, name);
            }
            other => panic!("{name}: a contradiction was not refused: {other:?}"),
        }
        // Not given: the checkpoint's value stands.
        assert_eq!(stored.overlay(&flags, &[]).unwrap(), stored);
    }
}
