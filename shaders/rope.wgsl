// rope: rotate pairs (a, b) of the rope part of every head, in place:
// (a, b) → (a·cos − b·sin, b·cos + a·sin) with cos/sin of position pos0 + t from a table the
// host builds (YaRN frequencies and attention factor already folded in). Pair i is
// DeepSeek's interleaved (2i, 2i+1), or with half_split = 1 Qwen3/Llama's (i, i + rope_dim/2)
// (transformers' rotate_half).
// Layout: x row t, head h starts at x[t·row_stride + h·head_stride + off]; table
//   cs[pos][i] = (cos, sin) as vec2 for i < rope_dim / 2.
// Grid: x = ceil(heads · rope_dim/2 / 64), y = n_tok.

struct Params {
    n_tok: u32,
    heads: u32,
    half_dim: u32,
    row_stride: u32,
    head_stride: u32,
    off: u32,
    pos0: u32,
    half_split: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let t = gid.y;
    let h = gid.x / p.half_dim;
    let i = gid.x % p.half_dim;
    if t >= p.n_tok || h >= p.heads {
        return;
    }
    let base = t * p.row_stride + h * p.head_stride + p.off;
    var ka = base + 2u * i;
    var kb = ka + 1u;
    if p.half_split != 0u {
        ka = base + i;
        kb = ka + p.half_dim;
    }
    let c = cs[(p.pos0 + t) * p.half_dim + i];
    let a = x[ka];
    let b = x[kb];
    x[ka] = a * c.x - b * c.y;
    x[kb] = b * c.x + a * c.y;
}
