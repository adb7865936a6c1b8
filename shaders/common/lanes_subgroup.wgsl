// Lane exchange through subgroup operations: a group of LANES threads is one subgroup (the
// host sets LANES to the adapter's fixed subgroup size). Same interface as
// lanes_workgroup.wgsl, which the host includes instead when the adapter has no subgroups:
//   wg_uniform(v, li)   v, provably uniform over the workgroup (v must already be)
//   lane_sum(v, li)     Σ of v over the group, in every lane
//   lane_put(q, v, li)  publish this lane's word q; after lane_sync(), lane_get(q, k, li)
//                       returns lane k's word q; lane_sync() again before the next put
//   lane_sum_n(v, n, li)  Σ of v over the n lanes (a power of two, at most LANES) of li's
//                       aligned run of n lanes, in each of them
//   lane_put4(q, m, v, li), lane_get4(q, m, k, li)  the same exchange as lane_put/lane_get
//                       for single vec4s: item q, this lane's vec4 m (m < 64 / LANES)

// NT_MAX (items per tile the exchange holds, at least 8) is declared by the host before
// this file (src/ops/matmul.rs, Fast::with_tune).
var<private> lane_words: array<XW, NT_MAX>;

fn wg_uniform(v: u32, li: u32) -> u32 {
    return v;
}

fn lane_sum(v: f32, li: u32) -> f32 {
    return subgroupAdd(v);
}

fn lane_put(q: u32, v: XW, li: u32) {
    lane_words[q] = v;
}

fn lane_sync() {}

fn lane_get(q: u32, k: u32, li: u32) -> XW {
    let v = lane_words[q];
    var o = XW(subgroupShuffle(v.a, k), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if NPLANES > 1u {
        o.b = subgroupShuffle(v.b, k);
    }
    if NPLANES > 2u {
        o.c = subgroupShuffle(v.c, k);
        o.d = subgroupShuffle(v.d, k);
    }
    return o;
}

fn lane_sum_n(v: f32, n: u32, li: u32) -> f32 {
    if n == LANES {
        return subgroupAdd(v);
    }
    var s = v;
    for (var m = 1u; m < n; m <<= 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
}

// [item][m]: the x vec4s this lane loaded for the block kernels (m < 64 / LANES ≤ 16).
var<private> lane_x4: array<vec4<f32>, NT_MAX * 16>;

fn lane_put4(q: u32, m: u32, v: vec4<f32>, li: u32) {
    lane_x4[q * 16u + m] = v;
}

fn lane_get4(q: u32, m: u32, k: u32, li: u32) -> vec4<f32> {
    return subgroupShuffle(lane_x4[q * 16u + m], k);
}
