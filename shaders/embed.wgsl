// embed: out[t][c] = E[ids[t]][c] for the tokens whose id falls in this chunk of the
// embedding table (rows [r0, r0 + rows)); one dispatch per chunk.
// Layout: w = packed chunk [rows][hidden] (common/weights.wgsl), ids = u32 [n_tok],
//   out = f32 [n_tok][hidden].
// Grid: x = ceil(hidden / 64), y = n_tok.

struct Params {
    hidden: u32,
    n_tok: u32,
    r0: u32,
    rows: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WDT: u32 = 0u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let c = gid.x;
    let t = gid.y;
    if c >= p.hidden || t >= p.n_tok {
        return;
    }
    let id = ids[t];
    if id < p.r0 || id >= p.r0 + p.rows {
        return;
    }
    out[t * p.hidden + c] = w_raw((id - p.r0) * p.hidden + c);
}
