//! `shaders/rmsnorm.wgsl`: RMSNorm over strided rows, optionally followed by RoPE on the
//! normalized row in the same dispatch (Qwen3's per-head q/k norms), or with a tail of the
//! row copied and rotated unnormalized (MLA's `c_kv ‖ k_pe` into the latent cache).

use crate::gpu::Recorder;
use crate::ops::rope::Pairs;
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    rows: u32,
    x_off: u32,
    x_stride: u32,
    o_off: u32,
    o_stride: u32,
    eps: f32,
    rope_half: u32,
    rows_per_pos: u32,
    pos0: u32,
    half_split: u32,
    tail: u32,
    rope_off: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

/// RoPE applied to each normalized row before it is written: row r is at position
/// `pos0 + r / rows_per_pos` (`rows_per_pos` = heads per token), its first `x.width` values
/// rotate in `pairs` with (cos, sin) from `table` ([`rope::table`](crate::ops::rope::table),
/// `x.width / 2` pairs per position).
#[derive(Clone, Copy)]
pub struct Rope<'a> {
    pub table: &'a wgpu::Buffer,
    pub rows_per_pos: usize,
    pub pos0: usize,
    pub pairs: Pairs,
}

pub(super) const KEY: Key = Key::plain("rmsnorm");

/// `out[r] = x[r] / rms(x[r]) · weight` for every row (`weight` holds `x.width` values).
pub fn run(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, x: Rows, out: Rows, eps: f32) {
    dispatch(rec, k, weight, x, out, eps, None, 0);
}

/// `out[r] = rope(x[r] / rms(x[r]) · weight)` at row r's position: [`run`] then
/// [`rope::run`](crate::ops::rope::run) on `out` in one dispatch.
pub fn run_rope(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, x: Rows, out: Rows, eps: f32, rope: Rope) {
    dispatch(rec, k, weight, x, out, eps, Some(rope), 0);
}

/// MLA's latent row in one dispatch: the first `weight`-length values of each row of `x`
/// normalized, the rest (`x.width` − n, the rope key) copied unnormalized and rotated, all
/// into `out` (the cache rows `c_kv ‖ k_pe`): [`run`] on the first part, then
/// [`copy_rows::run`](crate::ops::copy_rows::run) and [`rope::run`](crate::ops::rope::run)
/// on the tail, with the same f32 operations.
pub fn run_tail_rope(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, n: usize, x: Rows, out: Rows, eps: f32, rope: Rope) {
    debug_assert!(n < x.width);
    dispatch(rec, k, weight, x, out, eps, Some(rope), x.width - n);
}

#[allow(clippy::too_many_arguments)]
fn dispatch(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, x: Rows, out: Rows, eps: f32, rope: Option<Rope>, tail: usize) {
    let n = x.width - tail;
    // the rotated values: the normalized row's first ones, or the whole tail
    let (rope_off, rope_w) = if tail > 0 { (n, tail) } else { (0, x.width) };
    debug_assert!(x.width == out.width && x.rows == out.rows && (rope.is_none() || rope_w % 2 == 0));
    let p = Params {
        n: n as u32,
        rows: x.rows as u32,
        x_off: x.off as u32,
        x_stride: x.stride as u32,
        o_off: out.off as u32,
        o_stride: out.stride as u32,
        eps,
        rope_half: rope.map_or(0, |_| (rope_w / 2) as u32),
        rows_per_pos: rope.map_or(1, |r| r.rows_per_pos as u32),
        pos0: rope.map_or(0, |r| r.pos0 as u32),
        half_split: rope.is_some_and(|r| r.pairs == Pairs::HalfSplit) as u32,
        tail: tail as u32,
        rope_off: rope_off as u32,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let table = rope.map_or(&k.dummy, |r| r.table);
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[weight, x.buf, out.buf, table], [p.rows, 1, 1]);
}

pub fn reference(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let n = weight.len();
    x.chunks(n)
        .flat_map(|r| {
            let ms = r.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / n as f64;
            let inv = 1.0 / (ms + eps as f64).sqrt();
            r.iter().zip(weight).map(move |(v, w)| (*v as f64 * inv) as f32 * w).collect::<Vec<_>>()
        })
        .collect()
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, rows: u32, x_off: u32, x_stride: u32, o_off: u32, o_stride: u32, eps: f32, rope_half: u32, rows_per_pos: u32, pos0: u32, half_split: u32, tail: u32, rope_off: u32, _pad0: u32, _pad1: u32, _pad2: u32 })
}
