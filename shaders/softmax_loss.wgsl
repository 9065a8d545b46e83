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
//
// With INPUT_GRAD as well (plan_head_grad in src/gpu/plan.rs), the pass then
// computes the last Affine's input gradient as its backward's product
// would (with Relu's backward where it follows one): dh_r = dy_r·Wᵀ, kept
// where h_r > 0 with `relu_mask`, over each
// block of WG rows once its dy is written, element by element across the
// workgroup; the same multiply-adds in the same order (c = 0, 1, ..., one
// fma each), so dh has the bits of the tiled product unsplit.

struct Dims {
    rows: u32,
    classes: u32,
    want_grad: u32,
    stride: u32,
    groups: u32,
    // With AFFINE: the Affine's K, and the row lengths of h and W (and of
    // dh, with INPUT_GRAD).
    k: u32,
    ldh: u32,
    ldw: u32,
    // With INPUT_GRAD: the Affine's real inputs (dh's columns past them are
    // written 0, as the product writes its padding), and 1 where Relu's
    // mask applies (h > 0), 0 where it does not.
    inputs: u32,
    relu_mask: u32,
    _pad1: u32,
    _pad2: u32,
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

// One row's loss, and 1 where its argmax is its label.
struct RowSums {
    loss: f32,
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
// The last Affine's input gradient, written only with INPUT_GRAD.
@group(0) @binding(8) var<storage, read_write> dh: array<f32>;

override AFFINE: bool = false;
// Only with AFFINE and `want_grad` (src/gpu/kernels/softmax_loss.rs
// refuses it otherwise).
override INPUT_GRAD: bool = false;
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
    var loss = 0.0;
    var correct = 0u;
    // Each workgroup walks blocks of WG rows, an invocation a row of each.
    for (var first = wg.x * WG; first < dims.rows; first += dims.groups * WG) {
        let r = first + li;
        if r < dims.rows {
            let sums = softmax_row(r);
            loss += sums.loss;
            correct += sums.correct;
        }
        if INPUT_GRAD {
            // The block's dy, written above, is read by other invocations.
            storageBarrier();
            input_grad_block(first, li);
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

// Row r: its logits (first computed, with AFFINE), and its dy when
// `want_grad`.
fn softmax_row(r: u32) -> RowSums {
    let cls = dims.classes;
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
    if dims.want_grad != 0u {
        let inv = 1.0 / sum;
        for (var k = 0u; k < cls; k++) {
            let p = exp(y[base + k] - mx) * inv;
            dy[base + k] = (p - select(0.0, 1.0, k == label)) / f32(dims.rows);
        }
    }
    return RowSums(log(sum) - (y[base + label] - mx), select(0u, 1u, best == label));
}

// dh in rows first .. first + WG (those below `rows`): element (r, j) is
// the sum over c of dy[r, c]·W[j, c] (kept only where h[r, j] > 0 with
// `relu_mask`) for j < inputs; 0 in the columns after. Neighbouring invocations take
// neighbouring j, so they write neighbouring words.
fn input_grad_block(first: u32, li: u32) {
    let count = min(WG, dims.rows - first) * dims.ldh;
    for (var e = li; e < count; e += WG) {
        let r = first + e / dims.ldh;
        let j = e % dims.ldh;
        let at = r * dims.ldh + j;
        var acc = 0.0;
        if j < dims.inputs {
            for (var c = 0u; c < dims.classes; c++) {
                acc = fma(dy[r * dims.stride + c], w[j * dims.ldw + c], acc);
            }
            if dims.relu_mask != 0u && !(h[at] > 0.0) {
                acc = 0.0;
            }
        }
        dh[at] = acc;
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
