// gqa_attn: causal grouped-query attention over one layer's K/V cache (Qwen3, Llama).
// Query head h uses K/V head kvh = h / group (group = heads / kv_heads). For query token t
// (position pos0 + t) and head h, over cached positions s ≤ pos0 + t:
//   score_s = (q[t][h] · K[s][kvh]) · scale
//   out[t][h] = Σ_s softmax(score)_s · V[s][kvh]
// Layout: q row t at q_off + t·q_stride, head h at + h·head_dim; cache [2][ctx][kv_heads]
//   [head_dim] (the K plane, then the V plane at ctx·kv_heads·head_dim); out row t at
//   o_off + t·o_stride, head h at + h·head_dim; part (split): per (token, split, head)
//   head_dim unnormalised sums then the running max and sum, [n_tok][n_splits][H][head_dim + 2].
//
// Entry points:
//   main     portable: one workgroup per (head, token), keys in blocks of 64 with an online
//            softmax through workgroup memory. Grid: x = H, y = n_tok; 64 threads; head_dim ≤ 256.
//   split    flash-decoding, with subgroups (gqa_attn_split.wgsl): a subgroup loads each K and
//            V row of one K/V head once for the HG query heads of its group (and, in a
//            prefill, TT query tokens) it serves. Grid: x = splits, y = kv_heads ·
//            ceil(group / HG), z = ceil(n_tok / TT); LANES threads.
//   combine  merges the splits of each (token, head): Grid x = H, y = n_tok; 64 threads.
//
// Params are read from a storage buffer (see common/mm_words.wgsl for why, on lavapipe).
// The host prepends common/attn.wgsl (NEG, the workgroup reductions, combine_splits).

struct Params {
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    group: u32,
    ctx: u32,
    pos0: u32,
    n_tok: u32,
    scale: f32,
    split_len: u32,
    n_splits: u32,
    q_off: u32,
    q_stride: u32,
    o_off: u32,
    o_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> part: array<f32>;
@group(0) @binding(5) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> cache4: array<vec4<f32>>;

var<private> p: Params;

// This workgroup's query (main): q · scale, and its K/V head.
var<workgroup> qs: array<f32, 256>;
var<private> kv_head: u32;

fn key_score(s: u32) -> f32 {
    let kb = (s * p.kv_heads + kv_head) * p.head_dim;
    var d = 0.0;
    for (var c = 0u; c < p.head_dim; c++) {
        d += qs[c] * cache[kb + c];
    }
    return d;
}

fn key_value(s: u32, c: u32) -> f32 {
    return cache[((p.ctx + s) * p.kv_heads + kv_head) * p.head_dim + c];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let h = wg.x;
    let t = wg.y;
    kv_head = h / p.group;
    let qb = p.q_off + t * p.q_stride + h * p.head_dim;
    for (var c = li; c < p.head_dim; c += 64u) {
        qs[c] = q[qb + c] * p.scale;
    }
    workgroupBarrier();
    attend_portable(p.pos0 + t + 1u, p.head_dim, p.o_off + t * p.o_stride + h * p.head_dim, li);
}

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let h = wg.x;
    let t = wg.y;
    let b0 = (t * p.n_splits * p.heads + h) * (p.head_dim + 2u);
    combine_splits(b0, p.heads * (p.head_dim + 2u), p.head_dim, p.o_off + t * p.o_stride + h * p.head_dim, li);
}
