"""The book's `common/optimizer.py`: each class's `update(params, grads)`
changes `params`' arrays in place by gpu-net's f64 rules (the reference
its GPU optimizer kernel is proved against). `lr` is read at every update,
so it may be changed between steps as in the book."""

from . import _checks, _core


class _Optimizer:
    _kind = None

    def __init__(self, lr, **hyper):
        self.lr = _checks.number(lr, "lr", positive=True)
        for name, v in hyper.items():
            setattr(self, name, _checks.number(v, name, least=0))
        self._core = _core.Optimizer(self._kind, **hyper)

    def update(self, params, grads):
        """params[key] -= (the rule's step) for every key, in place."""
        self._core.update(params, grads, _checks.number(self.lr, "lr", positive=True))


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
