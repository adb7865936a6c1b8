// moe_gate: the whole router after the gate projection, one thread per token:
// scores (sigmoid or softmax of the logits, f32), choice values (scores + correction bias),
// group selection (V3 noaux_tc: group score = sum of its top-2 choice values, experts of
// dropped groups count as -inf; V2 group_limited_greedy: the max score in the group,
// dropped experts count as 0.0; both as transformers does), top-k, then weights = the
// scores (not the biased values) at the chosen experts, optionally divided by their sum
// (+1e-20), times `scale`.
// Layout: logits [n_tok][E] (overwritten with the scores), bias [E], ids out [n_tok][K]
//   (u32, in choice order), wts out [n_tok][K].
// Grid: x = ceil(n_tok / 64). E ≤ 4096, K ≤ 32, n_group ≤ 64.

struct Params {
    n_tok: u32,
    n_exp: u32,
    k: u32,
    n_group: u32,
    topk_group: u32,
    softmax: u32,
    method: u32, // 0 = noaux_tc, 1 = greedy, 2 = group_limited_greedy
    norm: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> wts: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let t = gid.x;
    if t >= p.n_tok {
        return;
    }
    let b = t * p.n_exp;
    if p.softmax != 0u {
        var mx = -3.0e38;
        for (var e = 0u; e < p.n_exp; e++) {
            mx = max(mx, logits[b + e]);
        }
        var sum = 0.0;
        for (var e = 0u; e < p.n_exp; e++) {
            let v = exp(logits[b + e] - mx);
            logits[b + e] = v;
            sum += v;
        }
        for (var e = 0u; e < p.n_exp; e++) {
            logits[b + e] = logits[b + e] / sum;
        }
    } else {
        for (var e = 0u; e < p.n_exp; e++) {
            logits[b + e] = 1.0 / (1.0 + exp(-logits[b + e]));
        }
    }

    // Which groups stay eligible.
    var keep: array<bool, 64>;
    let per = p.n_exp / p.n_group;
    let limited = p.method != 1u && p.n_group > 1u;
    for (var g = 0u; g < 64u; g++) {
        keep[g] = !limited;
    }
    if limited {
        var gscore: array<f32, 64>;
        for (var g = 0u; g < p.n_group; g++) {
            var best = -3.0e38;
            var second = -3.0e38;
            for (var j = 0u; j < per; j++) {
                let e = g * per + j;
                var v = logits[b + e];
                if p.method == 0u {
                    v += bias[e];
                }
                if v > best {
                    second = best;
                    best = v;
                } else if v > second {
                    second = v;
                }
            }
            gscore[g] = select(best, best + second, p.method == 0u);
        }
        for (var n = 0u; n < p.topk_group; n++) {
            var bg = 0u;
            var bv = -3.0e38;
            for (var g = 0u; g < p.n_group; g++) {
                if !keep[g] && gscore[g] > bv {
                    bv = gscore[g];
                    bg = g;
                }
            }
            keep[bg] = true;
        }
    }

    var chosen: array<u32, 32>;
    var sum = 0.0;
    for (var n = 0u; n < p.k; n++) {
        var be = 0u;
        var bv = -3.0e38;
        for (var e = 0u; e < p.n_exp; e++) {
            var taken = false;
            for (var j = 0u; j < n; j++) {
                taken = taken || chosen[j] == e;
            }
            // Dropped groups: -inf for noaux_tc, 0.0 for group_limited_greedy (transformers).
            var v = select(0.0, -3.0e38, p.method == 0u);
            if keep[e / per] {
                v = logits[b + e];
                if p.method == 0u {
                    v += bias[e];
                }
            }
            if !taken && v > bv {
                bv = v;
                be = e;
            }
        }
        chosen[n] = be;
        sum += logits[b + be];
    }
    for (var n = 0u; n < p.k; n++) {
        var wv = logits[b + chosen[n]];
        if p.norm != 0u {
            wv = wv / (sum + 1e-20);
        }
        ids[t * p.k + n] = chosen[n];
        wts[t * p.k + n] = wv * p.scale;
    }
}
