// swiglu: gate[i] = silu(gate[i]) · up[i], in place over n values.
// Grid: x = ceil(n / 64) (2-D split when n exceeds one dimension: i = y·gx·64 + x).

struct Params {
    n: u32,
    gx: u32,
    _pad0: u32,
    _pad1: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let i = gid.y * p.gx * 64u + gid.x;
    if i >= p.n {
        return;
    }
    let g = gate[i];
    gate[i] = g / (1.0 + exp(-g)) * up[i];
}
