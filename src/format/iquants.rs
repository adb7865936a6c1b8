//! GGUF's i-quants (llama.cpp's IQ1_S … IQ4_XS, the types of the popular 1.5–4-bit
//! DeepSeek-R1 files): block layouts and the CPU reference decode.
//!
//! Each decode follows gguf-py's `quants.py` (`IQ*.dequantize_blocks`, which matches
//! llama.cpp's `dequantize_row_iq*`) operation by operation in f32, so the values are
//! bit-exact (`tests/formats.rs::iquants_decode_as_gguf_py`, fixtures from gguf-py). The
//! lookup tables (grids, sign patterns, IQ4 levels) are in [`super::iq_tables`], generated
//! from gguf-py's own.
//!
//! Each is a [`Format`](super::Format) arm (`Format::iquant` maps it here); the shaders decode
//! them in `shaders/common/weights.wgsl` (per element) and `blocks_words.wgsl` (per 256-value
//! step) with the same operations, the tables read from `shaders/common/iq_tables.wgsl`'s
//! storage buffer ([`table_words`]).
//!
//! Layouts (byte offsets within a block; `d` a little-endian f16; 256 values per block except
//! IQ4_NL's 32):
//!
//! | type | bytes | fields | value j |
//! | --- | --- | --- | --- |
//! | IQ2_XXS | 66 | d @0, 8 × (u32 grid bytes, u32 signs+scale) @2 | `((d·(½+s)·¼)·grid)·±1`, s = top 4 bits of the 2nd u32 of j/32, grid row = byte (j%32)/8 of the 1st, signs `KSIGNS[7 bits]` |
//! | IQ2_XS | 74 | d @0, qs[32] u16 @2, scales[8] @66 | row = q & 511, signs `KSIGNS[q >> 9]`, s = nibble j/16 |
//! | IQ2_S | 82 | d @0, qs[32] @2, signs[32] @34, qh[8] @66, scales[8] @74 | row = qs[j/8] \| 2 bits of qh << 8, signs: bit j%8 of byte j/8 |
//! | IQ3_XXS | 98 | d @0, qs[64] @2, 8 × u32 signs+scale @66 | `((d·(½+s)·½)·grid)·±1`, row = qs[j/4] (4 values) |
//! | IQ3_S | 110 | d @0, qs[64] @2, qh[8] @66, signs[32] @74, scales[4] @106 | `((d·(1+2s))·grid)·±1`, row = qs[j/4] \| bit of qh << 8 |
//! | IQ1_S | 50 | d @0, qs[32] @2, qh[8] u16 @34 | `(d·(2s+1))·(grid ± ⅛)`, per 32 values: s, sign of ⅛ and 3 high row bits per 8 in qh |
//! | IQ1_M | 56 | qs[32] @0, qh[16] @32, scales 4 × u16 @48 | as IQ1_S with a 3-bit scale per 16 values; d is the top nibbles of the 4 scale words |
//! | IQ4_NL | 18 | d @0, qs[16] @2 | `d·KVALUES[q]`, q as Q4_0 (32 values) |
//! | IQ4_XS | 136 | d @0, scales_h u16 @2, scales_l[4] @4, qs[128] @8 | `(d·(s−32))·KVALUES[q]`, 6-bit s per 32 values |

use super::iq_tables::{IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS, KVALUES_IQ4};

/// Where each table starts in [`table_words`], in u32 words; `shaders/common/iq_tables.wgsl`
/// declares the same offsets (`tests::table_offsets_match_wgsl` checks them).
pub const TABLE_AT: [(&str, usize); 7] = [("IQ1S", 0), ("IQ2S", 4096), ("IQ2XS", 6144), ("IQ2XXS", 7168), ("IQ3S", 7680), ("IQ3XXS", 8192), ("KVALUES", 8448)];

/// The lookup tables as the shaders read them, one storage buffer of u32 words: each 8-level
/// grid row as two words (values 0..4 in the first, byte i = value i), each IQ3 row as one
/// word, IQ4's 16 levels as i32 words, at the offsets of [`TABLE_AT`]. The sign patterns
/// (KSIGNS) are not stored: entry i is `i | parity(i) << 7`, which the shaders compute.
pub fn table_words() -> Vec<u32> {
    let mut w = Vec::with_capacity(8464);
    let rows64 = |w: &mut Vec<u32>, t: &[u64]| w.extend(t.iter().flat_map(|&r| [r as u32, (r >> 32) as u32]));
    rows64(&mut w, &IQ1S_GRID);
    rows64(&mut w, &IQ2S_GRID);
    rows64(&mut w, &IQ2XS_GRID);
    rows64(&mut w, &IQ2XXS_GRID);
    w.extend(IQ3S_GRID);
    w.extend(IQ3XXS_GRID);
    w.extend(KVALUES_IQ4.iter().map(|&v| v as i32 as u32));
    w
}

#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IQuant {
    IQ1_S,
    IQ1_M,
    IQ2_XXS,
    IQ2_XS,
    IQ2_S,
    IQ3_XXS,
    IQ3_S,
    IQ4_NL,
    IQ4_XS,
}

impl IQuant {
    pub const ALL: [IQuant; 9] = [IQuant::IQ1_S, IQuant::IQ1_M, IQuant::IQ2_XXS, IQuant::IQ2_XS, IQuant::IQ2_S, IQuant::IQ3_XXS, IQuant::IQ3_S, IQuant::IQ4_NL, IQuant::IQ4_XS];

    /// gguf-py's `GGMLQuantizationType` name.
    pub fn name(self) -> &'static str {
        match self {
            IQuant::IQ1_S => "IQ1_S",
            IQuant::IQ1_M => "IQ1_M",
            IQuant::IQ2_XXS => "IQ2_XXS",
            IQuant::IQ2_XS => "IQ2_XS",
            IQuant::IQ2_S => "IQ2_S",
            IQuant::IQ3_XXS => "IQ3_XXS",
            IQuant::IQ3_S => "IQ3_S",
            IQuant::IQ4_NL => "IQ4_NL",
            IQuant::IQ4_XS => "IQ4_XS",
        }
    }

    /// By ggml type name, ASCII case ignored.
    pub fn from_ggml_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.name().eq_ignore_ascii_case(s))
    }

    /// Values per block.
    pub fn block_elems(self) -> usize {
        match self {
            IQuant::IQ4_NL => 32,
            _ => 256,
        }
    }

    /// Bytes per block (gguf-py's `GGML_QUANT_SIZES`).
    pub fn block_bytes(self) -> usize {
        match self {
            IQuant::IQ1_S => 50,
            IQuant::IQ1_M => 56,
            IQuant::IQ2_XXS => 66,
            IQuant::IQ2_XS => 74,
            IQuant::IQ2_S => 82,
            IQuant::IQ3_XXS => 98,
            IQuant::IQ3_S => 110,
            IQuant::IQ4_NL => 18,
            IQuant::IQ4_XS => 136,
        }
    }

    /// Decode whole blocks (`bytes.len()` a multiple of `block_bytes`).
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        let (n, size) = (self.block_elems(), self.block_bytes());
        assert!(bytes.len() % size == 0, "{}: {} bytes are not whole blocks of {size}", self.name(), bytes.len());
        let mut out = Vec::with_capacity(bytes.len() / size * n);
        for b in bytes.chunks_exact(size) {
            let start = out.len();
            out.resize(start + n, 0.0);
            let o = &mut out[start..];
            match self {
                IQuant::IQ2_XXS => iq2_xxs(b, o),
                IQuant::IQ2_XS => iq2_xs(b, o),
                IQuant::IQ2_S => iq2_s(b, o),
                IQuant::IQ3_XXS => iq3_xxs(b, o),
                IQuant::IQ3_S => iq3_s(b, o),
                IQuant::IQ1_S => iq1_s(b, o),
                IQuant::IQ1_M => iq1_m(b, o),
                IQuant::IQ4_NL => iq4_nl(b, o),
                IQuant::IQ4_XS => iq4_xs(b, o),
            }
        }
        out
    }
}

fn f16_at(b: &[u8], o: usize) -> f32 {
    half::f16::from_le_bytes([b[o], b[o + 1]]).to_f32()
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Value i (0..8) of a grid row stored as bytes.
fn level(row: u64, i: usize) -> f32 {
    ((row >> (8 * i)) & 0xff) as u8 as f32
}

/// ±1 for bit i of a sign byte (set = negative).
fn sign(bits: u8, i: usize) -> f32 {
    if (bits >> i) & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

/// Eight values `(db · grid) · sign` of one grid row.
fn put8(o: &mut [f32], db: f32, row: u64, signs: u8) {
    for (i, v) in o.iter_mut().take(8).enumerate() {
        *v = db * level(row, i) * sign(signs, i);
    }
}

/// Four values of an IQ3 grid row (4 bytes).
fn put4(o: &mut [f32], db: f32, row: u32, signs: u8, first_sign: usize) {
    for (i, v) in o.iter_mut().take(4).enumerate() {
        *v = db * ((row >> (8 * i)) & 0xff) as f32 * sign(signs, first_sign + i);
    }
}

fn iq2_xxs(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let (aux0, aux1) = (u32_at(b, 2 + 8 * ib), u32_at(b, 6 + 8 * ib));
        let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
        for l in 0..4 {
            let row = IQ2XXS_GRID[((aux0 >> (8 * l)) & 0xff) as usize];
            let signs = KSIGNS[((aux1 >> (7 * l)) & 127) as usize];
            put8(&mut o[32 * ib + 8 * l..], db, row, signs);
        }
    }
}

/// The 4-bit scale of 16-value group g from 8 scale bytes at `at` (low nibble first).
fn nibble_scale(b: &[u8], at: usize, g: usize) -> f32 {
    ((b[at + g / 2] >> (4 * (g % 2))) & 15) as f32
}

fn iq2_xs(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for g in 0..16 {
        let db = d * (0.5 + nibble_scale(b, 66, g)) * 0.25;
        for h in 0..2 {
            let k = 2 * g + h;
            let q = u16_at(b, 2 + 2 * k);
            put8(&mut o[8 * k..], db, IQ2XS_GRID[(q & 511) as usize], KSIGNS[(q >> 9) as usize]);
        }
    }
}

fn iq2_s(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for g in 0..16 {
        let db = d * (0.5 + nibble_scale(b, 74, g)) * 0.25;
        for h in 0..2 {
            let k = 2 * g + h;
            let hi = ((b[66 + k / 4] >> (2 * (k % 4))) & 3) as usize;
            let row = IQ2S_GRID[b[2 + k] as usize | (hi << 8)];
            put8(&mut o[8 * k..], db, row, b[34 + k]);
        }
    }
}

fn iq3_xxs(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let aux = u32_at(b, 66 + 4 * ib);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
        for l in 0..4 {
            let signs = KSIGNS[((aux >> (7 * l)) & 127) as usize];
            for h in 0..2 {
                let k = 8 * ib + 2 * l + h;
                put4(&mut o[4 * k..], db, IQ3XXS_GRID[b[2 + k] as usize], signs, 4 * h);
            }
        }
    }
}

fn iq3_s(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let s = (b[106 + ib / 2] >> (4 * (ib % 2))) & 15;
        let db = d * (1 + 2 * s) as f32;
        for k in 8 * ib..8 * ib + 8 {
            let hi = ((b[66 + k / 8] >> (k % 8)) & 1) as usize;
            let signs = b[74 + k / 2];
            put4(&mut o[4 * k..], db, IQ3S_GRID[b[2 + k] as usize | (hi << 8)], signs, 4 * (k % 2));
        }
    }
}

/// Eight values `dl · (grid + delta)` of an IQ1 grid row (i8 bytes -1/0/1).
fn put8_iq1(o: &mut [f32], dl: f32, delta: f32, row: u64) {
    for (i, v) in o.iter_mut().take(8).enumerate() {
        *v = dl * (((row >> (8 * i)) & 0xff) as u8 as i8 as f32 + delta);
    }
}

const IQ1_DELTA: f32 = 0.125;

fn iq1_s(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for ib in 0..8 {
        let qh = u16_at(b, 34 + 2 * ib);
        let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
        let delta = if qh & 0x8000 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
        for l in 0..4 {
            let idx = b[2 + 4 * ib + l] as usize | ((((qh >> (3 * l)) & 7) as usize) << 8);
            put8_iq1(&mut o[32 * ib + 8 * l..], dl, delta, IQ1S_GRID[idx]);
        }
    }
}

fn iq1_m(b: &[u8], o: &mut [f32]) {
    let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
    let bits = ((sc[0] & 0xf000) >> 12) | ((sc[1] & 0xf000) >> 8) | ((sc[2] & 0xf000) >> 4) | (sc[3] & 0xf000);
    let d = half::f16::from_bits(bits).to_f32();
    for g in 0..16 {
        // 3-bit scale of 16 values: word g / 4, bits 3·(g % 4)
        let s = (sc[g / 4] >> (3 * (g % 4))) & 7;
        let dl = d * (2 * s + 1) as f32;
        for h in 0..2 {
            let k = 2 * g + h;
            let nib = (b[32 + k / 2] >> (4 * (k % 2))) & 15;
            let idx = b[k] as usize | (((nib & 7) as usize) << 8);
            let delta = if nib & 8 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
            put8_iq1(&mut o[8 * k..], dl, delta, IQ1S_GRID[idx]);
        }
    }
}

fn iq4_nl(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for j in 0..32 {
        let q = if j < 16 { b[2 + j] & 15 } else { b[2 + j - 16] >> 4 };
        o[j] = d * KVALUES_IQ4[q as usize] as f32;
    }
}

fn iq4_xs(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let sh = u16_at(b, 2);
    for ib in 0..8 {
        let lo = (b[4 + ib / 2] >> (4 * (ib % 2))) & 15;
        let hi = ((sh >> (2 * ib)) & 3) as u8;
        let dl = d * ((lo | (hi << 4)) as i32 - 32) as f32;
        for j in 0..32 {
            let qb = b[8 + 16 * ib + j % 16];
            let q = if j < 16 { qb & 15 } else { qb >> 4 };
            o[32 * ib + j] = dl * KVALUES_IQ4[q as usize] as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every IQ2/IQ3 sign pattern has an even number of negatives (the 8th sign is the parity
    /// of the 7 stored), as llama.cpp's quantizer relies on.
    #[test]
    fn ksigns_have_even_parity() {
        for (i, &s) in KSIGNS.iter().enumerate() {
            assert_eq!(s & 127, i as u8);
            assert_eq!(s.count_ones() % 2, 0, "entry {i}");
        }
    }

    #[test]
    fn table_offsets_match_wgsl() {
        let w = table_words();
        let ends = [4096, 6144, 7168, 7680, 8192, 8448, 8464];
        let wgsl = include_str!("../../shaders/common/iq_tables.wgsl");
        for (i, (name, at)) in TABLE_AT.iter().enumerate() {
            assert!(wgsl.contains(&format!("const {name}_AT: u32 = {at}u;")), "{name} at {at}");
            assert!(at < &ends[i]);
        }
        assert_eq!(w.len(), 8464);
        assert_eq!(w[2 * 5 + 1], (IQ1S_GRID[5] >> 32) as u32);
        assert_eq!(w[4096 + 2 * 7], IQ2S_GRID[7] as u32);
        assert_eq!(w[8192 + 3], IQ3XXS_GRID[3]);
        assert_eq!(w[8448] as i32, -127);
        for i in 0..128u32 {
            assert_eq!(KSIGNS[i as usize] as u32, i | ((i.count_ones() & 1) << 7), "KSIGNS[{i}] is i with its parity bit");
        }
    }

    #[test]
    fn sizes_and_names() {
        for q in IQuant::ALL {
            assert_eq!(IQuant::from_ggml_name(&q.name().to_lowercase()), Some(q));
            assert_eq!(q.decode(&vec![0u8; 2 * q.block_bytes()]).len(), 2 * q.block_elems());
            assert_eq!(q.block_bytes() % 2, 0, "{q:?}: blocks start on even bytes");
        }
        assert_eq!(IQuant::from_ggml_name("Q4_K"), None);
    }
}
