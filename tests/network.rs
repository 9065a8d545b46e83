//! A network as a list of layers (`core::network`) and its CPU reference
//! (`cpu::sequential`): the book's DeepConvNet's shapes and tensors; the
//! text form; lists that do not fit, refused naming the layer and the
//! sizes; the list of an `Arch` laid out and computed exactly as `Net`
//! computes it; and backprop through every layer kind against the
//! numerical gradient on awkward shapes (stride 2, pad 2, odd sizes,
//! C > 1, overlapping pools), a check shown to catch a wrong gradient.

mod common;

use gpu_net::core::model::{Arch, Init, Params};
use gpu_net::core::network::{Layer, Network, NetworkError, Plan, Values};
use gpu_net::cpu::Labels;
use gpu_net::cpu::net::Net;
use gpu_net::cpu::sequential::{Sequential, Weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MNIST: Values = Values::Image { c: 1, h: 28, w: 28 };

fn plan(text: &str, input: Values) -> Plan {
    Network::parse(text, input).unwrap().plan().unwrap()
}

fn refusal(text: &str, input: Values) -> String {
    Network::parse(text, input).unwrap_err().to_string()
}

#[test]
fn deep_convnet_is_the_books() {
    let net = Network::deep_convnet();
    let plan = net.plan().unwrap();
    let pooled: Vec<Values> = plan
        .layers
        .iter()
        .filter(|p| matches!(p.layer, Layer::Pooling { .. }))
        .map(|p| p.output)
        .collect();
    let image = |c, h, w| Values::Image { c, h, w };
    assert_eq!(
        pooled,
        [image(16, 14, 14), image(32, 8, 8), image(64, 4, 4)]
    );
    let (tensors, running) = Network::tensors(&plan);
    let shapes: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .filter(|t| t.name.starts_with('W'))
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let w = |k: usize, s: &[usize]| (format!("W{k}"), s.to_vec());
    assert_eq!(
        shapes,
        [
            w(1, &[16, 1, 3, 3]),
            w(2, &[16, 16, 3, 3]),
            w(3, &[32, 16, 3, 3]),
            w(4, &[32, 32, 3, 3]),
            w(5, &[64, 32, 3, 3]),
            w(6, &[64, 64, 3, 3]),
            w(7, &[1024, 50]),
            w(8, &[50, 10]),
        ]
    );
    // The book's parameter count: W1 … W8 and b1 … b8.
    assert_eq!(tensors.iter().map(|t| t.len()).sum::<usize>(), 123_552);
    assert!(running.is_empty());
    // Both Dropouts take the number of the Affine before them.
    let drops: Vec<usize> = plan
        .layers
        .iter()
        .filter(|p| matches!(p.layer, Layer::Dropout { .. }))
        .map(|p| p.number)
        .collect();
    assert_eq!(drops, [7, 8]);
}

#[test]
fn the_text_form_round_trips_and_a_bad_item_is_named() {
    let deep = Network::deep_convnet();
    assert!(
        deep.to_string()
            .starts_with("conv 16 3x3 pad 1, relu, conv 16 3x3 pad 1,")
    );
    assert_eq!(Network::parse(&deep.to_string(), MNIST).unwrap(), deep);
    let file = "# a small net\nconv 8 5×5 stride 1\nrelu\npool 2x2 stride 2 # halves\naffine 10\n";
    let parsed = Network::parse(file, MNIST).unwrap();
    assert_eq!(
        parsed.to_string(),
        "conv 8 5x5, relu, pool 2x2, affine 10, softmax"
    );
    for (text, needle) in [
        (
            "conv 16 3x5, affine 10",
            "layer 1 (conv 16 3x5): \"3x5\": windows are square",
        ),
        (
            "conv 16 3x3 stride, affine 10",
            "layer 1 (conv 16 3x3 stride): expected stride N or pad N",
        ),
        (
            "conv 16 3x3 pad 1 pad 2, affine 10",
            "expected stride N or pad N, not \"pad 2\"",
        ),
        ("relu, affine", "layer 2 (affine): expected conv N KxK"),
        ("sigmoid, affine 10", "layer 1 (sigmoid): expected"),
        (
            "affine 10, softmax, relu",
            "item 2 is \"softmax\": SoftmaxWithLoss ends a network",
        ),
        (
            "affine ten",
            "layer 1 (affine ten): the output count \"ten\" is not a whole number",
        ),
    ] {
        let e = refusal(text, MNIST);
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn lists_that_do_not_fit_are_refused_naming_the_layer_and_sizes() {
    let flat = Values::Flat(784);
    for (text, input, needle) in [
        (
            "conv 4 3x3, pool 2x2, pool 2x2, affine 10",
            MNIST,
            "layer 3 (pool 2x2): on 4×13×13: the pooling: its output height (13 - 2) / 2 + 1 is not a whole number",
        ),
        (
            "conv 4 31x31, affine 10",
            MNIST,
            "layer 1 (conv 4 31x31): on 1×28×28: the convolution: its filter's height 31 is larger than the padded input's height 28",
        ),
        (
            "affine 50, relu, conv 4 3x3, affine 10",
            MNIST,
            "layer 3 (conv 4 3x3): a convolution takes images, but gets 50 values",
        ),
        (
            "pool 2x2, affine 10",
            flat,
            "layer 1 (pool 2x2): a pooling takes images, but gets 784 values",
        ),
        ("conv 4 3x3, relu", MNIST, "a network needs an Affine layer"),
        (
            "affine 10, dropout 1",
            flat,
            "layer 2 (dropout 1): 1 is not a ratio in [0, 1)",
        ),
        (
            "conv 0 3x3, affine 10",
            MNIST,
            "layer 1 (conv 0 3x3): the filter count is 0",
        ),
        (
            "conv 4 3x3 stride 0, affine 10",
            MNIST,
            "layer 1 (conv 4 3x3 stride 0): the stride is 0",
        ),
        (
            "affine 70000, affine 10",
            flat,
            "the output count 70000 is over the limit of 65536",
        ),
        (
            "affine 60000, affine 60000, affine 10",
            flat,
            "layer 2 (affine 60000): its weights (60000 × 60000) take the parameters to",
        ),
    ] {
        let e = refusal(text, input);
        assert!(e.contains(needle), "{text:?}: {e}");
    }
    let e = Network::parse("affine 10", Values::Image { c: 0, h: 28, w: 28 }).unwrap_err();
    assert!(
        matches!(e, NetworkError::List(_)) && e.to_string().contains("0×28×28"),
        "{e}"
    );
    assert!(gpu_net::run::is_usage(&e) && gpu_net::core::error::Error::from(e).is_usage());
    // Sizes whose products would overflow are refused, not wrapped.
    for input in [
        Values::Image {
            c: 1,
            h: 1 << 32,
            w: 1 << 32,
        },
        Values::Image {
            c: 4096,
            h: 4096,
            w: 4096,
        },
        Values::Flat(usize::MAX),
    ] {
        let e = Network::parse("affine 10", input).unwrap_err().to_string();
        assert!(e.contains("each side must be 1 to 65536"), "{e}");
    }
}

/// Today's networks as `Arch`es: the book's MLP, one with Batch
/// Normalization and Dropout, and SimpleConvNet.
fn archs() -> Vec<Arch> {
    use gpu_net::core::conv::ConvFront;
    vec![
        Arch::mlp(784, &[50], 10).unwrap(),
        Arch::mlp(784, &[30, 20], 10)
            .unwrap()
            .with_batchnorm(true)
            .with_dropout(0.2)
            .unwrap(),
        Arch::simple_convnet(ConvFront::book(), &[40], 10).unwrap(),
    ]
}

#[test]
fn an_arch_and_its_list_share_their_layout_and_initial_values() {
    for arch in archs() {
        let plan = arch.network().plan().unwrap();
        let (tensors, running) = Network::tensors(&plan);
        assert_eq!(tensors, arch.tensors(), "{}", arch.describe());
        assert_eq!(running, arch.running_tensors(), "{}", arch.describe());
        assert_eq!(
            (plan.arena_len, plan.running_len),
            (arch.arena_len(), arch.running_len())
        );
        let (values, _) = Network::init(&plan, Init::He, 3);
        assert_eq!(values, Params::init_with(&arch, Init::He, 3).values);
    }
}

#[test]
fn the_list_of_an_arch_computes_exactly_what_net_computes() {
    let data = &common::mnist().train;
    let idx: Vec<usize> = (0..5).collect();
    let (x, t) = (data.batch_f64(&idx), &data.labels[..5]);
    for arch in archs() {
        let mut params = Params::init_with(&arch, Init::He, 7);
        params
            .running
            .iter_mut()
            .enumerate()
            .for_each(|(i, r)| *r = 0.5 + 0.01 * i as f64);
        let net = Net::new(&arch).with_weight_decay(0.01).with_seed(3);
        let mut seq = Sequential::new(arch.network().plan().unwrap());
        (seq.weight_decay, seq.seed) = (0.01, 3);
        let p = Weights {
            values: &params.values,
            running: &params.running,
        };
        let (loss, grads) = net.gradient(&params, &x, Labels::Index(t), 5, 4);
        assert_eq!(
            seq.gradient(p, &x, Labels::Index(t), 5, 4),
            (loss, grads.values)
        );
        assert_eq!(seq.predict(p, &x, 5), net.predict(&params, &x, 5));
        let with_decay = net.loss(&params, &x, Labels::Index(t), 5, 4);
        assert_eq!(
            seq.loss_and_signature(p, &x, Labels::Index(t), 5, 4).0,
            with_decay
        );
    }
}

/// Backprop of `seq` against central differences at `h = 1e-4`, over every
/// parameter, on inputs `x` with labels `t`: `Err` naming the first tensor
/// element that differs past `1e-6 + 1e-4·|backprop|` (elements whose nudge
/// crossed a kink are skipped, and must be few).
fn check_gradient(
    seq: &Sequential,
    values: &[f64],
    grads: &[f64],
    x: &[f64],
    t: &[u8],
) -> Result<usize, String> {
    let batch = t.len();
    let running = vec![0.0; seq.plan.running_len];
    let at = |v: &[f64]| {
        let w = Weights {
            values: v,
            running: &running,
        };
        seq.loss_and_signature(w, x, Labels::Index(t), batch, 1)
    };
    let (_, signature) = at(values);
    let (tensors, _) = Network::tensors(&seq.plan);
    let (mut v, mut compared, mut kinked) = (values.to_vec(), 0, 0);
    for tensor in &tensors {
        for e in tensor.range() {
            let h = 1e-4;
            v[e] = values[e] + h;
            let (up, s1) = at(&v);
            v[e] = values[e] - h;
            let (down, s2) = at(&v);
            v[e] = values[e];
            if s1 != signature || s2 != signature {
                kinked += 1;
                continue;
            }
            let numerical = (up - down) / (2.0 * h);
            if (numerical - grads[e]).abs() > 1e-6 + 1e-4 * grads[e].abs() {
                let i = e - tensor.offset;
                return Err(format!(
                    "{}[{i}]: backprop {} numerical {numerical}",
                    tensor.name, grads[e]
                ));
            }
            compared += 1;
        }
    }
    assert!(kinked * 20 <= compared, "{kinked} kinked of {compared}");
    Ok(compared)
}

/// A network of `text` on `input`, its initial values (He), a random batch
/// of `batch` in (-1, 1) with labels below `classes`, and backprop there.
fn setup(
    text: &str,
    input: Values,
    batch: usize,
    classes: u8,
) -> (Sequential, Vec<f64>, Vec<f64>, Vec<u8>, Vec<f64>) {
    let plan = plan(text, input);
    let (values, running) = Network::init(&plan, Init::He, 11);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f64> = (0..batch * input.len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let t: Vec<u8> = (0..batch).map(|_| rng.random_range(0..classes)).collect();
    let mut seq = Sequential::new(plan);
    (seq.weight_decay, seq.seed) = (0.01, 9);
    let w = Weights {
        values: &values,
        running: &running,
    };
    let (_, grads) = seq.gradient(w, &x, Labels::Index(&t), batch, 1);
    (seq, values, x, t, grads)
}

#[test]
fn backprop_through_every_layer_kind_matches_the_numerical_gradient() {
    // C = 2, odd sizes, stride 2 with pad 2, an overlapping pool, a
    // padded 2×2 filter, Batch Normalization over images, and Dropout
    // after the last Affine (as DeepConvNet's).
    let awkward = "conv 3 3x3 stride 2 pad 2, relu, pool 2x2 stride 1, conv 4 2x2 pad 1, batchnorm, relu, \
                   pool 3x3 stride 2, affine 5, batchnorm, relu, dropout 0.3, affine 3, dropout 0.5";
    let input = Values::Image { c: 2, h: 7, w: 7 };
    // DeepConvNet's shape, small: pad 1 and pad 2, two convolutions a pool.
    let deep_small = "conv 2 3x3 pad 1, relu, conv 2 3x3 pad 1, relu, pool 2x2, conv 3 3x3 pad 1, relu, \
                      conv 3 3x3 pad 2, relu, pool 2x2, affine 4, relu, dropout 0.5, affine 10, dropout 0.5";
    let small = Values::Image { c: 1, h: 8, w: 8 };
    for (text, input, batch, classes) in [(awkward, input, 3, 3), (deep_small, small, 3, 10)] {
        let (seq, values, x, t, grads) = setup(text, input, batch, classes);
        let compared = check_gradient(&seq, &values, &grads, &x, &t).unwrap();
        assert!(compared > 150, "{text}: {compared}");
    }
}

#[test]
fn the_gradient_check_catches_a_wrong_gradient() {
    let text = "conv 2 3x3 pad 1, relu, pool 2x2, affine 3";
    let (seq, values, x, t, grads) = setup(text, Values::Image { c: 1, h: 4, w: 4 }, 2, 3);
    check_gradient(&seq, &values, &grads, &x, &t).unwrap();
    // One filter weight's gradient off by 1%.
    let (tensors, _) = Network::tensors(&seq.plan);
    let w1 = tensors[0].offset + 4;
    let mut wrong = grads.clone();
    wrong[w1] *= 1.01;
    let e = check_gradient(&seq, &values, &wrong, &x, &t).unwrap_err();
    assert!(e.starts_with("W1[4]: backprop"), "{e}");
}

#[test]
fn deep_convnet_on_mnist_digits() {
    let plan = Network::deep_convnet().plan().unwrap();
    let (values, running) = Network::init(&plan, Init::He, 1);
    let seq = Sequential::new(plan);
    let data = &common::mnist().train;
    let x = data.batch_f64(&[0, 1]);
    let w = Weights {
        values: &values,
        running: &running,
    };
    let (loss, grads) = seq.gradient(w, &x, Labels::Index(&data.labels[..2]), 2, 1);
    // He-initialised logits are small: the loss is near ln 10.
    assert!((loss - 10f64.ln()).abs() < 1.0, "{loss}");
    assert!(grads.iter().all(|g| g.is_finite()) && grads.iter().any(|&g| g != 0.0));
    let logits = seq.predict(w, &x, 2);
    assert_eq!(logits.len(), 20);
}
