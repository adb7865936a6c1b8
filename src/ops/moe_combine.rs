//! `shaders/moe_combine.wgsl`: gate-weighted sum of expert outputs into the residual.

use crate::gpu::Recorder;
use crate::ops::Kernels;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    hidden: u32,
    n_tok: u32,
    k: u32,
    _pad: u32,
}

pub fn dispatch(rec: &mut Recorder, k: &Kernels, hidden: usize, n_tok: usize, top_k: usize, wts: &wgpu::Buffer, eo: &wgpu::Buffer, x: &wgpu::Buffer) {
    let p = Params { hidden: hidden as u32, n_tok: n_tok as u32, k: top_k as u32, _pad: 0 };
    rec.dispatch(&k.moe_combine, &p, &[wts, eo, x], [(hidden as u32).div_ceil(64), n_tok as u32, 1]);
}

pub fn reference(x: &mut [f32], hidden: usize, top_k: usize, wts: &[f32], eo: &[f32]) {
    for (t, row) in x.chunks_mut(hidden).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v += (0..top_k).map(|k| wts[t * top_k + k] * eo[(t * top_k + k) * hidden + c]).sum::<f32>();
        }
    }
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { hidden: u32, n_tok: u32, k: u32, _pad: u32 })
}
