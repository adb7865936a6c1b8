//! `shaders/mla_absorb.wgsl`: per-head products with kv_b_proj (W_UK absorbed into the query,
//! W_UV applied to the latent attention output).

use crate::format::Format;
use crate::gpu::{Gpu, GpuError, Recorder};
use crate::ops::{matmul, Key, Kernels, Rows};
use crate::tensor::{MatChunk, Matrix};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    heads: u32,
    nope: u32,
    v: u32,
    kvl: u32,
    q_stride: u32,
    qk: u32,
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    n_tok: u32,
    _pad: [u32; 2],
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

/// The pipelines of `shaders/mla_absorb.wgsl` for weights in `f`: q_absorb, v_up, transpose_uk.
pub(super) fn pipelines(k: &Kernels, gpu: &Gpu, f: Format) -> Result<[wgpu::ComputePipeline; 3], GpuError> {
    Ok([pipeline(k, gpu, f, "q_absorb")?, pipeline(k, gpu, f, "v_up")?, pipeline(k, gpu, f, "transpose_uk")?])
}

fn pipeline(k: &Kernels, gpu: &Gpu, f: Format, entry: &'static str) -> Result<wgpu::ComputePipeline, GpuError> {
    k.pipeline(gpu, Key { family: "mla_absorb", entry, format: Some(f), variant: 0 }, || (super::with_weights(include_str!("../../shaders/mla_absorb.wgsl")), vec![]))
}

/// kv_b_proj (per head `[W_UK (nope rows) ; W_UV (v rows)] × kvl`) in the form the
/// checkpoint holds it.
pub enum Absorb {
    /// transformers' `kv_b_proj` `[H·(nope + v)][kvl]` (one binding), with W_UK transposed
    /// per head at load where the format allows (`[H][kvl][nope]`, read by the fast kernels)
    KvB { kv_b: Matrix, uk_t: Option<Matrix> },
    /// llama.cpp's split form: `k_b` = W_UK transposed `[H][kvl][nope]` and `v_b` = W_UV
    /// `[H][v][kvl]`, each a pool of H matrices
    Split { k_b: Matrix, v_b: Matrix },
}

impl Absorb {
    pub fn bytes(&self) -> u64 {
        match self {
            Absorb::KvB { kv_b, .. } => kv_b.bytes(),
            Absorb::Split { k_b, v_b } => k_b.bytes() + v_b.bytes(),
        }
    }

    /// Weights of the two products (for FLOP counts).
    pub fn params(&self) -> usize {
        match self {
            Absorb::KvB { kv_b, .. } => kv_b.rows * kv_b.cols,
            Absorb::Split { k_b, v_b } => k_b.n_mats * k_b.rows * k_b.cols + v_b.n_mats * v_b.rows * v_b.cols,
        }
    }
}

/// `q_lat[t][h] = W_UK_hᵀ q_nope[t][h]` for the rows of `q` (`[n_tok][H·qk]`) into `q_lat`
/// (`[n_tok·H][kvl]`).
pub fn q_absorb(rec: &mut Recorder, k: &Kernels, w: &Absorb, h: Heads, q: Rows, q_lat: Rows) {
    let n_tok = q.rows;
    debug_assert!(q.contiguous() && q.off == 0 && q_lat.contiguous() && q_lat.off == 0 && q_lat.rows == n_tok * h.heads);
    // Heads as experts of a pool [H][kvl][nope]: item t·H + h reads q_nope of head h.
    let q_nope = q.split(h.heads).cols(0, h.nope);
    let view = matmul::HeadBlocks { heads: h.heads, rows: h.kvl, e_rows: h.kvl, row_base: 0 };
    let (kv_b, uk_t) = match w {
        Absorb::KvB { kv_b, uk_t } => (kv_b, uk_t.as_ref()),
        Absorb::Split { k_b, .. } => return matmul::per_head_any(rec, k, k_b, view, q_nope, q_lat),
    };
    if let Some(uk_t) = uk_t {
        if matmul::per_head(rec, k, uk_t, view, &matmul::Args::heads(q_nope, h.heads, q_lat)) {
            return;
        }
    }
    let scale = kv_b.scale.as_ref().map_or(&k.dummy, |s| &s.buf);
    let p = params(kv_b, h, n_tok);
    let groups = [(h.kvl as u32).div_ceil(64), h.heads as u32, n_tok as u32];
    rec.dispatch_bound(pipeline(k, rec.gpu(), kv_b.dtype, "q_absorb"), &p, &k.weights_bound(&[&kv_b.chunks[0].buf, scale, q.buf, q_lat.buf]), groups);
}

/// `o[t][h] = W_UV_h o_lat[t][h]` for the rows of `o_lat` (`[n_tok·H][kvl]`) into `o`
/// (`[n_tok][H·v]`).
pub fn v_up(rec: &mut Recorder, k: &Kernels, w: &Absorb, h: Heads, o_lat: Rows, o: Rows) {
    let n_tok = o.rows;
    debug_assert!(o_lat.contiguous() && o_lat.off == 0 && o.contiguous() && o.off == 0 && o_lat.rows == n_tok * h.heads);
    let kv_b = match w {
        Absorb::KvB { kv_b, .. } => kv_b,
        Absorb::Split { v_b, .. } => {
            let view = matmul::HeadBlocks { heads: h.heads, rows: h.v, e_rows: h.v, row_base: 0 };
            return matmul::per_head_any(rec, k, v_b, view, o_lat, o.split(h.heads));
        }
    };
    if kv_b.dtype != Format::F8E4M3 {
        // W_UV_h is rows nope .. nope + v of head h's block of nope + v rows.
        let a = matmul::Args::heads(o_lat, h.heads, o.split(h.heads));
        let view = matmul::HeadBlocks { heads: h.heads, rows: h.v, e_rows: h.nope + h.v, row_base: h.nope };
        if matmul::per_head(rec, k, kv_b, view, &a) {
            return;
        }
    }
    let scale = kv_b.scale.as_ref().map_or(&k.dummy, |s| &s.buf);
    let p = params(kv_b, h, n_tok);
    let groups = [(h.v as u32).div_ceil(64), h.heads as u32, n_tok as u32];
    rec.dispatch_bound(pipeline(k, rec.gpu(), kv_b.dtype, "v_up"), &p, &k.weights_bound(&[&kv_b.chunks[0].buf, scale, o_lat.buf, o.buf]), groups);
}

/// W_UK of every head transposed to a pool `[H][kvl][nope]` in kv_b's dtype, made once on
/// the GPU at load (the fast per-head kernels read it in q_absorb). None for FP8 (its block
/// scales would need transposing too), block formats and odd nope.
pub fn transpose_uk(k: &Kernels, gpu: &Gpu, kv_b: &Matrix, h: Heads) -> Result<Option<Matrix>, GpuError> {
    if !matches!(kv_b.dtype, Format::F32 | Format::BF16 | Format::F16) || h.nope % 2 != 0 {
        return Ok(None);
    }
    let esize = kv_b.dtype.block_bytes();
    let name = format!("{} W_UK transposed", kv_b.name);
    let buf = gpu.storage(&name, (h.heads * h.kvl * h.nope * esize) as u64);
    let per = if esize == 2 { 2 } else { 1 };
    let words = (h.kvl * h.nope / per) as u32;
    let mut rec = Recorder::new(gpu);
    rec.dispatch_bound(pipeline(k, gpu, kv_b.dtype, "transpose_uk"), &params(kv_b, h, 0), &[(1, &kv_b.chunks[0].buf), (5, &buf), (super::IQ_TABLES_BINDING, &k.iq_tables)], [words.div_ceil(64), h.heads as u32, 1]);
    rec.submit("transposing W_UK")?;
    Ok(Some(Matrix {
        name,
        dtype: kv_b.dtype,
        n_mats: h.heads,
        rows: h.kvl,
        cols: h.nope,
        chunks: vec![MatChunk { buf, e0: 0, e1: h.heads, r0: 0, rows: h.kvl }],
        scale: None,
    }))
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
