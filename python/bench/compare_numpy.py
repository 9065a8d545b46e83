"""The book's chapter 5 configuration (784-50-10, batch 100, lr 0.1) trained
four ways in one sitting, each for --iters steps from its own seeded start:

  numpy     the book's TwoLayerNet and loop in numpy (python/tests/book.py)
  loop      the same loop with gpu_net.TwoLayerNet: gradient() on the GPU,
            params[key] -= lr * grad[key] in numpy
  Trainer   gpu_net.Trainer: the whole loop on the GPU
  CLI       gpu-net train --iters N (samples/s as it reports them)

Runs the four ways in turn, --repeats rounds, and prints per way the
median steps/s of the training steps alone (no evaluation, no setup) and
the final test accuracy (the same every round: each way is seeded). Run
from the repository root after `cargo build --release` and
`pip install ./python`, with nothing else running:

    python3 python/bench/compare_numpy.py --iters 10000 --repeats 1
    python3 python/bench/compare_numpy.py --iters 3000 --repeats 5
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import book  # noqa: E402  (the book's numpy code)
import gpu_net  # noqa: E402


def book_loop(net_params, grad_fn, x, t, iters, lr=0.1, batch=100, seed=1):
    """The book's train_neuralnet.py loop; returns its seconds."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(iters):
        mask = rng.choice(x.shape[0], batch)
        grad = grad_fn(x[mask], t[mask])
        for key in ("W1", "b1", "W2", "b2"):
            net_params[key] -= lr * grad[key]
    return time.perf_counter() - started


def numpy_run(x, t, xt, tt, iters):
    np.random.seed(1)
    p = {"W1": 0.01 * np.random.randn(784, 50), "b1": np.zeros(50), "W2": 0.01 * np.random.randn(50, 10), "b2": np.zeros(10)}

    def grad(xb, tb):
        a1, r, a2, last = book.Affine(p["W1"], p["b1"]), book.Relu(), book.Affine(p["W2"], p["b2"]), book.SoftmaxWithLoss()
        last.forward(a2.forward(r.forward(a1.forward(xb))), tb)
        a1.backward(r.backward(a2.backward(last.backward())))
        return {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}

    seconds = book_loop(p, grad, x, t, iters)
    y = book.Affine(p["W2"], p["b2"]).forward(book.Relu().forward(book.Affine(p["W1"], p["b1"]).forward(xt)))
    return seconds, float(np.mean(y.argmax(axis=1) == tt))


def loop_run(x, t, xt, tt, iters):
    net = gpu_net.TwoLayerNet(784, 50, 10, seed=1)
    seconds = book_loop(net.params, net.gradient, x, t, iters)
    return seconds, net.accuracy(xt, tt)


def trainer_run(x, t, xt, tt, iters):
    net = gpu_net.TwoLayerNet(784, 50, 10, seed=1)
    tr = gpu_net.Trainer(net, x, t, xt, tt, epochs=iters / 600, optimizer_param={"lr": 0.1}, verbose=False, seed=1)
    tr.train()
    return tr.train_seconds, net.accuracy(xt, tt)


def cli_run(iters, binary):
    out = subprocess.run([binary, "train", "--iters", str(iters), "--seed", "1", "--json"], capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    return summary["seconds"], summary["test_accuracy"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--binary", default=os.path.join("target", "release", "gpu-net"))
    args = ap.parse_args()
    (x, t), (xt, tt) = gpu_net.load_mnist()
    runs = [
        ("numpy (the book's code)", lambda: numpy_run(x, t, xt, tt, args.iters)),
        ("gpu_net, the book's loop", lambda: loop_run(x, t, xt, tt, args.iters)),
        ("gpu_net.Trainer", lambda: trainer_run(x, t, xt, tt, args.iters)),
        ("gpu-net train (CLI)", lambda: cli_run(args.iters, args.binary)),
    ]
    print(f"{args.iters} steps of 784-50-10, batch 100, lr 0.1; medians of {args.repeats} interleaved rounds")
    rates = {name: [] for name, _ in runs}
    accuracy = {}
    for r in range(args.repeats):
        for name, run in runs:
            seconds, accuracy[name] = run()
            rates[name].append(args.iters / seconds)
        print(f"round {r + 1}: " + ", ".join(f"{rates[n][-1]:.1f}" for n, _ in runs), file=sys.stderr, flush=True)
    for name, _ in runs:
        print(f"{name:26s} {np.median(rates[name]):8.1f} steps/s   test accuracy {accuracy[name]:.4f}")


if __name__ == "__main__":
    main()
