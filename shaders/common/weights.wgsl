// Element access for kernels that gather single weights (embed, matmul, mla_absorb), on top
// of formats.wgsl's decodes. A kernel that includes this file declares `w: array<u32>`
// (packed weights), `wscale` (f32 block scales; a 1-element dummy when unused) and
// `override WDT: u32` (the format, see formats.wgsl).
//
// GGUF's block formats (WDT 4..22) are decoded here rather than in formats.wgsl because they
// read single bytes of `w`, which only these kernels bind as array<u32> (matvec/gemm bind
// 16-byte words; their block-format forms, matvec_blocks/gemm_blocks, decode whole steps with
// the same operations in common/blocks_words.wgsl). Each decode takes the byte offset `b` of its
// block in `w` and the element `j` within it, and computes the same f32 operations in the
// same order as the CPU reference (src/format/blocks.rs and iquants.rs, after gguf-py's
// quants.py), so the results are bit-identical. The i-quants read their lookup tables from
// iq_tables.wgsl's buffer. Every product in them is exact in f32 (an f16 scale times small
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

// Little-endian u16 at even byte `b`.
fn w_u16(b: u32) -> u32 {
    return (w[b >> 2u] >> ((b & 2u) * 8u)) & 0xffffu;
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

// The i-quants (layouts in src/format/iquants.rs). Grid rows hold one value per byte; a
// sign byte negates value i when bit i is set. Every product is exact in f32 (an f16 scale
// times small integers and eighths), as for the K-quants.

// 8-value grid value i of row `row` of the table at `at`.
fn grid8(at: u32, row: u32, i: u32) -> u32 {
    return (grid_word(at, row, i >> 2u) >> ((i & 3u) * 8u)) & 0xffu;
}

// IQ2_XXS, 66 bytes: d f16 @0 | 8 × (u32 grid bytes, u32 7-bit signs ×4 + 4-bit scale) @2.
// v = ((d · (½ + s) · ¼) · grid) · ±1
fn iq2_xxs(b: u32, j: u32) -> f32 {
    let ib = j >> 5u;
    let l = (j >> 3u) & 3u;
    let aux0 = w_u32_even(b + 2u + 8u * ib);
    let aux1 = w_u32_even(b + 6u + 8u * ib);
    let db = w_f16(b) * (0.5 + f32(aux1 >> 28u)) * 0.25;
    let g = grid8(IQ2XXS_AT, (aux0 >> (8u * l)) & 0xffu, j & 7u);
    return db * f32(g) * iq_sign(ksigns((aux1 >> (7u * l)) & 127u), j & 7u);
}

// The 4-bit scale of 16-value group g from the 8 bytes at `at` (low nibble first).
fn iq_nibble(at: u32, g: u32) -> f32 {
    return f32((w_u8(at + (g >> 1u)) >> ((g & 1u) * 4u)) & 15u);
}

// IQ2_XS, 74 bytes: d f16 @0 | qs[32] u16 @2 (9-bit row, 7-bit signs) | scales[8] @66.
fn iq2_xs(b: u32, j: u32) -> f32 {
    let q = w_u16(b + 2u + 2u * (j >> 3u));
    let db = w_f16(b) * (0.5 + iq_nibble(b + 66u, j >> 4u)) * 0.25;
    return db * f32(grid8(IQ2XS_AT, q & 511u, j & 7u)) * iq_sign(ksigns(q >> 9u), j & 7u);
}

// IQ2_S, 82 bytes: d f16 @0 | qs[32] @2 | signs[32] @34 | qh[8] @66 (2 high row bits per 8
// values) | scales[8] @74.
fn iq2_s(b: u32, j: u32) -> f32 {
    let k = j >> 3u;
    let hi = (w_u8(b + 66u + (k >> 2u)) >> (2u * (k & 3u))) & 3u;
    let db = w_f16(b) * (0.5 + iq_nibble(b + 74u, j >> 4u)) * 0.25;
    return db * f32(grid8(IQ2S_AT, w_u8(b + 2u + k) | (hi << 8u), j & 7u)) * iq_sign(w_u8(b + 34u + k), j & 7u);
}

// IQ3_XXS, 98 bytes: d f16 @0 | qs[64] @2 (a 4-value row each) | 8 × u32 signs + scale @66.
// v = ((d · (½ + s) · ½) · grid) · ±1
fn iq3_xxs(b: u32, j: u32) -> f32 {
    let aux = w_u32_even(b + 66u + 4u * (j >> 5u));
    let db = w_f16(b) * (0.5 + f32(aux >> 28u)) * 0.5;
    let g = (iq_tab[IQ3XXS_AT + w_u8(b + 2u + (j >> 2u))] >> ((j & 3u) * 8u)) & 0xffu;
    return db * f32(g) * iq_sign(ksigns((aux >> (7u * ((j >> 3u) & 3u))) & 127u), j & 7u);
}

// IQ3_S, 110 bytes: d f16 @0 | qs[64] @2 | qh[8] @66 (bit 8 of each row) | signs[32] @74 |
// scales[4] @106.  v = ((d · (1 + 2s)) · grid) · ±1
fn iq3_s(b: u32, j: u32) -> f32 {
    let ib = j >> 5u;
    let k = j >> 2u;
    let s = (w_u8(b + 106u + (ib >> 1u)) >> (4u * (ib & 1u))) & 15u;
    let db = w_f16(b) * f32(1u + 2u * s);
    let row = w_u8(b + 2u + k) | (((w_u8(b + 66u + (k >> 3u)) >> (k & 7u)) & 1u) << 8u);
    let g = (iq_tab[IQ3S_AT + row] >> ((j & 3u) * 8u)) & 0xffu;
    return db * f32(g) * iq_sign(w_u8(b + 74u + (k >> 1u)), j & 7u);
}

// IQ1 grid value i (an i8: -1, 0, 1) of row `row`, plus ±⅛.
fn iq1_level(row: u32, i: u32, neg: bool) -> f32 {
    let g = (i32(grid8(IQ1S_AT, row, i)) << 24u) >> 24u;
    return f32(g) + select(0.125, -0.125, neg);
}

// IQ1_S, 50 bytes: d f16 @0 | qs[32] @2 | qh[8] u16 @34 (per 32 values: 3 high row bits per
// 8, a 3-bit scale, the sign of ⅛).  v = (d · (2s + 1)) · (grid ± ⅛)
fn iq1_s(b: u32, j: u32) -> f32 {
    let ib = j >> 5u;
    let l = (j >> 3u) & 3u;
    let qh = w_u16(b + 34u + 2u * ib);
    let dl = w_f16(b) * f32(2u * ((qh >> 12u) & 7u) + 1u);
    let row = w_u8(b + 2u + 4u * ib + l) | (((qh >> (3u * l)) & 7u) << 8u);
    return dl * iq1_level(row, j & 7u, (qh & 0x8000u) != 0u);
}

// IQ1_M, 56 bytes: qs[32] @0 | qh[16] @32 (a nibble per 8 values: 3 high row bits, the sign
// of ⅛) | scales 4 × u16 @48 (3-bit scale per 16 values; d = the words' top nibbles).
fn iq1_m(b: u32, j: u32) -> f32 {
    let u0 = w_u32_even(b + 48u);
    let u1 = w_u32_even(b + 52u);
    let dbits = ((u0 >> 12u) & 0xfu) | ((u0 >> 24u) & 0xf0u) | ((u1 >> 4u) & 0xf00u) | ((u1 >> 16u) & 0xf000u);
    let g = j >> 4u;
    let s = (w_u16(b + 48u + 2u * (g >> 2u)) >> (3u * (g & 3u))) & 7u;
    let dl = unpack2x16float(dbits).x * f32(2u * s + 1u);
    let k = j >> 3u;
    let nib = (w_u8(b + 32u + (k >> 1u)) >> (4u * (k & 1u))) & 15u;
    return dl * iq1_level(w_u8(b + k) | ((nib & 7u) << 8u), j & 7u, (nib & 8u) != 0u);
}

// IQ4_NL, 18 bytes: d f16 @0 | qs[16] @2 (4-bit q as Q4_0).  v = d · KVALUES[q]
fn iq4_nl(b: u32, j: u32) -> f32 {
    return w_f16(b) * kvalue(nibble32(b + 2u, j));
}

// IQ4_XS, 136 bytes: d f16 @0 | scales_h u16 @2 | scales_l[4] @4 | qs[128] @8 (16 bytes per
// 32 values, as IQ4_NL).  v = (d · (s − 32)) · KVALUES[q], 6-bit s per 32 values
fn iq4_xs(b: u32, j: u32) -> f32 {
    let ib = j >> 5u;
    let lo = (w_u8(b + 4u + (ib >> 1u)) >> (4u * (ib & 1u))) & 15u;
    let hi = (w_u16(b + 2u) >> (2u * ib)) & 3u;
    let dl = w_f16(b) * f32(i32(lo | (hi << 4u)) - 32);
    return dl * kvalue(nibble32(b + 8u + 16u * ib, j & 31u));
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
        case 14u: {
            return iq1_s((i >> 8u) * 50u, i & 255u);
        }
        case 15u: {
            return iq1_m((i >> 8u) * 56u, i & 255u);
        }
        case 16u: {
            return iq2_xxs((i >> 8u) * 66u, i & 255u);
        }
        case 17u: {
            return iq2_xs((i >> 8u) * 74u, i & 255u);
        }
        case 18u: {
            return iq2_s((i >> 8u) * 82u, i & 255u);
        }
        case 19u: {
            return iq3_xxs((i >> 8u) * 98u, i & 255u);
        }
        case 20u: {
            return iq3_s((i >> 8u) * 110u, i & 255u);
        }
        case 21u: {
            return iq4_nl((i >> 5u) * 18u, i & 31u);
        }
        case 22u: {
            return iq4_xs((i >> 8u) * 136u, i & 255u);
        }
        default: {
            return bitcast<f32>(w[i]);
        }
    }
}
