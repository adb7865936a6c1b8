// sample: choose the next token on the GPU from one row of logits, so only the chosen id
// (not the vocabulary) comes back to the CPU. First the grammar's token mask (constrained
// decoding: bit i of mask[i / 32] clear → logit i = -inf, when `masked` is set), then
// transformers' order of processors:
//   repetition penalty (l > 0 ? l / r : l · r, over the unique ids in `pen`), then
//   temperature 0 → argmax (lowest index on ties), else l / T, then
//   top-k (keep values ≥ the k-th largest), top-p (keep token i iff the probability mass
//   of the tokens above it is < p), min-p (keep p_i ≥ min_p · p_max), then draw with the
//   host's uniform `u` by inverse CDF over the survivors in index order.
// Thresholds are found by bisection over the order-preserving u32 keys of the f32 values,
// so they are exact values of the logits.
// Masked tokens never survive the thresholds (they are below the lowest finite key), so
// neither the draw nor the argmax can pick one while any token is allowed.
// Layout: logits [l_off ..][vocab] (mask and penalty applied in place), pen [n_pen] u32,
//   mask [ceil(vocab / 32)] u32, out[out_off ..]:
//   (token id, threshold key, survivor count, 0).
// Grid: one workgroup of 256 threads.

struct Params {
    vocab: u32,
    n_pen: u32,
    top_k: u32,
    out_off: u32,
    temperature: f32,
    top_p: f32,
    min_p: f32,
    penalty: f32,
    u: f32,
    l_off: u32,
    masked: u32,
    _pad2: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> pen: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;

const WG: u32 = 256u;
var<workgroup> red_f: array<f32, 256>;
var<workgroup> red_u: array<u32, 256>;

fn key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn val(i: u32) -> f32 {
    return logits[p.l_off + i] / p.temperature;
}

fn sum_f(li: u32, v: f32) -> f32 {
    red_f[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if li < s {
            red_f[li] += red_f[li + s];
        }
        workgroupBarrier();
    }
    let r = red_f[0];
    workgroupBarrier();
    return r;
}

fn max_f(li: u32, v: f32) -> f32 {
    red_f[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if li < s {
            red_f[li] = max(red_f[li], red_f[li + s]);
        }
        workgroupBarrier();
    }
    let r = red_f[0];
    workgroupBarrier();
    return r;
}

fn sum_u(li: u32, v: u32) -> u32 {
    red_u[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if li < s {
            red_u[li] += red_u[li + s];
        }
        workgroupBarrier();
    }
    let r = red_u[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    p = params;
    if p.masked != 0u {
        for (var i = li; i < p.vocab; i += WG) {
            if (mask[i / 32u] & (1u << (i % 32u))) == 0u {
                logits[p.l_off + i] = bitcast<f32>(0xff800000u); // -inf
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
    if p.penalty != 1.0 {
        for (var i = li; i < p.n_pen; i += WG) {
            let id = pen[i];
            if id < p.vocab {
                let l = logits[p.l_off + id];
                logits[p.l_off + id] = select(l * p.penalty, l / p.penalty, l > 0.0);
            }
        }
        storageBarrier();
        workgroupBarrier();
    }

    if p.temperature <= 0.0 {
        // Greedy: largest value, lowest index on ties.
        var bv = -3.4e38;
        var bi = 0xffffffffu;
        for (var i = li; i < p.vocab; i += WG) {
            let v = logits[p.l_off + i];
            if v > bv || (v == bv && i < bi) {
                bv = v;
                bi = i;
            }
        }
        red_f[li] = bv;
        red_u[li] = bi;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if li < s {
                let ov = red_f[li + s];
                let oi = red_u[li + s];
                if ov > red_f[li] || (ov == red_f[li] && oi < red_u[li]) {
                    red_f[li] = ov;
                    red_u[li] = oi;
                }
            }
            workgroupBarrier();
        }
        if li == 0u {
            out[p.out_off] = red_u[0];
            out[p.out_off + 1u] = key(red_f[0]);
            out[p.out_off + 2u] = 1u;
            out[p.out_off + 3u] = 0u;
        }
        return;
    }

    var m = -3.4e38;
    for (var i = li; i < p.vocab; i += WG) {
        m = max(m, val(i));
    }
    m = max_f(li, m);
    // keep keys ≥ theta; the floor drops -inf (masked tokens)
    var theta = key(-3.4e38);

    if p.top_k > 0u && p.top_k < p.vocab {
        // Largest key K with count(key ≥ K) ≥ k: the k-th largest value.
        var lo = 0u;
        var hi = 0xffffffffu;
        for (var it = 0u; it < 32u; it++) {
            let d = hi - lo;
            let mid = lo + d / 2u + (d & 1u); // ceil, without overflow
            var c = 0u;
            for (var i = li; i < p.vocab; i += WG) {
                c += u32(key(val(i)) >= mid);
            }
            if sum_u(li, c) >= p.top_k {
                lo = mid;
            } else {
                hi = mid - 1u;
            }
            if lo == hi {
                break;
            }
        }
        theta = max(theta, lo);
    }

    if p.top_p < 1.0 {
        var z = 0.0;
        for (var i = li; i < p.vocab; i += WG) {
            let v = val(i);
            if key(v) >= theta {
                z += exp(v - m);
            }
        }
        let goal = p.top_p * sum_f(li, z);
        // Smallest K with mass(key > K) < goal.
        var lo = theta;
        var hi = 0xffffffffu;
        for (var it = 0u; it < 32u; it++) {
            let mid = lo + (hi - lo) / 2u;
            var a = 0.0;
            for (var i = li; i < p.vocab; i += WG) {
                let v = val(i);
                let kv = key(v);
                if kv >= theta && kv > mid {
                    a += exp(v - m);
                }
            }
            if sum_f(li, a) < goal {
                hi = mid;
            } else {
                lo = mid + 1u;
            }
            if lo >= hi {
                break;
            }
        }
        theta = max(theta, hi);
    }

    if p.min_p > 0.0 {
        theta = max(theta, key(m + log(p.min_p)));
    }

    // Inverse CDF over survivors: each thread owns a contiguous block of indices.
    let block = (p.vocab + WG - 1u) / WG;
    let b0 = li * block;
    let b1 = min(b0 + block, p.vocab);
    var part = 0.0;
    var count = 0u;
    for (var i = b0; i < b1; i++) {
        let v = val(i);
        if key(v) >= theta {
            part += exp(v - m);
            count += 1u;
        }
    }
    red_f[li] = part;
    let survivors = sum_u(li, count);
    workgroupBarrier();
    if li == 0u {
        var total = 0.0;
        for (var t = 0u; t < WG; t++) {
            total += red_f[t];
        }
        let goal = p.u * total;
        var acc = 0.0;
        var chosen = 0xffffffffu;
        var last_block = 0u;
        for (var t = 0u; t < WG && chosen == 0xffffffffu; t++) {
            if red_f[t] > 0.0 {
                last_block = t;
                if acc + red_f[t] > goal {
                    var a2 = acc;
                    let e = min(t * block + block, p.vocab);
                    for (var i = t * block; i < e; i++) {
                        let v = val(i);
                        if key(v) >= theta {
                            a2 += exp(v - m);
                            chosen = i;
                            if a2 > goal {
                                break;
                            }
                        }
                    }
                }
                acc += red_f[t];
            }
        }
        if chosen == 0xffffffffu {
            // Rounding put the goal past the total: take the last survivor.
            let e = min(last_block * block + block, p.vocab);
            for (var i = last_block * block; i < e; i++) {
                if key(val(i)) >= theta {
                    chosen = i;
                }
            }
        }
        out[p.out_off] = chosen;
        out[p.out_off + 1u] = theta;
        out[p.out_off + 2u] = survivors;
        out[p.out_off + 3u] = 0u;
    }
}
