//! `shaders/rmsnorm.wgsl`: RMSNorm over strided rows.

use crate::gpu::Recorder;
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    rows: u32,
    x_off: u32,
    x_stride: u32,
    o_off: u32,
    o_stride: u32,
    eps: f32,
    _pad: u32,
}

pub(super) const KEY: Key = Key::plain("rmsnorm");

/// `out[r] = x[r] / rms(x[r]) · weight` for every row (`weight` holds `x.width` values).
pub fn run(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, x: Rows, out: Rows, eps: f32) {
    debug_assert!(x.width == out.width && x.rows == out.rows);
    let p = Params {
        n: x.width as u32,
        rows: x.rows as u32,
        x_off: x.off as u32,
        x_stride: x.stride as u32,
        o_off: out.off as u32,
        o_stride: out.stride as u32,
        eps,
        _pad: 0,
    };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[weight, x.buf, out.buf], [p.rows, 1, 1]);
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
