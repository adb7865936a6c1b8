// gemm: y[item][r] (+)= Σ_c W_e[r][c] · x[item][c] for many work items (prefill), and
// gemm_glu: y[item][r] = silu(W_gate x)[r] · (W_up x)[r] with the up matrix in w2.
// Word layout and bindings in common/mm_words.wgsl, lane exchange in common/lanes_*.wgsl.
//
// Register tiling without a weight tile: a workgroup is one group of LANES threads that owns
// 2·LANES rows (gemm: lane l rows rb + l and rb + LANES + l) or LANES rows (gemm_glu: row
// rb + l of both matrices), and walks tiles of NT items. Per segment of LANES words, lane k
// loads word k of x for each of the NT items and publishes it (lane_put: subgroup registers,
// or workgroup memory without subgroups); then every lane streams its rows' LANES words and
// multiplies each by the NT items' x (lane_get), so one weight word read from memory serves
// NT items and one x word serves 2·LANES rows. This is the shape that suits SIMD CPU
// adapters, where every memory access costs per lane. PERF: on GPUs the lanes' weight reads
// are a row apart (not coalesced); a shared-memory weight tile would suit them better.
// Items: dense, tile wg.y holds items [NT·wg.y, NT·wg.y + NT); grouped (a routed pool),
// workgroup wg.y walks the items of expert e0 + wg.y listed by moe_group: offsets at
// groups[e] .. groups[e + 1] into the list at groups[list_off ..]; per head (grouped 2),
// expert e's items are e, e + slots, … (token-major items, one expert per slot).
// Grid: x = ceil(rows / (2·LANES)) (gemm_glu: rows / LANES), y = item tiles or experts.

override NT: u32 = 8u;

fn gm(wg: vec3<u32>, li: u32, glu: bool) {
    let lane = li;
    let rpw = select(2u * LANES, LANES, glu);
    let rb = wg.x * rpw;
    let ra = min(rb + lane, p.rows - 1u);
    let rc = min(rb + LANES + lane, p.rows - 1u);
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
    let wa = w_row(e, ra);
    let wc = w_row(e, rc);
    for (var tb = beg; tb < end; tb += NT) {
        var items: array<u32, NT_MAX>;
        var xbase: array<u32, NT_MAX>;
        for (var q = 0u; q < NT; q++) {
            let k = min(tb + q, end - 1u);
            var item = k;
            if p.grouped == 1u {
                item = groups[p.list_off + k];
            } else if p.grouped == 2u {
                item = k * p.slots + e;
            }
            items[q] = item;
            xbase[q] = p.x_off + (item / p.slots) * p.x_stride + (item % p.slots) * p.x_slot_stride;
        }
        var acc_a: array<f32, NT_MAX>;
        var acc_c: array<f32, NT_MAX>;
        for (var s0 = 0u; s0 < p.words; s0 += LANES) {
            for (var q = 0u; q < NT; q++) {
                lane_put(q, x_word(xbase[q] + (s0 + lane) * (EPW / 4u)), li);
            }
            lane_sync();
            for (var k = 0u; k < LANES; k++) {
                let wd = s0 + k;
                let ua = w[wa + wd];
                let sa = scale1(e, p.r0 + ra, wd);
                var uc: vec4<u32>;
                var sc: f32;
                if glu {
                    uc = w2[wa + wd];
                    sc = scale2(e, p.r0 + ra, wd);
                } else {
                    uc = w[wc + wd];
                    sc = scale1(e, p.r0 + rc, wd);
                }
                for (var q = 0u; q < NT; q++) {
                    let xw = lane_get(q, k, li);
                    acc_a[q] += w_dot(ua, xw) * sa;
                    acc_c[q] += w_dot(uc, xw) * sc;
                }
            }
            lane_sync();
        }
        for (var q = 0u; q < NT; q++) {
            if tb + q < end {
                let yb = p.y_off + items[q] * p.y_stride + p.r0;
                if glu {
                    if rb + lane < p.rows {
                        y[yb + ra] = silu(acc_a[q]) * acc_c[q];
                    }
                } else {
                    if rb + lane < p.rows {
                        y[yb + ra] = acc_a[q] + select(0.0, y[yb + ra], p.accum != 0u);
                    }
                    if rb + LANES + lane < p.rows {
                        y[yb + rc] = acc_c[q] + select(0.0, y[yb + rc], p.accum != 0u);
                    }
                }
            }
        }
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
