#!/usr/bin/env python3
"""PyTorch doing gpu-net's training steps on the same GPU, for bench/gpu.sh.

The steps `gpu-net bench` times, written the ordinary PyTorch way, in fp32
with TF32 off:
  - the 784-H-10 MLP (Affine, Relu, Affine, softmax cross-entropy), SGD at
    lr 0.1, minibatches drawn on the GPU from MNIST held in device memory;
  - the book's SimpleConvNet (30 filters of 5x5, max pooling 2x2, hidden
    100) with Adam at lr 0.001, minibatches drawn the same way.
Each is timed eagerly and as a CUDA graph replaying 16 steps, and the fp32
GEMM (cuBLAS) at 4096^3 and 8192^3. With --compare, reads gpu-net's
`bench --json` files and prints one table of gpu-net / PyTorch's best
(bench/gpu_tables.py).

  python3 bench/torch_peer.py [--seconds 1] [--compare mlp:A.json conv:B.json ...]

Needs numpy and PyTorch with CUDA; MNIST from data/mnist (bench/mnist_data.py).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_tables import gpu_net_rates, ratio_table  # noqa: E402
from mnist_data import load_mnist  # noqa: E402

# (kind, batch, hidden): the rows of bench/gpu.sh's table.
CONFIGS = [
    ("mlp", 100, 50),
    ("mlp", 1000, 50),
    ("mlp", 8192, 50),
    ("mlp", 100, 1024),
    ("mlp", 1000, 1024),
    ("mlp", 8192, 1024),
    ("mlp", 65536, 4096),
    ("conv", 100, 100),
    ("conv", 1000, 100),
]
GRAPH_STEPS = 16


def model(torch, kind, hidden):
    nn = torch.nn
    if kind == "mlp":
        net = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        with torch.no_grad():  # the book's weight_init_std = 0.01, zero biases
            for layer in (net[0], net[2]):
                layer.weight.normal_(0.0, 0.01)
                layer.bias.zero_()
        return net, lambda p: torch.optim.SGD(p, lr=0.1)
    net = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 30, 5),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(30 * 12 * 12, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )
    return net, lambda p: torch.optim.Adam(p, lr=0.001, capturable=True)


def make_step(torch, kind, batch, hidden, x_all, t_all):
    net, optimizer = model(torch, kind, hidden)
    net = net.cuda()
    opt = optimizer(net.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        idx = torch.randint(0, x_all.shape[0], (batch,), device="cuda")
        loss = loss_fn(net(x_all[idx]), t_all[idx])
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    return step


def rate(torch, run, steps_per_run, seconds):
    """Steps per second of `run` (which takes `steps_per_run` steps): the
    median of three timed stretches of about `seconds` each."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    torch.cuda.synchronize()
    reps = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
    rates = []
    for _ in range(3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            run()
        torch.cuda.synchronize()
        rates.append(reps * steps_per_run / (time.perf_counter() - start))
    return sorted(rates)[1]


def measure(torch, kind, batch, hidden, x_all, t_all, seconds):
    step = make_step(torch, kind, batch, hidden, x_all, t_all)
    # Warm up on a side stream, as CUDA graph capture asks.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(5):
            step()
    torch.cuda.current_stream().wait_stream(side)
    eager = rate(torch, step, 1, seconds)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(GRAPH_STEPS):
            step()
    graphed = rate(torch, graph.replay, GRAPH_STEPS, seconds)
    return {"kind": kind, "batch": batch, "hidden": hidden, "eager": eager, "graph": graphed}


def gemm(torch, n, seconds):
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    per_second = rate(torch, lambda: a @ b, 1, seconds)
    return {"gemm": n, "tflops": 2 * n**3 * per_second / 1e12}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of each timed stretch")
    ap.add_argument("--compare", nargs="*", default=[], help="gpu-net bench --json files as mlp:FILE or conv:FILE")
    args = ap.parse_args()
    try:
        ours = gpu_net_rates(args.compare)
    except (OSError, ValueError) as e:
        sys.exit(f"torch_peer.py: {e}")
    try:
        import torch
    except ImportError as e:
        sys.exit(f"torch_peer.py: needs PyTorch with CUDA ({e})")
    if not torch.cuda.is_available():
        sys.exit("torch_peer.py: PyTorch sees no CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1)
    (x_train, t_train), _ = load_mnist(normalize=True)
    x_all = torch.from_numpy(np.ascontiguousarray(x_train)).cuda()
    t_all = torch.from_numpy(t_train.astype(np.int64)).cuda()
    rows = []
    for kind, batch, hidden in CONFIGS:
        r = measure(torch, kind, batch, hidden, x_all, t_all, args.seconds)
        print(json.dumps(r), file=sys.stderr)
        rows.append(r)
    gemms = [gemm(torch, n, args.seconds) for n in (4096, 8192)]
    print("\n".join(ratio_table(rows, gemms, ours)))


if __name__ == "__main__":
    main()
