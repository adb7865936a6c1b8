//! `shaders/swiglu.wgsl`: `gate = silu(gate) · up`, in place.

use crate::gpu::{grid, Recorder};
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    gx: u32,
    _pad: [u32; 2],
}

pub(super) const KEY: Key = Key::plain("swiglu");

/// `gate = silu(gate) · up`, in place, over contiguous rows of the same shape.
pub fn run(rec: &mut Recorder, k: &Kernels, up: Rows, gate: Rows) {
    debug_assert!(up.contiguous() && gate.contiguous() && up.off == 0 && gate.off == 0 && up.width * up.rows == gate.width * gate.rows);
    let n = gate.width * gate.rows;
    let [gx, gy] = grid((n as u32).div_ceil(64), 65535);
    rec.dispatch(k.plain(rec.gpu(), KEY), &Params { n: n as u32, gx, _pad: [0; 2] }, &[up.buf, gate.buf], [gx, gy, 1]);
}

pub fn reference(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect()
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, gx: u32, _pad: [u32; 2] })
}
