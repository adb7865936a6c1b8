//! GGUF's block formats: layouts and the CPU reference decode.
//!
//! Each block holds `block_elems` values (32, or 256 for the K-quants) with their scales.
//! The decode follows gguf-py's `quants.py` (`dequantize_blocks`), which matches llama.cpp's
//! `dequantize_row_*`, operation by operation in f32 (f16 scales widened exactly, integer
//! quants converted exactly, each product and difference rounded once, in the same order),
//! so the results are bit-exact (`tests/formats.rs` checks against gguf-py's output). The
//! shaders' per-element decode (`shaders/common/weights.wgsl`) computes the same operations.
//!
//! Only the last operation of a value can round: an f16 scale has 11 significant bits and
//! each factor after it is a small integer (sub-block scale ≤ 8 bits, quant ≤ 6 bits), so
//! every product (`d · sc`, `(d · sc) · q`, `dmin · m`) has at most 23 significant bits and
//! is exact in f32. Hence a compiler that contracts `a · b + c` into an FMA (GPU drivers may)
//! still gets the same bits.
//!
//! Layouts (byte offsets within a block; `d`, `m`, `dmin` are little-endian f16; value `j`):
//!
//! | format | bytes | fields | value j |
//! | --- | --- | --- | --- |
//! | Q8_0 | 34 | d @0, qs[32] i8 @2 | `qs[j] · d` |
//! | Q4_0 | 18 | d @0, qs[16] @2 | `d · (q − 8)`, q = low nibble of qs[j] (j < 16) or high of qs[j−16] |
//! | Q4_1 | 20 | d @0, m @2, qs[16] @4 | `d · q + m`, q as Q4_0 |
//! | Q5_0 | 22 | d @0, qh u32 @2, qs[16] @6 | `d · ((q \| h << 4) − 16)`, h = bit j of qh |
//! | Q5_1 | 24 | d @0, m @2, qh u32 @4, qs[16] @8 | `d · (q \| h << 4) + m` |
//! | Q2_K | 84 | scales[16] @0, qs[64] @16, d @80, dmin @82 | `(d · (sc & 15)) · q − dmin · (sc >> 4)`, sc = scales[j / 16], q = 2 bits |
//! | Q3_K | 110 | hmask[32] @0, qs[64] @32, scales[12] @96, d @108 | `(d · (s − 32)) · (q − 4·!h)`, s 6 bits, q 2 bits, h 1 bit |
//! | Q4_K | 144 | d @0, dmin @2, scales[12] @4, qs[128] @16 | `(d · sc) · q − dmin · m`, 6-bit (sc, m) per 32 values, q 4 bits |
//! | Q5_K | 176 | d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48 | as Q4_K with q \| h << 4 |
//! | Q6_K | 210 | ql[128] @0, qh[64] @128, scales[16] i8 @192, d @208 | `(d · scales[j / 16]) · ((ql \| qh << 4) − 32)` |
//!
//! Where the quant bits of value j sit in the K-quants (q = bits of `byte >> shift`):
//! - 2-bit fields (Q2_K, Q3_K `qs`; Q6_K `qh`): byte `(j / 128)·32 + j % 32`, shift `2·((j % 128) / 32)`.
//! - 4-bit fields (Q4_K, Q5_K `qs`): byte `(j / 64)·32 + j % 32`, shift `4·((j % 64) / 32)`;
//!   Q6_K `ql`: byte `(j / 128)·64 + j % 64`, shift `4·((j % 128) / 64)`.
//! - 1-bit fields (Q3_K `hmask`, Q5_K `qh`): byte `j % 32`, bit `j / 32`.
//!
//! Every block size and every f16 field offset is even, so in the shaders' `array<u32>` an
//! f16 never straddles two words.

use super::Format;

/// Little-endian f16 at byte `o`, widened to f32 (exact).
fn f16_at(b: &[u8], o: usize) -> f32 {
    half::f16::from_le_bytes([b[o], b[o + 1]]).to_f32()
}

/// Little-endian u32 at byte `o`.
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// 4-bit quant `j` (0..32) of a 16-byte array of the 32-value formats: low nibbles first.
fn nibble32(qs: &[u8], j: usize) -> u32 {
    if j < 16 {
        (qs[j] & 0xf) as u32
    } else {
        (qs[j - 16] >> 4) as u32
    }
}

/// The 6-bit scale and min of sub-block `i` (0..8) of Q4_K/Q5_K's 12 packed bytes
/// (llama.cpp's `get_scale_min_k4`, gguf-py's `Q4_K.get_scale_min`).
pub fn scale_min_k4(s: &[u8], i: usize) -> (u8, u8) {
    if i < 4 {
        (s[i] & 63, s[i + 4] & 63)
    } else {
        ((s[i + 4] & 0xf) | ((s[i - 4] >> 6) << 4), (s[i + 4] >> 4) | ((s[i] >> 6) << 4))
    }
}

/// The signed 6-bit scale of sub-block `i` (0..16) of Q3_K's 12 packed bytes, minus 32.
pub fn scale_q3_k(s: &[u8], i: usize) -> i32 {
    let lo = if i < 8 { s[i] & 0xf } else { s[i - 8] >> 4 };
    let hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    (lo | (hi << 4)) as i32 - 32
}

/// Decode whole blocks of a block format (`bytes.len()` a multiple of `f.block_bytes()`).
pub fn decode(f: Format, bytes: &[u8]) -> Vec<f32> {
    let (n, size) = (f.block_elems(), f.block_bytes());
    assert!(n > 1, "{f:?} is not a block format");
    let mut out = Vec::with_capacity(bytes.len() / size * n);
    for b in bytes.chunks_exact(size) {
        match f {
            Format::Q8_0 => {
                let d = f16_at(b, 0);
                out.extend((0..32).map(|j| (b[2 + j] as i8) as f32 * d));
            }
            Format::Q4_0 => {
                let d = f16_at(b, 0);
                out.extend((0..32).map(|j| d * (nibble32(&b[2..], j) as i32 - 8) as f32));
            }
            Format::Q4_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                out.extend((0..32).map(|j| d * nibble32(&b[4..], j) as f32 + m));
            }
            Format::Q5_0 => {
                let (d, qh) = (f16_at(b, 0), u32_at(b, 2));
                out.extend((0..32).map(|j| d * ((nibble32(&b[6..], j) | ((qh >> j) & 1) << 4) as i32 - 16) as f32));
            }
            Format::Q5_1 => {
                let (d, m, qh) = (f16_at(b, 0), f16_at(b, 2), u32_at(b, 4));
                out.extend((0..32).map(|j| d * (nibble32(&b[8..], j) | ((qh >> j) & 1) << 4) as f32 + m));
            }
            Format::Q2_K => {
                let (scales, qs) = (&b[..16], &b[16..80]);
                let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
                out.extend((0..256).map(|j| {
                    let sc = scales[j / 16];
                    let dl = d * (sc & 0xf) as f32;
                    let ml = dmin * (sc >> 4) as f32;
                    let q = (qs[(j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
                    dl * q as f32 - ml
                }));
            }
            Format::Q3_K => {
                let (hmask, qs, scales) = (&b[..32], &b[32..96], &b[96..108]);
                let d = f16_at(b, 108);
                out.extend((0..256).map(|j| {
                    let dl = d * scale_q3_k(scales, j / 16) as f32;
                    let q = (qs[(j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
                    let h = (hmask[j % 32] >> (j / 32)) & 1;
                    dl * (q as i32 - (((h ^ 1) << 2) as i32)) as f32
                }));
            }
            Format::Q4_K | Format::Q5_K => {
                let (d, dmin, scales) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
                let (qh, qs) = if f == Format::Q5_K { (Some(&b[16..48]), &b[48..176]) } else { (None, &b[16..144]) };
                out.extend((0..256).map(|j| {
                    let (sc, m) = scale_min_k4(scales, j / 32);
                    let dl = d * sc as f32;
                    let ml = dmin * m as f32;
                    let mut q = (qs[(j / 64) * 32 + j % 32] >> (4 * ((j % 64) / 32))) & 0xf;
                    if let Some(qh) = qh {
                        q |= ((qh[j % 32] >> (j / 32)) & 1) << 4;
                    }
                    dl * q as f32 - ml
                }));
            }
            Format::Q6_K => {
                let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
                let d = f16_at(b, 208);
                out.extend((0..256).map(|j| {
                    let dl = d * (scales[j / 16] as i8) as f32;
                    let lo = (ql[(j / 128) * 64 + j % 64] >> (4 * ((j % 128) / 64))) & 0xf;
                    let hi = (qh[(j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3;
                    dl * ((lo | (hi << 4)) as i32 - 32) as f32
                }));
            }
            _ => unreachable!(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_decoded_blocks() {
        // Q4_0: d = 0.5, nibbles 0x0..0xf then high nibbles
        let mut b = vec![0x00, 0x38];
        b.extend((0..16u8).map(|i| i | (15 - i) << 4));
        let v = decode(Format::Q4_0, &b);
        assert_eq!(v[0], -4.0);
        assert_eq!(v[15], 3.5);
        assert_eq!(v[16], 3.5);
        assert_eq!(v[31], -4.0);
        // Q8_0: d = -2, qs = -128, 127
        let mut b = vec![0x00, 0xc0, 0x80, 0x7f];
        b.resize(34, 0);
        let v = decode(Format::Q8_0, &b);
        assert_eq!(&v[..3], &[256.0, -254.0, -0.0]);
        // Q4_K/Q5_K scale unpacking: sub-block 5 takes its low bits from byte 9 and its high
        // bits from the top of bytes 1 (scale) and 5 (min).
        let s = [0, 0b1100_0000, 0, 0, 0, 0b0100_0000, 0, 0, 0, 0x3a, 0, 0];
        assert_eq!(scale_min_k4(&s, 5), (0x3a & 0xf | 0x30, 0x3 | 0x10));
        // Q3_K: sub-block 13 = high nibble of byte 5, bits 6..8 of byte 9
        let mut s = [0u8; 12];
        s[5] = 0x70;
        s[9] = 0b1000_0000;
        assert_eq!(scale_q3_k(&s, 13), (0x7 | 0x20) - 32);
    }
}
