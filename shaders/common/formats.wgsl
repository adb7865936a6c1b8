// One decode per weight format (the Rust side is src/format/). WGSL has no bf16 or fp8
// type, so weights stay packed in u32 words and are widened here; every kernel that reads
// weights includes this file and selects the format with `override WDT: u32` (the value of
// `Format::wgsl_id`: 0 = F32, 1 = BF16, 2 = F16, 3 = F8_E4M3, then GGUF's block formats
// 4 = Q8_0, 5 = Q4_0, 6 = Q4_1, 7 = Q5_0, 8 = Q5_1, 9 = Q2_K, 10 = Q3_K, 11 = Q4_K, 12 = Q5_K,
// 13 = Q6_K). The vector forms decode one value from each component of a vec4<u32> (one
// 16-byte word), which is how the fast kernels read; the scalar forms serve kernels that
// gather single values. The block formats have no word form here: the gathering kernels decode
// them per element in weights.wgsl, and the fast block kernels step by step in
// blocks_words.wgsl (with the same operations). weights.wgsl reads bytes of the gathering
// kernels' `w: array<u32>` (the fast kernels declare `w` as 16-byte words, so this file, which
// they include too, cannot read it).

// BF16 in the low 16 bits of each component.
fn bf16_lo(u: vec4<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(u << vec4<u32>(16u));
}

// BF16 in the high 16 bits of each component.
fn bf16_hi(u: vec4<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(u & vec4<u32>(0xffff0000u));
}

// F16 pairs: (low halves, high halves) of the four components.
fn f16_lo(u: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(u.x).x, unpack2x16float(u.y).x, unpack2x16float(u.z).x, unpack2x16float(u.w).x);
}

fn f16_hi(u: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(u.x).y, unpack2x16float(u.y).y, unpack2x16float(u.z).y, unpack2x16float(u.w).y);
}

// E4M3 "fn" (bias 7, no infinities, 0x7f/0xff NaN) of the low byte of each component,
// without branches: a normal value's exponent and mantissa bits move into an f32 whose
// exponent is rebased by 120 (127 − 7); subnormals are m/8 · 2^-6.
fn fp8v(b: vec4<u32>) -> vec4<f32> {
    let mag = b & vec4<u32>(0x7fu);
    let normal = bitcast<vec4<f32>>((mag << vec4<u32>(20u)) + vec4<u32>(120u << 23u));
    let sub = vec4<f32>(mag & vec4<u32>(7u)) * 0.001953125;
    var v = select(normal, sub, mag < vec4<u32>(8u));
    v = select(v, vec4<f32>(bitcast<f32>(0x7fc00000u)), mag == vec4<u32>(0x7fu));
    return select(v, -v, (b & vec4<u32>(0x80u)) != vec4<u32>(0u));
}

fn fp8_e4m3(b: u32) -> f32 {
    return fp8v(vec4<u32>(b)).x;
}
