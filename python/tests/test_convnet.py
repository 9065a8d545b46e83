"""gpu_net.SimpleConvNet against the book's numpy SimpleConvNet
(book_convnet.py): the same parameters give the same scores, loss and
gradient on awkward shapes; the numerical gradient is the book's; the
Trainer trains it; a checkpoint goes to the CLI and back; bad input is
named."""

import json
import subprocess

import numpy as np
import pytest

import book_convnet as book
import gpu_net

GRADIENT_CHECK = dict(input_dim=(1, 10, 10), conv_param={"filter_num": 10, "filter_size": 3, "pad": 0, "stride": 1}, hidden_size=10, output_size=10)
# The book's SimpleConvNet sizes its W2 from the image's height alone: its
# images are square.
AWKWARD = [
    GRADIENT_CHECK,
    dict(input_dim=(3, 8, 8), conv_param={"filter_num": 7, "filter_size": 3, "pad": 1, "stride": 1}, hidden_size=17, output_size=10),
    dict(input_dim=(1, 15, 15), conv_param={"filter_num": 3, "filter_size": 5, "pad": 2, "stride": 2}, hidden_size=5, output_size=3),
]


def twins(shape, device, seed=3, std=0.3):
    """A gpu_net network and the book's, holding the same parameters."""
    ours = gpu_net.SimpleConvNet(**shape, weight_init_std=std, device=device, seed=seed)
    theirs = book.SimpleConvNet(**shape)
    for k, v in ours.params.items():
        theirs.params[k][...] = v  # in place: the book's layers hold these arrays
    return ours, theirs


def batch(shape, n, rng):
    x = rng.random((n, *shape["input_dim"]))
    t = rng.integers(0, shape["output_size"], n)
    return x, t


@pytest.mark.parametrize("shape", AWKWARD)
@pytest.mark.parametrize("n", [1, 3])
def test_the_same_params_give_the_books_scores_loss_and_gradient(shape, n, gpu, rng):
    ours, theirs = twins(shape, gpu)
    x, t = batch(shape, n, rng)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-4, atol=1e-5)
    assert ours.loss(x, t) == pytest.approx(theirs.loss(x, t), rel=1e-5)
    got, want = ours.gradient(x, t), theirs.gradient(x, t)
    for k in ("W1", "b1", "W2", "b2", "W3", "b3"):
        assert got[k].shape == want[k].shape
        scale = np.abs(want[k]).max()
        np.testing.assert_allclose(got[k], want[k], rtol=1e-3, atol=1e-4 * scale, err_msg=k)


def test_the_cpu_reference_gives_the_books_gradient_in_f64(rng):
    ours, theirs = twins(AWKWARD[1], "cpu")
    x, t = batch(AWKWARD[1], 3, rng)
    got, want = ours.gradient(x, t), theirs.gradient(x, t)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_gradient_check_as_the_book_runs_it(gpu):
    """ch07/gradient_check.py: one 10×10 image, label 1, the book's init
    0.01; |backprop - numerical| per element is below 1e-8 (median) and
    above 1e-6 for under a fifth of each tensor's elements, and our
    numerical gradient is the book's (within what its 1e-7 inside the
    log moves it: 1e-7/y relative)."""
    np.random.seed(0)
    ours, theirs = twins(GRADIENT_CHECK, gpu, seed=0, std=0.01)
    x = np.random.rand(100).reshape((1, 1, 10, 10))
    t = np.array([1])
    num = ours.numerical_gradient(x, t)
    grad = ours.gradient(x, t)
    for key, value in theirs.params.items():
        want = book.numerical_gradient(lambda _: theirs.loss(x, t), value)
        np.testing.assert_allclose(num[key], want, rtol=1e-5, atol=1e-9, err_msg=key)
        # Backprop is f32 on the GPU; a nudge that crosses a Relu kink
        # (an output within 2h of 0) moves its element by far more.
        d = np.abs(grad[key] - num[key])
        assert np.median(d) < 1e-8 and np.mean(d > 1e-6) < 0.2, (key, np.sort(d.ravel())[-3:])


def test_the_trainer_trains_it(gpu, mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    shape = dict(input_dim=(1, 28, 28), conv_param={"filter_num": 6, "filter_size": 5, "pad": 0, "stride": 1}, hidden_size=30, output_size=10)
    network = gpu_net.SimpleConvNet(**shape, device=gpu, seed=1)
    images = lambda x: x.reshape(-1, 1, 28, 28)
    trainer = gpu_net.Trainer(
        network, images(x_train[:1000]), t_train[:1000], images(x_test[:500]), t_test[:500],
        epochs=2, mini_batch_size=50, optimizer="Adam", optimizer_param={"lr": 0.005},
        evaluate_sample_num_per_epoch=500, verbose=False,
    )
    trainer.train()
    assert len(trainer.train_loss_list) == 40
    assert trainer.test_acc_list[-1] > 0.6, trainer.test_acc_list
    assert network.accuracy(images(x_test[:500]), t_test[:500]) == pytest.approx(trainer.test_acc_list[-1])


def test_a_checkpoint_goes_to_the_cli_and_back(gpu, mnist, tmp_path):
    (_, _), (x_test, t_test) = mnist
    ours, _ = twins(dict(AWKWARD[0], input_dim=(1, 28, 28)), gpu)
    path = tmp_path / "conv.safetensors"
    ours.save(path)
    back = gpu_net.load(path, device=gpu)
    assert isinstance(back, gpu_net.SimpleConvNet)
    for k, v in ours.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    from test_files import cli

    out = subprocess.run([cli(), "eval", "--model", str(path), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["accuracy"] == ours.accuracy(x_test.reshape(-1, 1, 28, 28), t_test)
    pickled = tmp_path / "params.pkl"
    ours.save_params(pickled)
    again = gpu_net.SimpleConvNet(**dict(AWKWARD[0], input_dim=(1, 28, 28)), device="cpu", seed=9)
    again.load_params(pickled)
    for k, v in ours.params.items():
        np.testing.assert_array_equal(again.params[k], v)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(input_dim=(1, 28)), "input_dim"),
        (dict(conv_param={"filter_num": 30, "filter_size": 5, "pad": 0}), "conv_param has no stride"),
        (dict(conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, "dilation": 2}), "dilation"),
        (dict(conv_param={"filter_num": 30, "filter_size": 29, "pad": 0, "stride": 1}), "larger than the padded image"),
        (dict(conv_param={"filter_num": 30, "filter_size": 4, "pad": 0, "stride": 1}), "not a whole number"),
        (dict(conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 0}), "conv_param['stride']"),
    ],
)
def test_bad_shapes_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=None) as e:
        gpu_net.SimpleConvNet(**kwargs, device="cpu", seed=0)
    assert needle in str(e.value)


def test_images_of_other_channels_are_refused():
    network = gpu_net.SimpleConvNet(device="cpu", seed=0)
    with pytest.raises(ValueError) as e:
        network.predict(np.zeros((2, 3, 28, 28)))
    assert "(N, 1, 28, 28)" in str(e.value)
