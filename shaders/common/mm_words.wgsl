// Shared by matvec.wgsl and gemm.wgsl (and their block-format twins matvec_blocks.wgsl and
// gemm_blocks.wgsl, which decode with common/blocks_words.wgsl instead): their params,
// bindings, and the 16-byte weight word (decoded by formats.wgsl, which the host puts before
// this file).
//
// A row of packed weights is read as 16-byte words (vec4<u32>, one wide load) holding EPW
// elements: 4 F32, 8 BF16/F16 or 16 FP8. The x values a word multiplies are gathered into an
// XW of NPLANES vec4 planes, arranged so that w_dot pairs plane p with what it decodes from
// the word: for 2-byte types plane 0 holds the even and plane 1 the odd elements (the low
// and high halves of the four u32); for FP8 plane b holds elements b, 4+b, 8+b, 12+b (byte b
// of each u32). Accumulation is f32 throughout.
//
// Host-checked preconditions: cols is a multiple of EPW (rows start on a word); x offsets
// and strides are multiples of 4 floats (x is read as vec4); FP8 column blocks are a
// multiple of EPW (one scale per word).

struct Params {
    rows: u32,          // rows of each matrix held by this chunk
    words: u32,         // 16-byte words per row (block formats: bytes per row)
    r0: u32,            // first row of the chunk within the matrix
    e0: u32,            // experts [e0, e1) are in this chunk
    e1: u32,
    n_items: u32,
    slots: u32,
    use_ids: u32,       // 0 one matrix, 1 expert ids[item], 2 expert item % slots
    x_off: u32,         // x offsets and strides in vec4 units
    x_stride: u32,
    x_slot_stride: u32,
    y_off: u32,         // y offsets and strides in floats
    y_stride: u32,
    accum: u32,
    s_rows: u32,        // FP8 block scales [E][s_rows][s_cols], blocks blk_r × blk_c
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    rpw: u32,           // matvec: rows per workgroup
    grouped: u32,       // gemm items: 0 consecutive, 1 moe_group's lists, 2 expert e's are e + k·slots
    list_off: u32,      // gemm: where the item list starts in `groups`
    e_rows: u32,        // rows between experts in the chunk (≥ rows: per-head blocks of kv_b)
    row_base: u32,      // first row of each expert's block used
    norm_eps: f32,      // matvec: > 0 folds RMSNorm (weight nw, this eps) into x (see matvec.wgsl)
}

// Params come from a storage buffer, not a uniform: lavapipe (Mesa 22.3) inlines uniforms
// that steer control flow and then recompiles the shader on every dispatch (and never frees
// the copies). Every entry point first copies them into the private `p` (one load).
@group(0) @binding(0) var<storage, read> params: Params;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> wscale: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> w2: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> wscale2: array<f32>;
@group(0) @binding(8) var<storage, read> groups: array<u32>;

override WDT: u32 = 1u;
override EPW: u32 = select(select(8u, 16u, WDT == 3u), 4u, WDT == 0u);
override NPLANES: u32 = select(select(2u, 4u, WDT == 3u), 1u, WDT == 0u);
// Threads that share a row (matvec) or own one row each (gemm); with subgroups, the
// subgroup size.
override LANES: u32 = 8u;

struct XW {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

// The x values of the word whose first element is x[4·i4].
fn x_word(i4: u32) -> XW {
    let z = vec4<f32>(0.0);
    switch WDT {
        case 0u: {
            return XW(x[i4], z, z, z);
        }
        case 3u: {
            let a = x[i4];
            let b = x[i4 + 1u];
            let c = x[i4 + 2u];
            let d = x[i4 + 3u];
            return XW(vec4<f32>(a.x, b.x, c.x, d.x), vec4<f32>(a.y, b.y, c.y, d.y), vec4<f32>(a.z, b.z, c.z, d.z), vec4<f32>(a.w, b.w, c.w, d.w));
        }
        default: {
            let a = x[i4];
            let b = x[i4 + 1u];
            return XW(vec4<f32>(a.x, a.z, b.x, b.z), vec4<f32>(a.y, a.w, b.y, b.w), z, z);
        }
    }
}

// Σ over the word's elements of weight · x (without the FP8 block scale), left as four
// partial sums: accumulating vec4s and adding the lanes of the vector once per row saves
// the horizontal adds of a dot product per word.
fn w_dot4(u: vec4<u32>, xw: XW) -> vec4<f32> {
    switch WDT {
        case 0u: {
            return bitcast<vec4<f32>>(u) * xw.a;
        }
        case 1u: {
            return bf16_lo(u) * xw.a + bf16_hi(u) * xw.b;
        }
        case 2u: {
            return f16_lo(u) * xw.a + f16_hi(u) * xw.b;
        }
        default: {
            return fp8v(u) * xw.a + fp8v(u >> vec4<u32>(8u)) * xw.b + fp8v(u >> vec4<u32>(16u)) * xw.c + fp8v(u >> vec4<u32>(24u)) * xw.d;
        }
    }
}

fn w_dot(u: vec4<u32>, xw: XW) -> f32 {
    let v = w_dot4(u, xw);
    return (v.x + v.y) + (v.z + v.w);
}

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// Expert of an item (use_ids: 0 none, 1 ids[item], 2 item % slots, e.g. the head).
fn item_expert(item: u32) -> u32 {
    switch p.use_ids {
        case 0u: {
            return 0u;
        }
        case 2u: {
            return item % p.slots;
        }
        default: {
            return ids[min(item, p.n_items - 1u)];
        }
    }
}

// Index of word 0 of row r (of the chunk's rows) of expert e.
fn w_row(e: u32, r: u32) -> u32 {
    return ((e - p.e0) * p.e_rows + p.row_base + r) * p.words;
}

// FP8 block scale of row r (within the matrix) of expert e at word wd; 1 for other types.
fn scale1(e: u32, r: u32, wd: u32) -> f32 {
    if WDT != 3u {
        return 1.0;
    }
    return wscale[(e * p.s_rows + (p.row_base + r) / p.blk_r) * p.s_cols + wd * EPW / p.blk_c];
}

fn scale2(e: u32, r: u32, wd: u32) -> f32 {
    if WDT != 3u {
        return 1.0;
    }
    return wscale2[(e * p.s_rows + (p.row_base + r) / p.blk_r) * p.s_cols + wd * EPW / p.blk_c];
}

fn silu(g: f32) -> f32 {
    return g / (1.0 + exp(-g));
}
