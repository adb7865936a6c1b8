//! `shaders/rope.wgsl`: RoPE on DeepSeek's interleaved pairs, plus the host-built cos/sin
//! table with transformers' YaRN frequencies and attention factor.

use crate::config::{yarn_get_mscale, ModelConfig};
use crate::gpu::Recorder;
use crate::ops::Kernels;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub n_tok: u32,
    pub heads: u32,
    pub half_dim: u32,
    pub row_stride: u32,
    pub head_stride: u32,
    pub off: u32,
    pub pos0: u32,
    pub _pad: u32,
}

impl Params {
    /// Rotate `heads` runs of `2·half_dim` values per token: token i's head j starts at
    /// `off + i·row_stride + j·head_stride`; token i is at position `pos0 + i`.
    pub fn new(n_tok: usize, heads: usize, half_dim: usize, row_stride: usize, head_stride: usize, off: usize, pos0: usize) -> Self {
        Params {
            n_tok: n_tok as u32,
            heads: heads as u32,
            half_dim: half_dim as u32,
            row_stride: row_stride as u32,
            head_stride: head_stride as u32,
            off: off as u32,
            pos0: pos0 as u32,
            _pad: 0,
        }
    }
}

pub fn dispatch(rec: &mut Recorder, k: &Kernels, p: &Params, table: &wgpu::Buffer, x: &wgpu::Buffer) {
    rec.dispatch(&k.rope, p, &[table, x], [(p.heads * p.half_dim).div_ceil(64), p.n_tok, 1]);
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

/// CPU reference, in place on one row of `heads` heads.
pub fn reference(x: &mut [f32], heads: usize, head_stride: usize, off: usize, cs: &[[f32; 2]]) {
    for h in 0..heads {
        for (i, c) in cs.iter().enumerate() {
            let k = h * head_stride + off + 2 * i;
            let (a, b) = (x[k], x[k + 1]);
            x[k] = a * c[0] - b * c[1];
            x[k + 1] = b * c[0] + a * c[1];
        }
    }
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n_tok: u32, heads: u32, half_dim: u32, row_stride: u32, head_stride: u32, off: u32, pos0: u32, _pad: u32 })
}
