//! `shaders/rope.wgsl`: RoPE on DeepSeek's interleaved pairs or on the half-split pairs of
//! Qwen3/Llama (NeoX), plus the host-built cos/sin table with transformers' YaRN frequencies
//! and attention factor.

use crate::config::{yarn_get_mscale, ModelConfig};
use crate::gpu::Recorder;
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_tok: u32,
    heads: u32,
    half_dim: u32,
    row_stride: u32,
    head_stride: u32,
    off: u32,
    pos0: u32,
    half_split: u32,
}

/// Which values of a head's rotary part of width d form the pairs that rotate by frequency i.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairs {
    /// `(2i, 2i + 1)`: DeepSeek's checkpoints (transformers' `apply_rotary_pos_emb_interleave`).
    Interleaved,
    /// `(i, i + d/2)`: Qwen3, Llama (transformers' `rotate_half`, GPT-NeoX's layout).
    HalfSplit,
}

impl Pairs {
    /// The two indices, within the rotary part, of pair `i` of `half` pairs.
    fn at(self, i: usize, half: usize) -> (usize, usize) {
        match self {
            Pairs::Interleaved => (2 * i, 2 * i + 1),
            Pairs::HalfSplit => (i, i + half),
        }
    }
}

pub(super) const KEY: Key = Key::plain("rope");

/// Rotate, in place, `heads` runs of `x.width` values per row: row i's head j starts at
/// `x.off + i·x.stride + j·head_stride` and is at position `pos0 + i`. `table` is
/// [`table`]'s cos/sin rows; `pairs` says which values rotate together.
#[allow(clippy::too_many_arguments)]
pub fn run(rec: &mut Recorder, k: &Kernels, table: &wgpu::Buffer, x: Rows, heads: usize, head_stride: usize, pos0: usize, pairs: Pairs) {
    let p = Params {
        n_tok: x.rows as u32,
        heads: heads as u32,
        half_dim: (x.width / 2) as u32,
        row_stride: x.stride as u32,
        head_stride: head_stride as u32,
        off: x.off as u32,
        pos0: pos0 as u32,
        half_split: (pairs == Pairs::HalfSplit) as u32,
    };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[table, x.buf], [(p.heads * p.half_dim).div_ceil(64), p.n_tok, 1]);
}

/// Inverse frequencies and the cos/sin attention factor, as transformers'
/// `_compute_default_rope_parameters` / `_compute_yarn_parameters` compute them (f32).
pub fn inv_freq(cfg: &ModelConfig) -> (Vec<f32>, f32) {
    let dim = cfg.rope_dim;
    let base = cfg.rope_theta;
    let pos_freqs: Vec<f64> = (0..dim / 2).map(|i| base.powf((2 * i) as f64 / dim as f64)).collect();
    let Some(y) = &cfg.yarn else {
        return (pos_freqs.iter().map(|f| (1.0 / *f) as f32).collect(), 1.0);
    };
    let attention_factor = if y.mscale != 0.0 && y.mscale_all_dim != 0.0 {
        yarn_get_mscale(y.factor, y.mscale) / yarn_get_mscale(y.factor, y.mscale_all_dim)
    } else {
        yarn_get_mscale(y.factor, 1.0)
    };
    let orig = y.original_max_position_embeddings as f64;
    let corr_dim = |rot: f64| (dim as f64 * (orig / (rot * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * base.ln());
    let low = corr_dim(y.beta_fast).floor().max(0.0);
    let high = corr_dim(y.beta_slow).ceil().min(dim as f64 - 1.0);
    let high = if low == high { high + 0.001 } else { high };
    let inv: Vec<f32> = (0..dim / 2)
        .map(|i| {
            let interp = 1.0 / (y.factor * pos_freqs[i]);
            let extrap = 1.0 / pos_freqs[i];
            let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
            let extrap_factor = 1.0 - ramp;
            (interp * (1.0 - extrap_factor) + extrap * extrap_factor) as f32
        })
        .collect();
    (inv, attention_factor as f32)
}

/// `[positions][rope_dim / 2]` of (cos, sin) · attention factor, in f32 like transformers.
pub fn table(cfg: &ModelConfig, positions: usize) -> Vec<[f32; 2]> {
    let (inv, att) = inv_freq(cfg);
    let mut out = Vec::with_capacity(positions * inv.len());
    for p in 0..positions {
        for f in &inv {
            let a = (p as f32) * f;
            out.push([a.cos() * att, a.sin() * att]);
        }
    }
    out
}

/// CPU reference, in place on one row of `heads` heads; `cs` holds the rotary part's
/// `d / 2` (cos, sin) pairs at this row's position.
pub fn reference(x: &mut [f32], heads: usize, head_stride: usize, off: usize, cs: &[[f32; 2]], pairs: Pairs) {
    for h in 0..heads {
        for (i, c) in cs.iter().enumerate() {
            let (ia, ib) = pairs.at(i, cs.len());
            let (ka, kb) = (h * head_stride + off + ia, h * head_stride + off + ib);
            let (a, b) = (x[ka], x[kb]);
            x[ka] = a * c[0] - b * c[1];
            x[kb] = b * c[0] + a * c[1];
        }
    }
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n_tok: u32, heads: u32, half_dim: u32, row_stride: u32, head_stride: u32, off: u32, pos0: u32, half_split: u32 })
}
