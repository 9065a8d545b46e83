"""TwoLayerNet and MultiLayerNetExtend against the book's numpy code
(tests/book.py) and against gpu-net's CPU f64 reference, on awkward sizes."""

import numpy as np
import pytest

import book
import gpu_net

# f32 on the GPU against f64: relative to the largest magnitude of each tensor.
GPU_RTOL = 2e-4


def close(a, b, rtol=GPU_RTOL, scale=None):
    """|a - b| within rtol of b's largest magnitude (or of `scale`)."""
    scale = max(np.abs(b).max(), 1e-12) if scale is None else scale
    return np.abs(np.asarray(a) - b).max() <= rtol * scale


def batch(rng, rows, inputs, classes):
    return rng.random((rows, inputs)), rng.integers(0, classes, rows)


def book_two_layer(params, x, t):
    """The book's TwoLayerNet forward and backward on `params`."""
    a1, r, a2, last = book.Affine(params["W1"], params["b1"]), book.Relu(), book.Affine(params["W2"], params["b2"]), book.SoftmaxWithLoss()
    y = a2.forward(r.forward(a1.forward(x)))
    loss = last.forward(y, t)
    a1.backward(r.backward(a2.backward(last.backward())))
    return y, loss, {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}


@pytest.mark.parametrize("rows,inputs,hidden,classes", [(1, 3, 17, 2), (3, 33, 127, 10), (17, 784, 50, 10)])
def test_two_layer_net_matches_the_book_and_the_cpu(gpu, rng, rows, inputs, hidden, classes):
    net = gpu_net.TwoLayerNet(inputs, hidden, classes, weight_init_std=0.3, device=gpu, seed=3)
    cpu = gpu_net.TwoLayerNet(inputs, hidden, classes, weight_init_std=0.3, device="cpu", seed=3)
    for key in net.params:  # the same seed draws the same weights on both
        assert np.array_equal(net.params[key], cpu.params[key])
        net.params[key] += rng.normal(0, 0.1, net.params[key].shape)  # biases not zero
        cpu.params[key][...] = net.params[key]
    x, t = batch(rng, rows, inputs, classes)
    y, loss, grads = book_two_layer({k: v.copy() for k, v in net.params.items()}, x, t)
    assert close(net.predict(x), y) and close(cpu.predict(x), y, 1e-12)
    # gpu-net's cross-entropy is exact; the book adds 1e-7 inside the log.
    exact = -np.mean(np.log(book.softmax(y)[np.arange(rows), t]))
    assert abs(loss - exact) <= 1e-7 / book.softmax(y).min()
    assert abs(net.loss(x, t) - exact) <= 1e-5 * max(exact, 1) and abs(cpu.loss(x, t) - exact) <= 1e-12
    g, c = net.gradient(x, t), cpu.gradient(x, t)
    for key in grads:
        assert g[key].shape == grads[key].shape and g[key].dtype == np.float64
        assert close(g[key], grads[key]), key
        assert close(c[key], grads[key], 1e-9), key
    acc = np.mean(np.argmax(y, axis=1) == t)
    assert net.accuracy(x, t) == acc == cpu.accuracy(x, t)


def test_a_wrong_gradient_is_caught(gpu, rng):
    """The comparison above fails on a gradient off by 1%."""
    net = gpu_net.TwoLayerNet(33, 17, 10, weight_init_std=0.3, device=gpu, seed=1)
    x, t = batch(rng, 3, 33, 10)
    _, _, grads = book_two_layer({k: v.copy() for k, v in net.params.items()}, x, t)
    g = net.gradient(x, t)
    assert close(g["W1"], grads["W1"])
    assert not close(g["W1"] * 1.01, grads["W1"])


def test_in_place_updates_take_effect(gpu, rng):
    net = gpu_net.TwoLayerNet(5, 3, 4, device=gpu, seed=0)
    x, t = batch(rng, 2, 5, 4)
    before = net.predict(x)
    net.params["b2"] += np.array([1.0, 2.0, 3.0, 4.0])  # the book's in-place style
    assert close(net.predict(x) - before, np.tile([1.0, 2.0, 3.0, 4.0], (2, 1)))
    net.params["W1"] = np.zeros((5, 3))  # a new array works as well
    assert close(net.predict(x), np.tile(net.params["b2"], (2, 1)))


def test_numerical_gradient_matches_the_books(rng):
    net = gpu_net.TwoLayerNet(6, 5, 3, weight_init_std=0.5, device="cpu", seed=2)
    x, t = batch(rng, 4, 6, 3)
    params = {k: v.copy() for k, v in net.params.items()}

    def loss(_):
        return book_two_layer(params, x, t)[1]

    ours = net.numerical_gradient(x, t)
    for key in params:
        theirs = book.numerical_gradient(loss, params[key])
        # The book's loss adds 1e-7 inside the log; gpu-net's is exact.
        assert np.abs(ours[key] - theirs).max() < 1e-5, key


def test_the_books_gradient_check(gpu, mnist):
    """ch05/gradient_check.py: three training images; the GPU's f32 backprop
    agrees with the numerical gradient at least as well as the book's f64
    backprop did in the book (W1 3.9e-10, b1 2.4e-9, W2 4.6e-9, b2 1.4e-7)."""
    (x_train, t_train), _ = mnist
    np.random.seed(0)
    net = gpu_net.TwoLayerNet(input_size=784, hidden_size=50, output_size=10, device=gpu)
    grad_numerical = net.numerical_gradient(x_train[:3], t_train[:3])
    grad_backprop = net.gradient(x_train[:3], t_train[:3])
    book_figures = {"W1": 3.9e-10, "b1": 2.4e-9, "W2": 4.6e-9, "b2": 1.4e-7}
    for key, bound in book_figures.items():
        diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
        assert diff <= bound, (key, diff)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_multilayer_net_matches_the_book_and_the_cpu(gpu, rng, batchnorm):
    sizes = dict(input_size=33, hidden_size_list=[17, 3], output_size=10)
    kw = dict(weight_init_std=0.3, weight_decay_lambda=0.01, use_batchnorm=batchnorm, seed=5)
    net = gpu_net.MultiLayerNetExtend(**sizes, device=gpu, **kw)
    cpu = gpu_net.MultiLayerNetExtend(**sizes, device="cpu", **kw)
    names = ["W1", "b1", "W2", "b2", "W3", "b3"]
    if batchnorm:
        names = ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    assert list(net.params) == names
    x, t = batch(rng, 17, 33, 10)
    ref = book.MultiLayerNetExtend({k: v.copy() for k, v in net.params.items()}, [17, 3], batchnorm, 0.01)
    grads = ref.gradient(x, t)
    g, c = net.gradient(x, t), cpu.gradient(x, t)
    for key in names:
        # A bias before Batch Normalization has no effect: its gradient is
        # 0, and f32 leaves rounding there, judged against its layer's W's.
        scale = np.abs(grads["W" + key[-1]]).max() if batchnorm and key in ("b1", "b2") else None
        assert close(g[key], grads[key], 1e-3, scale), key
        assert close(c[key], grads[key], 1e-6, scale), key
    # The training forward moved the running statistics as the book's does.
    if batchnorm:
        bn = ref.layers[1][1]
        assert close(net._core.running[:17], bn.running_mean, 1e-4)
        assert close(cpu._core.running[:17], bn.running_mean, 1e-9)
    assert close(net.predict(x), ref.predict(x, train_flg=False), 1e-3)
    # The book's loss less its cross-entropy (saturated by its 1e-7 once a
    # probability falls below it), plus the exact one gpu-net computes.
    y = ref.predict(x)
    p = book.softmax(y)[np.arange(17), t]
    exact = ref.loss(x, t) - book.cross_entropy_error(book.softmax(y), t) - np.mean(np.log(p))
    assert abs(net.loss(x, t) - exact) < 1e-4 * exact
    assert abs(cpu.loss(x, t, train_flg=False) - exact) < 1e-9 * exact


def test_dropout_masks_agree_between_gpu_and_cpu(gpu, rng):
    kw = dict(use_dropout=True, dropout_ration=0.3, weight_init_std=0.3, seed=9)
    net = gpu_net.MultiLayerNetExtend(33, [17, 17], 10, device=gpu, **kw)
    cpu = gpu_net.MultiLayerNetExtend(33, [17, 17], 10, device="cpu", **kw)
    x, t = batch(rng, 3, 33, 10)
    first = None
    for _ in range(2):  # steps 1 and 2: each its own mask, the same on both
        g, c = net.gradient(x, t), cpu.gradient(x, t)
        for key in g:
            assert close(g[key], c[key], 1e-3), key
        first = g if first is None else first
    assert not np.allclose(first["W1"], g["W1"])  # the masks of steps 1 and 2 differ
    # Some units are dropped: a row of W2 (a hidden unit of layer 1) gets no gradient.
    assert (np.abs(g["W2"]).sum(axis=1) == 0).any()
    # Evaluation scales by 1 - ratio, as the book's Dropout.
    ref = book.MultiLayerNetExtend({k: v.copy() for k, v in net.params.items()}, [17, 17], False, 0)
    h = x
    for kind, layer in ref.layers[:-1]:
        h = layer.forward(h)
        if kind == "Relu":
            h = h * (1 - 0.3)
    assert close(net.predict(x), ref.layers[-1][1].forward(h), 1e-3)


def test_unimplemented_arguments_are_refused():
    with pytest.raises(ValueError, match="activation='sigmoid'.*relu"):
        gpu_net.MultiLayerNetExtend(784, [50], 10, activation="sigmoid")
    with pytest.raises(ValueError, match="weight_init_std"):
        gpu_net.MultiLayerNetExtend(784, [50], 10, weight_init_std="lecun")
    with pytest.raises(ValueError, match="dropout_ration"):
        gpu_net.MultiLayerNetExtend(784, [50], 10, use_dropout=True, dropout_ration=1.5)


def test_multilayer_numerical_gradient_matches_the_books(rng):
    """MultiLayerNetExtend.numerical_gradient (training form, Batch
    Normalization's batch statistics, weight decay) against the book's
    numerical_gradient of the book's loss(x, t, train_flg=True)."""
    kw = dict(weight_init_std=0.5, weight_decay_lambda=0.1, use_batchnorm=True, seed=6)
    net = gpu_net.MultiLayerNetExtend(5, [4, 3], 3, device="cpu", **kw)
    x, t = batch(rng, 6, 5, 3)
    params = {k: v.copy() for k, v in net.params.items()}
    ours = net.numerical_gradient(x, t)

    def loss(_):
        ref = book.MultiLayerNetExtend(params, [4, 3], True, 0.1)
        return ref.loss(x, t, train_flg=True)

    for key in params:
        theirs = book.numerical_gradient(loss, params[key])
        assert np.abs(ours[key] - theirs).max() < 1e-5, key
    # And the CPU reference's backprop agrees with it.
    g = gpu_net.MultiLayerNetExtend(5, [4, 3], 3, device="cpu", **kw).gradient(x, t)
    for key in params:
        assert np.abs(g[key] - ours[key]).max() < 1e-6, key


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_threads_sharing_a_network_take_turns(mnist, device):
    """Four threads calling one network's gradient() at once: each call
    waits for the one before, and each gives the bits one thread gets."""
    import threading

    net = gpu_net.TwoLayerNet(784, 50, 10, device=device, seed=3)
    (x, t), _ = mnist
    x, t = x[:300], t[:300]
    want = net.gradient(x, t)
    got, errors = [], []

    def work():
        try:
            for _ in range(4):
                got.append(net.gradient(x, t))
                net.accuracy(x, t)
        except Exception as e:  # noqa: BLE001 (the test reports whatever a thread hit)
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len(got) == 16
    for g in got:
        for k in want:
            assert np.array_equal(g[k], want[k]), k
