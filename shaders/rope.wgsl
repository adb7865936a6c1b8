// rope: rotate DeepSeek's interleaved pairs (2i, 2i+1) of the rope part of every head, in
// place: (a, b) → (a·cos − b·sin, b·cos + a·sin) with cos/sin of position pos0 + t from a
// table the host builds (YaRN frequencies and attention factor already folded in).
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
    _pad: u32,
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
    let k = t * p.row_stride + h * p.head_stride + p.off + 2u * i;
    let c = cs[(p.pos0 + t) * p.half_dim + i];
    let a = x[k];
    let b = x[k + 1u];
    x[k] = a * c.x - b * c.y;
    x[k + 1u] = b * c.x + a * c.y;
}
