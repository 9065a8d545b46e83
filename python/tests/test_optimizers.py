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
    assert not np.allclose(p1["W1"], p2["W1"] + 1e-6)  # the comparison can fail


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
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape"):
        gpu_net.SGD().update({"b": np.zeros(2)}, {"b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"params\['b'\] is not a float64"):
        gpu_net.SGD().update({"b": np.zeros(2, dtype=np.float32)}, {"b": np.zeros(2)})
