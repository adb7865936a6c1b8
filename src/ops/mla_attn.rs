//! `shaders/mla_attn.wgsl`: causal attention over the latent cache (absorbed MLA).

use crate::gpu::Recorder;
use crate::ops::mla_absorb::Heads;
use crate::ops::Kernels;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    heads: u32,
    kvl: u32,
    rope: u32,
    q_stride: u32,
    qk: u32,
    nope: u32,
    pos0: u32,
    scale: f32,
}

/// Queries for positions `pos0 .. pos0 + n_tok` attend to cache rows `0 ..= their position`.
#[allow(clippy::too_many_arguments)]
pub fn dispatch(rec: &mut Recorder, k: &Kernels, h: Heads, scale: f32, pos0: usize, n_tok: usize, q_lat: &wgpu::Buffer, q: &wgpu::Buffer, cache: &wgpu::Buffer, o_lat: &wgpu::Buffer) {
    let p = Params {
        heads: h.heads as u32,
        kvl: h.kvl as u32,
        rope: h.rope as u32,
        q_stride: (h.heads * (h.nope + h.rope)) as u32,
        qk: (h.nope + h.rope) as u32,
        nope: h.nope as u32,
        pos0: pos0 as u32,
        scale,
    };
    rec.dispatch(&k.mla_attn, &p, &[q_lat, q, cache, o_lat], [h.heads as u32, n_tok as u32, 1]);
}

pub fn reference(h: Heads, scale: f32, pos0: usize, n_tok: usize, q_lat: &[f32], q: &[f32], cache: &[f32]) -> Vec<f32> {
    let cd = h.kvl + h.rope;
    let qk = h.nope + h.rope;
    let mut out = vec![0.0; n_tok * h.heads * h.kvl];
    for t in 0..n_tok {
        for hh in 0..h.heads {
            let ql = &q_lat[(t * h.heads + hh) * h.kvl..][..h.kvl];
            let qp = &q[t * h.heads * qk + hh * qk + h.nope..][..h.rope];
            let n = pos0 + t + 1;
            let scores: Vec<f64> = (0..n)
                .map(|s| {
                    let row = &cache[s * cd..][..cd];
                    let d: f64 = ql.iter().zip(row).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()
                        + qp.iter().zip(&row[h.kvl..]).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
                    d * scale as f64
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..h.kvl {
                out[(t * h.heads + hh) * h.kvl + c] = (0..n).map(|s| e[s] / sum * cache[s * cd + c] as f64).sum::<f64>() as f32;
            }
        }
    }
    out
}
