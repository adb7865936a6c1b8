// moe_combine: x[t][c] += Σ_k wts[t][k] · eo[t][k][c], the gate-weighted sum of the routed
// experts' outputs added to the residual stream.
// Layout: wts [n_tok][K], eo [n_tok][K][hidden], x [n_tok][hidden].
// Grid: x = ceil(hidden / 64), y = n_tok.

struct Params {
    hidden: u32,
    n_tok: u32,
    k: u32,
    _pad: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> wts: array<f32>;
@group(0) @binding(2) var<storage, read> eo: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let c = gid.x;
    let t = gid.y;
    if c >= p.hidden || t >= p.n_tok {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < p.k; k++) {
        acc += wts[t * p.k + k] * eo[(t * p.k + k) * p.hidden + c];
    }
    x[t * p.hidden + c] += acc;
}
