//! Dropout's mask as a pure function of (seed, step, layer, element), so the
//! CPU reference and the GPU draw the same mask without sharing any state or
//! sending a mask across: a counter-based hash (Wellons' `lowbias32`), written
//! identically here and in `shaders/dropout.wgsl`.
//!
//! The host folds seed, step and layer into one 32-bit key per dispatch
//! ([`layer_key`]); each element then hashes `key ^ mix(index)` with `index`
//! its position `row · features + column`. An element is kept when the top 24
//! bits of the hash, as a number in [0, 1), exceed the ratio: the book's
//! `np.random.rand(*x.shape) > dropout_ratio`.

/// Wellons' lowbias32: a bijective 32-bit mixer with good avalanche.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The key for one dropout layer (1-based `layer`) at training step `step`
/// (1-based, as the optimizers count) of a run seeded with `seed`.
pub fn layer_key(seed: u64, step: u32, layer: u32) -> u32 {
    let seed_key = mix((seed as u32) ^ mix((seed >> 32) as u32 ^ 0x9e37_79b9));
    mix(mix(seed_key ^ step) ^ layer)
}

/// Uniform in [0, 1) for one element, exactly as the shader computes it.
pub fn uniform(key: u32, index: u32) -> f32 {
    (mix(key ^ mix(index)) >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Whether element `index` passes (is kept) under `ratio`.
pub fn keep(key: u32, index: u32, ratio: f32) -> bool {
    uniform(key, index) > ratio
}
