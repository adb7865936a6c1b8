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
// With norm_eps > 0, x is RMSNorm's input and the kernel computes W · RMSNorm(x) itself
// (one dispatch of the norm fewer): each group of lanes first sums x² over the row, every x
// word is multiplied by the norm weight nw as it is loaded, and each row's sum by 1/rms.
// Grid: x = ceil(rows / rpw), y = items. Workgroup: LANES · NSG threads.

@group(0) @binding(12) var<storage, read> nw: array<vec4<f32>>;

override NSG: u32 = 1u;
override XREG: bool = true;
override J: u32 = 16u;
const JMAX: u32 = 16u;

// The norm weight's values of the word whose first element is element 4·c4 of the row
// (laid out as x_word lays out x).
fn g_word(c4: u32) -> XW {
    let z = vec4<f32>(0.0);
    switch WDT {
        case 0u: {
            return XW(nw[c4], z, z, z);
        }
        case 3u: {
            let a = nw[c4];
            let b = nw[c4 + 1u];
            let c = nw[c4 + 2u];
            let d = nw[c4 + 3u];
            return XW(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y), vec4<f32>(a.z, b.z, c.z, d.z), vec4<f32>(a.w, b.w, c.w, d.w));
        }
        default: {
            let a = nw[c4];
            let b = nw[c4 + 1u];
            return XW(vec4<f32>(a.x, a.z, b.x, b.z), vec4<f32>(a.y, a.w, b.y, b.w), z, z);
        }
    }
}

// x word at vec4 index xb + c4, times the norm weight when the norm is folded.
fn x_word_n(xb: u32, c4: u32) -> XW {
    let v = x_word(xb + c4);
    if p.norm_eps <= 0.0 {
        return v;
    }
    let g = g_word(c4);
    return XW(v.a * g.a, v.b * g.b, v.c * g.c, v.d * g.d);
}

// 1 / rms of the item's x row of n4 vec4s starting at vec4 xb (every lane of the group gets it).
fn inv_rms(xb: u32, n4: u32, lane: u32, li: u32) -> f32 {
    var ss = 0.0;
    for (var i = lane; i < n4; i += LANES) {
        let v = x[xb + i];
        ss += dot(v, v);
    }
    return inverseSqrt(lane_sum(ss, li) / f32(4u * n4) + p.norm_eps);
}

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
    var ns = 1.0;
    if p.norm_eps > 0.0 {
        ns = inv_rms(xb, p.words * (EPW / 4u), lane, li);
    }
    var xr: array<XW, JMAX>;
    for (var s0 = 0u; s0 < p.words; s0 += seg) {
        if XREG {
            for (var j = 0u; j < J; j++) {
                xr[j] = x_word_n(xb, (s0 + lane + LANES * j) * (EPW / 4u));
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
                    xw = x_word_n(xb, (s0 + lane + LANES * j) * (EPW / 4u));
                }
                let wd = s0 + lane + LANES * j;
                a += w_dot4(w[wr + LANES * j], xw) * scale1(e, r, wd);
                if glu {
                    b += w_dot4(w2[wr + LANES * j], xw) * scale2(e, r, wd);
                }
            }
            var v = lane_sum(hsum(a), li) * ns;
            if glu {
                v = silu(v) * (lane_sum(hsum(b), li) * ns);
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
