// gemm over GGUF's block formats (prefill): y[item][r] (+)= Σ_c W_e[r][c] · x[item][c] for
// many items, and gemm_glu, as gemm.wgsl computes them for the float formats (items, tiles,
// grouped experts, streams and bindings as there; the block decode in
// common/blocks_words.wgsl).
//
// A workgroup is one group of LANES threads; each lane streams S rows (gemm_glu: S/2 rows of
// both matrices) over tiles of NT items, in steps of 256 values (8 blocks of 32, or one
// K-quant block). Per step, lane k loads x vec4s k, k + LANES, … of the step for every item
// of the tile and publishes them (lane_put4); then every lane loads and realigns its streams'
// steps (blk_fill: each weight byte read once, with 16-byte loads) and, for each of the
// step's 64 value vec4s, decodes it once per stream and multiplies it by the NT items' x
// (lane_get4), so one decoded weight serves NT items and one x vec4 S·LANES rows.
// Grid: x = ceil(rows / (S·LANES)) (gemm_glu: S/2·LANES), y = item tiles or experts.
//
// The host expands this file for S streams and NT items per tile: lines with `$r` repeat for
// r = 0 .. S (`$p` = max(r, 1) − 1), lines with `$q` for q = 0 .. NT, lines with `$m` for
// m = 0 .. 64 / LANES and lines with `$v` for v = 0 .. 64. Streams, accumulators and step
// bytes are named per stream and item, not arrays (lavapipe keeps arrays in registers only
// when every index is a constant).

var<private> bw_$r: BW;
var<private> acc_$r_$q: f32;

fn item_at(k: u32, e: u32) -> u32 {
    if p.grouped == 1u {
        return groups[p.list_off + k];
    } else if p.grouped == 2u {
        return k * p.slots + e;
    }
    return k;
}

fn x_base(item: u32) -> u32 {
    return p.x_off + (item / p.slots) * p.x_stride + (item % p.slots) * p.x_slot_stride;
}

fn store1(ok: bool, item: u32, row: u32, a: f32) {
    if ok && row < p.rows {
        let yi = p.y_off + item * p.y_stride + p.r0 + row;
        y[yi] = a + select(0.0, y[yi], p.accum != 0u);
    }
}

fn store_glu(ok: bool, item: u32, row: u32, g: f32, u: f32) {
    if ok && row < p.rows {
        y[p.y_off + item * p.y_stride + p.r0 + row] = silu(g) * u;
    }
}

// Value vec4 v of the step: every item's x from the lane that loaded it, times every
// stream's decoded weights.
fn vdot(v: u32, li: u32) {
    let xv_$q = lane_get4($qu, v / LANES, v % LANES, li);
    let wv_$r = blk_v4(&bw_$r, v);
    acc_$r_$q += dot(wv_$r, xv_$q);
}

fn gmb(wg: vec3<u32>, li: u32, glu: bool) {
    let lane = li;
    let rpw = select(S * LANES, (S / 2u) * LANES, glu);
    let rb = wg.x * rpw;
    var e = 0u;
    var beg = wg.y * NT;
    var end = min(beg + NT, p.n_items);
    if p.grouped == 1u {
        e = p.e0 + wg.y;
        beg = wg_uniform(groups[e], li);
        end = wg_uniform(groups[e + 1u], li);
    } else if p.grouped == 2u {
        e = p.e0 + wg.y;
        beg = 0u;
        end = p.n_items / p.slots;
    }
    let nb = p.words / BB;
    let steps = (nb + G - 1u) / G;
    let cols4 = nb * (64u / G);
    let up_$r = glu && ($ru & 1u) == 1u;
    let row_$r = rb + select($ru, $ru / 2u, glu) * LANES + lane;
    let rc_$r = min(row_$r, p.rows - 1u);
    let wr_$r = w_row(e, rc_$r);
    for (var tb = beg; tb < end; tb += NT) {
        let it_$q = item_at(min(tb + $qu, end - 1u), e);
        let xb_$q = x_base(it_$q);
        acc_$r_$q = 0.0;
        for (var st = 0u; st < steps; st++) {
            blk_n = min(G, nb - st * G);
            let xi_$m = st * 64u + lane + LANES * $mu;
            lane_put4($qu, $mu, select(vec4<f32>(0.0), x[xb_$q + xi_$m], xi_$m < cols4), li);
            lane_sync();
            blk_fill(&bw_$r, wr_$r + st * SB, up_$r);
            vdot($vu, li);
            lane_sync();
        }
        if glu { if ($ru & 1u) == 1u { store_glu(tb + $qu < end, it_$q, row_$r, acc_$p_$q, acc_$r_$q); } } else { store1(tb + $qu < end, it_$q, row_$r, acc_$r_$q); }
    }
}

@compute @workgroup_size(LANES)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    gmb(wg, li, false);
}

@compute @workgroup_size(LANES)
fn gemm_glu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    gmb(wg, li, true);
}
