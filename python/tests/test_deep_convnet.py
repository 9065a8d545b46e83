"""gpu_net.DeepConvNet against the book's numpy DeepConvNet
(book_deep_convnet.py): the book's trained pickle loads and classifies
the test images as the book's code does; the same parameters give the same
scores, loss and gradient (Dropout at ratio 0 in training, where the masks
are numpy's random numbers in the book's), on the CPU reference (f64) and
on the GPU (f32); the book's constructor, its pickle both ways, and bad
input named."""

import hashlib
import os
import pickle

import numpy as np
import pytest

import book_deep_convnet as book
import gpu_net

PICKLE = os.path.join(os.path.dirname(__file__), "..", "..", "data", "book", "deep_convnet_params.pkl")
SHA256 = "4b7a27baee2037605afa94d3f514ca9fa9cc96623739328609765073cfd5f802"


def twins(seed=3):
    """A gpu_net DeepConvNet and the book's, holding the same parameters."""
    ours = gpu_net.DeepConvNet(device="cpu", seed=seed)
    theirs = book.DeepConvNet()
    for k, v in ours.params.items():
        theirs.params[k][...] = v  # in place: the book's layers hold these arrays
    return ours, theirs


def images(mnist, n, offset=0):
    (x_train, t_train), _ = mnist
    x = x_train[offset:offset + n].reshape(n, 1, 28, 28)
    return x, t_train[offset:offset + n]


def test_the_books_pickle_classifies_as_the_books_code(mnist):
    with open(PICKLE, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == SHA256
    ours = gpu_net.DeepConvNet(device="cpu", seed=0)
    ours.load_params(PICKLE)
    theirs = book.DeepConvNet()
    theirs.load_params(PICKLE)
    _, (x_test, t_test) = mnist
    x, t = x_test[:500].reshape(500, 1, 28, 28), t_test[:500]
    y_ours, y_theirs = ours.predict(x), theirs.predict(x)
    np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-9, atol=1e-9)
    assert (y_ours.argmax(axis=1) == y_theirs.argmax(axis=1)).all()
    assert ours.accuracy(x, t) == theirs.accuracy(x, t) >= 0.98


def test_scores_loss_and_gradient_equal_the_books(mnist):
    ours, theirs = twins()
    x, t = images(mnist, 6)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-10, atol=1e-12)
    # Dropout's masks are random numbers in the book's code: at ratio 0 in
    # training both keep every value, and the rest of backprop is compared.
    for layer in theirs.layers:
        if isinstance(layer, book.Dropout):
            layer.dropout_ratio = 0.0
    ours_zero = gpu_net.DeepConvNet(device="cpu", seed=3)
    no_dropout = ours.layer_list.replace("dropout 0.5", "dropout 0")
    ours_zero._core = gpu_net._core.ListNetwork(no_dropout, (1, 28, 28), 0.0, "he", 3)
    ours_zero.params = ours.params
    grads = ours_zero.gradient(x, t)
    want = theirs.gradient(x, t)
    assert sorted(grads) == sorted(want) == sorted(ours.params)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-7, atol=1e-12, err_msg=k)
    # The book's loss adds 1e-7 inside the log, about 1e-7 / p per image
    # (p the label's probability, near 0.07 here); gpu-net's is exact.
    y = theirs.predict(x, train_flg=True)
    p = np.exp(y - y.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    exact = -np.mean(np.log(p[np.arange(len(t)), t]))
    assert abs(ours_zero.loss(x, t) - exact) < 1e-12
    assert abs(theirs.loss(x, t) - exact) < 1e-5


def test_dropout_trains_with_its_own_masks(mnist):
    ours, theirs = twins()
    x, t = images(mnist, 4)
    # Training form: half the values dropped (a different half each step);
    # evaluation scales by 1 - 0.5, as the book's.
    a, b = ours.predict(x, train_flg=True), ours.predict(x, train_flg=True)
    assert not np.array_equal(a, b)
    assert ours.gradient(x, t)["W8"].shape == (50, 10)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, train_flg=False), rtol=1e-10, atol=1e-12)


def test_the_books_constructor_and_pickle(tmp_path):
    net = gpu_net.DeepConvNet(device="cpu", seed=1)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes["W1"] == (16, 1, 3, 3) and shapes["W4"] == (32, 32, 3, 3) and shapes["W7"] == (1024, 50)
    assert sum(v.size for v in net.params.values()) == 123_552
    # He initialisation, as the book's weight_init_scales.
    assert abs(net.params["W7"].std() - np.sqrt(2 / 1024)) < 0.002
    net.save_params(tmp_path / "p.pkl")
    with open(tmp_path / "p.pkl", "rb") as f:
        saved = pickle.load(f)
    other = gpu_net.DeepConvNet(device="cpu", seed=2)
    other.load_params(tmp_path / "p.pkl")
    for k in saved:
        assert np.array_equal(other.params[k], net.params[k])
    assert net.device == "cpu (f64 reference)"


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="device='tpu'"):
        gpu_net.DeepConvNet(device="tpu")
    with pytest.raises(ValueError, match="conv_param_2 has no stride"):
        gpu_net.DeepConvNet(conv_param_2={"filter_num": 16, "filter_size": 3, "pad": 1}, device="cpu")
    with pytest.raises(ValueError, match=r"layer 5 \(pool 2x2\)"):
        gpu_net.DeepConvNet(input_dim=(1, 27, 27), device="cpu")
    net = gpu_net.DeepConvNet(device="cpu", seed=0)
    with pytest.raises(ValueError, match=r"x has shape \(2, 1, 14, 14\)"):
        net.predict(np.zeros((2, 1, 14, 14)))
    net.params["W3"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"params\['W3'\] has shape \(3, 3\)"):
        net.predict(np.zeros((1, 1, 28, 28)))


def test_on_the_gpu_scores_loss_and_gradient_equal_the_books(mnist, gpu):
    """The GPU's f32 against the book's f64 on the same parameters, and the
    book's pickle's test-set classes."""
    ours, theirs = twins()
    on_gpu = gpu_net.DeepConvNet(device=gpu, seed=3)
    assert on_gpu.device.startswith("gpu")
    on_gpu.params = ours.params
    x, t = images(mnist, 6)
    np.testing.assert_allclose(on_gpu.predict(x), theirs.predict(x), rtol=1e-4, atol=1e-5)
    for layer in theirs.layers:
        if isinstance(layer, book.Dropout):
            layer.dropout_ratio = 0.0
    no_dropout = ours.layer_list.replace("dropout 0.5", "dropout 0")
    on_gpu._core = gpu_net._core.ListNetwork(no_dropout, (1, 28, 28), 0.0, "he", 3, gpu)
    grads, want = on_gpu.gradient(x, t), theirs.gradient(x, t)
    for k in want:
        scale = np.abs(want[k]).max()
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-3, atol=1e-4 * scale, err_msg=k)
    assert abs(on_gpu.loss(x, t) - theirs.loss(x, t)) < 1e-4
    # Dropout's mask on the GPU is the CPU reference's, bit for bit in the
    # mask: the same step gives both the same dropped units.
    cpu_net = gpu_net.DeepConvNet(device="cpu", seed=3)
    gpu_net_ = gpu_net.DeepConvNet(device=gpu, seed=3)
    gpu_net_.params = cpu_net.params
    np.testing.assert_allclose(gpu_net_.predict(x, train_flg=True), cpu_net.predict(x, train_flg=True), rtol=1e-4, atol=1e-5)
    trained = gpu_net.DeepConvNet(device=gpu, seed=0)
    trained.load_params(PICKLE)
    book_net = book.DeepConvNet()
    book_net.load_params(PICKLE)
    _, (x_test, t_test) = mnist
    xs = x_test[:1000].reshape(1000, 1, 28, 28)
    same = (trained.predict(xs).argmax(axis=1) == book_net.predict(xs).argmax(axis=1)).mean()
    assert same >= 0.999, same


def test_the_books_trainer_trains_it_on_the_gpu(mnist, gpu):
    (x_train, t_train), (x_test, t_test) = mnist
    x, t = x_train[:200].reshape(200, 1, 28, 28), t_train[:200]
    xt, tt = x_test[:100].reshape(100, 1, 28, 28), t_test[:100]
    net = gpu_net.DeepConvNet(device=gpu, seed=1)
    before = {k: v.copy() for k, v in net.params.items()}
    trainer = gpu_net.Trainer(net, x, t, xt, tt, epochs=1, mini_batch_size=100, optimizer="Adam",
                              optimizer_param={"lr": 0.001}, evaluate_sample_num_per_epoch=100, verbose=False, seed=1)
    trainer.train()
    assert len(trainer.train_loss_list) == 2 and len(trainer.test_acc_list) == 1
    assert all(np.isfinite(trainer.train_loss_list))
    assert not np.array_equal(before["W1"], net.params["W1"])
    assert net._core.steps == 2
