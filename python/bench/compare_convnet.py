"""The book's SimpleConvNet (ch07/train_convnet.py: batch 100, Adam lr
0.001) trained four ways in one sitting, --iters steps each:

  numpy     the book's SimpleConvNet, Adam and loop in numpy
            (python/tests/book_convnet.py)
  loop      the same loop with gpu_net.SimpleConvNet: gradient() on the
            GPU, the book's Adam in numpy
  Trainer   gpu_net.Trainer: the whole loop on the GPU
  CLI       gpu-net bench --net simple-convnet --optimizer adam: timed
            training steps of the same network

Runs them in turn, --repeats rounds, and prints per way the median steps/s
of the training steps alone (no evaluation, no setup) and its ratio to
numpy's. Run from the repository root after `cargo build --release` and
`pip install ./python`, with nothing else running:

    python3 python/bench/compare_convnet.py --iters 100 --repeats 5
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

import book_convnet as book  # noqa: E402  (the book's numpy code)
import gpu_net  # noqa: E402


def book_loop(params, grad_fn, x, t, iters, batch=100, seed=1):
    """ch07/train_convnet.py's steps (common/trainer.py's train_step with
    Adam(lr=0.001)); returns their seconds."""
    rng = np.random.default_rng(seed)
    optimizer = book.Adam(lr=0.001)
    started = time.perf_counter()
    for _ in range(iters):
        mask = rng.choice(x.shape[0], batch)
        optimizer.update(params, grad_fn(x[mask], t[mask]))
    return time.perf_counter() - started


def numpy_run(x, t, iters):
    np.random.seed(1)
    net = book.SimpleConvNet()
    return book_loop(net.params, net.gradient, x, t, iters)


def loop_run(x, t, iters):
    net = gpu_net.SimpleConvNet(seed=1)
    return book_loop(net.params, net.gradient, x, t, iters)


def trainer_run(x, t, xt, tt, iters):
    net = gpu_net.SimpleConvNet(seed=1)
    tr = gpu_net.Trainer(net, x, t, xt[:100], tt[:100], epochs=iters / 600, optimizer="Adam",
                         optimizer_param={"lr": 0.001}, evaluate_sample_num_per_epoch=100, verbose=False, seed=1)
    tr.train()
    return tr.train_seconds


def cli_run(seconds, binary):
    out = subprocess.run([binary, "bench", "--net", "simple-convnet", "--optimizer", "adam", "--batch", "100",
                          "--seconds", f"{seconds:.1f}", "--repeats", "1", "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["results"][0]["steps_per_sec"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join("target", "release", "gpu-net"))
    args = ap.parse_args()
    (x, t), (xt, tt) = gpu_net.load_mnist(flatten=False)
    rates = {name: [] for name in ("numpy", "loop", "Trainer", "CLI")}
    print(f"{args.iters} steps of SimpleConvNet, batch 100, Adam lr 0.001; medians of {args.repeats} rounds")
    for r in range(args.repeats):
        seconds = numpy_run(x, t, args.iters)
        rates["numpy"].append(args.iters / seconds)
        rates["loop"].append(args.iters / loop_run(x, t, args.iters))
        rates["Trainer"].append(args.iters / trainer_run(x, t, xt, tt, args.iters))
        rates["CLI"].append(cli_run(seconds, args.binary))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in rates.items()), file=sys.stderr, flush=True)
    base = np.median(rates["numpy"])
    for name, v in rates.items():
        print(f"{name:8s} {np.median(v):8.2f} steps/s   {np.median(v) / base:5.2f}x numpy")


if __name__ == "__main__":
    main()
