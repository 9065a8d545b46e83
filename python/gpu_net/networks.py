"""The book's networks: `TwoLayerNet` (chapter 5), `MultiLayerNetExtend`
(chapter 6), `SimpleConvNet` (chapter 7) and `DeepConvNet` (chapter 8), and
`load` for a checkpoint.

Each keeps `params`, a dict of float64 numpy arrays with the book's names
and shapes, and hands it to the Rust core with every call, so the book's
`network.params[key] -= lr * grad[key]` takes effect on the next call.
Batch Normalization's running statistics and Dropout's step count stay in
the core, as they stay in the book's layers. Forward passes and backprop
run on the GPU (f32); `numerical_gradient` runs in f64 on the CPU, and so
does all of `DeepConvNet` (its GPU path is not built yet).
A network may be shared between threads: their calls take turns.
"""

import os
import pickle
import threading
import warnings

import numpy as np

from . import _checks, _core

# Labels reach the CPU reference as bytes.
MAX_CLASSES = 256


def _seed(seed):
    """The weights' seed: drawn from numpy's global generator when not
    given, so `np.random.seed(n)` repeats a notebook as it does the book's."""
    if seed is None:
        return int(np.random.randint(0, 2**31 - 1))
    return _checks.count(seed, "seed", least=0)


class _Network:
    """What both networks share: the core, `params`, and the book's methods."""

    def _setup(self, sizes, batchnorm, dropout, weight_decay, init, seed, device, hidden_name="hidden_size_list", conv=None):
        names = ["input_size", *(f"{hidden_name}[{i}]" for i in range(len(sizes) - 2)), "output_size"]
        for s, name in zip(sizes, names):
            _checks.count(s, name)
        _checks.count(sizes[-1], "output_size", least=2, most=MAX_CLASSES)
        if device not in ("auto", "gpu", "cpu"):
            raise ValueError(f"device={device!r}: say 'auto', 'gpu' or 'cpu'")
        self._attach(_core.Network(list(sizes), batchnorm, dropout, weight_decay, init, seed, device, conv), warn=True, stacklevel=4)

    def _attach(self, core, warn, stacklevel=3):
        """Takes `core` as the network's, and its tensors as `params`."""
        self._core = core
        # One call into the core at a time: the core releases the GIL while
        # the device works, and a second thread's call then waits here
        # (Python's lock lets the GIL go as it waits) instead of failing.
        self._lock = threading.RLock()
        if warn and self._core.fallback:
            # Pointing at the line that made the network.
            warnings.warn(f"gpu_net computes on the CPU (f64 reference): {self._core.fallback}", stacklevel=stacklevel)
        self._tensors = [(name, tuple(shape)) for name, shape in self._core.tensors()]
        self._names = [name for name, _ in self._tensors]
        self.params = dict(zip(self._names, self._core.initial_params()))

    @property
    def device(self):
        """Where the network computes, e.g. 'gpu: llvmpipe (Vulkan, software)'."""
        with self._lock:
            return self._core.device

    def _call(self, method, *args):
        """`self._core.method(*args)`, one thread at a time."""
        with self._lock:
            return getattr(self._core, method)(*args)

    def _arrays(self):
        if not isinstance(self.params, dict):
            raise TypeError(
                f"params must be a dict of numpy arrays by name, as the book keeps them, "
                f"not {type(self.params).__name__}"
            )
        out = []
        for name, shape in self._tensors:
            if name not in self.params:
                raise ValueError(f"params has no '{name}'")
            a = np.asarray(self.params[name])
            if a.shape != shape:
                raise ValueError(f"params['{name}'] has shape {a.shape}, not {shape}")
            if a.dtype.kind != "f":
                raise ValueError(f"params['{name}'] has dtype {a.dtype}; it must hold floats")
            out.append(np.ascontiguousarray(a, dtype=np.float64))
        return out

    def _x(self, x):
        return _checks.images(x, "x", self._sizes[0])

    def _t(self, t, rows):
        return _checks.labels(t, "t", rows, self._sizes[-1])

    def _grads(self, arrays):
        return dict(zip(self._names, arrays))

    def _predict(self, x, train_flg):
        return self._call("predict", self._arrays(), self._x(x), bool(train_flg))

    def _loss(self, x, t, train_flg):
        x = self._x(x)
        return self._call("loss", self._arrays(), x, self._t(t, x.shape[0]), bool(train_flg))

    def accuracy(self, x, t):
        """The fraction of images whose largest score is the label."""
        x = self._x(x)
        return self._call("accuracy", self._arrays(), x, self._t(t, x.shape[0]))

    def gradient(self, x, t):
        """Backprop on the network's device: a dict of gradients named as `params`."""
        x = self._x(x)
        return self._grads(self._call("gradient", self._arrays(), x, self._t(t, x.shape[0])))


class _Checkpointed(_Network):
    """The networks of chapters 5 to 7: a numerical gradient beside
    backprop, and a checkpoint of their own."""

    def numerical_gradient(self, x, t):
        """The book's central differences (h = 1e-4) in f64 on the CPU."""
        x = self._x(x)
        return self._grads(self._call("numerical_gradient", self._arrays(), x, self._t(t, x.shape[0])))

    def save(self, path):
        """Writes the safetensors checkpoint `gpu-net eval --model` reads."""
        arrays = self._arrays()
        with self._lock:
            _core.write_checkpoint(self._core, arrays, os.fspath(path))


class _Images:
    """What the convolutional networks share: images as (N, C, H, W) (or
    rows of C·H·W), the book's `accuracy(x, t, batch_size)` and its pickle
    of `params`."""

    def _x(self, x):
        a = np.asarray(x)
        if a.ndim == 4 and tuple(a.shape[1:]) != self._input_dim:
            raise ValueError(f"x has shape {a.shape}; the network takes (N, {', '.join(map(str, self._input_dim))}) images (input_dim)")
        return super()._x(x)

    def accuracy(self, x, t, batch_size=100):
        """The fraction of images whose largest score is the label (the
        book's `batch_size` only splits its numpy work: the core chunks as
        the device needs)."""
        return super().accuracy(x, t)

    def save_params(self, file_name="params.pkl"):
        """The book's pickle of `params`."""
        with open(file_name, "wb") as f:
            pickle.dump({k: np.asarray(v) for k, v in self.params.items()}, f)

    def load_params(self, file_name="params.pkl"):
        """Reads what `save_params` (or the book's) wrote."""
        with open(file_name, "rb") as f:
            params = pickle.load(f)
        for key, val in params.items():
            self.params[key] = val


def _input_dim(input_dim):
    dims = tuple(input_dim)
    if len(dims) != 3:
        raise ValueError(f"input_dim={input_dim!r}: give (C, H, W)")
    for d, name in zip(dims, ("C", "H", "W")):
        _checks.count(d, f"input_dim's {name}")
    return dims


def _conv_param(conv_param, name="conv_param"):
    """filter_num, filter_size, pad, stride of a `conv_param` dict."""
    keys = ("filter_num", "filter_size", "pad", "stride")
    unknown = set(conv_param) - set(keys)
    if unknown:
        raise ValueError(f"{name} has {sorted(unknown)}; it takes {', '.join(keys)}")
    missing = [k for k in keys if k not in conv_param]
    if missing:
        raise ValueError(f"{name} has no {', '.join(missing)}")
    least = {"pad": 0}
    return [_checks.count(conv_param[k], f"{name}['{k}']", least=least.get(k, 1)) for k in keys]


class TwoLayerNet(_Checkpointed):
    """The book's chapter 5 `TwoLayerNet`: Affine, Relu, Affine, SoftmaxWithLoss."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, device="auto", seed=None):
        std = _checks.number(weight_init_std, "weight_init_std", positive=True)
        self._sizes = [input_size, hidden_size, output_size]
        self._setup(self._sizes, False, 0.0, 0.0, repr(std), _seed(seed), device, "hidden_size")

    # `train_flg` is not the book's TwoLayerNet's, and changes nothing here
    # (no Batch Normalization, no Dropout); it is taken so that code written
    # for MultiLayerNetExtend runs on a TwoLayerNet that `load` returns.
    def predict(self, x, train_flg=False):
        """Scores (N, output_size), before softmax."""
        return self._predict(x, False)

    def loss(self, x, t, train_flg=False):
        """Mean cross-entropy of softmax(predict(x)) against t."""
        return self._loss(x, t, False)


_INITS = {"relu": "he", "he": "he", "sigmoid": "xavier", "xavier": "xavier"}


class MultiLayerNetExtend(_Checkpointed):
    """The book's chapter 6 `MultiLayerNetExtend`: per hidden layer Affine,
    [BatchNorm], Relu, [Dropout]; then Affine and SoftmaxWithLoss; weight
    decay adds ½λ·ΣW² to the loss."""

    def __init__(
        self,
        input_size,
        hidden_size_list,
        output_size,
        activation="relu",
        weight_init_std="relu",
        weight_decay_lambda=0,
        use_dropout=False,
        dropout_ration=0.5,
        use_batchnorm=False,
        device="auto",
        seed=None,
    ):
        if activation != "relu":
            raise ValueError(f"activation={activation!r}: gpu-net implements 'relu' only")
        if isinstance(weight_init_std, str):
            if weight_init_std.lower() not in _INITS:
                raise ValueError(f"weight_init_std={weight_init_std!r}: say 'relu', 'he', 'sigmoid', 'xavier' or a number")
            init = _INITS[weight_init_std.lower()]
        else:
            init = repr(_checks.number(weight_init_std, "weight_init_std", positive=True))
        decay = _checks.number(weight_decay_lambda, "weight_decay_lambda", least=0)
        ratio = 0.0
        if use_dropout:
            ratio = _checks.number(dropout_ration, "dropout_ration", least=0)
            if ratio >= 1:
                raise ValueError(f"dropout_ration is {ratio}; it must be below 1")
        hidden = list(hidden_size_list)
        if not hidden:
            raise ValueError("hidden_size_list is empty; give at least one hidden layer")
        self._sizes = [input_size, *hidden, output_size]
        self._setup(self._sizes, bool(use_batchnorm), ratio, decay, init, _seed(seed), device)

    def predict(self, x, train_flg=False):
        """Scores (N, output_size); `train_flg` as the book's (batch statistics, Dropout)."""
        return self._predict(x, train_flg)

    def loss(self, x, t, train_flg=False):
        """Mean cross-entropy plus ½λ·ΣW²."""
        return self._loss(x, t, train_flg)


class SimpleConvNet(_Images, _Checkpointed):
    """The book's chapter 7 `SimpleConvNet`: Conv1, Relu1, Pool1 (2×2,
    stride 2), Affine1, Relu2, Affine2, SoftmaxWithLoss. Images are (N, C,
    H, W) as `input_dim` says (or flattened rows of C·H·W)."""

    def __init__(
        self,
        input_dim=(1, 28, 28),
        conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
        hidden_size=100,
        output_size=10,
        weight_init_std=0.01,
        device="auto",
        seed=None,
    ):
        std = _checks.number(weight_init_std, "weight_init_std", positive=True)
        self._setup_conv(input_dim, conv_param, hidden_size, output_size, repr(std), _seed(seed), device)

    def _setup_conv(self, input_dim, conv_param, hidden_size, output_size, init, seed, device):
        dims = _input_dim(input_dim)
        values = _conv_param(conv_param)
        self._input_dim = dims
        self._sizes = [int(np.prod(dims)), hidden_size, output_size]
        self._setup(self._sizes, False, 0.0, 0.0, init, seed, device, "hidden_size", conv=(list(dims), *values))

    def predict(self, x, train_flg=False):
        """Scores (N, output_size), before softmax."""
        return self._predict(x, False)

    def loss(self, x, t, train_flg=False):
        """Mean cross-entropy of softmax(predict(x)) against t."""
        return self._loss(x, t, False)


class DeepConvNet(_Images, _Network):
    """The book's chapter 8 `DeepConvNet`: three blocks of conv, relu, conv,
    relu, pool (2×2, stride 2), then affine, relu, dropout (0.5), affine,
    dropout (0.5), SoftmaxWithLoss; He initialisation. It computes on the
    GPU (f32) or on the CPU reference (f64, `device='cpu'`); Dropout's masks
    are gpu-net's own, keyed by the step."""

    def __init__(
        self,
        input_dim=(1, 28, 28),
        conv_param_1={"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
        conv_param_2={"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
        conv_param_3={"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
        conv_param_4={"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
        conv_param_5={"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
        conv_param_6={"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
        hidden_size=50,
        output_size=10,
        device="auto",
        seed=None,
    ):
        if device not in ("auto", "gpu", "cpu"):
            raise ValueError(f"device={device!r}: say 'auto', 'gpu' or 'cpu'")
        params = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6]
        convs = [_conv_param(p, f"conv_param_{i + 1}") for i, p in enumerate(params)]
        hidden = _checks.count(hidden_size, "hidden_size")
        outputs = _checks.count(output_size, "output_size", least=2, most=MAX_CLASSES)
        text = []
        for i, (filters, size, pad, stride) in enumerate(convs):
            text += [f"conv {filters} {size}x{size} stride {stride} pad {pad}", "relu"]
            if i % 2 == 1:
                text.append("pool 2x2")
        text += [f"affine {hidden}", "relu", "dropout 0.5", f"affine {outputs}", "dropout 0.5"]
        self._input_dim = _input_dim(input_dim)
        self._sizes = [int(np.prod(self._input_dim)), outputs]
        # The layers in gpu-net's text form (`core::network`'s).
        self.layer_list = ", ".join(text)
        core = _core.ListNetwork(self.layer_list, self._input_dim, 0.0, "he", _seed(seed), device)
        self._attach(core, warn=device == "auto")

    def predict(self, x, train_flg=False):
        """Scores (N, output_size); `train_flg` as the book's (Dropout's masks)."""
        return self._predict(x, train_flg)

    def loss(self, x, t):
        """Mean cross-entropy of softmax(predict(x, train_flg=True)) against t, as the book's."""
        return self._loss(x, t, True)


def load(path, device="auto"):
    """The network a checkpoint holds (`network.save` or `gpu-net train
    --save`): a SimpleConvNet for a convolutional network, a TwoLayerNet
    for one hidden layer and nothing of chapter 6, else a
    MultiLayerNetExtend, with its parameters, running statistics and step
    count."""
    d = _core.read_checkpoint(os.fspath(path))
    sizes = d["sizes"]
    if d["conv"] is not None:
        input_dim, filter_num, filter_size, pad, stride = d["conv"]
        if len(sizes) != 3 or d["weight_decay"] != 0:
            raise ValueError(f"{os.fspath(path)}: a convolutional network of {len(sizes) - 2} hidden layers or with weight decay is not the book's SimpleConvNet")
        net = object.__new__(SimpleConvNet)
        param = {"filter_num": filter_num, "filter_size": filter_size, "pad": pad, "stride": stride}
        net._setup_conv(input_dim, param, sizes[1], sizes[-1], d["init"], d["seed"], device)
        net.params = dict(zip(d["names"], d["params"]))
        net._core.steps = d["steps"]
        return net
    plain = len(sizes) == 3 and not d["batchnorm"] and d["dropout"] == 0 and d["weight_decay"] == 0
    net = object.__new__(TwoLayerNet if plain else MultiLayerNetExtend)
    net._sizes = list(sizes)
    net._setup(sizes, d["batchnorm"], d["dropout"], d["weight_decay"], d["init"], d["seed"], device)
    net.params = dict(zip(d["names"], d["params"]))
    net._core.running = d["running"]
    net._core.steps = d["steps"]
    return net
