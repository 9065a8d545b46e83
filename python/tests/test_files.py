"""MNIST as the book loads it, and checkpoints shared with the CLI both ways."""

import json
import os
import re
import subprocess

import numpy as np
import pytest

import gpu_net

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cli():
    """The gpu-net binary: $GPU_NET_BIN, else the checkout's release build."""
    path = os.environ.get("GPU_NET_BIN", os.path.join(ROOT, "target", "release", "gpu-net"))
    if not os.path.exists(path):
        pytest.skip(f"no gpu-net binary at {path} (cargo build --release, or set GPU_NET_BIN)")
    return path


@pytest.mark.parametrize("normalize,flatten,one_hot", [(True, True, False), (False, False, True)])
def test_load_mnist_as_the_book(normalize, flatten, one_hot):
    (x, t), (xt, tt) = gpu_net.load_mnist(normalize=normalize, flatten=flatten, one_hot_label=one_hot)
    assert x.shape == ((60000, 784) if flatten else (60000, 1, 28, 28)) and xt.shape[0] == 10000
    assert x.dtype == (np.float32 if normalize else np.uint8)
    if normalize:
        assert 0 <= x.min() and x.max() == 1.0
    if one_hot:
        assert t.shape == (60000, 10) and t.dtype == np.float64 and (t.sum(axis=1) == 1).all()
    else:
        assert t.shape == (60000,) and t.dtype == np.uint8 and t.max() == 9


def test_load_mnist_names_a_missing_folder(tmp_path):
    with pytest.raises(OSError, match=str(tmp_path)):
        gpu_net.load_mnist(data_dir=tmp_path)


def test_saved_in_python_evaluated_by_the_cli_and_back(gpu, mnist, tmp_path):
    _, (xt, tt) = mnist
    net = gpu_net.MultiLayerNetExtend(784, [30, 20], 10, use_batchnorm=True, device=gpu, seed=2)
    x, t = mnist[0][0][:500], mnist[0][1][:500]
    for _ in range(20):
        grads = net.gradient(x[:100], t[:100])
        gpu_net.SGD(lr=0.1).update(net.params, grads)
    path = tmp_path / "net.safetensors"
    net.save(path)
    out = subprocess.run([cli(), "eval", "--model", str(path), "--json"], capture_output=True, text=True, check=True)
    cli_acc = json.loads(out.stdout)["accuracy"]
    assert abs(cli_acc - net.accuracy(xt, tt)) < 1e-9
    back = gpu_net.load(path)
    assert type(back) is gpu_net.MultiLayerNetExtend
    assert back.accuracy(xt, tt) == net.accuracy(xt, tt)
    for k in net.params:
        assert np.array_equal(back.params[k], net.params[k].astype(np.float32)), k


def test_trained_by_the_cli_loaded_in_python(gpu, mnist, tmp_path):
    path = tmp_path / "cli.safetensors"
    out = subprocess.run([cli(), "train", "--iters", "200", "--save", str(path)], capture_output=True, text=True, check=True)
    acc = float(re.search(r"final test accuracy ([0-9.]+)", out.stdout).group(1))
    net = gpu_net.load(path)
    assert type(net) is gpu_net.TwoLayerNet and list(net.params) == ["W1", "b1", "W2", "b2"]
    _, (xt, tt) = mnist
    assert round(net.accuracy(xt, tt), 4) == acc


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(OSError, match="notes.txt"):
        gpu_net.load(bad)


def test_save_never_replaces_a_fifo_and_writes_through_a_link(tmp_path):
    """A save over a FIFO is refused naming it (the FIFO stays); a save to a
    symbolic link writes the file it points to, and the link stays a link."""
    net = gpu_net.TwoLayerNet(784, 8, 10, device="cpu", seed=1)
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="pipe.safetensors.*not a regular file"):
        net.save(fifo)
    assert fifo.is_fifo()
    target, link = tmp_path / "real.safetensors", tmp_path / "link.safetensors"
    net.save(target)
    os.symlink("real.safetensors", link)
    net.params["b2"] = net.params["b2"] + 1.0
    net.save(link)
    assert link.is_symlink()
    assert np.array_equal(gpu_net.load(target).params["b2"], net.params["b2"])
