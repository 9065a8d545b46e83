// The tiled product's 64×64 tile, 4×4 per invocation (src/gpu/cost.rs, Tile::T64),
// compiled before shaders/matmul.wgsl.
const TILE: u32 = 64u;
const PER: u32 = 4u;
