// Lane exchange through workgroup memory, for adapters without subgroups (interface in
// lanes_subgroup.wgsl). Every call sits in uniform control flow; workgroups hold at most
// 256 threads, and gemm's at most 32.

// NT_MAX (items per tile, 8 here: lane_xs holds 8 words of 32 lanes) is declared by the host
// before this file (src/ops/matmul.rs, Fast::with_tune).
var<workgroup> lane_u: u32;
var<workgroup> lane_red: array<f32, 256>;
var<workgroup> lane_xs: array<XW, 256>; // [NT_MAX][32 lanes]
var<workgroup> lane_x4: array<vec4<f32>, 512>; // [NT_MAX][64 vec4s of a block step]

fn wg_uniform(v: u32, li: u32) -> u32 {
    if li == 0u {
        lane_u = v;
    }
    return workgroupUniformLoad(&lane_u);
}

fn lane_sum(v: f32, li: u32) -> f32 {
    workgroupBarrier();
    lane_red[li] = v;
    workgroupBarrier();
    let base = li - li % LANES;
    var s = 0.0;
    for (var k = 0u; k < LANES; k++) {
        s += lane_red[base + k];
    }
    return s;
}

fn lane_put(q: u32, v: XW, li: u32) {
    lane_xs[q * 32u + li] = v;
}

fn lane_sync() {
    workgroupBarrier();
}

fn lane_get(q: u32, k: u32, li: u32) -> XW {
    return lane_xs[q * 32u + li - li % LANES + k];
}

fn lane_sum_n(v: f32, n: u32, li: u32) -> f32 {
    workgroupBarrier();
    lane_red[li] = v;
    workgroupBarrier();
    let base = li - li % n;
    var s = 0.0;
    for (var k = 0u; k < n; k++) {
        s += lane_red[base + k];
    }
    return s;
}

fn lane_put4(q: u32, m: u32, v: vec4<f32>, li: u32) {
    lane_x4[q * 64u + m * LANES + li] = v;
}

fn lane_get4(q: u32, m: u32, k: u32, li: u32) -> vec4<f32> {
    return lane_x4[q * 64u + m * LANES + k];
}
