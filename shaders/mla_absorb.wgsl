// mla_absorb: the two per-head products with kv_b_proj that let MLA attend over the latent
// cache without decompressing it. kv_b_proj is [H·(nope + v)][kv_lora]; per head its rows
// are W_UK (nope rows) then W_UV (v rows).
//   q_absorb: q_lat[t][h][c] = Σ_{d<nope} W_UK_h[d][c] · q[t][h·qk + d]
//   v_up:     o[t][h][j]     = Σ_{c<kv_lora} W_UV_h[j][c] · o_lat[t][h][c]
// Layout: w = packed kv_b_proj (common/weights.wgsl), wscale = FP8 block scales
//   [s_rows][s_cols]; x = input (q [n_tok][q_stride] or o_lat [n_tok][H][kv_lora]);
//   out = q_lat [n_tok][H][kv_lora] or o [n_tok][H·v].
// Grid: x = ceil(per-head outputs / 64), y = H, z = n_tok.
// These are the portable kernels; where the shapes allow, mla_absorb.rs runs both products
// with matmul's matvec/gemm instead, q_absorb on a copy of W_UK transposed once by
// transpose_uk: wt[h][c][d] = W_UK_h[d][c], packed like w (2-byte types: one u32, two d, per
// thread). Grid: x = ceil(kvl · nope / (elements per u32) / 64), y = H.

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

// Params from a storage buffer (see common/mm_words.wgsl for why, on lavapipe).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> wt: array<u32>;

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
    p = params;
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
    p = params;
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

@compute @workgroup_size(64)
fn transpose_uk(@builtin(global_invocation_id) gid: vec3<u32>) {
    p = params;
    let h = gid.y;
    let two = WDT == 1u || WDT == 2u;
    let per = select(1u, 2u, two);
    let i = gid.x * per; // element index in head h's [kvl][nope] output
    if i >= p.kvl * p.nope {
        return;
    }
    let c = i / p.nope;
    let d = i % p.nope;
    let src = (h * (p.nope + p.v) + d) * p.kvl + c;
    let a = w_raw(src);
    var word = bitcast<u32>(a);
    if WDT == 1u {
        word = (bitcast<u32>(a) >> 16u) | (bitcast<u32>(w_raw(src + p.kvl)) & 0xffff0000u);
    } else if WDT == 2u {
        word = pack2x16float(vec2<f32>(a, w_raw(src + p.kvl)));
    }
    wt[(h * p.kvl * p.nope + i) / per] = word;
}
