"""bench/gpu_tables.py, the tables bench/gpu.sh prints, read from real
`gpu-net bench --json` output of the release binary on this machine's
adapter ($GPU_NET_BIN, else target/release/gpu-net, which `cargo test
--release` builds), so
that the one GPU run the script is for does not fail on a renamed field.
Skipped without the binary or an adapter, failing instead under
GPU_NET_REQUIRE_GPU=1 as the other GPU tests do."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import gpu_tables  # noqa: E402

BIN = os.environ.get("GPU_NET_BIN", os.path.join(ROOT, "target", "release", "gpu-net"))
FAST = ["--seconds", "0.1", "--repeats", "1"]


def bench(tmp_path, name, args, env=None):
    """Runs `gpu-net bench --json` with `args`; the path of its output."""
    if not os.path.exists(BIN) or subprocess.run([BIN, "devices"], capture_output=True).returncode != 0:
        if os.environ.get("GPU_NET_REQUIRE_GPU", "0") != "0":
            pytest.fail(f"{BIN} missing or no adapter")
        pytest.skip(f"{BIN} missing or no adapter")
    out = subprocess.run(
        [BIN, "bench", "--json", *FAST, *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
    )
    assert out.returncode == 0, out.stderr.decode()
    path = tmp_path / f"{name}.json"
    path.write_bytes(out.stdout)
    return str(path)


def row_ratio(line):
    return float(line.rstrip(" |").rsplit("|", 1)[1])


def test_versus_pairs_each_mlp_row_with_its_rate_in_the_other_run(tmp_path):
    on = bench(tmp_path, "on", ["--batch", "100,1000", "--hidden", "50"])
    off = bench(tmp_path, "off", ["--batch", "100", "--hidden", "50"], {"GPU_NET_FUSED_HEAD": "0"})
    lines = gpu_tables.versus(on, off, "head", "apart")
    assert lines[0] == "| MLP batch × hidden | head, steps/s | apart, steps/s | head / apart |"
    # Only the batch both runs have.
    assert len(lines) == 3 and lines[2].startswith("| 100 × 50 | ")
    rates = [json.load(open(p))["results"][0]["steps_per_sec"] for p in (on, off)]
    assert row_ratio(lines[2]) == pytest.approx(rates[0] / rates[1], abs=0.006)


def test_columns_and_deep_read_the_convnets_runs(tmp_path):
    conv = ["--net", "simple-convnet", "--optimizer", "adam", "--batch", "100"]
    in_place = bench(tmp_path, "conv", conv)
    stored = bench(tmp_path, "stored", conv, {"GPU_NET_IMPLICIT_CONV": "0"})
    lines = gpu_tables.columns(in_place, stored)
    assert len(lines) == 3 and lines[2].startswith("| 100 | ")
    deep = bench(tmp_path, "deep", ["--net", "deep-convnet", "--optimizer", "adam", "--batch", "100"])
    (line,) = gpu_tables.deep(deep)
    steps = json.load(open(deep))["results"][0]["steps_per_sec"]
    assert line == f"DeepConvNet, batch 100: {steps:.0f} steps/s"


def test_the_ratio_table_puts_gpu_nets_rate_over_pytorchs_best(tmp_path):
    mlp = bench(tmp_path, "mlp", ["--batch", "100", "--hidden", "50"])
    ours = gpu_tables.gpu_net_rates([f"mlp:{mlp}"])
    mine = json.load(open(mlp))["results"][0]["steps_per_sec"]
    assert ours == {("mlp", 100, 50): mine}
    # PyTorch's side as torch_peer.py measures it: the best of eager and
    # graphed is the divisor, and a row gpu-net did not run shows a dash.
    torch_rows = [
        {"kind": "mlp", "batch": 100, "hidden": 50, "eager": mine / 4, "graph": mine * 2},
        {"kind": "mlp", "batch": 1000, "hidden": 50, "eager": 1.0, "graph": 2.0},
    ]
    lines = gpu_tables.ratio_table(torch_rows, [{"gemm": 4096, "tflops": 51.06}], ours)
    assert row_ratio(lines[2]) == 0.5
    assert lines[3] == "| MLP 1000 × 50 | — | 1 | 2 | — |"
    assert lines[4] == "cuBLAS fp32 GEMM 4096^3: 51.1 TFLOP/s"


def test_bad_files_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="expected mlp:FILE or conv:FILE"):
        gpu_tables.gpu_net_rates(["lstm:x.json"])
    other = tmp_path / "other.json"
    other.write_text('{"accuracy": 0.97}')
    with pytest.raises(ValueError, match="other.json: not the output of `gpu-net bench --json`"):
        gpu_tables.versus(str(other), str(other), "a", "b")
    cli = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu_tables.py"), "deep"], capture_output=True)
    assert cli.returncode == 2 and b"expected one of" in cli.stderr
    cli = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "gpu_tables.py"), "deep", str(other)], capture_output=True
    )
    assert cli.returncode == 1 and b"other.json" in cli.stderr
