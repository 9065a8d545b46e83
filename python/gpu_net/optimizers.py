"""The book's `common/optimizer.py`: each class's `update(params, grads)`
changes `params`' arrays in place by gpu-net's f64 rules (the reference
its GPU optimizer kernel is proved against). `lr` and the other attributes
are read at every update, so they may be changed between steps as in the
book."""

from . import _checks, _core


class _Optimizer:
    _kind = None

    def __init__(self, lr, **hyper):
        self.lr = lr
        self._names = list(hyper)
        for name, v in hyper.items():
            setattr(self, name, v)
        self._settings()  # refuses bad values now, not at the first update
        self._core = _core.Optimizer(self._kind)

    def _settings(self):
        """lr and the rule's hyperparameters as they are now, each checked:
        lr above 0, the others in [0, 1) (at 1 or more the state never
        forgets, or Adam's bias correction divides by 0)."""
        lr = _checks.number(self.lr, "lr", positive=True)
        hyper = {}
        for name in self._names:
            v = _checks.number(getattr(self, name), name, least=0)
            if v >= 1:
                raise ValueError(f"{name} is {v}; it must be below 1")
            hyper[name] = v
        return lr, hyper

    def update(self, params, grads):
        """params[key] -= (the rule's step) for every key, in place."""
        lr, hyper = self._settings()
        self._core.update(params, grads, lr, **hyper)


class SGD(_Optimizer):
    _kind = "sgd"

    def __init__(self, lr=0.01):
        super().__init__(lr)


class Momentum(_Optimizer):
    _kind = "momentum"

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr, momentum=momentum)


class Nesterov(_Optimizer):
    _kind = "nesterov"

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr, momentum=momentum)


class AdaGrad(_Optimizer):
    _kind = "adagrad"

    def __init__(self, lr=0.01):
        super().__init__(lr)


class RMSprop(_Optimizer):
    _kind = "rmsprop"

    def __init__(self, lr=0.01, decay_rate=0.99):
        super().__init__(lr, decay_rate=decay_rate)


class Adam(_Optimizer):
    _kind = "adam"

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        super().__init__(lr, beta1=beta1, beta2=beta2)
