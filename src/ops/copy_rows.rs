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
