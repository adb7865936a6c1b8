// gqa_attn split: the flash-decoding kernel described in gqa_attn.wgsl. It needs subgroups,
// so it is a separate file, appended to gqa_attn.wgsl only where the adapter has them (a
// module that mentions subgroup operations does not validate on a device without them).

override LANES: u32 = 8u;
// 16-byte words of a head row (head_dim / 4) per lane, rounded up; lanes past the row's end
// hold zeros
override WPL: u32 = 4u;
const WMAX: u32 = 16u;

// A workgroup serves HG query heads × TT query tokens. As in mla_attn_split.wgsl, each state
// is its own set of variables and the arrays are only indexed inside loops of constant trip
// count: lavapipe keeps those in registers, whereas an array indexed by a loop it does not
// unroll (heads × words) becomes per-lane scatter/gather through the stack.
struct Head {
    q: array<vec4<f32>, WMAX>, // this lane's words of q · scale
    o: array<vec4<f32>, WMAX>, // this lane's words of Σ p · V
    m: f32,
    l: f32,
}

fn head_init(h: ptr<function, Head>, t: u32, head: u32, lane: u32) {
    let hw = p.head_dim / 4u;
    let qb = (p.q_off + t * p.q_stride + head * p.head_dim) / 4u;
    for (var j = 0u; j < WPL; j++) {
        let wd = lane + LANES * j;
        (*h).q[j] = select(vec4<f32>(0.0), q4[qb + min(wd, hw - 1u)], wd < hw) * p.scale;
        (*h).o[j] = vec4<f32>(0.0);
    }
    (*h).m = NEG;
    (*h).l = 0.0;
}

// Online softmax step for one key whose K and V words (this lane's) are kw and vw.
fn head_key(h: ptr<function, Head>, kw: ptr<function, array<vec4<f32>, WMAX>>, vw: ptr<function, array<vec4<f32>, WMAX>>) {
    var d = vec4<f32>(0.0);
    for (var j = 0u; j < WPL; j++) {
        d += (*kw)[j] * (*h).q[j];
    }
    let s = subgroupAdd((d.x + d.y) + (d.z + d.w));
    let mn = max((*h).m, s);
    let corr = exp((*h).m - mn);
    let pr = exp(s - mn);
    (*h).l = (*h).l * corr + pr;
    for (var j = 0u; j < WPL; j++) {
        (*h).o[j] = (*h).o[j] * corr + pr * (*vw)[j];
    }
    (*h).m = mn;
}

fn head_write(h: ptr<function, Head>, t: u32, head: u32, split: u32, lane: u32) {
    let hw = p.head_dim / 4u;
    let one = p.n_splits == 1u;
    let ob = select(((t * p.n_splits + split) * p.heads + head) * (p.head_dim + 2u), p.o_off + t * p.o_stride + head * p.head_dim, one);
    let norm = select(1.0, 1.0 / (*h).l, one);
    for (var j = 0u; j < WPL; j++) {
        let wd = lane + LANES * j;
        if wd < hw {
            let v = (*h).o[j] * norm;
            let c = ob + 4u * wd;
            if one {
                out[c] = v.x;
                out[c + 1u] = v.y;
                out[c + 2u] = v.z;
                out[c + 3u] = v.w;
            } else {
                part[c] = v.x;
                part[c + 1u] = v.y;
                part[c + 2u] = v.z;
                part[c + 3u] = v.w;
            }
        }
    }
    if !one && lane == 0u {
        part[ob + p.head_dim] = (*h).m;
        part[ob + p.head_dim + 1u] = (*h).l;
    }
}

// The host expands every line containing `$g` for g = 0 .. HG·TT-1, with `$t` = g / HG (the
// token in the tile) and `$h` = g % HG (the head in the workgroup's part of the group), so
// each state is a named variable. Token t only takes keys s ≤ pos0 + t; heads past the
// group's end (a partial last part) compute a copy of its last head and write nothing.
@compute @workgroup_size(LANES)
fn split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    p = params;
    let t0 = wg.z * TT;
    let t_last = min(t0 + TT, p.n_tok) - 1u;
    let parts = (p.group + HG - 1u) / HG;
    let kvh = wg.y / parts;
    let g0 = (wg.y % parts) * HG;
    let h0 = kvh * p.group + g0;
    let hw = p.head_dim / 4u;
    let row4 = p.kv_heads * hw;
    let kb = kvh * hw;
    let vb = p.ctx * row4 + kb;
    let n_keys = p.pos0 + t_last + 1u;
    let s_begin = wg.x * p.split_len;
    let s_end = min(s_begin + p.split_len, n_keys);
    var st_$g: Head;
    head_init(&st_$g, min(t0 + $tu, t_last), h0 + min($hu, p.group - 1u - g0), lane);
    for (var s = s_begin; s < s_end; s++) {
        var kw: array<vec4<f32>, WMAX>;
        var vw: array<vec4<f32>, WMAX>;
        for (var j = 0u; j < WPL; j++) {
            let wd = lane + LANES * j;
            let w = min(wd, hw - 1u);
            kw[j] = select(vec4<f32>(0.0), cache4[s * row4 + kb + w], wd < hw);
            vw[j] = select(vec4<f32>(0.0), cache4[s * row4 + vb + w], wd < hw);
        }
        if s <= p.pos0 + t0 + $tu { head_key(&st_$g, &kw, &vw); }
    }
    if t0 + $tu <= t_last && g0 + $hu < p.group { head_write(&st_$g, t0 + $tu, h0 + $hu, wg.x, lane); }
}
