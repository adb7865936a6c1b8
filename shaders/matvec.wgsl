// matvec: y[item][r] (+)= Σ_c W_e[r][c] · x[item][c] for a few work items (decode), and
// matvec_glu: y[item][r] = silu(W_gate x)[r] · (W_up x)[r] with the up matrix in w2.
// Items, experts (ids, chunks [e0, e1)), offsets and accumulation as in matmul.wgsl; the
// word layout and bindings are in common/mm_words.wgsl, the lane exchange in
// common/lanes_*.wgsl.
//
// A group of LANES threads shares a row: lane l reads words l, l + LANES, … (adjacent lanes,
// adjacent 16 bytes), and lane_sum adds the lanes up. A workgroup of NSG groups walks rpw
// rows. With XREG the row is covered in segments of J·LANES words: a segment's x words are
// loaded into registers once and reused by every row of the workgroup (on a SIMD CPU adapter
// such as lavapipe every load costs per lane, so x must not be reloaded per row); later
// segments add into y. Without XREG (GPUs) x is read per word (it stays in cache) and there
// is one segment. GLU needs a single segment (host-checked).
// Grid: x = ceil(rows / rpw), y = items. Workgroup: LANES · NSG threads.

override NSG: u32 = 1u;
override XREG: bool = true;
override J: u32 = 16u;
const JMAX: u32 = 16u;

fn mv(wg: vec3<u32>, li: u32, glu: bool) {
    let item = wg.y;
    let lane = li % LANES;
    let grp = li / LANES;
    let e = wg_uniform(item_expert(item), li);
    if e < p.e0 || e >= p.e1 {
        return;
    }
    let xb = p.x_off + (item / p.slots) * p.x_stride + (item % p.slots) * p.x_slot_stride;
    let rb = wg.x * p.rpw;
    let nr = min(p.rpw, p.rows - rb);
    let wrow0 = w_row(e, rb) + lane;
    let yb = p.y_off + item * p.y_stride + p.r0 + rb;
    let seg = select(p.words, LANES * J, XREG);
    let jn = select(p.words / LANES, J, XREG);
    var xr: array<XW, JMAX>;
    for (var s0 = 0u; s0 < p.words; s0 += seg) {
        if XREG {
            for (var j = 0u; j < J; j++) {
                xr[j] = x_word(xb + (s0 + lane + LANES * j) * (EPW / 4u));
            }
        }
        let keep = s0 > 0u || p.accum != 0u;
        for (var i0 = 0u; i0 < nr; i0 += NSG) {
            let i = min(i0 + grp, nr - 1u);
            let r = p.r0 + rb + i;
            let wr = wrow0 + i * p.words + s0;
            var a = vec4<f32>(0.0);
            var b = vec4<f32>(0.0);
            for (var j = 0u; j < jn; j++) {
                var xw: XW;
                if XREG {
                    xw = xr[j];
                } else {
                    xw = x_word(xb + (s0 + lane + LANES * j) * (EPW / 4u));
                }
                let wd = s0 + lane + LANES * j;
                a += w_dot4(w[wr + LANES * j], xw) * scale1(e, r, wd);
                if glu {
                    b += w_dot4(w2[wr + LANES * j], xw) * scale2(e, r, wd);
                }
            }
            var v = lane_sum(hsum(a), li);
            if glu {
                v = silu(v) * lane_sum(hsum(b), li);
            }
            if lane == 0u && i0 + grp < nr {
                let yi = yb + i;
                y[yi] = select(0.0, y[yi], keep) + v;
            }
        }
    }
}

@compute @workgroup_size(LANES * NSG)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    mv(wg, li, false);
}

@compute @workgroup_size(LANES * NSG)
fn matvec_glu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    mv(wg, li, true);
}
