// swiglu: gate[i] = silu(gate[i]) · up[i], in place over n values.
// Grid: x = ceil(n / 64) (2-D split when n exceeds one dimension: i = y·gx·64 + x).

struct Params {
    n: u32,
    gx: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * p.gx * 64u + gid.x;
    if i >= p.n {
        return;
    }
    let g = gate[i];
    gate[i] = g / (1.0 + exp(-g)) * up[i];
}
