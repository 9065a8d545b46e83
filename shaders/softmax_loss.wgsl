// SoftmaxWithLoss, forward and backward in one pass over the rows.
//
// Per row r of the logits y (rows × classes, rows `stride` long; dy alike): the loss
// logsumexp(y_r) - y_r[t_r], whether argmax(y_r) == t_r (first maximum wins,
// as numpy's argmax), and, when `want_grad`, dy_r = (softmax(y_r) - onehot(t_r)) / rows.
// Sums over rows are added to `stats`, never with atomics, so they repeat bit
// for bit: with one workgroup (`groups` = 1), its invocations walk every row
// and a fixed tree adds their sums into `stats`; with several, each writes
// its tree's sums to `partials[group]` and the `finish` entry point, one
// workgroup, adds them in a fixed order into `stats`. src/gpu/plan.rs
// (plan_softmax) chooses the number of workgroups.
//
// With AFFINE (the head: plan_head in src/gpu/plan.rs), each row of y is
// first computed here as the last Affine would, y_r = h_r·W over K with
// h's ones column carrying the bias row of W, and written to y: one
// dispatch instead of a product and this pass. Its multiply-adds run in
// the product's order (k = 0, 1, ..., one fma each), so y has the bits the
// tiled product would give it unsplit.

struct Dims {
    rows: u32,
    classes: u32,
    want_grad: u32,
    stride: u32,
    groups: u32,
    // With AFFINE: the Affine's K, and the row lengths of h and W.
    k: u32,
    ldh: u32,
    ldw: u32,
}

struct Stats {
    loss_sum: f32,
    correct: u32,
    rows: u32,
    _pad: u32,
}

// One workgroup's sums, when there are several.
struct Partial {
    loss_sum: f32,
    correct: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<u32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: Stats;
@group(0) @binding(5) var<storage, read_write> partials: array<Partial>;
// The last Affine's input and its [W; b] block, read only with AFFINE.
@group(0) @binding(6) var<storage, read> h: array<f32>;
@group(0) @binding(7) var<storage, read> w: array<f32>;

override AFFINE: bool = false;
// The longest row of y the head holds in registers (HEAD_CLASSES in
// src/gpu/plan.rs; tests/translate.rs holds the two equal).
const HEAD_CLASSES: u32 = 16u;

// Invocations per workgroup: given by the host (SOFTMAX_WG in
// src/gpu/plan.rs), which plans the grid by it.
override WG: u32;
var<workgroup> part_loss: array<f32, WG>;
var<workgroup> part_correct: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let cls = dims.classes;
    var loss = 0.0;
    var correct = 0u;
    for (var r = wg.x * WG + li; r < dims.rows; r += dims.groups * WG) {
        let base = r * dims.stride;
        if AFFINE {
            affine_row(r, base);
        }
        var best = 0u;
        var mx = y[base];
        for (var k = 1u; k < cls; k++) {
            if y[base + k] > mx {
                mx = y[base + k];
                best = k;
            }
        }
        var sum = 0.0;
        for (var k = 0u; k < cls; k++) {
            sum += exp(y[base + k] - mx);
        }
        let label = t[r];
        loss += log(sum) - (y[base + label] - mx);
        correct += select(0u, 1u, best == label);
        if dims.want_grad != 0u {
            let inv = 1.0 / sum;
            for (var k = 0u; k < cls; k++) {
                let p = exp(y[base + k] - mx) * inv;
                dy[base + k] = (p - select(0.0, 1.0, k == label)) / f32(dims.rows);
            }
        }
    }
    add_up(li, loss, correct);
    if li != 0u {
        return;
    }
    if dims.groups == 1u {
        add_to_stats();
    } else {
        partials[wg.x] = Partial(part_loss[0], part_correct[0]);
    }
}

// Row r of y = h·W, written as the product writes it: the classes, then
// its padding columns (1 in the one after the classes, 0 beyond).
fn affine_row(r: u32, base: u32) {
    var z: array<f32, HEAD_CLASSES>;
    for (var k = 0u; k < dims.k; k++) {
        let hk = h[r * dims.ldh + k];
        let wk = k * dims.ldw;
        for (var j = 0u; j < HEAD_CLASSES; j++) {
            if j < dims.classes {
                z[j] = fma(hk, w[wk + j], z[j]);
            }
        }
    }
    for (var j = 0u; j < HEAD_CLASSES; j++) {
        if j < dims.stride {
            let pad = select(0.0, 1.0, j == dims.classes);
            y[base + j] = select(pad, z[j], j < dims.classes);
        }
    }
}

// The workgroup's sums, added by a fixed tree into part_loss[0] and
// part_correct[0].
fn add_up(li: u32, loss: f32, correct: u32) {
    part_loss[li] = loss;
    part_correct[li] = correct;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if li < s {
            part_loss[li] += part_loss[li + s];
            part_correct[li] += part_correct[li + s];
        }
        workgroupBarrier();
    }
}

fn add_to_stats() {
    stats.loss_sum += part_loss[0];
    stats.correct += part_correct[0];
    stats.rows += dims.rows;
}

// The second pass when `groups` > 1: the workgroups' sums, each invocation
// taking groups li, li + WG, ... in order, then the tree.
@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_index) li: u32) {
    var loss = 0.0;
    var correct = 0u;
    for (var g = li; g < dims.groups; g += WG) {
        loss += partials[g].loss_sum;
        correct += partials[g].correct;
    }
    add_up(li, loss, correct);
    if li == 0u {
        add_to_stats();
    }
}
