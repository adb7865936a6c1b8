// copy_rows: dst[d_off + r·d_stride + i] = src[s_off + r·s_stride + i] for i < n, a strided
// row copy (e.g. k_pe out of kv_a's output into the latent cache rows).
// Grid: x = ceil(n / 64), y = rows.

struct Params {
    n: u32,
    rows: u32,
    s_off: u32,
    s_stride: u32,
    d_off: u32,
    d_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let i = gid.x;
    let r = gid.y;
    if i >= p.n || r >= p.rows {
        return;
    }
    dst[p.d_off + r * p.d_stride + i] = src[p.s_off + r * p.s_stride + i];
}
