//! `shaders/embed.wgsl`: embedding gather over a row-chunked table.

use crate::gpu::Recorder;
use crate::ops::Kernels;
use crate::tensor::Matrix;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    hidden: u32,
    n_tok: u32,
    r0: u32,
    rows: u32,
}

/// `out[t] = table[ids[t]]`; ids must be < table rows (checked by the caller).
pub fn dispatch(rec: &mut Recorder, k: &Kernels, table: &Matrix, ids: &wgpu::Buffer, out: &wgpu::Buffer, n_tok: usize) {
    for c in &table.chunks {
        let p = Params { hidden: table.cols as u32, n_tok: n_tok as u32, r0: c.r0 as u32, rows: c.rows as u32 };
        rec.dispatch(k.embed.get(table.dtype), &p, &[&c.buf, ids, out], [(table.cols as u32).div_ceil(64), n_tok as u32, 1]);
    }
}

pub fn reference(table: &[f32], hidden: usize, ids: &[u32]) -> Vec<f32> {
    ids.iter().flat_map(|&i| table[i as usize * hidden..][..hidden].iter().copied()).collect()
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { hidden: u32, n_tok: u32, r0: u32, rows: u32 })
}
