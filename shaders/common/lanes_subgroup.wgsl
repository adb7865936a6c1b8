// Lane exchange through subgroup operations: a group of LANES threads is one subgroup (the
// host sets LANES to the adapter's fixed subgroup size). Same interface as
// lanes_workgroup.wgsl, which the host includes instead when the adapter has no subgroups:
//   wg_uniform(v, li)   v, provably uniform over the workgroup (v must already be)
//   lane_sum(v, li)     Σ of v over the group, in every lane
//   lane_put(q, v, li)  publish this lane's word q; after lane_sync(), lane_get(q, k, li)
//                       returns lane k's word q; lane_sync() again before the next put

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
