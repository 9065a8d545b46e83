// The tiled product's 128×128 tile, 8×8 per invocation (src/gpu/cost.rs, Tile::T128),
// compiled after shaders/matmul.wgsl and shaders/matmul/tiled.wgsl.
const TILE: u32 = 128u;
const PER: u32 = 8u;
