"""The book's `dataset.mnist.load_mnist`, from gpu-net's bundled MNIST."""

import os

import numpy as np

from . import _core


def _one_hot(labels, classes=10):
    """As the book's `_change_one_hot_label`: float64 rows of zeros and a 1."""
    t = np.zeros((labels.size, classes))
    t[np.arange(labels.size), labels] = 1
    return t


def load_mnist(normalize=True, flatten=True, one_hot_label=False, data_dir=None):
    """((x_train, t_train), (x_test, t_test)) with the book's shapes and dtypes.

    normalize: images as float32 in [0, 1] (else uint8 0..255).
    flatten: images as (N, 784) (else (N, 1, 28, 28)).
    one_hot_label: labels as float64 (N, 10) one-hot rows (else uint8).
    data_dir: a folder with the four IDX files (gzipped or not); by default
    `data/mnist` under the working directory, then the gpu-net checkout
    this package was built from.
    """
    d = _core.load_mnist_arrays(None if data_dir is None else os.fspath(data_dir))
    out = []
    for x, t in ((d["x_train"], d["t_train"]), (d["x_test"], d["t_test"])):
        if normalize:
            x = x.astype(np.float32)
            x /= 255.0
        if not flatten:
            x = x.reshape(-1, 1, 28, 28)
        if one_hot_label:
            t = _one_hot(t)
        out.append((x, t))
    return tuple(out)
