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

impl Params {
    /// `rows` rows of `n` values: row r from `src.0 + r·src.1` to `dst.0 + r·dst.1`.
    pub fn new(n: usize, rows: usize, src: (usize, usize), dst: (usize, usize)) -> Self {
        Params { n: n as u32, rows: rows as u32, s_off: src.0 as u32, s_stride: src.1 as u32, d_off: dst.0 as u32, d_stride: dst.1 as u32, _pad: [0; 2] }
    }
}

pub fn dispatch(rec: &mut Recorder, k: &Kernels, p: &Params, src: &wgpu::Buffer, dst: &wgpu::Buffer) {
    rec.dispatch(&k.copy_rows, p, &[src, dst], [p.n.div_ceil(64), p.rows, 1]);
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, rows: u32, s_off: u32, s_stride: u32, d_off: u32, d_stride: u32, _pad: [u32; 2] })
}
