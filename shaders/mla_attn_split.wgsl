// mla_attn split: the flash-decoding kernel described in mla_attn.wgsl. It needs subgroups,
// so it is a separate file, appended to mla_attn.wgsl only where the adapter has them (a
// module that mentions subgroup operations does not validate on a device without them).

override LANES: u32 = 8u;
// 16-byte words of a cache row (kvl + rope) per lane, rounded up
override WPL: u32 = 5u;
// 16-byte words of c_kv per lane (kvl / 4 is a multiple of LANES)
override VPL: u32 = 4u;
const WMAX: u32 = 24u;

// A workgroup serves HG = 4 heads. Each head's state is its own set of variables, and the
// arrays are only indexed inside loops of constant trip count: lavapipe keeps those in
// registers, whereas an array indexed by a loop it does not unroll (heads × words) becomes
// per-lane scatter/gather through the stack, many times slower.
struct Head {
    q: array<vec4<f32>, WMAX>, // this lane's words of (q_lat ‖ q_pe) · scale
    o: array<vec4<f32>, WMAX>, // this lane's words of Σ p · c_kv
    m: f32,
    l: f32,
}

fn head_init(h: ptr<function, Head>, t: u32, head: u32, lane: u32) {
    let hh = min(head, p.heads - 1u);
    let kw_n = p.kvl / 4u;
    let cw_n = (p.kvl + p.rope) / 4u;
    for (var j = 0u; j < WPL; j++) {
        let wd = lane + LANES * j;
        var v = vec4<f32>(0.0);
        if wd < kw_n {
            v = q_lat4[(t * p.heads + hh) * kw_n + wd];
        } else if wd < cw_n {
            v = q_pe_word(q4[(t * p.q_stride + hh * p.qk + p.nope) / 4u + wd - kw_n], t, wd - kw_n);
        }
        (*h).q[j] = v * p.scale;
    }
    for (var j = 0u; j < VPL; j++) {
        (*h).o[j] = vec4<f32>(0.0);
    }
    (*h).m = NEG;
    (*h).l = 0.0;
}

// Online softmax step for one key whose row words (this lane's) are kw.
fn head_key(h: ptr<function, Head>, kw: ptr<function, array<vec4<f32>, WMAX>>) {
    var d = vec4<f32>(0.0);
    for (var j = 0u; j < WPL; j++) {
        d += (*kw)[j] * (*h).q[j];
    }
    let s = subgroupAdd((d.x + d.y) + (d.z + d.w));
    let mn = max((*h).m, s);
    let corr = exp((*h).m - mn);
    let pr = exp(s - mn);
    (*h).l = (*h).l * corr + pr;
    for (var j = 0u; j < VPL; j++) {
        (*h).o[j] = (*h).o[j] * corr + pr * (*kw)[j];
    }
    (*h).m = mn;
}

fn head_write(h: ptr<function, Head>, t: u32, head: u32, split: u32, lane: u32) {
    if head >= p.heads {
        return;
    }
    if p.n_splits == 1u {
        let ob = (t * p.heads + head) * p.kvl;
        for (var j = 0u; j < VPL; j++) {
            let v = (*h).o[j] / (*h).l;
            let c = 4u * (lane + LANES * j);
            out[ob + c] = v.x;
            out[ob + c + 1u] = v.y;
            out[ob + c + 2u] = v.z;
            out[ob + c + 3u] = v.w;
        }
    } else {
        let pb = ((t * p.n_splits + split) * p.heads + head) * (p.kvl + 2u);
        for (var j = 0u; j < VPL; j++) {
            let v = (*h).o[j];
            let c = 4u * (lane + LANES * j);
            part[pb + c] = v.x;
            part[pb + c + 1u] = v.y;
            part[pb + c + 2u] = v.z;
            part[pb + c + 3u] = v.w;
        }
        if lane == 0u {
            part[pb + p.kvl] = (*h).m;
            part[pb + p.kvl + 1u] = (*h).l;
        }
    }
}

// A workgroup serves TT query tokens × 4 heads: every cache row it loads is scored by all of
// them (a prefill's tokens share their keys; token t only takes keys s ≤ pos0 + t). The host
// expands every line containing `$g` for g = 0 .. 4·TT-1, with `$t` = g / 4 (the token in
// the tile) and `$h` = g % 4 (the head in the group), so each state is a named variable.
@compute @workgroup_size(LANES)
fn split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    p = params;
    let t0 = wg.z * TT;
    let t_last = min(t0 + TT, p.n_tok) - 1u;
    let h0 = wg.y * 4u;
    let cw_n = (p.kvl + p.rope) / 4u;
    let n_keys = p.pos0 + t_last + 1u;
    let s_begin = wg.x * p.split_len;
    let s_end = min(s_begin + p.split_len, n_keys);
    var st_$g: Head;
    head_init(&st_$g, min(t0 + $tu, t_last), h0 + $hu, lane);
    for (var s = s_begin; s < s_end; s++) {
        var kw: array<vec4<f32>, WMAX>;
        for (var j = 0u; j < WPL; j++) {
            let wd = lane + LANES * j;
            kw[j] = select(vec4<f32>(0.0), cache4[s * cw_n + min(wd, cw_n - 1u)], wd < cw_n);
        }
        if s <= p.pos0 + t0 + $tu { head_key(&st_$g, &kw); }
    }
    if t0 + $tu <= t_last { head_write(&st_$g, t0 + $tu, h0 + $hu, wg.x, lane); }
}
