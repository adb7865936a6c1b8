//! `config.json` → a validated [`ModelConfig`] with derived sizes.
//!
//! Step one mirrors the Hugging Face names (`RawConfig`, all optional with the defaults
//! transformers uses); step two, [`RawConfig::validate`], checks consistency and derives
//! what the graph needs (q head dim, softmax scale with YaRN mscale, which layers are MoE).

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config.json: {err}. Point --model at a Hugging Face checkpoint folder that contains config.json")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: invalid JSON: {err}")]
    Json { path: PathBuf, err: serde_json::Error },
    #[error("{path}: invalid value of `{key}`: {err}")]
    Field { path: PathBuf, key: String, err: serde_json::Error },
    #[error("{path}: {}; supported: {SUPPORTED_MODEL_TYPES}", if found.is_empty() { "there is no `model_type`".to_string() } else { format!("model_type {found:?} is not supported") })]
    ModelType { path: PathBuf, found: String },
    #[error("{path}: field `{field}` is missing (required for {model_type})")]
    Missing { path: PathBuf, field: &'static str, model_type: String },
    #[error("{path}: invalid value: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

pub const SUPPORTED_MODEL_TYPES: &str =
    "\"deepseek_v3\" (DeepSeek-V3, R1, R1-0528, V3.1, Moonlight), \"kimi_k2\", \"deepseek_v2\" (DeepSeek-V2, V2-Lite), \"qwen3\" (DeepSeek-R1-0528-Qwen3-8B)";

/// YaRN / rope scaling block (`rope_scaling` or the newer `rope_parameters`). The hub files
/// spell the kind `type`; transformers ≥ 4.45 writes `rope_type`, and 5.x `save_pretrained`
/// writes both: [`RawRope::kind`] reconciles them.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
pub struct RawRope {
    pub rope_type: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub rope_theta: Option<f64>,
    pub factor: Option<f64>,
    pub original_max_position_embeddings: Option<usize>,
    pub beta_fast: Option<f64>,
    pub beta_slow: Option<f64>,
    pub mscale: Option<f64>,
    pub mscale_all_dim: Option<f64>,
}

impl RawRope {
    /// The rope kind from `rope_type` and/or `type`: either alone, or both when they agree.
    fn kind(&self, block: &str) -> Result<Option<&str>, String> {
        match (self.rope_type.as_deref(), self.type_.as_deref()) {
            (Some(a), Some(b)) if a != b => Err(format!("{block} has \"rope_type\": {a:?} and \"type\": {b:?}; they must agree (or keep one of them)")),
            (a, b) => Ok(a.or(b)),
        }
    }

    /// The fields that change the model, for comparing `rope_scaling` with `rope_parameters`.
    fn scaling(&self) -> (Option<f64>, Option<usize>, Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
        (self.factor, self.original_max_position_embeddings, self.beta_fast, self.beta_slow, self.mscale, self.mscale_all_dim)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawQuant {
    pub quant_method: Option<String>,
    pub fmt: Option<String>,
    pub weight_block_size: Option<Vec<usize>>,
}

/// `config.json` as Hugging Face writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct RawConfig {
    pub model_type: Option<String>,
    pub vocab_size: Option<usize>,
    pub hidden_size: Option<usize>,
    pub intermediate_size: Option<usize>,
    pub moe_intermediate_size: Option<usize>,
    pub num_hidden_layers: Option<usize>,
    pub num_attention_heads: Option<usize>,
    /// GQA (qwen3): K/V heads and the head width
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub use_sliding_window: Option<bool>,
    pub n_routed_experts: Option<usize>,
    pub n_shared_experts: Option<usize>,
    pub num_experts_per_tok: Option<usize>,
    pub n_group: Option<usize>,
    pub topk_group: Option<usize>,
    pub topk_method: Option<String>,
    pub scoring_func: Option<String>,
    pub norm_topk_prob: Option<bool>,
    pub routed_scaling_factor: Option<f64>,
    pub first_k_dense_replace: Option<usize>,
    pub moe_layer_freq: Option<usize>,
    pub q_lora_rank: Option<usize>,
    pub kv_lora_rank: Option<usize>,
    pub qk_rope_head_dim: Option<usize>,
    pub qk_nope_head_dim: Option<usize>,
    pub v_head_dim: Option<usize>,
    /// written by transformers 5 (`qk_nope_head_dim + qk_rope_head_dim`); checked, not needed
    pub qk_head_dim: Option<usize>,
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<RawRope>,
    pub rope_parameters: Option<RawRope>,
    pub max_position_embeddings: Option<usize>,
    pub rms_norm_eps: Option<f64>,
    pub num_nextn_predict_layers: Option<usize>,
    pub tie_word_embeddings: Option<bool>,
    pub hidden_act: Option<String>,
    pub attention_bias: Option<bool>,
    pub rope_interleave: Option<bool>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<serde_json::Value>,
    pub quantization_config: Option<RawQuant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V3,
    V2,
    /// Qwen3 (dense, grouped-query attention): DeepSeek-R1-0528-Qwen3-8B
    Qwen3,
}

/// The attention of every layer. The graph, the cache layout and the kernels follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// DeepSeek's multi-head latent attention: `q_lora`, `kv_lora`, `rope_dim`, `nope_dim`,
    /// `v_dim` describe it; the cache holds `c_kv ‖ k_pe` per token.
    Mla,
    /// grouped-query attention (Qwen3): `n_heads` query heads share `kv_heads` K/V heads of
    /// `head_dim`, q and k RMSNormed per head, half-split RoPE over the whole head; the cache
    /// holds K then V, `[2][ctx][kv_heads][head_dim]`. `rope_dim` = `v_dim` = `head_dim`,
    /// `nope_dim` = `kv_lora` = 0.
    Gqa { kv_heads: usize, head_dim: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    Sigmoid,
    Softmax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopK {
    /// V3: group score = sum of the top-2 biased scores; bias used for choice only.
    NoAuxTc,
    /// plain top-k over all experts.
    Greedy,
    /// V2: group score = the max score in the group.
    GroupLimitedGreedy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Yarn {
    pub factor: f64,
    pub original_max_position_embeddings: usize,
    pub beta_fast: f64,
    pub beta_slow: f64,
    pub mscale: f64,
    pub mscale_all_dim: f64,
}

#[derive(Debug, Clone)]
pub struct Moe {
    pub n_routed: usize,
    pub n_shared: usize,
    pub top_k: usize,
    pub n_group: usize,
    pub topk_group: usize,
    pub scoring: Scoring,
    pub topk: TopK,
    pub norm_topk_prob: bool,
    pub routed_scaling_factor: f32,
    pub intermediate: usize,
}

/// Validated model description with derived sizes.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub family: Family,
    pub attention: Attention,
    pub vocab: usize,
    pub hidden: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// dense MLP width
    pub intermediate: usize,
    pub q_lora: Option<usize>,
    pub kv_lora: usize,
    pub rope_dim: usize,
    pub nope_dim: usize,
    pub v_dim: usize,
    pub rope_theta: f64,
    pub yarn: Option<Yarn>,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f32,
    pub moe: Option<Moe>,
    pub first_k_dense: usize,
    pub moe_layer_freq: usize,
    pub num_nextn_predict_layers: usize,
    pub tie_word_embeddings: bool,
    /// FP8 block size `[rows, cols]` when `quantization_config` says fp8.
    pub fp8_block: Option<[usize; 2]>,
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
}

impl ModelConfig {
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::Read { path: path.clone(), err })?;
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|err| ConfigError::Json { path: path.to_path_buf(), err })?;
        let raw: RawConfig = serde_path_to_error::deserialize(&value).map_err(|e| ConfigError::Field {
            path: path.to_path_buf(),
            key: e.path().to_string(),
            err: e.into_inner(),
        })?;
        raw.validate(path)
    }

    /// Top-level keys of `config.json` this engine neither reads nor knows to be irrelevant
    /// (for `inspect`: a key we do not know may be a feature we do not run).
    pub fn unknown_keys(text: &str) -> Vec<String> {
        let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(text) else { return vec![] };
        m.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())).cloned().collect()
    }

    pub fn qk_head_dim(&self) -> usize {
        self.nope_dim + self.rope_dim
    }

    /// Values cached per token per layer: `c_kv ‖ k_pe` (MLA), or K and V of every K/V head (GQA).
    pub fn cache_dim(&self) -> usize {
        match self.attention {
            Attention::Mla => self.kv_lora + self.rope_dim,
            Attention::Gqa { kv_heads, head_dim } => 2 * kv_heads * head_dim,
        }
    }

    /// What the cache holds, in words: "latent KV cache" (MLA) or "K/V cache" (GQA).
    pub fn cache_name(&self) -> &'static str {
        match self.attention {
            Attention::Mla => "latent KV cache",
            Attention::Gqa { .. } => "K/V cache",
        }
    }

    pub fn is_moe_layer(&self, layer: usize) -> bool {
        self.moe.is_some() && layer >= self.first_k_dense && layer % self.moe_layer_freq == 0
    }

    /// Attention softmax scale: `qk_head_dim^-0.5`, times `m²` under YaRN with `mscale_all_dim`.
    /// GQA: `head_dim^-0.5` (YaRN's factor is in the cos/sin table instead).
    pub fn softmax_scale(&self) -> f32 {
        let mut s = (self.qk_head_dim() as f64).powf(-0.5);
        if let (Attention::Mla, Some(y)) = (self.attention, &self.yarn) {
            if y.mscale_all_dim != 0.0 {
                let m = yarn_get_mscale(y.factor, y.mscale_all_dim);
                s *= m * m;
            }
        }
        s as f32
    }
}

/// Keys of published DeepSeek configs that do not change inference (training knobs, remote
/// code, bookkeeping) plus the ones [`RawConfig`] reads.
const KNOWN_KEYS: &[&str] = &[
    // read by RawConfig
    "model_type", "vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers",
    "num_attention_heads", "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "n_group", "topk_group",
    "topk_method", "scoring_func", "norm_topk_prob", "routed_scaling_factor", "first_k_dense_replace", "moe_layer_freq",
    "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "qk_head_dim", "rope_theta", "rope_scaling",
    "rope_parameters", "max_position_embeddings", "rms_norm_eps", "num_nextn_predict_layers", "tie_word_embeddings",
    "hidden_act", "attention_bias", "rope_interleave", "bos_token_id", "eos_token_id", "quantization_config",
    "num_key_value_heads", "head_dim", "use_sliding_window",
    // no effect on inference
    "architectures", "auto_map", "torch_dtype", "dtype", "transformers_version", "_name_or_path", "aux_loss_alpha",
    "seq_aux", "ep_size", "initializer_range", "use_cache", "attention_dropout", "pretraining_tp", "pad_token_id",
    "output_router_logits", "router_aux_loss_coef", "sliding_window", "max_window_layers", "mlp_bias", "layer_types",
];

/// Parameter counts derived from the config alone (no weights needed), MTP layers excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ParamCount {
    /// every weight of the `num_hidden_layers` blocks, embeddings, final norm and head
    pub total: u64,
    /// what one token's forward pass multiplies by: all non-routed weights, `top_k` routed
    /// experts per MoE layer, the head, but not the input embedding (a row lookup). This is how
    /// DeepSeek's model cards count "activated" parameters (V2-Lite: 2.4B of 15.7B).
    pub active: u64,
    /// the input embedding table
    pub embedding: u64,
    /// all routed-expert weights (the part that offloading can move off the GPU)
    pub routed: u64,
}

impl ModelConfig {
    /// Weights per MLA block, per norm, per expert, summed over the layers.
    pub fn param_counts(&self) -> ParamCount {
        let (h, nh) = (self.hidden as u64, self.n_heads as u64);
        let qk = self.qk_head_dim() as u64;
        let q = match self.q_lora {
            Some(r) => h * r as u64 + r as u64 + r as u64 * nh * qk,
            None => h * nh * qk,
        };
        let kv_lora = self.kv_lora as u64;
        let attn = match self.attention {
            Attention::Mla => q + h * (kv_lora + self.rope_dim as u64) + kv_lora + kv_lora * nh * (self.nope_dim + self.v_dim) as u64 + nh * self.v_dim as u64 * h,
            // q, k, v, o and the two per-head norms
            Attention::Gqa { kv_heads, head_dim } => {
                let (kvh, hd) = (kv_heads as u64, head_dim as u64);
                2 * h * nh * hd + 2 * h * kvh * hd + 2 * hd
            }
        };
        let norms = 2 * h;
        let dense = 3 * h * self.intermediate as u64;
        let (mut total, mut active, mut routed) = (0u64, 0u64, 0u64);
        for layer in 0..self.n_layers {
            let base = attn + norms;
            let (all, act, r) = match (&self.moe, self.is_moe_layer(layer)) {
                (Some(m), true) => {
                    let expert = 3 * h * m.intermediate as u64;
                    let shared = expert * m.n_shared as u64;
                    // router weight, plus V3's e_score_correction_bias
                    let gate = m.n_routed as u64 * h + if self.family == Family::V3 { m.n_routed as u64 } else { 0 };
                    let r = expert * m.n_routed as u64;
                    (r + shared + gate, expert * m.top_k as u64 + shared + gate, r)
                }
                _ => (dense, dense, 0),
            };
            total += base + all;
            active += base + act;
            routed += r;
        }
        let embedding = self.vocab as u64 * h;
        let head = if self.tie_word_embeddings { 0 } else { embedding };
        ParamCount { total: total + embedding + head + h, active: active + head + h, embedding, routed }
    }

    /// Bytes the KV cache holds per token (f32 [`ModelConfig::cache_dim`] values per layer).
    pub fn cache_bytes_per_token(&self) -> u64 {
        (self.n_layers * self.cache_dim() * 4) as u64
    }
}

/// transformers' `yarn_get_mscale`.
pub fn yarn_get_mscale(scale: f64, mscale: f64) -> f64 {
    if scale <= 1.0 {
        1.0
    } else {
        0.1 * mscale * scale.ln() + 1.0
    }
}

impl RawConfig {
    pub fn validate(self, path: &Path) -> Result<ModelConfig, ConfigError> {
        let mt = self.model_type.clone().unwrap_or_default();
        let family = match mt.as_str() {
            "deepseek_v3" | "kimi_k2" => Family::V3,
            "deepseek_v2" => Family::V2,
            "qwen3" => Family::Qwen3,
            _ => return Err(ConfigError::ModelType { path: path.to_path_buf(), found: mt }),
        };
        let p = path.to_path_buf();
        let req = |v: Option<usize>, field: &'static str| -> Result<usize, ConfigError> {
            match v {
                None => Err(ConfigError::Missing { path: p.clone(), field, model_type: mt.clone() }),
                Some(0) => Err(ConfigError::Invalid { path: p.clone(), msg: format!("`{field}` is 0; it must be positive") }),
                Some(x) => Ok(x),
            }
        };
        let invalid = |msg: String| ConfigError::Invalid { path: path.to_path_buf(), msg };

        let vocab = req(self.vocab_size, "vocab_size")?;
        let hidden = req(self.hidden_size, "hidden_size")?;
        let n_layers = req(self.num_hidden_layers, "num_hidden_layers")?;
        let n_heads = req(self.num_attention_heads, "num_attention_heads")?;
        let intermediate = req(self.intermediate_size, "intermediate_size")?;
        let (attention, kv_lora, rope_dim, nope_dim, v_dim) = if family == Family::Qwen3 {
            // transformers' Qwen3Config defaults: K/V heads = query heads, head_dim 128
            let kv_heads = self.num_key_value_heads.unwrap_or(n_heads);
            let head_dim = self.head_dim.unwrap_or(128);
            if kv_heads == 0 || n_heads % kv_heads != 0 {
                return Err(invalid(format!("num_attention_heads = {n_heads} is not a multiple of num_key_value_heads = {kv_heads}")));
            }
            if head_dim == 0 || head_dim % 2 != 0 {
                return Err(invalid(format!("head_dim = {head_dim} must be even and positive (RoPE rotates pairs)")));
            }
            if self.use_sliding_window == Some(true) {
                return Err(invalid("use_sliding_window = true is not supported (no Qwen3 checkpoint enables it)".into()));
            }
            if self.q_lora_rank.is_some() || self.kv_lora_rank.is_some() || self.n_routed_experts.is_some_and(|n| n > 0) {
                return Err(invalid("a qwen3 config with MLA or MoE keys (q_lora_rank, kv_lora_rank, n_routed_experts): qwen3 is dense with grouped-query attention".into()));
            }
            (Attention::Gqa { kv_heads, head_dim }, 0, head_dim, 0, head_dim)
        } else {
            let kv_lora = req(self.kv_lora_rank, "kv_lora_rank")?;
            let rope_dim = req(self.qk_rope_head_dim, "qk_rope_head_dim")?;
            let nope_dim = req(self.qk_nope_head_dim, "qk_nope_head_dim")?;
            let v_dim = req(self.v_head_dim, "v_head_dim")?;
            if rope_dim % 2 != 0 {
                return Err(invalid(format!("qk_rope_head_dim = {rope_dim} must be even (RoPE rotates pairs)")));
            }
            (Attention::Mla, kv_lora, rope_dim, nope_dim, v_dim)
        };
        if let Some(qk) = self.qk_head_dim {
            if qk != nope_dim + rope_dim {
                return Err(invalid(format!("qk_head_dim = {qk} but qk_nope_head_dim + qk_rope_head_dim = {nope_dim} + {rope_dim}")));
            }
        }
        if self.q_lora_rank == Some(0) {
            return Err(invalid("q_lora_rank is 0; use null for a direct q projection".into()));
        }

        // transformers 5 writes `rope_parameters` (and may keep `rope_scaling` beside it): both
        // describe one RoPE, so they must agree on everything that changes the model.
        let kind_p = self.rope_parameters.as_ref().map(|b| b.kind("rope_parameters")).transpose().map_err(invalid)?.flatten();
        let kind_s = self.rope_scaling.as_ref().map(|b| b.kind("rope_scaling")).transpose().map_err(invalid)?.flatten();
        if let (Some(p), Some(s)) = (&self.rope_parameters, &self.rope_scaling) {
            if kind_p.unwrap_or("default") != kind_s.unwrap_or("default") || p.scaling() != s.scaling() {
                return Err(invalid(format!("rope_parameters {p:?} and rope_scaling {s:?} describe different RoPE scaling; keep one")));
            }
        }
        let rope_kind = kind_p.or(kind_s).map(str::to_string);
        let rope = self.rope_parameters.clone().or(self.rope_scaling.clone()).unwrap_or_default();
        if let (Some(a), Some(b)) = (self.rope_theta, rope.rope_theta) {
            if a != b {
                return Err(invalid(format!("rope_theta = {a} but rope_parameters.rope_theta = {b}; they must agree")));
            }
        }
        let rope_theta = self.rope_theta.or(rope.rope_theta).unwrap_or(10000.0);
        let max_position_embeddings = self.max_position_embeddings.unwrap_or(4096);
        let yarn = match rope_kind.as_deref() {
            Some("yarn") => {
                let factor = rope.factor.unwrap_or(1.0);
                if !(factor >= 1.0) {
                    return Err(invalid(format!("rope scaling factor {factor} must be >= 1")));
                }
                Some(Yarn {
                    factor,
                    original_max_position_embeddings: rope.original_max_position_embeddings.unwrap_or(max_position_embeddings),
                    beta_fast: rope.beta_fast.unwrap_or(32.0),
                    beta_slow: rope.beta_slow.unwrap_or(1.0),
                    mscale: rope.mscale.unwrap_or(1.0),
                    mscale_all_dim: rope.mscale_all_dim.unwrap_or(0.0),
                })
            }
            None | Some("default") => None,
            Some(other) => return Err(invalid(format!("rope scaling type {other:?} is not supported (supported: yarn, default)"))),
        };

        if let Some(act) = self.hidden_act.as_deref() {
            if act != "silu" {
                return Err(invalid(format!("hidden_act {act:?} is not supported (supported: \"silu\", the SwiGLU of every DeepSeek and Qwen3 checkpoint)")));
            }
        }
        if self.rope_interleave == Some(false) && attention == Attention::Mla {
            return Err(invalid("rope_interleave = false (half-split RoPE) is not supported for DeepSeek models; their RoPE rotates adjacent pairs".into()));
        }
        if self.attention_bias == Some(true) {
            return Err(invalid("attention_bias = true is not supported (no DeepSeek or Qwen3 checkpoint has attention biases)".into()));
        }

        let n_routed = self.n_routed_experts.unwrap_or(0);
        let moe = if n_routed > 0 {
            let top_k = req(self.num_experts_per_tok, "num_experts_per_tok")?;
            let n_group = self.n_group.unwrap_or(1).max(1);
            let topk_group = self.topk_group.unwrap_or(n_group).max(1);
            let scoring = match self.scoring_func.as_deref().unwrap_or(if family == Family::V3 { "sigmoid" } else { "softmax" }) {
                "sigmoid" => Scoring::Sigmoid,
                "softmax" => Scoring::Softmax,
                o => return Err(invalid(format!("scoring_func {o:?} is not supported (sigmoid, softmax)"))),
            };
            let topk = match self.topk_method.as_deref().unwrap_or(if family == Family::V3 { "noaux_tc" } else { "greedy" }) {
                "noaux_tc" => TopK::NoAuxTc,
                "greedy" => TopK::Greedy,
                "group_limited_greedy" => TopK::GroupLimitedGreedy,
                o => return Err(invalid(format!("topk_method {o:?} is not supported (noaux_tc, greedy, group_limited_greedy)"))),
            };
            if n_routed % n_group != 0 {
                return Err(invalid(format!("n_routed_experts = {n_routed} is not divisible by n_group = {n_group}")));
            }
            if topk_group > n_group {
                return Err(invalid(format!("topk_group = {topk_group} exceeds n_group = {n_group}")));
            }
            let per_group = n_routed / n_group;
            if topk == TopK::NoAuxTc && per_group < 2 && n_group > 1 {
                return Err(invalid(format!("noaux_tc needs at least 2 experts per group; got {per_group}")));
            }
            let reachable = if topk == TopK::Greedy { n_routed } else { topk_group * per_group };
            if top_k > reachable {
                return Err(invalid(format!(
                    "num_experts_per_tok = {top_k} exceeds the {reachable} experts reachable (n_routed_experts {n_routed}, n_group {n_group}, topk_group {topk_group})"
                )));
            }
            if top_k > 32 || n_group > 64 {
                return Err(invalid(format!("num_experts_per_tok = {top_k} (max 32) or n_group = {n_group} (max 64) is beyond what the gate kernel supports")));
            }
            Some(Moe {
                n_routed,
                n_shared: self.n_shared_experts.unwrap_or(0),
                top_k,
                n_group,
                topk_group,
                scoring,
                topk,
                norm_topk_prob: self.norm_topk_prob.unwrap_or(false),
                routed_scaling_factor: self.routed_scaling_factor.unwrap_or(1.0) as f32,
                intermediate: req(self.moe_intermediate_size, "moe_intermediate_size")?,
            })
        } else {
            None
        };

        let fp8_block = match &self.quantization_config {
            Some(q) if q.quant_method.as_deref() == Some("fp8") => {
                let b = q.weight_block_size.clone().unwrap_or(vec![128, 128]);
                if b.len() != 2 || b.contains(&0) {
                    return Err(invalid(format!("quantization_config.weight_block_size {b:?} must be two positive numbers")));
                }
                Some([b[0], b[1]])
            }
            Some(q) => {
                return Err(invalid(format!(
                    "quantization_config.quant_method {:?} is not supported (only fp8 block quantization)",
                    q.quant_method
                )))
            }
            None => None,
        };

        let eos_token_ids = match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|x| x as u32).collect(),
            _ => vec![],
        };
        let rms_norm_eps = self.rms_norm_eps.unwrap_or(1e-6);
        if !(rms_norm_eps > 0.0) {
            return Err(invalid(format!("rms_norm_eps = {rms_norm_eps} must be positive")));
        }

        Ok(ModelConfig {
            family,
            attention,
            vocab,
            hidden,
            n_layers,
            n_heads,
            intermediate,
            q_lora: if attention == Attention::Mla { self.q_lora_rank } else { None },
            kv_lora,
            rope_dim,
            nope_dim,
            v_dim,
            rope_theta,
            yarn,
            max_position_embeddings,
            rms_norm_eps: rms_norm_eps as f32,
            moe,
            // transformers' defaults: V3 keeps 3 dense layers, V2 none.
            first_k_dense: self.first_k_dense_replace.unwrap_or(if family == Family::V3 { 3 } else { 0 }),
            moe_layer_freq: self.moe_layer_freq.unwrap_or(1).max(1),
            num_nextn_predict_layers: self.num_nextn_predict_layers.unwrap_or(0),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            fp8_block,
            eos_token_ids,
            bos_token_id: self.bos_token_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "model_type": "deepseek_v3", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
            "moe_intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
            "q_lora_rank": 16, "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 8,
            "first_k_dense_replace": 1,
            "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                             "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
        })
    }

    fn parse(v: serde_json::Value) -> Result<ModelConfig, ConfigError> {
        ModelConfig::parse(&v.to_string(), Path::new("x/config.json"))
    }

    #[test]
    fn yarn_scale_and_layers() {
        let c = parse(base()).unwrap();
        let m = 0.1 * 40f64.ln() + 1.0;
        assert!((c.softmax_scale() as f64 - 16f64.powf(-0.5) * m * m).abs() < 1e-6);
        assert!(!c.is_moe_layer(0) && c.is_moe_layer(1));
        assert_eq!(c.moe.as_ref().unwrap().topk, TopK::NoAuxTc);
    }

    #[test]
    fn rope_parameters_spelling() {
        let mut v = base();
        let r = v["rope_scaling"].take();
        v.as_object_mut().unwrap().remove("rope_scaling");
        let mut r = r;
        r["rope_type"] = r["type"].take();
        r.as_object_mut().unwrap().remove("type");
        r["rope_theta"] = serde_json::json!(5000.0);
        v["rope_parameters"] = r;
        let c = parse(v).unwrap();
        assert_eq!(c.rope_theta, 5000.0);
        assert_eq!(c.yarn.unwrap().factor, 40.0);
    }

    #[test]
    fn rope_type_and_type_both_present() {
        // transformers 5.x save_pretrained writes both spellings.
        let mut v = base();
        v["rope_scaling"]["rope_type"] = "yarn".into();
        let c = parse(v.clone()).unwrap();
        assert_eq!(c.yarn.unwrap().factor, 40.0);
        let mut p = v["rope_scaling"].clone();
        p["rope_theta"] = serde_json::json!(10000.0);
        v["rope_parameters"] = p;
        assert_eq!(parse(v.clone()).unwrap().yarn.unwrap().factor, 40.0);
        v["rope_parameters"]["factor"] = serde_json::json!(8);
        assert!(parse(v).unwrap_err().to_string().contains("different RoPE scaling"));
        let mut v = base();
        v["rope_scaling"]["rope_type"] = "linear".into();
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("\"rope_type\": \"linear\"") && e.contains("\"type\": \"yarn\""), "{e}");
        let mut v = base();
        v["rope_theta"] = serde_json::json!(10000.0);
        v["rope_scaling"]["rope_theta"] = serde_json::json!(50000.0);
        assert!(parse(v).unwrap_err().to_string().contains("rope_theta"));
    }

    #[test]
    fn unsupported_features_are_named() {
        let mut v = base();
        v["hidden_act"] = "gelu".into();
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("hidden_act \"gelu\"") && e.contains("silu"), "{e}");
        let mut v = base();
        v["rope_interleave"] = false.into();
        assert!(parse(v).unwrap_err().to_string().contains("rope_interleave"));
        let mut v = base();
        v["qk_head_dim"] = 17.into();
        assert!(parse(v).unwrap_err().to_string().contains("qk_head_dim = 17"));
        let mut v = base();
        v["rope_scaling"]["factor"] = "forty".into();
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("`rope_scaling.factor`"), "{e}");
        let mut v = base();
        v.as_object_mut().unwrap().remove("model_type");
        let e = parse(v).unwrap_err().to_string();
        assert!(e.contains("no `model_type`") && e.contains("deepseek_v3"), "{e}");
        let mut v = base();
        v["sliding_window"] = 4.into();
        v["mtp_loss_weight"] = 4.into();
        assert_eq!(ModelConfig::unknown_keys(&v.to_string()), vec!["mtp_loss_weight".to_string()]);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut v = base();
        v["model_type"] = "llama".into();
        assert!(parse(v).unwrap_err().to_string().contains("llama"));
        let mut v = base();
        v["hidden_size"] = 0.into();
        assert!(parse(v).unwrap_err().to_string().contains("hidden_size"));
        let mut v = base();
        v["n_group"] = 3.into();
        assert!(parse(v).unwrap_err().to_string().contains("divisible"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("kv_lora_rank");
        assert!(parse(v).unwrap_err().to_string().contains("kv_lora_rank"));
        assert!(ModelConfig::parse("{", Path::new("c.json")).unwrap_err().to_string().contains("invalid JSON"));
    }

    /// A config shaped like DeepSeek-R1-0528-Qwen3-8B's (Qwen3-8B's sizes, YaRN to 128K).
    fn qwen3() -> serde_json::Value {
        serde_json::json!({
            "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
            "bos_token_id": 0, "eos_token_id": 1, "head_dim": 128, "hidden_act": "silu", "hidden_size": 4096,
            "initializer_range": 0.02, "intermediate_size": 12288, "max_position_embeddings": 131072,
            "max_window_layers": 36, "model_type": "qwen3", "num_attention_heads": 32, "num_hidden_layers": 36,
            "num_key_value_heads": 8, "rms_norm_eps": 1e-6,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
            "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
            "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
        })
    }

    #[test]
    fn qwen3_is_dense_gqa() {
        let c = parse(qwen3()).unwrap();
        assert_eq!(c.family, Family::Qwen3);
        assert_eq!(c.attention, Attention::Gqa { kv_heads: 8, head_dim: 128 });
        assert_eq!((c.rope_dim, c.nope_dim, c.v_dim, c.kv_lora, c.q_lora), (128, 0, 128, 0, None));
        assert!(c.moe.is_none() && (0..36).all(|l| !c.is_moe_layer(l)));
        assert_eq!(c.cache_dim(), 2 * 8 * 128);
        // 1/sqrt(128): YaRN's factor is in the cos/sin table, not in the softmax scale
        assert!((c.softmax_scale() - 128f32.powf(-0.5)).abs() < 1e-7);
        assert_eq!(c.yarn.as_ref().map(|y| (y.factor, y.original_max_position_embeddings)), Some((4.0, 32768)));
        // Qwen3-8B's published parameter count: 8.19B (36 layers, untied 151936-row head)
        let p = c.param_counts();
        assert_eq!(p.total, 8_190_735_360, "{p:?}");
        assert_eq!(p.routed, 0);
    }

    #[test]
    fn qwen3_errors_name_the_problem() {
        let mut v = qwen3();
        v["num_key_value_heads"] = 5.into();
        assert!(parse(v).unwrap_err().to_string().contains("not a multiple of num_key_value_heads = 5"));
        let mut v = qwen3();
        v["use_sliding_window"] = true.into();
        assert!(parse(v).unwrap_err().to_string().contains("use_sliding_window"));
        let mut v = qwen3();
        v["attention_bias"] = true.into();
        assert!(parse(v).unwrap_err().to_string().contains("attention_bias"));
        let mut v = qwen3();
        v["n_routed_experts"] = 8.into();
        assert!(parse(v).unwrap_err().to_string().contains("dense"));
        let mut v = qwen3();
        v["head_dim"] = 127.into();
        assert!(parse(v).unwrap_err().to_string().contains("head_dim = 127"));
    }
}
