//! `shaders/matmul.wgsl`: dense projections and routed-expert matmuls over chunked weights.

use crate::gpu::Recorder;
use crate::ops::Kernels;
use crate::tensor::Matrix;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    r0: u32,
    e0: u32,
    e1: u32,
    n_items: u32,
    slots: u32,
    use_ids: u32,
    x_off: u32,
    x_stride: u32,
    x_slot_stride: u32,
    y_off: u32,
    y_stride: u32,
    accum: u32,
    s_rows: u32,
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    _pad: [u32; 2],
}

/// Where the inputs come from and the outputs go, in f32 elements.
pub struct Args<'a> {
    pub x: &'a wgpu::Buffer,
    pub x_off: usize,
    /// stride between tokens
    pub x_stride: usize,
    /// stride between slots of one token (0: all slots read the token's row)
    pub x_slot_stride: usize,
    pub y: &'a wgpu::Buffer,
    pub y_off: usize,
    /// stride between work items (token · slots + slot)
    pub y_stride: usize,
    pub n_tok: usize,
    pub slots: usize,
    /// expert of each item, `[n_tok][slots]`; `None` for a single matrix
    pub ids: Option<&'a wgpu::Buffer>,
    /// add into y instead of overwriting it (residual connections)
    pub accum: bool,
}

impl<'a> Args<'a> {
    /// `y[t] = W x[t]` for rows of width `m.cols` in `x` and `m.rows` in `y`.
    pub fn dense(x: &'a wgpu::Buffer, y: &'a wgpu::Buffer, m: &Matrix, n_tok: usize) -> Self {
        Args { x, x_off: 0, x_stride: m.cols, x_slot_stride: 0, y, y_off: 0, y_stride: m.rows, n_tok, slots: 1, ids: None, accum: false }
    }
}

pub fn dispatch(rec: &mut Recorder, k: &Kernels, m: &Matrix, a: &Args) {
    let n_items = (a.n_tok * a.slots) as u32;
    let (scale_buf, s_rows, s_cols, blk) = match &m.scale {
        Some(s) => (&s.buf, s.s_rows, s.s_cols, s.block),
        None => (&k.dummy, 1, 1, [1, 1]),
    };
    for c in &m.chunks {
        let p = Params {
            rows: c.rows as u32,
            cols: m.cols as u32,
            r0: c.r0 as u32,
            e0: c.e0 as u32,
            e1: c.e1 as u32,
            n_items,
            slots: a.slots as u32,
            use_ids: a.ids.is_some() as u32,
            x_off: a.x_off as u32,
            x_stride: a.x_stride as u32,
            x_slot_stride: a.x_slot_stride as u32,
            y_off: a.y_off as u32,
            y_stride: a.y_stride as u32,
            accum: a.accum as u32,
            s_rows: s_rows as u32,
            s_cols: s_cols as u32,
            blk_r: blk[0] as u32,
            blk_c: blk[1] as u32,
            _pad: [0; 2],
        };
        let ids = a.ids.unwrap_or(&k.dummy);
        rec.dispatch(k.matmul.get(m.dtype), &p, &[&c.buf, scale_buf, a.x, ids, a.y], [(c.rows as u32).div_ceil(4), n_items, 1]);
    }
}

/// CPU reference: `w` is the dequantised stack `[n_mats][rows][cols]`; returns
/// `y[item][rows]` for items `t · slots + s` reading `x[t · x_stride + s · x_slot_stride ..]`.
pub fn reference(w: &[f32], rows: usize, cols: usize, x: &[f32], x_stride: usize, x_slot_stride: usize, n_tok: usize, slots: usize, ids: Option<&[u32]>) -> Vec<f32> {
    let mut y = vec![0.0; n_tok * slots * rows];
    for t in 0..n_tok {
        for s in 0..slots {
            let item = t * slots + s;
            let e = ids.map_or(0, |i| i[item] as usize);
            for r in 0..rows {
                let wr = &w[(e * rows + r) * cols..][..cols];
                let xr = &x[t * x_stride + s * x_slot_stride..][..cols];
                y[item * rows + r] = wr.iter().zip(xr).map(|(a, b)| (*a as f64) * (*b as f64)).sum::<f64>() as f32;
            }
        }
    }
    y
}
