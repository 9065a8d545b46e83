"""Every bad input is a ValueError (TypeError for a wrong kind of object)
naming the argument, never a crash."""

import numpy as np
import pytest

import gpu_net


@pytest.fixture(scope="module")
def net():
    return gpu_net.TwoLayerNet(784, 17, 10, device="auto", seed=0)


X = np.zeros((2, 784))


@pytest.mark.parametrize(
    "x,match",
    [
        (np.zeros((2, 783)), r"x has shape \(2, 783\)"),
        (np.zeros(784), r"x has shape \(784,\)"),
        (np.zeros((0, 784)), r"x has shape \(0, 784\)"),
        (np.zeros((2, 1, 28, 27)), r"x has shape \(2, 1, 28, 27\)"),
        (np.zeros((2, 784), dtype=np.int64), "x has dtype int64"),
        (np.array([["a"] * 784] * 2), "x has dtype <U1"),
        (np.full((2, 784), np.nan), r"x holds NaN or infinity \(row 0\)"),
    ],
)
def test_bad_images(net, x, match):
    for call in (lambda: net.predict(x), lambda: net.gradient(x, [0, 1]), lambda: net.accuracy(x, [0, 1])):
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize(
    "t,match",
    [
        ([0, 10], r"t\[1\] is 10, outside 0..9"),
        ([-1, 0], r"t\[0\] is -1"),
        ([0], r"t has shape \(1,\)"),
        ([0.5, 1], "not class numbers"),
        (np.zeros((2, 9)), r"t has shape \(2, 9\); one-hot labels are \(2, 10\)"),
        (np.full((2, 10), 0.1), "one-hot row must hold one 1"),
    ],
)
def test_bad_labels(net, t, match):
    with pytest.raises(ValueError, match=match):
        net.gradient(X, t)


def test_images_and_labels_as_the_book_passes_them(net):
    pixels = np.arange(2 * 784, dtype=np.int64).reshape(2, 784) % 256
    u8 = pixels.astype(np.uint8)  # a pixel k is k / 255
    x4 = (pixels / 255.0).astype(np.float32).reshape(2, 1, 28, 28)
    one_hot = np.eye(10)[[3, 4]]
    assert np.allclose(net.predict(x4), net.predict(u8), rtol=1e-6, atol=1e-7)
    assert not np.allclose(net.predict(x4), net.predict(u8.astype(np.float64)))  # raw 0..255 differs
    assert abs(net.loss(x4, one_hot) - net.loss(u8, np.array([3, 4], dtype=np.uint8))) < 1e-6


def test_values_beyond_float32_are_refused(net):
    x = np.zeros((2, 784))
    x[1, 5] = 1e39
    with pytest.raises(ValueError, match=r"x holds a value beyond float32's range \(row 1\)"):
        net.predict(x)


def test_bad_params(net):
    saved = net.params["W1"]
    try:
        net.params["W1"] = np.zeros((784, 16))
        with pytest.raises(ValueError, match=r"params\['W1'\] has shape \(784, 16\), not \(784, 17\)"):
            net.predict(X)
        del net.params["W1"]
        with pytest.raises(ValueError, match="params has no 'W1'"):
            net.predict(X)
    finally:
        net.params["W1"] = saved


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_a_nan_parameter_is_refused_by_name_not_hidden_by_relu(device):
    """Relu would turn a NaN weight into finite scores; the book's numpy
    gives NaN. Refused, naming the tensor, on both devices."""
    net = gpu_net.TwoLayerNet(784, 17, 10, device=device, seed=0)
    t = np.array([1, 2])
    for key in ["W1", "b2"]:
        saved = net.params[key].copy()
        net.params[key].flat[3 if key == "W1" else 0] = np.nan
        for call in (lambda: net.predict(X), lambda: net.loss(X, t), lambda: net.gradient(X, t)):
            with pytest.raises(ValueError, match=rf"params\['{key}'\] holds NaN"):
                call()
        net.params[key] = saved
    conv = gpu_net.SimpleConvNet(device=device, seed=0)
    conv.params["W2"].flat[0] = np.inf
    with pytest.raises(ValueError, match=r"params\['W2'\] holds inf"):
        conv.predict(np.zeros((1, 1, 28, 28)))


def test_save_refuses_what_load_would_refuse(tmp_path):
    """A weight whose square overflows float32 is refused by load and the
    CLI: save refuses it too, naming it, and writes nothing."""
    net = gpu_net.TwoLayerNet(784, 8, 10, device="cpu", seed=0)
    net.params["W1"][0, 0] = 1e300
    path = tmp_path / "big.safetensors"
    with pytest.raises((OSError, ValueError), match="W1"):
        net.save(path)
    assert not path.exists()


@pytest.mark.parametrize(
    "kw,error,match",
    [
        (dict(input_size=0), ValueError, "input_size is 0"),
        (dict(hidden_size=2.5), TypeError, "hidden_size.0. must be a whole number"),
        (dict(output_size=1), ValueError, "output_size is 1"),
        (dict(weight_init_std=-1), ValueError, "weight_init_std is -1"),
        (dict(device="tpu"), ValueError, "device='tpu'"),
    ],
)
def test_bad_constructor_arguments(kw, error, match):
    args = dict(input_size=784, hidden_size=50, output_size=10) | kw
    with pytest.raises(error, match=match):
        gpu_net.TwoLayerNet(**args)


def test_a_batch_over_the_devices_limit_is_a_gpu_error_and_takes_no_step(gpu):
    """Backprop over more rows than one storage binding holds: GpuError
    naming the rows, and Dropout's step count unchanged."""
    net = gpu_net.MultiLayerNetExtend(3, [200000], 2, use_dropout=True, device=gpu, seed=0)
    rows = 8192  # 8192 rows × 200,004 f32 is 6.5 GB, over any binding
    steps = net._core.steps
    with pytest.raises(gpu_net.GpuError, match="rows"):
        net.gradient(np.zeros((rows, 3), dtype=np.float32), np.zeros(rows, dtype=np.int64))
    assert net._core.steps == steps
    net.gradient(np.zeros((4, 3)), np.zeros(4, dtype=np.int64))  # a batch that fits
    assert net._core.steps == steps + 1


def test_params_that_are_not_a_dict_and_trainer_counts_past_the_limits_are_named(mnist):
    """Arguments gpu-net cannot take are refused naming the argument, not
    with numpy's or Python's errors from deeper in."""
    net = gpu_net.TwoLayerNet(784, 8, 10, device="cpu", seed=0)
    saved = net.params
    for bad in (list(saved.values()), None):
        net.params = bad
        with pytest.raises(TypeError, match="params must be a dict"):
            net.predict(X)
    net.params = saved
    (x, t), (xt, tt) = mnist
    with pytest.raises(ValueError, match=r"epochs=1e\+30 is .* over the limit"):
        gpu_net.Trainer(net, x[:100], t[:100], xt[:100], tt[:100], epochs=1e30)
    # A sample past the sets' sizes is the whole set, as numpy's x[:n] is.
    tr = gpu_net.Trainer(net, x[:100], t[:100], xt[:50], tt[:50], epochs=1,
                         evaluate_sample_num_per_epoch=2**64, verbose=False)
    assert tr.evaluate_sample_num_per_epoch == 50
    tr.train()
    assert len(tr.test_acc_list) == 1
