// The vec4 matmul's operands as storage buffers (compiled after
// shaders/matmul/vec4.wgsl): a_at(i) and b_at(i) are the i-th vec4 of A and B
// as stored.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

fn a_at(i: u32) -> vec4<f32> {
    return a[i];
}

fn b_at(i: u32) -> vec4<f32> {
    return b[i];
}

// K in one block, no barrier (see K_BLOCK4 in matmul/vec4.wgsl).
const K_BLOCK4: u32 = NO_K_BLOCKS;
