//! Weight formats: the one enum that the checkpoint reader, the GPU tensors and the kernels
//! share, with the size arithmetic, the CPU reference decode and the value the shaders'
//! `WDT` override takes. The WGSL decode of each format lives in `shaders/common/`: the float
//! formats in `formats.wgsl` (scalar and 16-byte-word forms, used by every kernel), GGUF's
//! block formats in `weights.wgsl` (they read bytes of the packed weights, which only the
//! element-gathering kernels bind as `array<u32>`).
//!
//! A format stores values in fixed-size blocks along a row: `block_elems` values in
//! `block_bytes` bytes (1 value per block for the float types; GGUF's block types store 32
//! or 256 with their scales inside the block, see [`blocks`]). Formats with an external block
//! scale (FP8's `weight_scale_inv`) say so through [`Format::external_scale`].
//!
//! Adding a format: one arm here (sizes, name, decode), one decode in the shaders and, for a
//! float format, the kernels' `switch WDT` arms that read whole words of it.

pub mod blocks;
pub mod iq_tables;
pub mod iquants;
pub mod quantize;

use iquants::IQuant;

#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    F32,
    BF16,
    F16,
    /// E4M3 "fn" (bias 7, no infinities, 0x7f/0xff NaN), with a separate f32 block scale
    F8E4M3,
    /// GGUF/ggml block formats (layouts in [`blocks`]): 32 values per block ...
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    /// ... and the K-quants, 256 values per block (super-block of 8 or 16 sub-blocks).
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    /// ... and the i-quants (layouts and CPU decode in [`iquants`]), 256 values per block
    /// except IQ4_NL's 32; their values come from lookup tables (grids of 8 or 4 levels, sign
    /// patterns, IQ4's 16 levels) that the shaders read from a storage buffer
    /// (`shaders/common/iq_tables.wgsl`).
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

impl Format {
    /// Every format, in `wgsl_id` order.
    pub const ALL: [Format; 23] = [
        Format::F32,
        Format::BF16,
        Format::F16,
        Format::F8E4M3,
        Format::Q8_0,
        Format::Q4_0,
        Format::Q4_1,
        Format::Q5_0,
        Format::Q5_1,
        Format::Q2_K,
        Format::Q3_K,
        Format::Q4_K,
        Format::Q5_K,
        Format::Q6_K,
        Format::IQ1_S,
        Format::IQ1_M,
        Format::IQ2_XXS,
        Format::IQ2_XS,
        Format::IQ2_S,
        Format::IQ3_XXS,
        Format::IQ3_S,
        Format::IQ4_NL,
        Format::IQ4_XS,
    ];

    /// The formats a safetensors checkpoint can hold.
    pub const SAFETENSORS: [Format; 4] = [Format::F32, Format::BF16, Format::F16, Format::F8E4M3];

    /// Values per block.
    pub fn block_elems(self) -> usize {
        match self {
            Format::F32 | Format::BF16 | Format::F16 | Format::F8E4M3 => 1,
            Format::Q8_0 | Format::Q4_0 | Format::Q4_1 | Format::Q5_0 | Format::Q5_1 => 32,
            Format::Q2_K | Format::Q3_K | Format::Q4_K | Format::Q5_K | Format::Q6_K => 256,
            _ => self.iquant().map_or(1, IQuant::block_elems),
        }
    }

    /// Bytes per block (ggml's `type_size`, gguf-py's `GGML_QUANT_SIZES`).
    pub fn block_bytes(self) -> usize {
        match self {
            Format::F32 => 4,
            Format::BF16 | Format::F16 => 2,
            Format::F8E4M3 => 1,
            Format::Q8_0 => 34,  // d, 32 × i8
            Format::Q4_0 => 18,  // d, 32 × 4 bits
            Format::Q4_1 => 20,  // d, m, 32 × 4 bits
            Format::Q5_0 => 22,  // d, 32 high bits, 32 × 4 bits
            Format::Q5_1 => 24,  // d, m, 32 high bits, 32 × 4 bits
            Format::Q2_K => 84,  // 16 scale/min bytes, 256 × 2 bits, d, dmin
            Format::Q3_K => 110, // 256 high bits, 256 × 2 bits, 12 scale bytes, d
            Format::Q4_K => 144, // d, dmin, 12 scale/min bytes, 256 × 4 bits
            Format::Q5_K => 176, // d, dmin, 12 scale/min bytes, 256 high bits, 256 × 4 bits
            Format::Q6_K => 210, // 256 × 4 bits, 256 × 2 bits, 16 × i8 scales, d
            _ => self.iquant().map_or(1, IQuant::block_bytes),
        }
    }

    /// A block format (GGUF's): several values per block, scales inside the block.
    pub fn is_block(self) -> bool {
        self.block_elems() > 1
    }

    /// Bytes of `n` values, or `None` when `n` is not a whole number of blocks or overflows.
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        if n % self.block_elems() != 0 {
            return None;
        }
        (n / self.block_elems()).checked_mul(self.block_bytes())
    }

    /// Bytes of `n` values rounded up to whole blocks (for size estimates).
    pub fn size_of(self, n: usize) -> usize {
        n.div_ceil(self.block_elems()).saturating_mul(self.block_bytes())
    }

    /// Values in one 16-byte word (the unit the fast kernels load): 4, 8 or 16 for the float
    /// formats. Meaningless for block formats (a word holds no whole number of their values;
    /// their fast kernels walk 256-value steps instead, see `shaders/matvec_blocks.wgsl`): 0.
    pub fn word_elems(self) -> usize {
        if self.is_block() {
            return 0;
        }
        16 / self.block_bytes()
    }

    /// The weights carry a separate per-block scale tensor (FP8's `*_scale_inv`). GGUF's block
    /// formats keep their scales inside each block: false.
    pub fn external_scale(self) -> bool {
        self == Format::F8E4M3
    }

    /// The value of the shaders' `override WDT` (see `shaders/common/formats.wgsl`): the
    /// position in [`Format::ALL`].
    pub fn wgsl_id(self) -> u32 {
        match self {
            Format::F32 => 0,
            Format::BF16 => 1,
            Format::F16 => 2,
            Format::F8E4M3 => 3,
            Format::Q8_0 => 4,
            Format::Q4_0 => 5,
            Format::Q4_1 => 6,
            Format::Q5_0 => 7,
            Format::Q5_1 => 8,
            Format::Q2_K => 9,
            Format::Q3_K => 10,
            Format::Q4_K => 11,
            Format::Q5_K => 12,
            Format::Q6_K => 13,
            Format::IQ1_S => 14,
            Format::IQ1_M => 15,
            Format::IQ2_XXS => 16,
            Format::IQ2_XS => 17,
            Format::IQ2_S => 18,
            Format::IQ3_XXS => 19,
            Format::IQ3_S => 20,
            Format::IQ4_NL => 21,
            Format::IQ4_XS => 22,
        }
    }

    /// The safetensors spelling for the float formats, GGUF's (`GGMLQuantizationType`'s) for
    /// the block formats.
    pub fn name(self) -> &'static str {
        match self {
            Format::F32 => "F32",
            Format::BF16 => "BF16",
            Format::F16 => "F16",
            Format::F8E4M3 => "F8_E4M3",
            Format::Q8_0 => "Q8_0",
            Format::Q4_0 => "Q4_0",
            Format::Q4_1 => "Q4_1",
            Format::Q5_0 => "Q5_0",
            Format::Q5_1 => "Q5_1",
            Format::Q2_K => "Q2_K",
            Format::Q3_K => "Q3_K",
            Format::Q4_K => "Q4_K",
            Format::Q5_K => "Q5_K",
            Format::Q6_K => "Q6_K",
            _ => self.iquant().map_or("", IQuant::name),
        }
    }

    /// The i-quant this format is, if it is one.
    pub fn iquant(self) -> Option<IQuant> {
        Some(match self {
            Format::IQ1_S => IQuant::IQ1_S,
            Format::IQ1_M => IQuant::IQ1_M,
            Format::IQ2_XXS => IQuant::IQ2_XXS,
            Format::IQ2_XS => IQuant::IQ2_XS,
            Format::IQ2_S => IQuant::IQ2_S,
            Format::IQ3_XXS => IQuant::IQ3_XXS,
            Format::IQ3_S => IQuant::IQ3_S,
            Format::IQ4_NL => IQuant::IQ4_NL,
            Format::IQ4_XS => IQuant::IQ4_XS,
            _ => return None,
        })
    }

    /// A safetensors dtype (`F32`, `BF16`, `F16`, `F8_E4M3`); block formats are not one.
    pub fn from_safetensors(s: &str) -> Option<Self> {
        Self::SAFETENSORS.into_iter().find(|f| f.name() == s)
    }

    /// A ggml tensor type by name, as gguf-py's `GGMLQuantizationType` spells it (`F32`, `F16`,
    /// `BF16`, `Q8_0`, `Q4_K`, ...) or ggml's `ggml_type_name` does (`f16`, `q4_K`): ASCII case
    /// is ignored. `None` for the ggml types the engine does not read (Q8_1, Q8_K, TQ*,
    /// MXFP4, integer types, ...).
    pub fn from_ggml_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().filter(|&f| f != Format::F8E4M3).find(|f| f.name().eq_ignore_ascii_case(s))
    }

    /// CPU reference decode of whole blocks (`bytes.len()` a multiple of `block_bytes`), without
    /// any external block scale. Block formats decode as gguf-py's `quants.dequantize` (and
    /// llama.cpp's `dequantize_row_*`) do, bit for bit: see [`blocks::decode`].
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        debug_assert!(bytes.len() % self.block_bytes() == 0, "{}: {} bytes are not whole blocks", self.name(), bytes.len());
        match self {
            Format::F32 => bytemuck::pod_collect_to_vec(bytes),
            Format::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Format::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Format::F8E4M3 => bytes.iter().map(|&b| fp8_e4m3_to_f32(b)).collect(),
            _ => match self.iquant() {
                Some(q) => q.decode(bytes),
                None => blocks::decode(self, bytes),
            },
        }
    }
}

/// E4M3 "fn" to f32: no infinities, 0x7f/0xff are NaN.
pub fn fp8_e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = ((b >> 3) & 0xf) as i32;
    let m = (b & 7) as f32;
    if e == 15 && (b & 7) == 7 {
        return f32::NAN;
    }
    let v = if e == 0 { m / 8.0 * 2f32.powi(-6) } else { (1.0 + m / 8.0) * 2f32.powi(e - 7) };
    sign * v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        for (i, f) in Format::ALL.into_iter().enumerate() {
            assert_eq!(f.wgsl_id(), i as u32);
            let be = f.block_elems();
            assert_eq!(f.bytes_for(6 * be), Some(6 * f.block_bytes()));
            assert_eq!(f.size_of(5 * be + 1), 6 * f.block_bytes());
            assert_eq!(f.decode(&vec![0u8; f.block_bytes() * 3]), vec![0.0; 3 * be]);
            if f.is_block() {
                assert_eq!(f.bytes_for(be + 1), None);
                assert_eq!(f.block_bytes() % 2, 0, "{f:?}: blocks must start on even bytes (the shaders read f16 scales as u16)");
                assert_eq!(f.word_elems(), 0);
                assert!(!f.external_scale());
                assert_eq!(Format::from_safetensors(f.name()), None);
            } else {
                assert_eq!(f.word_elems() * f.block_bytes(), 16 * f.block_elems());
                assert_eq!(Format::from_safetensors(f.name()), Some(f));
            }
        }
        assert_eq!(Format::from_safetensors("I8"), None);
        assert_eq!(Format::F32.bytes_for(usize::MAX), None);
        // gguf-py's GGML_QUANT_SIZES
        let sizes: Vec<(usize, usize)> = Format::ALL[4..].iter().map(|f| (f.block_elems(), f.block_bytes())).collect();
        assert_eq!(
            sizes,
            [
                (32, 34),
                (32, 18),
                (32, 20),
                (32, 22),
                (32, 24),
                (256, 84),
                (256, 110),
                (256, 144),
                (256, 176),
                (256, 210),
                (256, 50),
                (256, 56),
                (256, 66),
                (256, 74),
                (256, 82),
                (256, 98),
                (256, 110),
                (32, 18),
                (256, 136)
            ]
        );
    }

    #[test]
    fn ggml_names() {
        for f in Format::ALL {
            let want = (f != Format::F8E4M3).then_some(f);
            assert_eq!(Format::from_ggml_name(f.name()), want, "{f:?}");
            assert_eq!(Format::from_ggml_name(&f.name().to_lowercase()), want, "{f:?}");
        }
        assert_eq!(Format::from_ggml_name("q4_K"), Some(Format::Q4_K));
        assert_eq!(Format::from_ggml_name("iq2_xxs"), Some(Format::IQ2_XXS));
        for other in ["Q8_1", "Q8_K", "TQ1_0", "MXFP4", "I8", "F64", "F8_E4M3", ""] {
            assert_eq!(Format::from_ggml_name(other), None, "{other}");
        }
    }

    #[test]
    fn fp8_values() {
        assert_eq!(fp8_e4m3_to_f32(0x38), 1.0);
        assert_eq!(fp8_e4m3_to_f32(0x7e), 448.0);
        assert_eq!(fp8_e4m3_to_f32(0xb8), -1.0);
        assert_eq!(fp8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert!(fp8_e4m3_to_f32(0x7f).is_nan() && fp8_e4m3_to_f32(0xff).is_nan());
    }
}
