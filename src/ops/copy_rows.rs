//! `shaders/copy_rows.wgsl`: strided row copy.

use crate::gpu::Recorder;
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    rows: u32,
    s_off: u32,
    s_stride: u32,
    d_off: u32,
    d_stride: u32,
    _pad: [u32; 2],
}

pub(super) const KEY: Key = Key::plain("copy_rows");

/// `dst[r] = src[r]` for every row.
pub fn run(rec: &mut Recorder, k: &Kernels, src: Rows, dst: Rows) {
    debug_assert!(src.width == dst.width && src.rows == dst.rows);
    let p = Params {
        n: src.width as u32,
        rows: src.rows as u32,
        s_off: src.off as u32,
        s_stride: src.stride as u32,
        d_off: dst.off as u32,
        d_stride: dst.stride as u32,
        _pad: [0; 2],
    };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[src.buf, dst.buf], [p.n.div_ceil(64), p.rows, 1]);
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, rows: u32, s_off: u32, s_stride: u32, d_off: u32, d_stride: u32, _pad: [u32; 2] })
}
