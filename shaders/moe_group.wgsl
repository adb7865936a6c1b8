// moe_group: the work items (token · K + slot) routed to each expert, listed expert by
// expert, so that gemm can run each expert's items as one batch (prefill).
// Layout: ids [n_items] u32 (expert of each item, from moe_gate); out [n_exp + 1] offsets,
//   then the list [n_items] (expert e's items at list[off[e] .. off[e + 1]]), then scratch
//   [n_items]. Order within an expert is arbitrary; every item's result is computed alone,
//   so it does not depend on the order.
// Grid: one workgroup of 256 threads; n_exp ≤ 1024.

struct Params {
    n_items: u32,
    n_exp: u32,
    _pad0: u32,
    _pad1: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> cnt: array<atomic<u32>, 1024>;
var<workgroup> off: array<u32, 1025>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
    p = params;
    for (var e = li; e < p.n_exp; e += 256u) {
        atomicStore(&cnt[e], 0u);
    }
    workgroupBarrier();
    let scratch = p.n_exp + 1u + p.n_items;
    for (var i = li; i < p.n_items; i += 256u) {
        out[scratch + i] = atomicAdd(&cnt[ids[i]], 1u);
    }
    workgroupBarrier();
    if li == 0u {
        var acc = 0u;
        for (var e = 0u; e < p.n_exp; e++) {
            off[e] = acc;
            out[e] = acc;
            acc += atomicLoad(&cnt[e]);
        }
        off[p.n_exp] = acc;
        out[p.n_exp] = acc;
    }
    workgroupBarrier();
    for (var i = li; i < p.n_items; i += 256u) {
        out[p.n_exp + 1u + off[ids[i]] + out[scratch + i]] = i;
    }
}
