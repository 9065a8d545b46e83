#!/usr/bin/env bash
# One GPU measurement in one call: gpu-net's `bench` and PyTorch's peer
# (bench/torch_peer.py) doing the same training steps on the same card, then
# one table of gpu-net / PyTorch's best, and the matrix product alone; the
# tables are bench/gpu_tables.py's. Needs an NVIDIA GPU, PyTorch with CUDA
# and numpy; run from anywhere:
#
#   bench/gpu.sh [GPU-NET-BINARY]     (default target/release/gpu-net, built if missing)
#
# SECONDS_PER_RUN (default 1) sets the length of each timed run. Everything
# is written to a folder it names at the end (OUT to choose it). A run that
# fails is reported and the rest go on, so that one configuration a card
# cannot run loses only its own rows.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bin="${1:-target/release/gpu-net}"
if [[ ! -x "$bin" ]]; then
    cargo build --release || exit 1
fi
secs="${SECONDS_PER_RUN:-1}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out" || exit 1

# bench NAME ARGS...: `gpu-net bench --json ARGS` into $out/NAME.json, its
# log in NAME.err; on failure NAME.json is removed and the failure said.
bench() {
    local name="$1"
    shift
    if ! "$bin" bench --json --seconds "$secs" "$@" >"$out/$name.json" 2>"$out/$name.err"; then
        echo "gpu-net bench $* failed: see $out/$name.err" >&2
        rm -f "$out/$name.json"
        return 1
    fi
}
tables() { python3 bench/gpu_tables.py "$@"; }

"$bin" devices 2>&1 | tee "$out/devices.txt"
bench mlp --repeats 3 --batch 100,1000,8192 --hidden 50 --hidden 1024
bench big --repeats 2 --batch 65536 --hidden 4096
bench conv --repeats 3 --net simple-convnet --optimizer adam --batch 100,1000
"$bin" bench --seconds "$secs" --matmul 4096,4096,4096 --matmul 8192,8192,8192 \
    --matmul 4096,4096,4096,at 2>&1 | grep '^matmul' | tee "$out/matmul.txt"
# The gpu-net runs above that gave results, as torch_peer.py's --compare takes them.
compare=()
for run in mlp:mlp mlp:big conv:conv; do
    [[ -f "$out/${run#*:}.json" ]] && compare+=("${run%%:*}:$out/${run#*:}.json")
done
python3 bench/torch_peer.py --seconds "$secs" --compare "${compare[@]}" \
    2>"$out/torch.jsonl" | tee "$out/table.md" ||
    echo "bench/torch_peer.py failed: see $out/torch.jsonl" >&2
# The head (the last Affine and its input gradient computed by the softmax
# pass) against the dispatches it replaces.
GPU_NET_FUSED_HEAD=0 bench mlp_apart --repeats 3 --batch 100,1000 --hidden 50 &&
    tables versus "$out/mlp.json" "$out/mlp_apart.json" head apart | tee "$out/head.md"
# One gather of a submission's batches against a gather a step.
GPU_NET_GATHER_AHEAD=0 bench mlp_gather_each --repeats 3 --batch 100,1000 --hidden 50 &&
    tables versus "$out/mlp.json" "$out/mlp_gather_each.json" ahead "a gather a step" | tee "$out/gather.md"
# Convolutions reading im2col's matrix in place against writing it out
# (im2col, then the product reading it back), same card, same sitting.
GPU_NET_IMPLICIT_CONV=0 bench conv_stored --repeats 3 --net simple-convnet --optimizer adam --batch 100,1000 &&
    tables columns "$out/conv.json" "$out/conv_stored.json" | tee "$out/columns.md"
# Chapter 8's DeepConvNet (Adam) at the book's batch, gpu-net alone: what
# the cost model's estimate for it (cargo run --release --example
# cost_model) is to be checked against.
bench deep --repeats 3 --net deep-convnet --optimizer adam --batch 100 &&
    tables deep "$out/deep.json" | tee "$out/deep.md"
echo "files in $out"
