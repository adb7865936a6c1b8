// matmul: y[item][r] (+)= Σ_c W_e[r][c] · x[item][c] for every (token, slot) work item.
//
// One kernel serves dense projections (one matrix, `use_ids` = 0) and routed experts
// (a pool of E stacked matrices; the matrix of item (t, s) is ids[t·slots + s], read on
// the GPU, so routing never comes back to the CPU). Big tensors are split into chunks that
// fit one storage binding; one dispatch handles one chunk, which holds rows [r0, r0+rows)
// of experts [e0, e1). Items whose expert lies outside the chunk return at once.
//
// Layout: w = chunk of the weights, packed per WDT (common/weights.wgsl), row-major
//   [(e - e0)][rows][cols]; wscale = f32 block scales [E][s_rows][s_cols] for FP8 (the
//   weight is w · wscale[e][r / blk_r][c / blk_c]); x = f32 activations; y = f32 output,
//   row r of item i at y[y_off + i·y_stride + r].
// Grid: x = ceil(rows / 4) row blocks, y = items. 64 threads: 4 rows × 16 lanes.

struct Params {
    rows: u32,
    cols: u32,
    r0: u32,
    e0: u32,
    e1: u32,
    n_items: u32,
    slots: u32,
    use_ids: u32,
    x_off: u32,
    x_stride: u32,
    x_slot_stride: u32,
    y_off: u32,
    y_stride: u32,
    accum: u32,
    s_rows: u32,
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    _pad0: u32,
    _pad1: u32,
}

// Params are read from a storage buffer into a private copy, not bound as a uniform:
// lavapipe (Mesa 22.3) inlines uniforms that steer loops into a fresh compile of the shader,
// and when the first dispatch's values shrink it enough (e.g. 16 columns) it recompiles on
// every later dispatch and keeps every copy.
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wscale: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

override WDT: u32 = 0u;

const LANES: u32 = 16u;
var<workgroup> partial: array<f32, 64>;
var<workgroup> sh_e: u32;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    p = params;
    let item = wg.y;
    let lr = wg.x * 4u + li / LANES;
    let lane = li % LANES;
    let t = item / p.slots;
    let s = item % p.slots;
    if li == 0u {
        sh_e = select(0u, ids[min(item, p.n_items - 1u)], p.use_ids != 0u);
    }
    // workgroupUniformLoad makes the expert provably uniform, so the early return below
    // leaves the whole workgroup together.
    let e = workgroupUniformLoad(&sh_e);
    if item >= p.n_items || e < p.e0 || e >= p.e1 {
        return;
    }
    var acc = 0.0;
    if lr < p.rows {
        let wbase = ((e - p.e0) * p.rows + lr) * p.cols;
        let xbase = p.x_off + t * p.x_stride + s * p.x_slot_stride;
        if WDT == 3u {
            let srow = (e * p.s_rows + (p.r0 + lr) / p.blk_r) * p.s_cols;
            for (var c = lane; c < p.cols; c += LANES) {
                acc += w_raw(wbase + c) * wscale[srow + c / p.blk_c] * x[xbase + c];
            }
        } else {
            for (var c = lane; c < p.cols; c += LANES) {
                acc += w_raw(wbase + c) * x[xbase + c];
            }
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var step = LANES / 2u; step > 0u; step >>= 1u) {
        if lane < step {
            partial[li] += partial[li + step];
        }
        workgroupBarrier();
    }
    if lane == 0u && lr < p.rows {
        let yi = p.y_off + item * p.y_stride + p.r0 + lr;
        var v = partial[li];
        if p.accum != 0u {
            v += y[yi];
        }
        y[yi] = v;
    }
}
