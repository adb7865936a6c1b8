// gemm: y[item][r] (+)= Σ_c W_e[r][c] · x[item][c] for many work items (prefill), and
// gemm_glu: y[item][r] = silu(W_gate x)[r] · (W_up x)[r] with the up matrix in w2.
// Word layout and bindings in common/mm_words.wgsl, lane exchange in common/lanes_*.wgsl.
//
// Register tiling without a weight tile: a workgroup is one group of LANES threads; each
// lane streams S rows (gemm: rows rb + r·LANES + l; gemm_glu: S/2 rows of both matrices)
// over tiles of NT items. Per segment of LANES words, lane k loads word k of x for each of
// the NT items and publishes it (lane_put: subgroup registers, or workgroup memory without
// subgroups); then every lane reads its streams' LANES words and multiplies each by the NT
// items' x (lane_get), so one weight word read from memory serves NT items and one x word
// serves S·LANES rows. This is the shape that suits SIMD CPU adapters, where every memory
// access costs a loop over the lanes. PERF: on GPUs the lanes' weight reads are a row apart
// (not coalesced); a shared-memory weight tile would suit them better.
// Items: dense, tile wg.y holds items [NT·wg.y, NT·wg.y + NT); grouped (a routed pool),
// workgroup wg.y walks the items of expert e0 + wg.y listed by moe_group: offsets at
// groups[e] .. groups[e + 1] into the list at groups[list_off ..]; per head (grouped 2),
// expert e's items are e, e + slots, … (token-major items, one expert per slot).
// Grid: x = ceil(rows / (S·LANES)) (gemm_glu: S/2·LANES), y = item tiles or experts.

// The host expands this file for a fixed number of streams S and items per tile NT: every
// line containing `$r` is repeated for r = 0 .. S-1 (then `$p` stands for max(r, 1) - 1),
// and every line containing `$q` for q = 0 .. NT-1. Each stream's weight word and each
// (stream, item) accumulator is a named variable, not an array: lavapipe keeps arrays in
// registers only when NIR fully unrolls the loops that index them.
//
// Streams: gemm, stream r is row rb + r·LANES + lane of w (S·LANES rows per workgroup);
// gemm_glu, streams 2k and 2k + 1 are row rb + k·LANES + lane of w (gate) and w2 (up).

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

fn gm(wg: vec3<u32>, li: u32, glu: bool) {
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
    let up_$r = glu && ($ru & 1u) == 1u;
    let row_$r = rb + select($ru, $ru / 2u, glu) * LANES + lane;
    let rc_$r = min(row_$r, p.rows - 1u);
    let wr_$r = w_row(e, rc_$r);
    for (var tb = beg; tb < end; tb += NT) {
        let it_$q = item_at(min(tb + $qu, end - 1u), e);
        let xb_$q = x_base(it_$q);
        var acc_$r_$q = 0.0;
        for (var s0 = 0u; s0 < p.words; s0 += LANES) {
            lane_put($qu, x_word(xb_$q + (s0 + lane) * (EPW / 4u)), li);
            lane_sync();
            for (var k = 0u; k < LANES; k++) {
                let wd = s0 + k;
                var u_$r: vec4<u32>; var s_$r: f32; if up_$r { u_$r = w2[wr_$r + wd]; s_$r = scale2(e, p.r0 + rc_$r, wd); } else { u_$r = w[wr_$r + wd]; s_$r = scale1(e, p.r0 + rc_$r, wd); }
                let xw_$q = lane_get($qu, k, li);
                acc_$r_$q += w_dot(u_$r, xw_$q) * s_$r;
            }
            lane_sync();
        }
        if glu { if ($ru & 1u) == 1u { store_glu(tb + $qu < end, it_$q, row_$r, acc_$p_$q, acc_$r_$q); } } else { store1(tb + $qu < end, it_$q, row_$r, acc_$r_$q); }
    }
}

@compute @workgroup_size(LANES)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    gm(wg, li, false);
}

@compute @workgroup_size(LANES)
fn gemm_glu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    gm(wg, li, true);
}
