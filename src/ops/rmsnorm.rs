//! `shaders/rmsnorm.wgsl`: RMSNorm over strided rows, optionally followed by RoPE on the
//! normalized row in the same dispatch (Qwen3's per-head q/k norms).

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
    _pad: u32,
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
    dispatch(rec, k, weight, x, out, eps, None);
}

/// `out[r] = rope(x[r] / rms(x[r]) · weight)` at row r's position: [`run`] then
/// [`rope::run`](crate::ops::rope::run) on `out` in one dispatch.
pub fn run_rope(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, x: Rows, out: Rows, eps: f32, rope: Rope) {
    dispatch(rec, k, weight, x, out, eps, Some(rope));
}

fn dispatch(rec: &mut Recorder, k: &Kernels, weight: &wgpu::Buffer, x: Rows, out: Rows, eps: f32, rope: Option<Rope>) {
    debug_assert!(x.width == out.width && x.rows == out.rows && (rope.is_none() || x.width % 2 == 0));
    let p = Params {
        n: x.width as u32,
        rows: x.rows as u32,
        x_off: x.off as u32,
        x_stride: x.stride as u32,
        o_off: out.off as u32,
        o_stride: out.stride as u32,
        eps,
        rope_half: rope.map_or(0, |_| (x.width / 2) as u32),
        rows_per_pos: rope.map_or(1, |r| r.rows_per_pos as u32),
        pos0: rope.map_or(0, |r| r.pos0 as u32),
        half_split: rope.is_some_and(|r| r.pairs == Pairs::HalfSplit) as u32,
        _pad: 0,
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
    super::layout!(Params { n: u32, rows: u32, x_off: u32, x_stride: u32, o_off: u32, o_stride: u32, eps: f32, rope_half: u32, rows_per_pos: u32, pos0: u32, half_split: u32, _pad: u32 })
}
