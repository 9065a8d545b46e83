"""The book's `common/trainer.py`.

On the GPU, `train()` runs the whole loop in gpu-net (`src/book/trainer.rs`):
the images are uploaded once as bytes, minibatches are drawn with
replacement as `np.random.choice` draws them, and nothing is read back
until an epoch ends, when that epoch's step losses and accuracies come
back and are printed as the book prints them. Ctrl-C stops it between two
submissions of steps: `network.params` then holds what was trained and
KeyboardInterrupt is raised. On the CPU the book's own loop runs.

As `gpu-net train`, a step's loss is that of its minibatch in training
form before its update, and the accuracies are taken at the end of each
epoch.
"""

import numpy as np

from . import _checks, _core
from .networks import _Network, _seed
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

# The book's names, its spelling 'rmsprpo' included.
_OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "rmsprpo": RMSprop,
    "adam": Adam,
}


class Trainer:
    def __init__(
        self,
        network,
        x_train,
        t_train,
        x_test,
        t_test,
        epochs=20,
        mini_batch_size=100,
        optimizer="SGD",
        optimizer_param={"lr": 0.01},  # noqa: B006 (the book's signature; never changed)
        evaluate_sample_num_per_epoch=None,
        verbose=True,
        seed=None,
    ):
        if not isinstance(network, _Network):
            raise TypeError(f"network must be a gpu_net network (TwoLayerNet, MultiLayerNetExtend, SimpleConvNet or DeepConvNet), not {type(network).__name__}")
        self.network = network
        self.verbose = verbose
        inputs, classes = network._sizes[0], network._sizes[-1]
        self.x_train = _checks.images(x_train, "x_train", inputs)
        self.t_train = _checks.labels(t_train, "t_train", self.x_train.shape[0], classes)
        self.x_test = _checks.images(x_test, "x_test", inputs)
        self.t_test = _checks.labels(t_test, "t_test", self.x_test.shape[0], classes)
        self._raw = (x_train, x_test)
        self.epochs = _checks.number(epochs, "epochs", positive=True)
        self.batch_size = _checks.count(mini_batch_size, "mini_batch_size", most=self.x_train.shape[0])
        name = str(optimizer).lower()
        if name not in _OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r}: say one of {', '.join(sorted(set(_OPTIMIZERS) - {'rmsprpo'}))}")
        self._optimizer_name = "rmsprop" if name == "rmsprpo" else name
        self.optimizer_param = dict(optimizer_param)
        try:
            self.optimizer = _OPTIMIZERS[name](**self.optimizer_param)
        except TypeError as e:
            raise ValueError(f"optimizer_param {self.optimizer_param!r} for {optimizer}: {e}") from None
        if evaluate_sample_num_per_epoch is not None:
            n = _checks.count(evaluate_sample_num_per_epoch, "evaluate_sample_num_per_epoch")
            # The book slices x[:n]: past the set's size, numpy takes it all.
            evaluate_sample_num_per_epoch = min(n, self.x_train.shape[0], self.x_test.shape[0])
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.seed = _seed(seed)
        self.train_size = self.x_train.shape[0]
        self.iter_per_epoch = max(self.train_size // self.batch_size, 1)
        self.max_iter = int(self.epochs * self.iter_per_epoch + 1e-9)  # 10000 / 600 epochs is 10000 steps
        if self.max_iter < 1:
            raise ValueError(f"epochs={epochs} is less than one step of {self.iter_per_epoch} per epoch")
        if self.max_iter > _core.MAX_ITERS:
            raise ValueError(
                f"epochs={epochs} is {self.max_iter} steps of {self.iter_per_epoch} per epoch, "
                f"over the limit of {_core.MAX_ITERS} (as `gpu-net train --iters`)"
            )
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list = []
        self.train_acc_list = []
        self.test_acc_list = []
        # Seconds of the GPU's steps, without setup and evaluations (as
        # `gpu-net train` counts them for samples/s); None on the CPU.
        self.train_seconds = None

    def _epoch(self, epoch, losses, accuracies):
        """Prints an epoch as the book prints it, as it ends on the GPU; the
        lists and counters are set from the core's record (`_record`)."""
        if not self.verbose:
            return
        for loss in losses:
            print("train loss:" + str(loss))
        if accuracies is not None:  # a last epoch cut short: the book does not evaluate it
            train_acc, test_acc = accuracies
            print("=== epoch:" + str(epoch) + ", train acc:" + str(train_acc) + ", test acc:" + str(test_acc) + " ===")

    def _final(self, test_acc):
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))

    def train(self):
        """Trains for `epochs`; fills train_loss_list, train_acc_list, test_acc_list."""
        if self.network.device.startswith("cpu"):
            return self._train_in_python()
        net = self.network
        hyper = {k: v for k, v in self.optimizer_param.items()}
        hyper.setdefault("lr", self.optimizer.lr)
        start = (self.current_iter, len(self.train_loss_list), len(self.train_acc_list), self.current_epoch)
        with net._lock:
            out = _core.train(
                net._core,
                net._arrays(),
                _checks.pixels(self._raw[0], "x_train", net._sizes[0]),
                self.t_train,
                _checks.pixels(self._raw[1], "x_test", net._sizes[0]),
                self.t_test,
                self.max_iter,
                self.batch_size,
                self._optimizer_name,
                hyper,
                self.evaluate_sample_num_per_epoch,
                self.seed,
                self._epoch,
            )
        self._record(start, out)
        for name, a in zip(net._names, out["params"]):
            if isinstance(net.params.get(name), np.ndarray) and net.params[name].shape == a.shape and net.params[name].dtype == np.float64:
                np.copyto(net.params[name], a)
            else:
                net.params[name] = a
        self.train_seconds = out["seconds"]
        if out["error"] is not None:
            raise out["error"]
        self._final(out["final_test_acc"])

    def _record(self, start, out):
        """The lists and counters as the core says the run went, whatever
        stopped it (a Ctrl-C landing in `_epoch` included)."""
        iters, losses, accs, epoch = start
        self.train_loss_list[losses:] = out["train_loss"]
        self.train_acc_list[accs:] = out["train_acc"]
        self.test_acc_list[accs:] = out["test_acc"]
        self.current_iter = iters + out["steps"]
        self.current_epoch = epoch + len(out["train_acc"])

    def _train_in_python(self):
        """The book's loop, on the CPU reference."""
        rng = np.random.default_rng(self.seed)
        net = self.network
        for i in range(self.max_iter):
            mask = rng.choice(self.train_size, self.batch_size)
            x, t = self.x_train[mask], self.t_train[mask]
            grads = net.gradient(x, t)
            self.optimizer.update(net.params, grads)
            loss = net.loss(x, t)
            if not np.isfinite(loss):
                # As `gpu-net train` and the GPU Trainer: a loss that is no
                # number ends the run instead of training on NaN.
                raise FloatingPointError(
                    f"the training loss is {loss} in iteration {i + 1}: training diverged "
                    f"at learning rate {self.optimizer.lr}"
                )
            self.train_loss_list.append(loss)
            if self.verbose:
                print("train loss:" + str(loss))
            self.current_iter = i + 1
            if self.current_iter % self.iter_per_epoch == 0:
                n = self.evaluate_sample_num_per_epoch or self.train_size
                tr = net.accuracy(self.x_train[:n], self.t_train[:n])
                te = net.accuracy(self.x_test[:n], self.t_test[:n])
                self.current_epoch += 1
                self.train_acc_list.append(tr)
                self.test_acc_list.append(te)
                if self.verbose:
                    print("=== epoch:" + str(self.current_epoch) + ", train acc:" + str(tr) + ", test acc:" + str(te) + " ===")
        self._final(net.accuracy(self.x_test, self.t_test))
