// Element access for kernels that gather single weights (embed, matmul, mla_absorb), on top
// of formats.wgsl's decodes. A kernel that includes this file declares `w: array<u32>`
// (packed weights), `wscale` (f32 block scales; a 1-element dummy when unused) and
// `override WDT: u32` (the format, see formats.wgsl).
//
// GGUF's block formats (WDT 4..13) are decoded here rather than in formats.wgsl because they
// read single bytes of `w`, which only these kernels bind as array<u32> (matvec/gemm bind
// 16-byte words; their block-format forms, matvec_blocks/gemm_blocks, decode whole steps with
// the same operations in common/blocks_words.wgsl). Each decode takes the byte offset `b` of its
// block in `w` and the element `j` within it, and computes the same f32 operations in the
// same order as the CPU reference (src/format/blocks.rs, after gguf-py's quants.py), so the
// results are bit-identical. Every product in them is exact in f32 (an f16 scale times small
// integers), so only the final add/subtract rounds and FMA contraction cannot change a bit.
// Block sizes and f16 field offsets are all even, so an f16 never straddles two u32 words.

// Byte `b` of the packed weights.
fn w_u8(b: u32) -> u32 {
    return (w[b >> 2u] >> ((b & 3u) * 8u)) & 0xffu;
}

// Signed byte `b`.
fn w_i8(b: u32) -> i32 {
    return (i32(w_u8(b)) << 24u) >> 24u;
}

// Little-endian f16 at even byte `b`, widened (exactly) to f32.
fn w_f16(b: u32) -> f32 {
    return unpack2x16float(w[b >> 2u] >> ((b & 2u) * 8u)).x;
}

// Little-endian u32 at even byte `b` (two u16 halves; b need not be a multiple of 4).
fn w_u32_even(b: u32) -> u32 {
    let lo = (w[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu;
    let hi = (w[(b + 2u) >> 2u] >> (((b + 2u) & 2u) * 8u)) & 0xffffu;
    return lo | (hi << 16u);
}

// Nibble j (0..32) of the 16 bytes at `qs`: low nibbles are values 0..16, high ones 16..32.
fn nibble32(qs: u32, j: u32) -> u32 {
    return (w_u8(qs + (j & 15u)) >> ((j >> 4u) * 4u)) & 0xfu;
}

// Q8_0, 34 bytes: d f16 @0 | qs[32] i8 @2.  v = qs[j] · d
fn q8_0(b: u32, j: u32) -> f32 {
    return f32(w_i8(b + 2u + j)) * w_f16(b);
}

// Q4_0, 18 bytes: d f16 @0 | qs[16] @2 (4-bit q).  v = d · (q − 8)
fn q4_0(b: u32, j: u32) -> f32 {
    return w_f16(b) * f32(i32(nibble32(b + 2u, j)) - 8);
}

// Q4_1, 20 bytes: d f16 @0 | m f16 @2 | qs[16] @4.  v = d · q + m
fn q4_1(b: u32, j: u32) -> f32 {
    return w_f16(b) * f32(nibble32(b + 4u, j)) + w_f16(b + 2u);
}

// Q5_0, 22 bytes: d f16 @0 | qh u32 @2 (bit j = bit 4 of q) | qs[16] @6.  v = d · (q − 16)
fn q5_0(b: u32, j: u32) -> f32 {
    let q = nibble32(b + 6u, j) | (((w_u32_even(b + 2u) >> j) & 1u) << 4u);
    return w_f16(b) * f32(i32(q) - 16);
}

// Q5_1, 24 bytes: d f16 @0 | m f16 @2 | qh u32 @4 | qs[16] @8.  v = d · q + m
fn q5_1(b: u32, j: u32) -> f32 {
    let q = nibble32(b + 8u, j) | (((w_u32_even(b + 4u) >> j) & 1u) << 4u);
    return w_f16(b) * f32(q) + w_f16(b + 2u);
}

// 2-bit field j (0..256) of the K-quants' 64-byte arrays at `qs`: byte (j/128)·32 + j%32,
// bits 2·((j%128)/32).
fn crumb256(qs: u32, j: u32) -> u32 {
    return (w_u8(qs + (j >> 7u) * 32u + (j & 31u)) >> (((j >> 5u) & 3u) * 2u)) & 3u;
}

// Q2_K, 84 bytes: scales[16] @0 (low nibble scale, high nibble min, per 16 values) |
// qs[64] @16 (2-bit q) | d f16 @80 | dmin f16 @82.  v = (d · sc) · q − dmin · m
fn q2_k(b: u32, j: u32) -> f32 {
    let s = w_u8(b + (j >> 4u));
    let dl = w_f16(b + 80u) * f32(s & 0xfu);
    let ml = w_f16(b + 82u) * f32(s >> 4u);
    return dl * f32(crumb256(b + 16u, j)) - ml;
}

// Q3_K, 110 bytes: hmask[32] @0 (bit j/32 of byte j%32: high bit of q, set = no offset) |
// qs[64] @32 (2-bit low q) | scales[12] @96 (16 6-bit scales: low nibbles in bytes 0..8,
// high 2-bit pairs in bytes 8..12) | d f16 @108.  v = (d · (s − 32)) · (q − 4·!h)
fn q3_k(b: u32, j: u32) -> f32 {
    let i = j >> 4u;
    let lo = (w_u8(b + 96u + (i & 7u)) >> ((i >> 3u) * 4u)) & 0xfu;
    let hi = (w_u8(b + 104u + (i & 3u)) >> ((i >> 2u) * 2u)) & 3u;
    let dl = w_f16(b + 108u) * f32(i32(lo | (hi << 4u)) - 32);
    let h = (w_u8(b + (j & 31u)) >> (j >> 5u)) & 1u;
    return dl * f32(i32(crumb256(b + 32u, j)) - i32((h ^ 1u) << 2u));
}

// The 6-bit (scale, min) of sub-block i (0..8) of Q4_K/Q5_K's 12 bytes at `s`
// (llama.cpp's get_scale_min_k4): sub-blocks 0..4 in the low 6 bits of bytes i and i+4,
// 4..8 in the nibbles of byte i+4 with their top 2 bits in bytes i-4 and i.
fn scale_min_k4(s: u32, i: u32) -> vec2<u32> {
    if i < 4u {
        return vec2<u32>(w_u8(s + i) & 63u, w_u8(s + i + 4u) & 63u);
    }
    let m = w_u8(s + i + 4u);
    return vec2<u32>((m & 0xfu) | ((w_u8(s + i - 4u) >> 6u) << 4u), (m >> 4u) | ((w_u8(s + i) >> 6u) << 4u));
}

// Q4_K, 144 bytes: d f16 @0 | dmin f16 @2 | scales[12] @4 (8 × 6-bit scale and min, one per
// 32 values) | qs[128] @16 (4-bit q: byte (j/64)·32 + j%32, nibble (j%64)/32).
// v = (d · sc) · q − dmin · m
fn q4_k(b: u32, j: u32) -> f32 {
    let sm = scale_min_k4(b + 4u, j >> 5u);
    let dl = w_f16(b) * f32(sm.x);
    let ml = w_f16(b + 2u) * f32(sm.y);
    let q = (w_u8(b + 16u + (j >> 6u) * 32u + (j & 31u)) >> (((j >> 5u) & 1u) * 4u)) & 0xfu;
    return dl * f32(q) - ml;
}

// Q5_K, 176 bytes: d f16 @0 | dmin f16 @2 | scales[12] @4 (as Q4_K) | qh[32] @16 (bit j/32 of
// byte j%32: bit 4 of q) | qs[128] @48 (low 4 bits, as Q4_K).  v = (d · sc) · q − dmin · m
fn q5_k(b: u32, j: u32) -> f32 {
    let sm = scale_min_k4(b + 4u, j >> 5u);
    let dl = w_f16(b) * f32(sm.x);
    let ml = w_f16(b + 2u) * f32(sm.y);
    let lo = (w_u8(b + 48u + (j >> 6u) * 32u + (j & 31u)) >> (((j >> 5u) & 1u) * 4u)) & 0xfu;
    let hi = (w_u8(b + 16u + (j & 31u)) >> (j >> 5u)) & 1u;
    return dl * f32(lo | (hi << 4u)) - ml;
}

// Q6_K, 210 bytes: ql[128] @0 (low 4 bits: byte (j/128)·64 + j%64, nibble (j%128)/64) |
// qh[64] @128 (high 2 bits, as crumb256) | scales[16] i8 @192 (one per 16 values) |
// d f16 @208.  v = (d · scale) · (q − 32)
fn q6_k(b: u32, j: u32) -> f32 {
    let dl = w_f16(b + 208u) * f32(w_i8(b + 192u + (j >> 4u)));
    let lo = (w_u8(b + (j >> 7u) * 64u + (j & 63u)) >> (((j >> 6u) & 1u) * 4u)) & 0xfu;
    let q = lo | (crumb256(b + 128u, j) << 4u);
    return dl * f32(i32(q) - 32);
}

// Element `i` of the packed weight array, widened to f32 (without block scale). Block
// formats: element i % n of block i / n, which starts at byte (i / n) · block bytes.
fn w_raw(i: u32) -> f32 {
    switch WDT {
        case 1u: {
            let word = w[i >> 1u];
            return bitcast<f32>(select(word & 0xffff0000u, word << 16u, (i & 1u) == 0u));
        }
        case 2u: {
            let pair = unpack2x16float(w[i >> 1u]);
            return select(pair.y, pair.x, (i & 1u) == 0u);
        }
        case 3u: {
            return fp8_e4m3((w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
        }
        case 4u: {
            return q8_0((i >> 5u) * 34u, i & 31u);
        }
        case 5u: {
            return q4_0((i >> 5u) * 18u, i & 31u);
        }
        case 6u: {
            return q4_1((i >> 5u) * 20u, i & 31u);
        }
        case 7u: {
            return q5_0((i >> 5u) * 22u, i & 31u);
        }
        case 8u: {
            return q5_1((i >> 5u) * 24u, i & 31u);
        }
        case 9u: {
            return q2_k((i >> 8u) * 84u, i & 255u);
        }
        case 10u: {
            return q3_k((i >> 8u) * 110u, i & 255u);
        }
        case 11u: {
            return q4_k((i >> 8u) * 144u, i & 255u);
        }
        case 12u: {
            return q5_k((i >> 8u) * 176u, i & 255u);
        }
        case 13u: {
            return q6_k((i >> 8u) * 210u, i & 255u);
        }
        default: {
            return bitcast<f32>(w[i]);
        }
    }
}
