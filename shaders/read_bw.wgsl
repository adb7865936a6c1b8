// read_bw: stream a buffer once with 16-byte loads, the benchmark's memory-bandwidth probe
// (the roofline of a discrete GPU). The XOR of everything read decides a store that never
// happens in practice, so the loads cannot be optimised away.
// Layout: src = [n] vec4<u32>; out = [1] u32.
// Grid: x = workgroups (any); 256 threads, each strides over the buffer.

struct Params {
    n: u32,
    magic: u32,
    _pad0: u32,
    _pad1: u32,
}

// Params come from a storage binding, copied into `p` first thing: lavapipe 22.3 inlines
// uniform values that steer loops and can then recompile the kernel on every dispatch,
// never freeing the copies (see common/mm_words.wgsl).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    p = params;
    let stride = nwg.x * 256u;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < p.n; i += stride) {
        acc ^= src[i];
    }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == p.magic {
        out[0] = gid.x;
    }
}
