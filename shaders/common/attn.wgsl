// Helpers the attention kernels (mla_attn, gqa_attn) share. The including shader declares
// `p` (with n_splits), `part` and `out` (read_write f32 arrays), and for attend_portable the
// functions key_score(s) and key_value(s, c).

const NEG: f32 = -3.0e38;

// Reductions over the 64 threads of a portable attention workgroup; every thread gets the
// result. Call from uniform control flow.
var<workgroup> red: array<f32, 64>;

fn wg_max64(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st >>= 1u) {
        if li < st {
            red[li] = max(red[li], red[li + st]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn wg_sum64(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st >>= 1u) {
        if li < st {
            red[li] += red[li + st];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

const MAXC: u32 = 16u; // output values per thread of the portable kernel (w ≤ 1024)
var<workgroup> prob: array<f32, 64>;

// The portable kernel's body: the 64 threads of a workgroup attend one query over keys
// 0 .. n_keys in blocks of 64 with an online softmax (a thread scores one key of a block,
// then owns output values li + 64·j) and write the w values to out[ob ..].
// key_score(s) is the scaled score of key s for this workgroup's query, key_value(s, c)
// value c of key s.
fn attend_portable(n_keys: u32, w: u32, ob: u32, li: u32) {
    var acc: array<f32, MAXC>;
    var m = NEG;
    var l = 0.0;
    for (var base = 0u; base < n_keys; base += 64u) {
        let s = base + li;
        var score = NEG;
        if s < n_keys {
            score = key_score(s);
        }
        let new_m = max(m, wg_max64(li, score));
        let pr = select(0.0, exp(score - new_m), s < n_keys);
        prob[li] = pr;
        let block_sum = wg_sum64(li, pr);
        let corr = exp(m - new_m);
        l = l * corr + block_sum;
        m = new_m;
        let nk = min(64u, n_keys - base);
        for (var j = 0u; j < MAXC; j++) {
            let c = li + 64u * j;
            if c < w {
                var a = acc[j] * corr;
                for (var k = 0u; k < nk; k++) {
                    a += prob[k] * key_value(base + k, c);
                }
                acc[j] = a;
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < MAXC; j++) {
        let c = li + 64u * j;
        if c < w {
            out[ob + c] = acc[j] / l;
        }
    }
}

// The combine pass of flash-decoding for one (token, head): split s's partial result is w
// unnormalised sums then its running max and sum, at part[b0 + s·stride ..]; the merged,
// normalised w values go to out[ob ..]. 64 threads.
fn combine_splits(b0: u32, stride: u32, w: u32, ob: u32, li: u32) {
    var mx = NEG;
    for (var s = 0u; s < p.n_splits; s++) {
        mx = max(mx, part[b0 + s * stride + w]);
    }
    var total = 0.0;
    for (var s = 0u; s < p.n_splits; s++) {
        let b = b0 + s * stride;
        total += part[b + w + 1u] * exp(part[b + w] - mx);
    }
    for (var c = li; c < w; c += 64u) {
        var acc = 0.0;
        for (var s = 0u; s < p.n_splits; s++) {
            let b = b0 + s * stride;
            acc += part[b + c] * exp(part[b + w] - mx);
        }
        out[ob + c] = acc / total;
    }
}
