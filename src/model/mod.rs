//! The graph of DeepSeek's models and of the Qwen3 distill: weights as loaded onto the GPU,
//! the KV cache (latent for MLA, K/V for GQA) and the forward pass (in `forward.rs`). Layer
//! names follow the checkpoint.

mod attention;
mod cost;
mod forward;
mod load;
pub mod offload;
mod turns;

use std::sync::Arc;

pub use forward::{ForwardOut, LogitsMode, Sample};
use forward::{Chunk, LORA_NORM_EPS};
pub use load::{check, host_available_memory, is_gguf, open, parse_size, placement, preflight, total_bytes, LoadError, LoadOptions, Progress};
pub use offload::{ExpertCache, LayerStats, Placement, Policy};

use crate::config::ModelConfig;
use crate::gpu::Gpu;
use crate::ops::mla_absorb::Absorb;
use crate::ops::moe_gate::Gate;
use crate::ops::Kernels;
use crate::tensor::Matrix;

pub enum QProj {
    /// `q_proj` `[H·qk][hidden]`
    Direct(Matrix),
    /// `q_b_proj(RMSNorm(q_a_proj x))`
    LowRank { a: Matrix, norm: wgpu::Buffer, b: Matrix },
}

/// A layer's attention: DeepSeek's latent attention or Qwen3's grouped-query attention
/// (`config::Attention` says which; every layer of a model has the same kind).
pub enum Attn {
    Mla(Mla),
    Gqa(Gqa),
}

/// Multi-head latent attention (DeepSeek).
pub struct Mla {
    pub q: QProj,
    pub kv_a: Matrix,         // [kvl + rope][hidden]
    pub kv_a_norm: wgpu::Buffer, // [kvl]
    /// kv_b_proj: W_UK and W_UV per head, as the checkpoint holds them
    pub kv_b: Absorb,
    pub o: Matrix,            // [hidden][H·v]
}

/// Grouped-query attention (Qwen3): `H` query heads, `G` K/V heads of width `d`.
pub struct Gqa {
    pub q: Matrix,              // [H·d][hidden]
    pub k: Matrix,              // [G·d][hidden]
    pub v: Matrix,              // [G·d][hidden]
    pub o: Matrix,              // [hidden][H·d]
    pub q_norm: wgpu::Buffer,   // [d], per head
    pub k_norm: wgpu::Buffer,   // [d], per head
}

impl Attn {
    /// The MLA weights, when this is a DeepSeek layer.
    pub fn as_mla(&self) -> Option<&Mla> {
        match self {
            Attn::Mla(m) => Some(m),
            Attn::Gqa(_) => None,
        }
    }

    /// The matrices one token multiplies by, and the bytes of the 1-D weights besides.
    fn matrices(&self) -> (Vec<&Matrix>, usize) {
        match self {
            Attn::Mla(m) => {
                let mut v = match &m.q {
                    QProj::Direct(w) => vec![w],
                    QProj::LowRank { a, b, .. } => vec![a, b],
                };
                let norm = if let QProj::LowRank { a, .. } = &m.q { a.rows } else { 0 };
                v.extend([&m.kv_a, &m.o]);
                (v, norm)
            }
            Attn::Gqa(g) => (vec![&g.q, &g.k, &g.v, &g.o], 0),
        }
    }
}

/// SwiGLU MLP; for routed experts each matrix is a pool of `n_routed` stacked matrices.
pub struct Mlp {
    pub gate: Matrix, // [width][hidden]
    pub up: Matrix,   // [width][hidden]
    pub down: Matrix, // [hidden][width]
}

pub struct Moe {
    pub router: Matrix,    // [E][hidden]
    pub bias: wgpu::Buffer, // [E] e_score_correction_bias (zeros when absent)
    pub gate: Gate,
    pub experts: Mlp,
    pub shared: Option<Mlp>,
}

pub enum Ffn {
    Dense(Mlp),
    Moe(Moe),
}

pub struct Layer {
    pub input_layernorm: wgpu::Buffer,
    pub post_attention_layernorm: wgpu::Buffer,
    pub attn: Attn,
    pub ffn: Ffn,
}

/// Activation buffers, sized for `max_chunk` tokens per forward.
struct Activations<B = wgpu::Buffer> {
    ids: B,    // [T] u32
    x: B,      // [T][hidden] residual stream
    xb: B,     // [T][hidden] normed
    qa: B,     // [T][q_lora]
    qa_n: B,   // [T][q_lora]
    q: B,      // [T][H·qk]
    kv: B,     // [T][kvl + rope]
    q_lat: B,  // [T][H][kvl]
    o_lat: B,  // [T][H][kvl]
    o: B,      // [T][H·v] (GQA: also the raw q before its norm)
    hb: B,     // [T·K][width]
    hb2: B,    // [T·K][width]
    eo: B,     // [T·K][hidden]
    router: B, // [T][E]
    route_ids: Vec<B>, // per MoE layer [T][K] u32
    route_wts: Vec<B>, // per MoE layer [T][K] f32
    logits: B, // [T][vocab]
    penalty: B, // [max_ctx] u32 unique ids for the repetition penalty
    mask: B,    // [ceil(vocab / 32)] u32 bits: the tokens a grammar allows next
    sample_out: B, // [4] u32: sampled id, threshold key, survivors, 0
}

pub struct Model {
    pub gpu: Arc<Gpu>,
    pub cfg: ModelConfig,
    kernels: Kernels,
    pub embed: Matrix, // [vocab][hidden]
    pub layers: Vec<Layer>,
    pub norm: wgpu::Buffer, // [hidden]
    pub lm_head: Matrix,    // [vocab][hidden]
    rope_table: wgpu::Buffer, // [max_ctx][rope/2] (cos, sin)
    act: Activations,
    /// tokens per internal forward chunk
    pub max_chunk: usize,
    /// positions the rope table covers (the largest cache this model can serve)
    pub max_ctx: usize,
    /// weight bytes on the GPU
    pub weight_bytes: u64,
    /// where the weights went under the memory budget
    pub placement: Placement,
    /// the routed experts kept in host memory, when they did not all fit
    offload: Option<offload::Offload>,
    /// one forward chunk at a time over the shared activations, first come first served
    turns: turns::Turns,
}

/// The KV cache, one buffer per layer of `ctx · cache_dim` f32: for MLA the latent rows
/// `[ctx][kvl + rope]` (`c_kv ‖ k_pe`, nothing else); for GQA the K plane then the V plane,
/// `[2][ctx][kv_heads][head_dim]`.
pub struct KvCache {
    pub layers: Vec<wgpu::Buffer>, // per layer [ctx][cache_dim]
    pub ctx: usize,
    /// tokens currently cached
    pub len: usize,
    gpu: Arc<Gpu>,
}

impl Drop for Model {
    /// The GPU keeps bind groups across submissions, and they hold the buffers they bind:
    /// drop them with the model so its weights and activations are freed now.
    fn drop(&mut self) {
        self.gpu.clear_bind_cache();
    }
}

impl Drop for KvCache {
    /// As for [`Model`]: cached bind groups would keep the cache's memory alive.
    fn drop(&mut self) {
        self.gpu.clear_bind_cache();
    }
}

impl KvCache {
    pub fn bytes(&self, cfg: &ModelConfig) -> u64 {
        (self.layers.len() * self.ctx * cfg.cache_dim() * 4) as u64
    }
}

impl Model {
    /// MoE layer indices in checkpoint order (the keys of routing output).
    pub fn moe_layers(&self) -> Vec<usize> {
        (0..self.cfg.n_layers).filter(|&i| self.cfg.is_moe_layer(i)).collect()
    }

    /// The expert cache's counters per MoE layer since the last reset (`None`: every expert
    /// is resident).
    pub fn expert_stats(&self) -> Option<Vec<LayerStats>> {
        self.offload.as_ref().map(|o| o.res.stats())
    }

    pub fn reset_expert_stats(&self) {
        if let Some(o) = &self.offload {
            o.res.reset_stats();
        }
    }

    /// Per MoE layer, the experts on the GPU now (`None`: all of them).
    pub fn resident_experts(&self) -> Option<Vec<Vec<u32>>> {
        self.offload.as_ref().map(|o| o.res.resident())
    }

    pub fn top_k(&self) -> usize {
        self.cfg.moe.as_ref().map_or(0, |m| m.top_k)
    }

    pub fn new_cache(&self, ctx: usize) -> Result<KvCache, LoadError> {
        if ctx == 0 || ctx > self.max_ctx {
            return Err(LoadError::Context { requested: ctx, max: self.max_ctx });
        }
        let per_layer = (ctx * self.cfg.cache_dim() * 4) as u64;
        if per_layer > self.gpu.max_binding {
            return Err(LoadError::CacheTooLarge { ctx, per_layer, limit: self.gpu.max_binding });
        }
        let layers = (0..self.cfg.n_layers).map(|i| self.gpu.storage(&format!("kv cache layer {i}"), per_layer)).collect();
        Ok(KvCache { layers, ctx, len: 0, gpu: self.gpu.clone() })
    }
}
