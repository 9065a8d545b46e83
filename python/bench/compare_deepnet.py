"""The book's DeepConvNet (ch08/train_deepnet.py: batch 100, Adam lr
0.001) trained three ways in one sitting, --iters steps each:

  numpy     the book's DeepConvNet, Adam and loop in numpy
            (python/tests/book_deep_convnet.py)
  loop      the same loop with gpu_net.DeepConvNet: gradient() on the
            GPU, the book's Adam in numpy
  CLI       gpu-net bench --net deep-convnet --optimizer adam: timed
            training steps of the same network on the GPU

Runs them in turn, --repeats rounds, and prints per way the median steps/s
of the training steps alone (no evaluation, no setup) and its ratio to
numpy's. Run from the repository root after `cargo build --release` and
`pip install ./python`, with nothing else running:

    python3 python/bench/compare_deepnet.py --iters 20 --repeats 3
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

import book_deep_convnet as deep  # noqa: E402  (the book's numpy code)
from book import Adam  # noqa: E402
import gpu_net  # noqa: E402


def book_loop(net, x, t, iters, batch=100, seed=1):
    """ch08/train_deepnet.py's steps (common/trainer.py's train_step with
    Adam(lr=0.001)) on `net`; returns their seconds."""
    optimizer = Adam(lr=0.001)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(iters):
        mask = rng.choice(x.shape[0], batch)
        optimizer.update(net.params, net.gradient(x[mask], t[mask]))
    return time.perf_counter() - started


def numpy_run(x, t, iters):
    np.random.seed(1)
    return book_loop(deep.DeepConvNet(), x, t, iters)


def loop_run(x, t, iters):
    return book_loop(gpu_net.DeepConvNet(device="gpu", seed=1), x, t, iters)


def cli_run(seconds, binary):
    out = subprocess.run([binary, "bench", "--net", "deep-convnet", "--optimizer", "adam", "--batch", "100",
                          "--seconds", f"{seconds:.1f}", "--repeats", "1", "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["results"][0]["steps_per_sec"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join("target", "release", "gpu-net"))
    args = ap.parse_args()
    (x, t), _ = gpu_net.load_mnist(flatten=False)
    rates = {name: [] for name in ("numpy", "loop", "CLI")}
    print(f"{args.iters} steps of DeepConvNet, batch 100, Adam lr 0.001; medians of {args.repeats} rounds")
    for r in range(args.repeats):
        seconds = numpy_run(x, t, args.iters)
        rates["numpy"].append(args.iters / seconds)
        rates["loop"].append(args.iters / loop_run(x, t, args.iters))
        rates["CLI"].append(cli_run(seconds, args.binary))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.3f}" for n, v in rates.items()), file=sys.stderr, flush=True)
    base = np.median(rates["numpy"])
    for name, v in rates.items():
        print(f"{name:8s} {np.median(v):8.3f} steps/s   {np.median(v) / base:5.2f}x numpy")


if __name__ == "__main__":
    main()
