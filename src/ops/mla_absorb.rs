//! `shaders/mla_absorb.wgsl`: per-head products with kv_b_proj (W_UK absorbed into the query,
//! W_UV applied to the latent attention output).

use crate::gpu::Recorder;
use crate::ops::matmul::{self, Args};
use crate::format::Format;
use crate::ops::Kernels;
use crate::tensor::{MatChunk, Matrix};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub heads: u32,
    pub nope: u32,
    pub v: u32,
    pub kvl: u32,
    pub q_stride: u32,
    pub qk: u32,
    pub s_cols: u32,
    pub blk_r: u32,
    pub blk_c: u32,
    pub n_tok: u32,
    pub _pad: [u32; 2],
}

/// MLA head shape.
#[derive(Clone, Copy)]
pub struct Heads {
    pub heads: usize,
    pub nope: usize,
    pub rope: usize,
    pub v: usize,
    pub kvl: usize,
}

fn params(kv_b: &Matrix, h: Heads, n_tok: usize) -> Params {
    let (s_cols, blk) = kv_b.scale.as_ref().map_or((1, [1, 1]), |s| (s.s_cols, s.block));
    Params {
        heads: h.heads as u32,
        nope: h.nope as u32,
        v: h.v as u32,
        kvl: h.kvl as u32,
        q_stride: (h.heads * (h.nope + h.rope)) as u32,
        qk: (h.nope + h.rope) as u32,
        s_cols: s_cols as u32,
        blk_r: blk[0] as u32,
        blk_c: blk[1] as u32,
        n_tok: n_tok as u32,
        _pad: [0; 2],
    }
}

/// `q_lat[t][h] = W_UK_hᵀ q_nope[t][h]`. kv_b must be a single chunk (checked at load).
pub fn q_absorb(rec: &mut Recorder, k: &Kernels, kv_b: &Matrix, h: Heads, q: &wgpu::Buffer, q_lat: &wgpu::Buffer, n_tok: usize) {
    if let Some(uk_t) = transposed_uk(rec, k, kv_b, h) {
        // Heads as experts of a pool [H][kvl][nope]: item t·H + h reads q_nope of head h.
        let a = Args {
            x: q,
            x_off: 0,
            x_stride: h.heads * (h.nope + h.rope),
            x_slot_stride: h.nope + h.rope,
            y: q_lat,
            y_off: 0,
            y_stride: h.kvl,
            n_tok,
            slots: h.heads,
            ids: None,
            accum: false,
        };
        let view = matmul::HeadBlocks { heads: h.heads, rows: h.kvl, e_rows: h.kvl, row_base: 0 };
        if matmul::per_head(rec, k, &uk_t, view, &a) {
            return;
        }
    }
    let scale = kv_b.scale.as_ref().map_or(&k.dummy, |s| &s.buf);
    let p = params(kv_b, h, n_tok);
    rec.dispatch(k.q_absorb.get(kv_b.dtype), &p, &[&kv_b.chunks[0].buf, scale, q, q_lat], [(h.kvl as u32).div_ceil(64), h.heads as u32, n_tok as u32]);
}

/// `o[t][h] = W_UV_h o_lat[t][h]`.
pub fn v_up(rec: &mut Recorder, k: &Kernels, kv_b: &Matrix, h: Heads, o_lat: &wgpu::Buffer, o: &wgpu::Buffer, n_tok: usize) {
    if kv_b.dtype != Format::F8E4M3 {
        // W_UV_h is rows nope .. nope + v of head h's block of nope + v rows.
        let a = Args {
            x: o_lat,
            x_off: 0,
            x_stride: h.heads * h.kvl,
            x_slot_stride: h.kvl,
            y: o,
            y_off: 0,
            y_stride: h.v,
            n_tok,
            slots: h.heads,
            ids: None,
            accum: false,
        };
        let view = matmul::HeadBlocks { heads: h.heads, rows: h.v, e_rows: h.nope + h.v, row_base: h.nope };
        if matmul::per_head(rec, k, kv_b, view, &a) {
            return;
        }
    }
    let scale = kv_b.scale.as_ref().map_or(&k.dummy, |s| &s.buf);
    let p = params(kv_b, h, n_tok);
    rec.dispatch(k.v_up.get(kv_b.dtype), &p, &[&kv_b.chunks[0].buf, scale, o_lat, o], [(h.v as u32).div_ceil(64), h.heads as u32, n_tok as u32]);
}

/// W_UK of every head transposed to a pool `[H][kvl][nope]` in kv_b's dtype, made on the GPU
/// the first time (the transpose is recorded ahead of its first use) and kept. None for FP8
/// (its block scales would need transposing too) and odd nope.
fn transposed_uk(rec: &mut Recorder, k: &Kernels, kv_b: &Matrix, h: Heads) -> Option<Matrix> {
    if kv_b.dtype == Format::F8E4M3 || h.nope % 2 != 0 {
        return None;
    }
    let src = &kv_b.chunks[0].buf;
    let esize = kv_b.dtype.block_bytes();
    let name = format!("{} W_UK transposed", kv_b.name);
    let buf = {
        let mut d = k.derived.lock().unwrap_or_else(|e| e.into_inner());
        match d.get(src) {
            Some(b) => b.clone(),
            None => {
                let b = rec.gpu().storage(&name, (h.heads * h.kvl * h.nope * esize) as u64);
                let per = if esize == 2 { 2 } else { 1 };
                let words = (h.kvl * h.nope / per) as u32;
                rec.dispatch_bound(k.transpose_uk.get(kv_b.dtype), &params(kv_b, h, 0), &[(1, src), (5, &b)], [words.div_ceil(64), h.heads as u32, 1]);
                d.insert(src.clone(), b.clone());
                b
            }
        }
    };
    Some(Matrix {
        name,
        dtype: kv_b.dtype,
        n_mats: h.heads,
        rows: h.kvl,
        cols: h.nope,
        chunks: vec![MatChunk { buf, e0: 0, e1: h.heads, r0: 0, rows: h.kvl }],
        scale: None,
    })
}

/// CPU references over the dequantised kv_b `[H·(nope+v)][kvl]`.
pub fn q_absorb_ref(w: &[f32], h: Heads, q: &[f32], n_tok: usize) -> Vec<f32> {
    let qk = h.nope + h.rope;
    let mut out = vec![0.0; n_tok * h.heads * h.kvl];
    for t in 0..n_tok {
        for hh in 0..h.heads {
            for c in 0..h.kvl {
                let mut acc = 0.0f64;
                for d in 0..h.nope {
                    acc += w[(hh * (h.nope + h.v) + d) * h.kvl + c] as f64 * q[t * h.heads * qk + hh * qk + d] as f64;
                }
                out[(t * h.heads + hh) * h.kvl + c] = acc as f32;
            }
        }
    }
    out
}

pub fn v_up_ref(w: &[f32], h: Heads, o_lat: &[f32], n_tok: usize) -> Vec<f32> {
    let mut out = vec![0.0; n_tok * h.heads * h.v];
    for t in 0..n_tok {
        for hh in 0..h.heads {
            for j in 0..h.v {
                let row = hh * (h.nope + h.v) + h.nope + j;
                let acc: f64 = (0..h.kvl).map(|c| w[row * h.kvl + c] as f64 * o_lat[(t * h.heads + hh) * h.kvl + c] as f64).sum();
                out[(t * h.heads + hh) * h.v + j] = acc as f32;
            }
        }
    }
    out
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { heads: u32, nope: u32, v: u32, kvl: u32, q_stride: u32, qk: u32, s_cols: u32, blk_r: u32, blk_c: u32, n_tok: u32, _pad: [u32; 2] })
}
