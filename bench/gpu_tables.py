#!/usr/bin/env python3
"""The tables bench/gpu.sh prints, from `gpu-net bench --json` files.

Standard library only (no numpy, no PyTorch), so that bench/tests can check
them against real `bench --json` output on any adapter:

  python3 bench/gpu_tables.py versus ON.json OFF.json NAME_ON NAME_OFF
      the MLP's steps/s in two runs of `bench` (a switch on and off)
  python3 bench/gpu_tables.py columns IN_PLACE.json STORED.json
      the SimpleConvNet reading im2col's matrix in place against storing it
  python3 bench/gpu_tables.py deep DEEP.json
      DeepConvNet's steps/s

bench/torch_peer.py imports `gpu_net_rates` and `ratio_table` for its table
of gpu-net / PyTorch's best.
"""
import json
import sys


def results(path):
    """The `results` list of a `bench --json` file."""
    with open(path) as f:
        report = json.load(f)
    if not isinstance(report, dict) or "results" not in report:
        raise ValueError(f"{path}: not the output of `gpu-net bench --json` (no results)")
    return report["results"]


def gpu_net_rates(files):
    """(kind, batch, hidden) -> steps/s from gpu-net `bench --json` files,
    each given as KIND:PATH (mlp or conv). Raises ValueError on another form."""
    rates = {}
    for arg in files:
        kind, _, path = arg.partition(":")
        if kind not in ("mlp", "conv") or not path:
            raise ValueError(f"--compare {arg!r}: expected mlp:FILE or conv:FILE")
        for r in results(path):
            rates[(kind, r["batch"], r["hidden"][0])] = r["steps_per_sec"]
    return rates


def ratio_table(torch_rows, gemms, ours):
    """Lines of the table of gpu-net / PyTorch's best: `torch_rows` as
    torch_peer.py measures them ({kind, batch, hidden, eager, graph}),
    `gemms` ({gemm, tflops}), `ours` from gpu_net_rates."""
    lines = [
        "| network, batch × hidden | gpu-net | PyTorch eager | PyTorch, CUDA graph of 16 | gpu-net / best |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in torch_rows:
        mine = ours.get((r["kind"], r["batch"], r["hidden"]))
        best = max(r["eager"], r["graph"])
        name = f"MLP {r['batch']} × {r['hidden']}" if r["kind"] == "mlp" else f"SimpleConvNet, batch {r['batch']}"
        mine_s = f"{mine:,.0f}" if mine else "—"
        ratio = f"{mine / best:.2f}" if mine else "—"
        lines.append(f"| {name} | {mine_s} | {r['eager']:,.0f} | {r['graph']:,.0f} | {ratio} |")
    for g in gemms:
        lines.append(f"cuBLAS fp32 GEMM {g['gemm']}^3: {g['tflops']:.1f} TFLOP/s")
    return lines


def versus(on_path, off_path, name_on, name_off):
    """Lines of a table of the MLP's steps/s in two runs of `bench` on the
    same card in the same sitting, row by row where both have the row."""
    rate = {(r["batch"], tuple(r["hidden"])): r["steps_per_sec"] for r in results(off_path)}
    lines = [
        f"| MLP batch × hidden | {name_on}, steps/s | {name_off}, steps/s | {name_on} / {name_off} |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results(on_path):
        key = (r["batch"], tuple(r["hidden"]))
        if key in rate:
            on = r["steps_per_sec"]
            lines.append(f"| {key[0]} × {key[1][0]} | {on:.0f} | {rate[key]:.0f} | {on / rate[key]:.2f} |")
    return lines


def columns(in_place_path, stored_path):
    """Lines of a table of the SimpleConvNet reading im2col's matrix in place
    against writing it out, batch by batch."""
    rate = {r["batch"]: r["steps_per_sec"] for r in results(stored_path)}
    lines = [
        "| SimpleConvNet batch | in place, steps/s | im2col, steps/s | in place / im2col |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in results(in_place_path):
        if r["batch"] in rate:
            on = r["steps_per_sec"]
            lines.append(f"| {r['batch']} | {on:.0f} | {rate[r['batch']]:.0f} | {on / rate[r['batch']]:.2f} |")
    return lines


def deep(path):
    """The line of DeepConvNet's steps/s (its first result)."""
    r = results(path)[0]
    return [f"DeepConvNet, batch {r['batch']}: {r['steps_per_sec']:.0f} steps/s"]


TABLES = {"versus": (versus, 4), "columns": (columns, 2), "deep": (deep, 1)}


def main(argv):
    if not argv or argv[0] not in TABLES or len(argv) - 1 != TABLES[argv[0]][1]:
        forms = ", ".join(f"{name} with {n} argument{'s' if n > 1 else ''}" for name, (_, n) in TABLES.items())
        print(f"gpu_tables.py: expected one of: {forms} (see the file's first comment)", file=sys.stderr)
        sys.exit(2)
    table, _ = TABLES[argv[0]]
    try:
        lines = table(*argv[1:])
    except (OSError, ValueError, KeyError) as e:
        print(f"gpu_tables.py: {e}", file=sys.stderr)
        sys.exit(1)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
