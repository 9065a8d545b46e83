"""Each optimizer against the book's numpy class (tests/book.py) over
several updates, arrays changed in place."""

import numpy as np
import pytest

import book
import gpu_net

CASES = [
    ("SGD", {"lr": 0.1}),
    ("Momentum", {"lr": 0.05, "momentum": 0.8}),
    ("Nesterov", {"lr": 0.05, "momentum": 0.9}),
    ("AdaGrad", {"lr": 0.1}),
    ("RMSprop", {"lr": 0.01, "decay_rate": 0.9}),
    ("Adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99}),
]


@pytest.mark.parametrize("name,kw", CASES)
def test_optimizer_matches_the_book(rng, name, kw):
    ours, theirs = getattr(gpu_net, name)(**kw), getattr(book, name)(**kw)
    p1 = {"W1": rng.normal(size=(3, 17)), "b1": rng.normal(size=17)}
    p2 = {k: v.copy() for k, v in p1.items()}
    arrays = {k: v for k, v in p1.items()}
    for _ in range(4):
        grads = {k: rng.normal(size=v.shape) for k, v in p1.items()}
        ours.update(p1, grads)
        theirs.update(p2, grads)
    for k in p1:
        assert p1[k] is arrays[k]  # in place
        assert np.allclose(p1[k], p2[k], rtol=1e-12, atol=1e-12), k
    # The comparison fails on a difference of 1e-9.
    assert not np.allclose(p1["W1"], p2["W1"] + 1e-9, rtol=1e-12, atol=1e-12)


def test_lr_is_read_at_each_update(rng):
    opt = gpu_net.SGD(lr=0.1)
    p = {"W": np.ones(3)}
    opt.lr = 0.5
    opt.update(p, {"W": np.ones(3)})
    assert np.allclose(p["W"], 0.5)


def test_bad_optimizer_input():
    with pytest.raises(ValueError, match="lr"):
        gpu_net.SGD(lr=-1)
    with pytest.raises(ValueError, match="grads has no 'b'"):
        gpu_net.SGD().update({"b": np.zeros(2)}, {})
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \[3\], params\['b'\] \[2\]"):
        gpu_net.SGD().update({"b": np.zeros(2)}, {"b": np.zeros(3)})
    # The same count of values in another shape is refused too, as numpy's
    # broadcasting refuses it in the book's code.
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \[3, 2\], params\['W'\] \[2, 3\]"):
        gpu_net.SGD(lr=1).update({"W": np.zeros((2, 3))}, {"W": np.arange(6.0).reshape(3, 2)})
    with pytest.raises(ValueError, match=r"params\['b'\] is not a float64"):
        gpu_net.SGD().update({"b": np.zeros(2, dtype=np.float32)}, {"b": np.zeros(2)})


def test_hyperparameters_are_read_at_each_update_and_checked():
    ours, theirs = gpu_net.Momentum(lr=0.1), __import__("book").Momentum(lr=0.1)
    p1, p2 = {"W": np.ones(3)}, {"W": np.ones(3)}
    for m in (0.9, 0.5):
        ours.momentum = theirs.momentum = m
        ours.update(p1, {"W": np.full(3, 2.0)})
        theirs.update(p2, {"W": np.full(3, 2.0)})
    assert np.allclose(p1["W"], p2["W"], rtol=1e-12)
    for bad in (dict(beta1=1.0), dict(beta2=1.5), dict(lr=float("nan"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            gpu_net.Adam(**bad)


def test_an_optimizer_refuses_arrays_that_changed_size():
    opt = gpu_net.Momentum()
    opt.update({"W": np.zeros(3)}, {"W": np.ones(3)})
    with pytest.raises(ValueError, match=r"params\['W'\] has 5 values, but this optimizer's state for it 3"):
        opt.update({"W": np.zeros(5)}, {"W": np.ones(5)})


def test_params_and_grads_may_share_memory():
    p = {"W": np.ones(3)}
    gpu_net.SGD(lr=0.5).update(p, p)
    assert np.allclose(p["W"], 0.5)


@pytest.mark.parametrize("name,kw", CASES)
def test_arrays_in_any_memory_order_mean_what_numpy_says(rng, name, kw):
    """A Fortran-ordered or transposed parameter (params['W'] = a.T) is
    updated element for element as its C-ordered copy, bit for bit."""
    base = rng.normal(size=(5, 3))
    fortran = {"W": np.asfortranarray(base.copy())}
    transposed = {"W": base.T.copy().T}
    c_order = {"W": base.copy()}
    opts = [getattr(gpu_net, name)(**kw) for _ in range(3)]
    for _ in range(3):
        g = rng.normal(size=(5, 3))
        for opt, p in zip(opts, (fortran, transposed, c_order)):
            opt.update(p, {"W": np.asfortranarray(g)})
    assert not fortran["W"].flags.c_contiguous and fortran["W"].flags.f_contiguous
    assert np.array_equal(fortran["W"], c_order["W"])
    assert np.array_equal(transposed["W"], c_order["W"])
