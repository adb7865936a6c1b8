// mla_attn: absorbed multi-head latent attention over the latent cache, causal.
// For query token t (position pos0 + t) and head h, over cached positions s ≤ pos0 + t:
//   score_s = (q_lat[t][h] · c_kv[s] + q_pe[t][h] · k_pe[s]) · scale
//   o_lat[t][h] = Σ_s softmax(score)_s · c_kv[s]
// With rope_q = 1, q_pe is read unrotated and each query rotates it (DeepSeek's interleaved
// pairs, (cos, sin) of its position from cs, the table rope.wgsl reads, with the same f32
// operations) as it loads it: RoPE of q in the attention instead of a dispatch of its own.
// Layout: q_lat [n_tok][H][kvl]; q [n_tok][q_stride] with q_pe of head h at
//   h·qk + nope; cache [ctx][kvl + rope] = c_kv ‖ k_pe; out o_lat [n_tok][H][kvl];
//   part (split): per (token, split, head) kvl unnormalised sums then the running max and
//   sum, [n_tok][n_splits][H][kvl + 2].
//
// Entry points:
//   main     portable: one workgroup per (head, token), keys in blocks of 64 with an online
//            softmax through workgroup memory. Grid: x = H, y = n_tok; 64 threads; kvl ≤ 1024.
//   split    flash-decoding, with subgroups: all heads share one latent key/value row, so a
//            subgroup of LANES threads loads each cache row once (lane l holds its 16-byte
//            words l, l + LANES, …) and scores it against HG heads whose q words sit in
//            registers; subgroupAdd finishes each score, an online softmax folds the key in,
//            and the values are the same row's c_kv words (already loaded). The keys of a query
//            are cut into splits of split_len so that a short decode still fills the
//            adapter; with one split the result is written normalised to out, else partial
//            sums go to part for combine. Grid: x = splits, y = ceil(H / 4), z = n_tok;
//            LANES threads.
//   combine  merges the splits of each (token, head): Grid x = H, y = n_tok; 64 threads.
//
// Params are read from a storage buffer (see common/mm_words.wgsl for why, on lavapipe).
// The host prepends common/attn.wgsl (NEG, the workgroup reductions, combine_splits).

struct Params {
    heads: u32,
    kvl: u32,
    rope: u32,
    q_stride: u32,
    qk: u32,
    nope: u32,
    pos0: u32,
    scale: f32,
    n_tok: u32,
    split_len: u32,
    n_splits: u32,
    rope_q: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> q_lat: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;
@group(0) @binding(6) var<storage, read> q_lat4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> cache4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> cs: array<vec2<f32>>;

var<private> p: Params;

// This workgroup's query (main): q_lat and q_pe offsets.
var<private> qlb: u32;
var<private> qpb: u32;
var<private> qpos: u32;

// Value r of this workgroup's q_pe, rotated when the host asks for it.
fn q_pe(r: u32) -> f32 {
    let v = q[qpb + r];
    if p.rope_q == 0u {
        return v;
    }
    let c = cs[qpos * (p.rope / 2u) + r / 2u];
    if r % 2u == 0u {
        return v * c.x - q[qpb + r + 1u] * c.y;
    }
    return v * c.x + q[qpb + r - 1u] * c.y;
}

// The rotated words (pairs 2w, 2w + 1) of q_pe word w of token t (split kernel).
fn q_pe_word(v: vec4<f32>, t: u32, w: u32) -> vec4<f32> {
    if p.rope_q == 0u {
        return v;
    }
    let cb = (p.pos0 + t) * (p.rope / 2u) + 2u * w;
    let c0 = cs[cb];
    let c1 = cs[cb + 1u];
    return vec4<f32>(v.x * c0.x - v.y * c0.y, v.y * c0.x + v.x * c0.y, v.z * c1.x - v.w * c1.y, v.w * c1.x + v.z * c1.y);
}

fn key_score(s: u32) -> f32 {
    let kb = s * (p.kvl + p.rope);
    var d = 0.0;
    for (var c = 0u; c < p.kvl; c++) {
        d += q_lat[qlb + c] * cache[kb + c];
    }
    for (var r = 0u; r < p.rope; r++) {
        d += q_pe(r) * cache[kb + p.kvl + r];
    }
    return d * p.scale;
}

fn key_value(s: u32, c: u32) -> f32 {
    return cache[s * (p.kvl + p.rope) + c];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let h = wg.x;
    let t = wg.y;
    qlb = (t * p.heads + h) * p.kvl;
    qpb = t * p.q_stride + h * p.qk + p.nope;
    qpos = p.pos0 + t;
    attend_portable(p.pos0 + t + 1u, p.kvl, qlb, li);
}

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let h = wg.x;
    let t = wg.y;
    let b0 = (t * p.n_splits * p.heads + h) * (p.kvl + 2u);
    combine_splits(b0, p.heads * (p.kvl + 2u), p.kvl, (t * p.heads + h) * p.kvl, li);
}
