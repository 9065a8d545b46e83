// The tiled product's 64×64 tile, 4×4 per invocation (src/gpu/cost.rs, Tile::T64),
// compiled after shaders/matmul.wgsl and shaders/matmul/tiled.wgsl.
const TILE: u32 = 64u;
const PER: u32 = 4u;
