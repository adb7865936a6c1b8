// mla_attn: absorbed multi-head latent attention over the latent cache, causal.
// For query token t (position pos0 + t) and head h, over cached positions s ≤ pos0 + t:
//   score_s = (q_lat[t][h] · c_kv[s] + q_pe[t][h] · k_pe[s]) · scale
//   o_lat[t][h] = Σ_s softmax(score)_s · c_kv[s]
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
    _pad: u32,
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

var<private> p: Params;

const MAXC: u32 = 16u; // kvl / 64 values of the output per thread (main)
var<workgroup> prob: array<f32, 64>;
var<workgroup> red_m: array<f32, 64>;
var<workgroup> red_s: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let h = wg.x;
    let t = wg.y;
    let cd = p.kvl + p.rope;
    let n_keys = p.pos0 + t + 1u;
    let qlb = (t * p.heads + h) * p.kvl;
    let qpb = t * p.q_stride + h * p.qk + p.nope;
    var acc: array<f32, MAXC>;
    var m = -3.0e38;
    var l = 0.0;
    for (var base = 0u; base < n_keys; base += 64u) {
        let s = base + li;
        var score = -3.0e38;
        if s < n_keys {
            let kb = s * cd;
            var d = 0.0;
            for (var c = 0u; c < p.kvl; c++) {
                d += q_lat[qlb + c] * cache[kb + c];
            }
            for (var r = 0u; r < p.rope; r++) {
                d += q[qpb + r] * cache[kb + p.kvl + r];
            }
            score = d * p.scale;
        }
        red_m[li] = score;
        workgroupBarrier();
        for (var st = 32u; st > 0u; st >>= 1u) {
            if li < st {
                red_m[li] = max(red_m[li], red_m[li + st]);
            }
            workgroupBarrier();
        }
        let new_m = max(m, red_m[0]);
        let pr = select(0.0, exp(score - new_m), s < n_keys);
        prob[li] = pr;
        red_s[li] = pr;
        workgroupBarrier();
        for (var st = 32u; st > 0u; st >>= 1u) {
            if li < st {
                red_s[li] += red_s[li + st];
            }
            workgroupBarrier();
        }
        let corr = exp(m - new_m);
        l = l * corr + red_s[0];
        m = new_m;
        let nk = min(64u, n_keys - base);
        for (var j = 0u; j < MAXC; j++) {
            let c = li + 64u * j;
            if c < p.kvl {
                var a = acc[j] * corr;
                for (var k = 0u; k < nk; k++) {
                    a += prob[k] * cache[(base + k) * cd + c];
                }
                acc[j] = a;
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < MAXC; j++) {
        let c = li + 64u * j;
        if c < p.kvl {
            out[qlb + c] = acc[j] / l;
        }
    }
}

const NEG: f32 = -3.0e38;

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let h = wg.x;
    let t = wg.y;
    let stride = p.heads * (p.kvl + 2u);
    let b0 = (t * p.n_splits * p.heads + h) * (p.kvl + 2u);
    var mx = NEG;
    for (var s = 0u; s < p.n_splits; s++) {
        mx = max(mx, part[b0 + s * stride + p.kvl]);
    }
    var total = 0.0;
    for (var s = 0u; s < p.n_splits; s++) {
        let b = b0 + s * stride;
        total += part[b + p.kvl + 1u] * exp(part[b + p.kvl] - mx);
    }
    for (var c = li; c < p.kvl; c += 64u) {
        var acc = 0.0;
        for (var s = 0u; s < p.n_splits; s++) {
            let b = b0 + s * stride;
            acc += part[b + c] * exp(part[b + p.kvl] - mx);
        }
        out[(t * p.heads + h) * p.kvl + c] = acc / total;
    }
}
