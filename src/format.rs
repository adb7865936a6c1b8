//! Weight formats: the one enum that the checkpoint reader, the GPU tensors and the kernels
//! share, with the size arithmetic, the CPU reference decode and the value the shaders'
//! `WDT` override takes. The WGSL decode of each format lives in
//! `shaders/common/formats.wgsl` (one function per format, used by every kernel).
//!
//! A format stores values in fixed-size blocks along a row: `block_elems` values in
//! `block_bytes` bytes (1 value per block for the float types today; GGUF's block types
//! store 32 or 256). Formats with an external block scale (FP8's `weight_scale_inv`) say so
//! through [`Format::external_scale`].
//!
//! Adding a format: one arm here (sizes, name, decode), one decode in `formats.wgsl`, and the
//! kernels' `switch WDT` arms that read whole words of it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    F32,
    BF16,
    F16,
    /// E4M3 "fn" (bias 7, no infinities, 0x7f/0xff NaN), with a separate f32 block scale
    F8E4M3,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::F32, Format::BF16, Format::F16, Format::F8E4M3];

    /// Values per block.
    pub fn block_elems(self) -> usize {
        1
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Format::F32 => 4,
            Format::BF16 | Format::F16 => 2,
            Format::F8E4M3 => 1,
        }
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

    /// Values in one 16-byte word (the unit the fast kernels load).
    pub fn word_elems(self) -> usize {
        16 * self.block_elems() / self.block_bytes()
    }

    /// The weights carry a separate per-block scale tensor (FP8's `*_scale_inv`).
    pub fn external_scale(self) -> bool {
        self == Format::F8E4M3
    }

    /// The value of the shaders' `override WDT` (see `shaders/common/formats.wgsl`).
    pub fn wgsl_id(self) -> u32 {
        match self {
            Format::F32 => 0,
            Format::BF16 => 1,
            Format::F16 => 2,
            Format::F8E4M3 => 3,
        }
    }

    /// The safetensors spelling.
    pub fn name(self) -> &'static str {
        match self {
            Format::F32 => "F32",
            Format::BF16 => "BF16",
            Format::F16 => "F16",
            Format::F8E4M3 => "F8_E4M3",
        }
    }

    pub fn from_safetensors(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// CPU reference decode of whole blocks (`bytes.len()` a multiple of `block_bytes`), without
    /// any external block scale.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Format::F32 => bytemuck::pod_collect_to_vec(bytes),
            Format::BF16 => bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Format::F16 => bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Format::F8E4M3 => bytes.iter().map(|&b| fp8_e4m3_to_f32(b)).collect(),
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
        for f in Format::ALL {
            assert_eq!(Format::from_safetensors(f.name()), Some(f));
            assert_eq!(f.word_elems() * f.block_bytes(), 16 * f.block_elems());
            assert_eq!(f.bytes_for(6), Some(6 * f.block_bytes()));
            assert_eq!(f.decode(&vec![0u8; f.block_bytes() * 3]), vec![0.0; 3]);
        }
        assert_eq!(Format::from_safetensors("I8"), None);
        assert_eq!(Format::F32.bytes_for(usize::MAX), None);
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
