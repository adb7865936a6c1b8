//! Multi-head latent attention (DeepSeek's `MLA.forward`, absorbed form): q (direct or
//! low-rank), the chunk's `c_kv ‖ k_pe` written into the latent cache, RoPE, attention over
//! the cache in the latent space, and the output projection added into the residual.

use super::{Chunk, Layer, Model, QProj, LORA_NORM_EPS};
use crate::config::ModelConfig;
use crate::gpu::Recorder;
use crate::ops::matmul::Args;
use crate::ops::mla_absorb::Heads;
use crate::ops::{copy_rows, matmul, mla_absorb, mla_attn, rmsnorm, rope};

/// Where one layer's cache `[ctx][kv_lora + rope]` holds a chunk's rows: `c_kv` at
/// `pos · cd`, `k_pe` at `pos · cd + kv_lora` (cd = kv_lora + rope).
pub(super) struct CacheRows {
    kv_lora: usize,
    rope: usize,
    cd: usize,
    ch: Chunk,
}

impl CacheRows {
    pub(super) fn new(c: &ModelConfig, ch: Chunk) -> Self {
        CacheRows { kv_lora: c.kv_lora, rope: c.rope_dim, cd: c.cache_dim(), ch }
    }

    /// RMSNorm of `kv[.., ..kv_lora]` (rows of width cd) straight into the cache's c_kv rows.
    fn c_kv_norm(&self) -> rmsnorm::Params {
        rmsnorm::Params::strided(self.kv_lora, self.ch.t, (0, self.cd), (self.ch.pos0 * self.cd, self.cd), LORA_NORM_EPS)
    }

    /// `kv[.., kv_lora..]` copied into the cache's k_pe rows.
    fn k_pe_copy(&self) -> copy_rows::Params {
        copy_rows::Params::new(self.rope, self.ch.t, (self.kv_lora, self.cd), (self.ch.pos0 * self.cd + self.kv_lora, self.cd))
    }

    /// RoPE of the cached k_pe rows (one rope key shared by all heads).
    fn k_pe_rope(&self) -> rope::Params {
        rope::Params::new(self.ch.t, 1, self.rope / 2, self.cd, 0, self.ch.pos0 * self.cd + self.kv_lora, self.ch.pos0)
    }
}

impl Model {
    /// `x += W_o · MLA(RMSNorm(x))` for the chunk, with its latent rows written to `cache`.
    pub(super) fn attention(&self, rec: &mut Recorder, layer: &Layer, cache: &wgpu::Buffer, ch: Chunk) {
        let (k, a, c, t) = (&self.kernels, &self.act, &self.cfg, ch.t);
        let at = &layer.attn;
        rmsnorm::dispatch(rec, k, &rmsnorm::Params::rows(c.hidden, t, c.rms_norm_eps), &layer.input_layernorm, &a.x, &a.xb);
        match &at.q {
            QProj::Direct(w) => matmul::dispatch(rec, k, w, &Args::dense(&a.xb, &a.q, w, t)),
            QProj::LowRank { a: qa, norm, b } => {
                matmul::dispatch(rec, k, qa, &Args::dense(&a.xb, &a.qa, qa, t));
                rmsnorm::dispatch(rec, k, &rmsnorm::Params::rows(qa.rows, t, LORA_NORM_EPS), norm, &a.qa, &a.qa_n);
                matmul::dispatch(rec, k, b, &Args::dense(&a.qa_n, &a.q, b, t));
            }
        }
        matmul::dispatch(rec, k, &at.kv_a, &Args::dense(&a.xb, &a.kv, &at.kv_a, t));
        let rows = CacheRows::new(c, ch);
        rmsnorm::dispatch(rec, k, &rows.c_kv_norm(), &at.kv_a_norm, &a.kv, cache);
        copy_rows::dispatch(rec, k, &rows.k_pe_copy(), &a.kv, cache);
        rope::dispatch(rec, k, &rows.k_pe_rope(), &self.rope_table, cache);
        let qk = c.qk_head_dim();
        rope::dispatch(rec, k, &rope::Params::new(t, c.n_heads, c.rope_dim / 2, c.n_heads * qk, qk, c.nope_dim, ch.pos0), &self.rope_table, &a.q);
        let heads = Heads { heads: c.n_heads, nope: c.nope_dim, rope: c.rope_dim, v: c.v_dim, kvl: c.kv_lora };
        mla_absorb::q_absorb(rec, k, &at.kv_b, heads, &a.q, &a.q_lat, t);
        mla_attn::dispatch(rec, k, heads, c.softmax_scale(), ch.pos0, t, &a.q_lat, &a.q, cache, &a.o_lat);
        mla_absorb::v_up(rec, k, &at.kv_b, heads, &a.o_lat, &a.o, t);
        matmul::dispatch(rec, k, &at.o, &Args { accum: true, ..Args::dense(&a.o, &a.x, &at.o, t) });
    }
}
