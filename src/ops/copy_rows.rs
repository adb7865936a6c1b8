//! `shaders/copy_rows.wgsl`: strided row copy.

use crate::gpu::Recorder;
use crate::ops::Kernels;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub n: u32,
    pub rows: u32,
    pub s_off: u32,
    pub s_stride: u32,
    pub d_off: u32,
    pub d_stride: u32,
    pub _pad: [u32; 2],
}

pub fn dispatch(rec: &mut Recorder, k: &Kernels, p: &Params, src: &wgpu::Buffer, dst: &wgpu::Buffer) {
    rec.dispatch(&k.copy_rows, p, &[src, dst], [p.n.div_ceil(64), p.rows, 1]);
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, rows: u32, s_off: u32, s_stride: u32, d_off: u32, d_stride: u32, _pad: [u32; 2] })
}
