// mla_absorb: the two per-head products with kv_b_proj that let MLA attend over the latent
// cache without decompressing it. kv_b_proj is [H·(nope + v)][kv_lora]; per head its rows
// are W_UK (nope rows) then W_UV (v rows).
//   q_absorb: q_lat[t][h][c] = Σ_{d<nope} W_UK_h[d][c] · q[t][h·qk + d]
//   v_up:     o[t][h][j]     = Σ_{c<kv_lora} W_UV_h[j][c] · o_lat[t][h][c]
// Layout: w = packed kv_b_proj (common/weights.wgsl), wscale = FP8 block scales
//   [s_rows][s_cols]; x = input (q [n_tok][q_stride] or o_lat [n_tok][H][kv_lora]);
//   out = q_lat [n_tok][H][kv_lora] or o [n_tok][H·v].
// Grid: x = ceil(per-head outputs / 64), y = H, z = n_tok.

struct Params {
    heads: u32,
    nope: u32,
    v: u32,
    kvl: u32,
    q_stride: u32,
    qk: u32,
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    n_tok: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WDT: u32 = 0u;

fn wk(r: u32, c: u32) -> f32 {
    var v = w_raw(r * p.kvl + c);
    if WDT == 3u {
        v *= wscale[(r / p.blk_r) * p.s_cols + c / p.blk_c];
    }
    return v;
}

@compute @workgroup_size(64)
fn q_absorb(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let h = gid.y;
    let t = gid.z;
    if c >= p.kvl || t >= p.n_tok {
        return;
    }
    let row0 = h * (p.nope + p.v);
    let qb = t * p.q_stride + h * p.qk;
    var acc = 0.0;
    for (var d = 0u; d < p.nope; d++) {
        acc += wk(row0 + d, c) * x[qb + d];
    }
    out[(t * p.heads + h) * p.kvl + c] = acc;
}

@compute @workgroup_size(64)
fn v_up(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let h = gid.y;
    let t = gid.z;
    if j >= p.v || t >= p.n_tok {
        return;
    }
    let row = h * (p.nope + p.v) + p.nope + j;
    let ob = (t * p.heads + h) * p.kvl;
    var acc = 0.0;
    for (var c = 0u; c < p.kvl; c++) {
        acc += wk(row, c) * x[ob + c];
    }
    out[(t * p.heads + h) * p.v + j] = acc;
}
