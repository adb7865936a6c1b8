//! `shaders/embed.wgsl`: embedding gather over a row-chunked table.

use crate::gpu::Recorder;
use crate::format::Format;
use crate::gpu::{Gpu, GpuError};
use crate::ops::{Key, Kernels, Rows};
use crate::tensor::Matrix;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    hidden: u32,
    n_tok: u32,
    r0: u32,
    rows: u32,
}

pub(super) fn pipeline(k: &Kernels, gpu: &Gpu, f: Format) -> Result<wgpu::ComputePipeline, GpuError> {
    let key = Key { format: Some(f), ..Key::plain("embed") };
    k.pipeline(gpu, key, || (super::with_weights(include_str!("../../shaders/embed.wgsl")), vec![]))
}

/// `out[t] = table[ids[t]]` for the `out.rows` ids; ids must be < table rows (checked when
/// they enter the engine).
pub fn run(rec: &mut Recorder, k: &Kernels, table: &Matrix, ids: &wgpu::Buffer, out: Rows) {
    debug_assert!(out.contiguous() && out.off == 0 && out.width == table.cols);
    for c in &table.chunks {
        let p = Params { hidden: table.cols as u32, n_tok: out.rows as u32, r0: c.r0 as u32, rows: c.rows as u32 };
        rec.dispatch_bound(pipeline(k, rec.gpu(), table.dtype), &p, &k.weights_bound(&[&c.buf, ids, out.buf]), [(table.cols as u32).div_ceil(64), out.rows as u32, 1]);
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
