"""gpu-net for the readers of "Deep Learning from Scratch".

The book's classes, with its names, arguments and return values, computed by
gpu-net's WGSL kernels on any Vulkan, Metal, DX12 or GL GPU (or by its f64 CPU
reference), with the book's numerical gradient beside them:

    from gpu_net import load_mnist, TwoLayerNet
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
    grad = network.gradient(x_train[:100], t_train[:100])   # backprop on the GPU
    for key in ('W1', 'b1', 'W2', 'b2'):
        network.params[key] -= 0.1 * grad[key]

Modules: `mnist` (load_mnist), `networks` (TwoLayerNet, MultiLayerNetExtend,
SimpleConvNet, DeepConvNet, load), `optimizers` (SGD ... Adam), `trainer` (Trainer), `_checks` (what
every argument must be), `_core` (the Rust half).
"""

from ._core import GpuError
from .mnist import load_mnist
from .networks import DeepConvNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet, load
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from .trainer import Trainer

__all__ = [
    "GpuError",
    "load_mnist",
    "TwoLayerNet",
    "MultiLayerNetExtend",
    "SimpleConvNet",
    "DeepConvNet",
    "load",
    "SGD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSprop",
    "Adam",
    "Trainer",
]
