#!/usr/bin/env bash
# One GPU measurement in one call: gpu-net's `bench` and PyTorch's peer
# (bench/torch_peer.py) doing the same training steps on the same card, then
# one table of gpu-net / PyTorch's best, and the matrix product alone.
# Needs an NVIDIA GPU, PyTorch with CUDA and numpy; run from anywhere:
#
#   bench/gpu.sh [GPU-NET-BINARY]     (default target/release/gpu-net, built if missing)
#
# SECONDS_PER_RUN (default 1) sets the length of each timed run. Everything
# is written to a folder it names at the end (OUT to choose it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/gpu-net}"
if [[ ! -x "$bin" ]]; then
    cargo build --release
fi
secs="${SECONDS_PER_RUN:-1}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"

"$bin" devices 2>&1 | tee "$out/devices.txt"
bench() { "$bin" bench --json --seconds "$secs" "$@"; }
bench --repeats 3 --batch 100,1000,8192 --hidden 50 --hidden 1024 >"$out/mlp.json" 2>"$out/mlp.err"
bench --repeats 2 --batch 65536 --hidden 4096 >"$out/big.json" 2>"$out/big.err"
bench --repeats 3 --net simple-convnet --optimizer adam --batch 100,1000 >"$out/conv.json" 2>"$out/conv.err"
"$bin" bench --seconds "$secs" --matmul 4096,4096,4096 --matmul 8192,8192,8192 \
    --matmul 4096,4096,4096,at 2>&1 | grep '^matmul' | tee "$out/matmul.txt"
python3 bench/torch_peer.py --seconds "$secs" \
    --compare mlp:"$out/mlp.json" mlp:"$out/big.json" conv:"$out/conv.json" \
    2>"$out/torch.jsonl" | tee "$out/table.md"
# One table of the MLP's steps/s in two runs of `bench` on the same card in
# the same sitting: mlp_versus ON.json OFF.json "on" "off".
mlp_versus() {
    python3 - "$@" <<'EOF'
import json, sys
on, off = (json.load(open(f))["results"] for f in sys.argv[1:3])
name_on, name_off = sys.argv[3:5]
rate = {(r["batch"], tuple(r["hidden"])): r["steps_per_sec"] for r in off}
print(f"| MLP batch × hidden | {name_on}, steps/s | {name_off}, steps/s | {name_on} / {name_off} |")
print("| --- | ---: | ---: | ---: |")
for r in on:
    key = (r["batch"], tuple(r["hidden"]))
    if key in rate:
        print(f"| {key[0]} × {key[1][0]} | {r['steps_per_sec']:.0f} | {rate[key]:.0f} | {r['steps_per_sec'] / rate[key]:.2f} |")
EOF
}
# The head (the last Affine and its input gradient computed by the softmax
# pass) against the dispatches it replaces.
GPU_NET_FUSED_HEAD=0 bench --repeats 3 --batch 100,1000 --hidden 50 >"$out/mlp_apart.json" 2>>"$out/mlp.err"
mlp_versus "$out/mlp.json" "$out/mlp_apart.json" head apart | tee "$out/head.md"
# One gather of a submission's batches against a gather a step.
GPU_NET_GATHER_AHEAD=0 bench --repeats 3 --batch 100,1000 --hidden 50 >"$out/mlp_gather_each.json" 2>>"$out/mlp.err"
mlp_versus "$out/mlp.json" "$out/mlp_gather_each.json" ahead "a gather a step" | tee "$out/gather.md"
# Convolutions reading im2col's matrix in place against writing it out
# (im2col, then the product reading it back), same card, same sitting.
GPU_NET_IMPLICIT_CONV=0 bench --repeats 3 --net simple-convnet --optimizer adam --batch 100,1000 >"$out/conv_stored.json" 2>>"$out/conv.err"
python3 - "$out/conv.json" "$out/conv_stored.json" <<'EOF' | tee "$out/columns.md"
import json, sys
in_place, stored = (json.load(open(f))["results"] for f in sys.argv[1:])
rate = {r["batch"]: r["steps_per_sec"] for r in stored}
print("| SimpleConvNet batch | in place, steps/s | im2col, steps/s | in place / im2col |")
print("| ---: | ---: | ---: | ---: |")
for r in in_place:
    if r["batch"] in rate:
        print(f"| {r['batch']} | {r['steps_per_sec']:.0f} | {rate[r['batch']]:.0f} | {r['steps_per_sec'] / rate[r['batch']]:.2f} |")
EOF
# Chapter 8's DeepConvNet (Adam) at the book's batch, gpu-net alone: what
# the cost model's estimate for it (cargo run --release --example
# cost_model) is to be checked against. Last, and not fatal, so that
# nothing above is lost if it fails.
if bench --repeats 3 --net deep-convnet --optimizer adam --batch 100 >"$out/deep.json" 2>"$out/deep.err"; then
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"][0]; print("DeepConvNet, batch 100: %.0f steps/s" % r["steps_per_sec"])' "$out/deep.json" | tee "$out/deep.md"
else
    echo "DeepConvNet's bench failed: see $out/deep.err"
fi
echo "files in $out"
