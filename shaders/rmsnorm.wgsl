// rmsnorm: out[r][i] = x[r][i] / sqrt(mean_i(x[r]²) + eps) · weight[i], in f32 as
// transformers computes it. Strided rows let it read a slice of a wider row (e.g. the
// c_kv part of kv_a's output) and write into another buffer.
// Layout: x row r at x[x_off + r·x_stride .. + n], out row r at out[o_off + r·o_stride ..].
// Grid: x = rows (one workgroup of 64 threads per row).

struct Params {
    n: u32,
    rows: u32,
    x_off: u32,
    x_stride: u32,
    o_off: u32,
    o_stride: u32,
    eps: f32,
    _pad: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let r = wg.x;
    let xb = p.x_off + r * p.x_stride;
    var ss = 0.0;
    for (var i = li; i < p.n; i += 64u) {
        let v = x[xb + i];
        ss += v * v;
    }
    red[li] = ss;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if li < s {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(red[0] / f32(p.n) + p.eps);
    let ob = p.o_off + r * p.o_stride;
    for (var i = li; i < p.n; i += 64u) {
        out[ob + i] = weight[i] * (x[xb + i] * inv);
    }
}
