// matvec over GGUF's block formats (decode): y[item][r] (+)= Σ_c W_e[r][c] · x[item][c] and
// matvec_glu, as matvec.wgsl computes them for the float formats (items, experts, offsets,
// accumulation and bindings as there; the block decode in common/blocks_words.wgsl).
//
// A lane owns whole steps (256 values: 8 blocks of 32, or one K-quant block): it loads a
// step's bytes once with 16-byte loads, decodes them and multiplies them by x. SPL lanes
// share a row (lane l takes steps l % SPL, l % SPL + SPL, …, J of them per segment) and a
// group of LANES lanes works on LANES / SPL rows at once, so that rows of few steps (hidden
// 1024 is 4 K-quant steps) still occupy every lane. With XREG (CPU adapters) a segment's x
// values are loaded into registers once per workgroup and reused by every row it walks; x is
// 4 bytes a value against 0.5–1 byte of weights, so reloading it per row would cost more
// than the weights. Without XREG (GPUs) x is read where it is used (it stays in cache).
// Grid: x = ceil(rows / rpw), y = items. Workgroup: LANES · NSG threads.
//
// The host expands lines with `$j` for j = 0 .. J (steps per lane per segment, a constant J
// it declares) and lines with `$v` for v = 0 .. 64 (the value vec4s of a step).

override NSG: u32 = 1u;
override XREG: bool = true;
// lanes that share a row: a power of two up to LANES
override SPL: u32 = 8u;

var<private> bw: BW;
// x of the lane's step j of the segment (XREG)
var<private> xr_$j: array<vec4<f32>, 64>;
// the row's partial sums (gate; up for GLU)
var<private> acc_a: vec4<f32>;
var<private> acc_b: vec4<f32>;

// x vec4 i (of the item's row starting at vec4 xb), 0 past the row's `cols4` vec4s.
fn x_at(xb: u32, i: u32, cols4: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), x[xb + i], i < cols4);
}

fn x_step(xr: ptr<private, array<vec4<f32>, 64>>, xb: u32, st: u32, cols4: u32) {
    (*xr)[$vu] = x_at(xb, st * 64u + $vu, cols4);
}

// Value vec4 v of the step in bw times x, into acc_b (up) or acc_a.
fn vdot(xr: ptr<private, array<vec4<f32>, 64>>, xb: u32, st: u32, cols4: u32, v: u32, up: bool) {
    var xv: vec4<f32>;
    if XREG {
        xv = (*xr)[v];
    } else {
        xv = x_at(xb, st * 64u + v, cols4);
    }
    if up {
        acc_b += blk_v4(&bw, v) * xv;
    } else {
        acc_a += blk_v4(&bw, v) * xv;
    }
}

// Step st of the row whose bytes start at rowb (w2 when `up`).
fn step_dot(xr: ptr<private, array<vec4<f32>, 64>>, xb: u32, st: u32, cols4: u32, rowb: u32, up: bool) {
    blk_fill(&bw, rowb + st * SB, up);
    vdot(xr, xb, st, cols4, $vu, up);
}

fn mvb(wg: vec3<u32>, li: u32, glu: bool) {
    let item = wg.y;
    let lane = li % LANES;
    let grp = li / LANES;
    let e = wg_uniform(item_expert(item), li);
    if e < p.e0 || e >= p.e1 {
        return;
    }
    let nb = p.words / BB;
    let steps = (nb + G - 1u) / G;
    let cols4 = nb * (64u / G);
    let xb = p.x_off + (item / p.slots) * p.x_stride + (item % p.slots) * p.x_slot_stride;
    let sub = lane % SPL;
    let rp = LANES / SPL;
    let rb = wg.x * p.rpw;
    let nr = min(p.rpw, p.rows - rb);
    let yb = p.y_off + item * p.y_stride + p.r0 + rb;
    for (var s0 = 0u; s0 < steps; s0 += SPL * J) {
        let st_$j = s0 + sub + SPL * $ju;
        let ok_$j = st_$j < steps;
        if XREG && ok_$j { x_step(&xr_$j, xb, st_$j, cols4); }
        let keep = s0 > 0u || p.accum != 0u;
        for (var i0 = 0u; i0 < nr; i0 += NSG * rp) {
            let iu = i0 + grp * rp + lane / SPL;
            let i = min(iu, nr - 1u);
            let rowb = w_row(e, rb + i);
            acc_a = vec4<f32>(0.0);
            acc_b = vec4<f32>(0.0);
            if ok_$j { blk_n = min(G, nb - st_$j * G); step_dot(&xr_$j, xb, st_$j, cols4, rowb, false); if glu { step_dot(&xr_$j, xb, st_$j, cols4, rowb, true); } }
            var v = lane_sum_n(hsum(acc_a), SPL, li);
            if glu {
                v = silu(v) * lane_sum_n(hsum(acc_b), SPL, li);
            }
            if sub == 0u && iu < nr {
                let yi = yb + i;
                y[yi] = select(0.0, y[yi], keep) + v;
            }
        }
    }
}

@compute @workgroup_size(LANES * NSG)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    mvb(wg, li, false);
}

@compute @workgroup_size(LANES * NSG)
fn matvec_glu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    mvb(wg, li, true);
}
