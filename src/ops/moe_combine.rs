//! `shaders/moe_combine.wgsl`: gate-weighted sum of expert outputs into the residual.

use crate::gpu::Recorder;
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    hidden: u32,
    n_tok: u32,
    k: u32,
    _pad: u32,
}

pub(super) const KEY: Key = Key::plain("moe_combine");

/// `x[t] += Σ_s wts[t][s] · eo[t·k + s]`: `wts` `[n_tok][k]`, the experts' outputs `eo`
/// `[n_tok·k][hidden]`, all contiguous.
pub fn run(rec: &mut Recorder, k: &Kernels, wts: Rows, eo: Rows, x: Rows) {
    let (hidden, n_tok, top_k) = (x.width, x.rows, wts.width);
    debug_assert!(x.contiguous() && x.off == 0 && eo.contiguous() && eo.rows == n_tok * top_k && eo.width == hidden && wts.rows == n_tok);
    let p = Params { hidden: hidden as u32, n_tok: n_tok as u32, k: top_k as u32, _pad: 0 };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[wts.buf, eo.buf, x.buf], [(hidden as u32).div_ceil(64), n_tok as u32, 1]);
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
