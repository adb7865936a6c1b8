// rmsnorm: out[r][i] = x[r][i] / sqrt(mean_i(x[r]²) + eps) · weight[i], in f32 as
// transformers computes it. Strided rows let it read a slice of a wider row (e.g. the
// c_kv part of kv_a's output) and write into another buffer.
// With rope_half > 0 the normalized row is also rotated before it is written (Qwen3's
// per-head q_norm / k_norm followed by RoPE, one dispatch instead of two): pair j of the
// first 2·rope_half values is DeepSeek's interleaved (2j, 2j+1) or, with half_split = 1,
// (j, j + rope_half), at position pos0 + r / rows_per_pos, with (cos, sin) from the table
// rope.wgsl reads. The rotation uses the same f32 operations as rope.wgsl on the same values.
// With tail > 0 the row goes on for tail values after the n normalized ones, which are copied
// as they are (MLA's kv_a output c_kv ‖ k_pe: c_kv normalized and k_pe copied, both into the
// latent cache row, in one dispatch instead of norm, copy and RoPE); the rotated values then
// start at rope_off (2·rope_half of them, anywhere in the n + tail values).
// Layout: x row r at x[x_off + r·x_stride .. + n + tail], out row r at out[o_off + r·o_stride ..].
// Grid: x = rows (one workgroup of 64 threads per row).

struct Params {
    n: u32,
    rows: u32,
    x_off: u32,
    x_stride: u32,
    o_off: u32,
    o_stride: u32,
    eps: f32,
    rope_half: u32,
    rows_per_pos: u32,
    pos0: u32,
    half_split: u32,
    tail: u32,
    rope_off: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> cs: array<vec2<f32>>;

var<workgroup> red: array<f32, 64>;

// Value i of the output row before RoPE: normalized for i < n, copied after.
fn value(xb: u32, i: u32, inv: f32) -> f32 {
    if i < p.n {
        return weight[i] * (x[xb + i] * inv);
    }
    return x[xb + i];
}

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
    let r0 = p.rope_off;
    let r1 = r0 + 2u * p.rope_half;
    for (var i = li; i < p.n + p.tail; i += 64u) {
        if i < r0 || i >= r1 {
            out[ob + i] = value(xb, i, inv);
        }
    }
    let cb = (p.pos0 + r / max(p.rows_per_pos, 1u)) * p.rope_half;
    for (var j = li; j < p.rope_half; j += 64u) {
        var ia = r0 + 2u * j;
        var ib = ia + 1u;
        if p.half_split != 0u {
            ia = r0 + j;
            ib = ia + p.rope_half;
        }
        let a = value(xb, ia, inv);
        let b = value(xb, ib, inv);
        let c = cs[cb + j];
        out[ob + ia] = a * c.x - b * c.y;
        out[ob + ib] = b * c.x + a * c.y;
    }
}
