// Batch Normalization backward (after Relu's backward, which the product
// that made dz already applied as a mask).
//
// Per feature j over the rows: dbeta = Σ dz, dgamma = Σ dz·xn, and
//   dx = gamma / std · (dz - dbeta / B - xn · dgamma / B)
// which is the book's step-by-step backward (dxn, dxc, dstd, dvar, dmu)
// collected into one line. dgamma and dbeta go to the gradient arena at the
// offsets of gamma and beta; dx (rows × features, rows `stride` long) feeds
// the Affine's backward. Layout and reduction as batchnorm_forward.wgsl.

// The forward's uniform: `running` (where the running mean starts) is not
// read here, but the host writes one struct for both passes.
struct Dims {
    rows: u32,
    features: u32,
    stride: u32,
    gamma: u32,
    beta: u32,
    running: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> xn: array<f32>;
@group(0) @binding(3) var<storage, read> std_dev: array<f32>;
@group(0) @binding(4) var<storage, read> params: array<f32>;
@group(0) @binding(5) var<storage, read_write> grads: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

const WG: u32 = 64u;
var<workgroup> part_b: array<f32, WG>;
var<workgroup> part_g: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let rows = dims.rows;
    for (var j = wg.x; j < dims.features; j += groups.x) {
        var sb = 0.0;
        var sg = 0.0;
        for (var r = li; r < rows; r += WG) {
            let idx = r * dims.stride + j;
            sb += dz[idx];
            sg += dz[idx] * xn[idx];
        }
        part_b[li] = sb;
        part_g[li] = sg;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if li < s {
                part_b[li] += part_b[li + s];
                part_g[li] += part_g[li + s];
            }
            workgroupBarrier();
        }
        let dbeta = part_b[0];
        let dgamma = part_g[0];
        workgroupBarrier();
        if li == 0u {
            grads[dims.gamma + j] = dgamma;
            grads[dims.beta + j] = dbeta;
        }
        let n = f32(rows);
        let coef = params[dims.gamma + j] / std_dev[j];
        for (var r = li; r < rows; r += WG) {
            let idx = r * dims.stride + j;
            dx[idx] = coef * (dz[idx] - dbeta / n - xn[idx] * dgamma / n);
        }
    }
}
