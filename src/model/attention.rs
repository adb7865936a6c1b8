//! A layer's attention, added into the residual. Multi-head latent attention (DeepSeek's
//! `MLA.forward`, absorbed form): q (direct or low-rank), the chunk's `c_kv ‖ k_pe` written
//! into the latent cache, RoPE, attention over the cache in the latent space, and the output
//! projection. Grouped-query attention (transformers' `Qwen3Attention`): q, k, v projections,
//! per-head RMSNorm of q and k, half-split RoPE, K and V written into the K/V cache,
//! attention over it, and the output projection.

use super::forward::In;
use super::{Attn, Chunk, Gqa, Layer, Mla, Model, QProj, LORA_NORM_EPS};
use crate::tensor::Matrix;
use crate::config::{Attention, ModelConfig};
use crate::gpu::Recorder;
use crate::ops::matmul::Out;
use crate::ops::mla_absorb::Heads;
use crate::ops::rope::Pairs;
use crate::ops::{copy_rows, gqa_attn, matmul, mla_absorb, mla_attn, rmsnorm, rope, Rows};

/// MLA's head shape.
pub(super) fn mla_heads(c: &ModelConfig) -> Heads {
    Heads { heads: c.n_heads, nope: c.nope_dim, rope: c.rope_dim, v: c.v_dim, kvl: c.kv_lora }
}

/// Where one layer's cache `[ctx][kv_lora + rope]` holds a chunk's rows: `c_kv` at
/// `pos · cd`, `k_pe` at `pos · cd + kv_lora` (cd = kv_lora + rope).
struct CacheRows<'a> {
    buf: &'a wgpu::Buffer,
    kv_lora: usize,
    rope: usize,
    cd: usize,
    ch: Chunk,
}

impl<'a> CacheRows<'a> {
    fn new(c: &ModelConfig, buf: &'a wgpu::Buffer, ch: Chunk) -> Self {
        CacheRows { buf, kv_lora: c.kv_lora, rope: c.rope_dim, cd: c.cache_dim(), ch }
    }

    /// The chunk's c_kv rows.
    fn c_kv(&self) -> Rows<'a> {
        Rows::strided(self.buf, self.ch.pos0 * self.cd, self.cd, self.kv_lora, self.ch.t)
    }

    /// The chunk's whole rows, `c_kv ‖ k_pe`.
    fn all(&self) -> Rows<'a> {
        Rows::strided(self.buf, self.ch.pos0 * self.cd, self.cd, self.cd, self.ch.t)
    }

    /// The chunk's k_pe rows (one rope key shared by all heads).
    fn k_pe(&self) -> Rows<'a> {
        Rows::strided(self.buf, self.ch.pos0 * self.cd + self.kv_lora, self.cd, self.rope, self.ch.t)
    }
}

/// Where one layer's GQA cache `[2][ctx][G][d]` holds a chunk's rows.
struct KvRows<'a> {
    buf: &'a wgpu::Buffer,
    /// values per position in each plane, G·d
    gd: usize,
    d: usize,
    ch: Chunk,
}

impl<'a> KvRows<'a> {
    /// The chunk's keys, one row of `d` per (token, K/V head).
    fn k_heads(&self) -> Rows<'a> {
        Rows::strided(self.buf, self.ch.pos0 * self.gd, self.d, self.d, self.ch.t * self.gd / self.d)
    }

    /// The chunk's keys, one row of `G·d` per token.
    fn k(&self) -> Rows<'a> {
        Rows::strided(self.buf, self.ch.pos0 * self.gd, self.gd, self.gd, self.ch.t)
    }

    /// The chunk's values, one row of `G·d` per token (the V plane follows `ctx` K rows).
    fn v(&self) -> Rows<'a> {
        Rows::strided(self.buf, (self.ch.ctx + self.ch.pos0) * self.gd, self.gd, self.gd, self.ch.t)
    }
}

impl Model {
    /// `x += attention(RMSNorm(x))` for the chunk, with its cache rows written to `cache`.
    pub(super) fn attention(&self, rec: &mut Recorder, layer: &Layer, cache: &wgpu::Buffer, ch: Chunk) {
        let (k, a, c) = (&self.kernels, &self.act, &self.cfg);
        let (x, xb) = (Rows::new(&a.x, c.hidden, ch.t), Rows::new(&a.xb, c.hidden, ch.t));
        // the projections that read the normalized x (they fold the norm on a decode step)
        let ws: Vec<(&Matrix, Option<usize>)> = match &layer.attn {
            Attn::Mla(at) => match &at.q {
                QProj::Direct(w) => vec![(w, None), (&at.kv_a, None)],
                QProj::LowRank { a, .. } => vec![(a, None), (&at.kv_a, None)],
            },
            Attn::Gqa(at) => vec![(&at.q, None), (&at.k, None), (&at.v, None)],
        };
        let input = In::prepare(rec, k, self.fold(ch.t), &ws, &layer.input_layernorm, c.rms_norm_eps, x, xb);
        match &layer.attn {
            Attn::Mla(at) => self.mla(rec, at, input, cache, ch),
            Attn::Gqa(at) => self.gqa(rec, at, input, cache, ch),
        }
    }

    /// Qwen3's attention on `xb`: q, k, v; per-head RMSNorm of q and k; RoPE; K and V into
    /// the cache; attention; `x += W_o o`.
    fn gqa(&self, rec: &mut Recorder, at: &Gqa, input: In, cache: &wgpu::Buffer, ch: Chunk) {
        let (k, a, c, t) = (&self.kernels, &self.act, &self.cfg, ch.t);
        let Attention::Gqa { kv_heads: g, head_dim: d } = c.attention else { unreachable!("GQA weights in an MLA model") };
        let h = c.n_heads;
        // q before its norm goes through `o`, which the attention overwrites later
        let (q_raw, q) = (Rows::new(&a.o, h * d, t), Rows::new(&a.q, h * d, t));
        input.run(rec, k, &at.q, q_raw, Out::Set);
        let rope = |heads| rmsnorm::Rope { table: &self.rope_table, rows_per_pos: heads, pos0: ch.pos0, pairs: Pairs::HalfSplit };
        if self.gpu.tuning.unfused {
            rmsnorm::run(rec, k, &at.q_norm, q_raw.split(h), q.split(h), c.rms_norm_eps);
            rope::run(rec, k, &self.rope_table, q.cols(0, d), h, d, ch.pos0, Pairs::HalfSplit);
        } else {
            rmsnorm::run_rope(rec, k, &at.q_norm, q_raw.split(h), q.split(h), c.rms_norm_eps, rope(h));
        }
        let rows = KvRows { buf: cache, gd: g * d, d, ch };
        let k_raw = Rows::new(&a.kv, g * d, t);
        input.run(rec, k, &at.k, k_raw, Out::Set);
        if self.gpu.tuning.unfused {
            rmsnorm::run(rec, k, &at.k_norm, k_raw.split(g), rows.k_heads(), c.rms_norm_eps);
            rope::run(rec, k, &self.rope_table, rows.k().cols(0, d), g, d, ch.pos0, Pairs::HalfSplit);
        } else {
            rmsnorm::run_rope(rec, k, &at.k_norm, k_raw.split(g), rows.k_heads(), c.rms_norm_eps, rope(g));
        }
        input.run(rec, k, &at.v, rows.v(), Out::Set);
        let o = Rows::new(&a.o, h * d, t);
        let shape = gqa_attn::Shape { heads: h, kv_heads: g, head_dim: d };
        gqa_attn::run(rec, k, shape, c.softmax_scale(), ch.pos0, ch.ctx, q, cache, o);
        matmul::run(rec, k, &at.o, o, Rows::new(&a.x, c.hidden, t), Out::Add);
    }

    /// DeepSeek's MLA on `xb`, `x += W_o · MLA(xb)`, with the chunk's latent rows written to `cache`.
    fn mla(&self, rec: &mut Recorder, at: &Mla, input: In, cache: &wgpu::Buffer, ch: Chunk) {
        let (k, a, c, t) = (&self.kernels, &self.act, &self.cfg, ch.t);
        let (heads, qk) = (mla_heads(c), c.qk_head_dim());
        let x = Rows::new(&a.x, c.hidden, t);
        let q = Rows::new(&a.q, c.n_heads * qk, t);
        match &at.q {
            QProj::Direct(w) => input.run(rec, k, w, q, Out::Set),
            QProj::LowRank { a: qa, norm, b } => {
                let (q_a, q_a_n) = (Rows::new(&a.qa, qa.rows, t), Rows::new(&a.qa_n, qa.rows, t));
                input.run(rec, k, qa, q_a, Out::Set);
                In::prepare(rec, k, self.fold(t), &[(b, None)], norm, LORA_NORM_EPS, q_a, q_a_n).run(rec, k, b, q, Out::Set);
            }
        }
        let kv = Rows::new(&a.kv, c.cache_dim(), t);
        input.run(rec, k, &at.kv_a, kv, Out::Set);
        let rows = CacheRows::new(c, cache, ch);
        let unfused = self.gpu.tuning.unfused;
        if unfused {
            rmsnorm::run(rec, k, &at.kv_a_norm, kv.cols(0, c.kv_lora), rows.c_kv(), LORA_NORM_EPS);
            copy_rows::run(rec, k, kv.cols(c.kv_lora, c.rope_dim), rows.k_pe());
            rope::run(rec, k, &self.rope_table, rows.k_pe(), 1, 0, ch.pos0, Pairs::Interleaved);
            rope::run(rec, k, &self.rope_table, q.cols(c.nope_dim, c.rope_dim), c.n_heads, qk, ch.pos0, Pairs::Interleaved);
        } else {
            // c_kv normalized and k_pe rotated into the cache row in one dispatch; q's RoPE
            // happens in the attention kernel as it loads q_pe
            let rope = rmsnorm::Rope { table: &self.rope_table, rows_per_pos: 1, pos0: ch.pos0, pairs: Pairs::Interleaved };
            rmsnorm::run_tail_rope(rec, k, &at.kv_a_norm, c.kv_lora, kv, rows.all(), LORA_NORM_EPS, rope);
        }
        let (q_lat, o_lat) = (Rows::new(&a.q_lat, c.kv_lora, t * c.n_heads), Rows::new(&a.o_lat, c.kv_lora, t * c.n_heads));
        mla_absorb::q_absorb(rec, k, &at.kv_b, heads, q, q_lat);
        let rope_q = (!unfused).then_some(&self.rope_table);
        mla_attn::run(rec, k, heads, c.softmax_scale(), ch.pos0, q_lat, q, cache, o_lat, rope_q);
        let o = Rows::new(&a.o, c.n_heads * c.v_dim, t);
        mla_absorb::v_up(rec, k, &at.kv_b, heads, o_lat, o);
        matmul::run(rec, k, &at.o, o, x, Out::Add);
    }
}
