//! `shaders/rmsnorm.wgsl`: RMSNorm over strided rows.

use crate::gpu::Recorder;
use crate::ops::Kernels;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub n: u32,
    pub rows: u32,
    pub x_off: u32,
    pub x_stride: u32,
    pub o_off: u32,
    pub o_stride: u32,
    pub eps: f32,
    pub _pad: u32,
}

impl Params {
    /// Contiguous rows of width `n`.
    pub fn rows(n: usize, rows: usize, eps: f32) -> Self {
        Params { n: n as u32, rows: rows as u32, x_off: 0, x_stride: n as u32, o_off: 0, o_stride: n as u32, eps, _pad: 0 }
    }

    /// `rows` rows of width `n`: row r read at `x.0 + r·x.1`, written at `o.0 + r·o.1`.
    pub fn strided(n: usize, rows: usize, x: (usize, usize), o: (usize, usize), eps: f32) -> Self {
        Params { n: n as u32, rows: rows as u32, x_off: x.0 as u32, x_stride: x.1 as u32, o_off: o.0 as u32, o_stride: o.1 as u32, eps, _pad: 0 }
    }
}

pub fn dispatch(rec: &mut Recorder, k: &Kernels, p: &Params, weight: &wgpu::Buffer, x: &wgpu::Buffer, out: &wgpu::Buffer) {
    rec.dispatch(&k.rmsnorm, p, &[weight, x, out], [p.rows, 1, 1]);
}

pub fn reference(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let n = weight.len();
    x.chunks(n)
        .flat_map(|r| {
            let ms = r.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / n as f64;
            let inv = 1.0 / (ms + eps as f64).sqrt();
            r.iter().zip(weight).map(move |(v, w)| (*v as f64 * inv) as f32 * w).collect::<Vec<_>>()
        })
        .collect()
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, rows: u32, x_off: u32, x_stride: u32, o_off: u32, o_stride: u32, eps: f32, _pad: u32 })
}
