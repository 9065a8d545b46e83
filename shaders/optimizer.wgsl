// The optimizers of the book's common/optimizer.py (see src/optim.rs), one
// invocation per four parameters of the arena. g is the gradient (weight
// decay already added by the product that made it); padding has g = 0 and
// stays 0 under every rule.
//
//   0 SGD       W -= lr·g
//   1 Momentum  v = m·v - lr·g; W += v
//   2 Nesterov  v = m·v - lr·g; W += m·m·v - (1 + m)·lr·g
//   3 AdaGrad   h += g²; W -= lr·g / (√h + 1e-7)
//   4 RMSprop   h = d·h + (1 - d)·g²; W -= lr·g / (√h + 1e-7)
//   5 Adam      m += (1 - β1)(g - m); v += (1 - β2)(g² - v); W -= lr·m / (√v + 1e-7)
//
// For Adam the host writes lr = lr_t = lr·√(1 - β2ᵗ) / (1 - β1ᵗ) before each
// step; `c1` is m (momentum), d (decay rate) or β1, `c2` is β2, and `k1`,
// `k2` are 1 - c1 and 1 - c2 as the host computes them in f64: in f32,
// 1 - f32(0.999) is off by 1.3e-5 relative, which Adam's √v would carry.

struct Dims {
    len4: u32,
    lr: f32,
    c1: f32,
    c2: f32,
    k1: f32,
    k2: f32,
    _pad0: u32,
    _pad1: u32,
}

// RULE's values (src/gpu/kernels/optimizer.rs: RULE_CODES).
const SGD: u32 = 0u;
const MOMENTUM: u32 = 1u;
const NESTEROV: u32 = 2u;
const ADAGRAD: u32 = 3u;
const RMSPROP: u32 = 4u;
const ADAM: u32 = 5u;
override RULE: u32 = SGD;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> s1: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s2: array<vec4<f32>>;

const EPS: f32 = 1e-7;
// vec4s per invocation, consecutive: on a CPU adapter each load is a loop
// over the SIMD lanes, and longer runs per invocation amortise it.
// (PER in src/gpu/kernels/optimizer.rs, given by the host.)
override PER: u32;
// Invocations per workgroup: given by the host (WG in src/gpu/kernels/optimizer.rs), which sizes
// the grid by it.
override WG: u32;

@compute @workgroup_size(WG)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let lr = dims.lr;
    let stride = groups.x * WG * PER;
    for (var k = gid.x * PER; k < dims.len4; k += stride) {
      for (var i = k; i < min(k + PER, dims.len4); i++) {
        let gi = grads[i];
        switch RULE {
            case MOMENTUM: {
                let v = dims.c1 * s1[i] - lr * gi;
                s1[i] = v;
                params[i] = params[i] + v;
            }
            case NESTEROV: {
                let m = dims.c1;
                var v = s1[i] * m;
                v = v - lr * gi;
                s1[i] = v;
                var p = params[i] + m * m * v;
                params[i] = p - (1.0 + m) * lr * gi;
            }
            case ADAGRAD: {
                let h = s1[i] + gi * gi;
                s1[i] = h;
                params[i] = params[i] - lr * gi / (sqrt(h) + EPS);
            }
            case RMSPROP: {
                var h = s1[i] * dims.c1;
                h = h + dims.k1 * gi * gi;
                s1[i] = h;
                params[i] = params[i] - lr * gi / (sqrt(h) + EPS);
            }
            case ADAM: {
                let m = s1[i] + dims.k1 * (gi - s1[i]);
                let v = s2[i] + dims.k2 * (gi * gi - s2[i]);
                s1[i] = m;
                s2[i] = v;
                params[i] = params[i] - lr * m / (sqrt(v) + EPS);
            }
            default: {
                params[i] = params[i] - lr * gi;
            }
        }
      }
    }
}
