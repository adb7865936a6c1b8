//! `shaders/moe_group.wgsl`: each expert's work items, listed expert by expert on the GPU
//! (the routing never comes back to the CPU), for the grouped expert GEMM of a prefill.

use crate::gpu::Recorder;
use crate::ops::{Key, Kernels};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_items: u32,
    n_exp: u32,
    _pad: [u32; 2],
}

/// Largest expert count the kernel lists.
pub const MAX_EXPERTS: usize = 1024;

/// u32 values `out` must hold: offsets, list and scratch.
pub fn out_len(n_items: usize, n_exp: usize) -> usize {
    n_exp + 1 + 2 * n_items
}

/// Where the item list starts in `out` (after the `n_exp + 1` offsets).
pub fn list_off(n_exp: usize) -> usize {
    n_exp + 1
}

pub(super) const KEY: Key = Key::plain("moe_group");

/// `ids` `[n_items]` → `out`: offsets `[n_exp + 1]`, then the items of each expert in turn.
pub fn run(rec: &mut Recorder, k: &Kernels, n_exp: usize, ids: &wgpu::Buffer, n_items: usize, out: &wgpu::Buffer) {
    debug_assert!(n_exp <= MAX_EXPERTS);
    let p = Params { n_items: n_items as u32, n_exp: n_exp as u32, _pad: [0; 2] };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[ids, out], [1, 1, 1]);
}

/// CPU reference: offsets and, per expert, its items in increasing order.
pub fn reference(ids: &[u32], n_exp: usize) -> (Vec<u32>, Vec<Vec<u32>>) {
    let mut lists = vec![Vec::new(); n_exp];
    for (i, &e) in ids.iter().enumerate() {
        lists[e as usize].push(i as u32);
    }
    let mut off = vec![0u32];
    for l in &lists {
        off.push(off.last().copied().unwrap_or(0) + l.len() as u32);
    }
    (off, lists)
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n_items: u32, n_exp: u32, _pad: [u32; 2] })
}
