// The vec4 matmul's operands as rgba32float textures (compiled after
// shaders/matmul/vec4.wgsl): a_at(i) and b_at(i) are the i-th vec4 of A and B
// as stored, copied row after row into textures 2^TEXELS_LOG2 texels wide
// (texel i at x = i mod 2^TEXELS_LOG2, y = i / 2^TEXELS_LOG2).
//
// Why textures: Mesa 22's lavapipe turns a storage-buffer load whose address
// differs between lanes into a loop over the SIMD lanes, one float at a time
// with a bounds check and a branch each, but fetches a texel for all lanes at
// once (one 16-byte load per lane). The vec4 kernel is bound by its loads,
// so the same kernel measured about 1.7× faster reading textures, with the
// same result bit for bit (the loads change, not the arithmetic).

// Mirrored by TEXELS_LOG2 in src/gpu/kernels/matmul/staging.rs.
const TEXELS_LOG2: u32 = 12u;
const TEXELS_MASK: u32 = (1u << TEXELS_LOG2) - 1u;

@group(0) @binding(1) var a: texture_2d<f32>;
@group(0) @binding(2) var b: texture_2d<f32>;

fn a_at(i: u32) -> vec4<f32> {
    return textureLoad(a, vec2<u32>(i & TEXELS_MASK, i >> TEXELS_LOG2), 0);
}

fn b_at(i: u32) -> vec4<f32> {
    return textureLoad(b, vec2<u32>(i & TEXELS_MASK, i >> TEXELS_LOG2), 0);
}

// K in blocks of 256, a barrier after each (see matmul/vec4.wgsl).
const K_BLOCK4: u32 = 64u;
