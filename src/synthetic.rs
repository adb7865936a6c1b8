//! Synthetic models for benchmarks: a named shape (a `config.json` written here) with random
//! BF16 weights, built in memory as one safetensors file and loaded like any checkpoint.
//! Nothing is downloaded; the same name and seed give the same bytes.
//!
//! [`quant_checkpoint`] builds the same model with its projections in a GGUF block format
//! instead, as a llama.cpp quantization mostly has them: every attention projection (q_a,
//! q_b or q, kv_a, o, and kv_b split as llama.cpp's converter stores it: `k_b_proj` = W_UK
//! transposed per head, `v_b_proj` = W_UV), every MLP, shared and routed expert matrix, and
//! the head, in the format asked for; embedding, norms, router and correction bias stay
//! BF16/F32. A matrix
//! whose rows are not whole blocks of it takes llama.cpp's fallback (`llama-quant.cpp`:
//! Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0; Q2_K/Q3_K fall back to IQ4_NL there; these
//! synthetic models use Q4_0 instead), or stays BF16 when even that does not fit. Blocks are
//! random bytes with f16 scales (and mins) set per format so the values have the BF16
//! weights' standard deviation and about zero mean.
//!
//! Shapes:
//! - `r1-shape-small`: DeepSeek-R1's structure at reduced width (hidden 1024, 8 layers, the
//!   first dense, 8 heads, q_lora 384, kv_lora 128, 64 routed experts of width 256, 8 active in
//!   8 groups keeping 4, one shared expert, R1's vocabulary of 129280, sigmoid + noaux_tc, YaRN).
//! - `r1-shape-ci`: the same structure, narrower and shallower, for the CI regression test;
//!   like R1 its decode is dominated by the 129280-row head.
//! - `v2-lite-shape`: DeepSeek-V2-Lite's real sizes (15.7B parameters, ~31 GB of BF16) for
//!   machines with a large GPU and as much host memory.
//! - `qwen3-8b-shape`: DeepSeek-R1-0528-Qwen3-8B's real sizes (dense, 36 layers, 32 query heads
//!   sharing 8 K/V heads of 128, 8.2B parameters, ~16 GB of BF16), for real GPUs.
//! - `qwen3-shape-small`: the same structure at r1-shape-small's width (hidden 1024, 8 layers,
//!   16 heads sharing 4 K/V heads of 64) with Qwen3's 151936-token vocabulary, for this machine.

use std::collections::BTreeMap;

use crate::checkpoint::{Checkpoint, CheckpointError, Storage};
use crate::config::{ConfigError, ModelConfig};
use crate::format::Format;

#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error("unknown synthetic model {0:?}; known: {known}", known = NAMES.join(", "))]
    Unknown(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("synthetic weights are not made in {0}; one of {known}", known = fill_formats().map(|f| f.name().to_lowercase()).collect::<Vec<_>>().join(", "))]
    Quant(&'static str),
}

/// The block formats [`quant_checkpoint`] fills: the legacy formats and the K-quants (random
/// bytes with scales set per format). Not the i-quants: their random fill is not written.
pub fn fill_formats() -> impl Iterator<Item = Format> {
    Format::ALL.into_iter().filter(|f| f.is_block() && f.iquant().is_none())
}

/// Names accepted by [`config_json`] and [`build`].
pub const NAMES: &[&str] = &["r1-shape-small", "r1-shape-ci", "v2-lite-shape", "qwen3-8b-shape", "qwen3-shape-small"];

/// DeepSeek-R1's YaRN block (factor 40 over 4096 original positions).
fn r1_yarn() -> serde_json::Value {
    serde_json::json!({"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
        "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0})
}

/// The `config.json` of a named shape.
pub fn config_json(name: &str) -> Result<serde_json::Value, SyntheticError> {
    let r1 = |hidden: usize, layers: usize, heads: usize, q_lora: usize, kvl: usize, inter: usize, experts: usize, width: usize| {
        serde_json::json!({
            "model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": hidden,
            "intermediate_size": inter, "moe_intermediate_size": width,
            "num_hidden_layers": layers, "first_k_dense_replace": 1, "moe_layer_freq": 1,
            "num_attention_heads": heads, "q_lora_rank": q_lora, "kv_lora_rank": kvl,
            "qk_rope_head_dim": 32, "qk_nope_head_dim": 64, "v_head_dim": 64,
            "n_routed_experts": experts, "n_shared_experts": 1, "num_experts_per_tok": 8,
            "n_group": 8, "topk_group": 4, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
            "norm_topk_prob": true, "routed_scaling_factor": 2.5,
            "rope_theta": 10000, "rope_scaling": r1_yarn(), "max_position_embeddings": 163840,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 1
        })
    };
    // DeepSeek-R1-0528-Qwen3-8B's config.json, at other sizes
    let qwen3 = |hidden: usize, layers: usize, heads: usize, kv_heads: usize, head_dim: usize, inter: usize| {
        serde_json::json!({
            "model_type": "qwen3", "vocab_size": 151936, "hidden_size": hidden, "intermediate_size": inter,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
            "head_dim": head_dim, "rope_theta": 1000000, "max_position_embeddings": 131072,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
            "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "attention_bias": false,
            "bos_token_id": 151643, "eos_token_id": 151645
        })
    };
    Ok(match name {
        "r1-shape-small" => r1(1024, 8, 8, 384, 128, 2816, 64, 256),
        "r1-shape-ci" => r1(512, 3, 4, 192, 128, 1408, 32, 128),
        "v2-lite-shape" => serde_json::json!({
            "model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048,
            "intermediate_size": 10944, "moe_intermediate_size": 1408,
            "num_hidden_layers": 27, "first_k_dense_replace": 1, "moe_layer_freq": 1,
            "num_attention_heads": 16, "q_lora_rank": null, "kv_lora_rank": 512,
            "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
            "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6,
            "n_group": 1, "topk_group": 1, "topk_method": "greedy", "scoring_func": "softmax",
            "norm_topk_prob": false, "routed_scaling_factor": 1.0,
            "rope_theta": 10000, "max_position_embeddings": 163840,
            "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
            "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "bos_token_id": 100000, "eos_token_id": 100001
        }),
        "qwen3-8b-shape" => qwen3(4096, 36, 32, 8, 128, 12288),
        "qwen3-shape-small" => qwen3(1024, 8, 16, 4, 64, 2816),
        other => return Err(SyntheticError::Unknown(other.into())),
    })
}

/// The validated config of a named shape.
pub fn config(name: &str) -> Result<ModelConfig, SyntheticError> {
    let path = std::path::PathBuf::from(format!("synthetic:{name}/config.json"));
    Ok(ModelConfig::parse(&config_json(name)?.to_string(), &path)?)
}

/// How a tensor's random values are drawn.
#[derive(Clone, Copy)]
enum Fill {
    /// BF16, uniform with this standard deviation
    Bf16(f32),
    /// BF16 ones (norm weights)
    Ones,
    /// F32, uniform with this standard deviation (the router's correction bias)
    F32(f32),
    /// random blocks of a GGUF block format with this standard deviation
    Blocks(Format, f32),
    /// a projection: `Bf16` with this standard deviation, or `Blocks` in a quantized model
    Proj(f32),
}

impl Fill {
    fn format(self) -> Format {
        match self {
            Fill::Bf16(_) | Fill::Ones | Fill::Proj(_) => Format::BF16,
            Fill::F32(_) => Format::F32,
            Fill::Blocks(f, _) => f,
        }
    }
}

struct Spec {
    name: String,
    shape: Vec<usize>,
    fill: Fill,
}

impl Spec {
    fn bytes(&self) -> usize {
        self.fill.format().size_of(self.shape.iter().product())
    }
}

/// The format llama.cpp gives a tensor of `cols` columns that it would quantize to `q` (see
/// the module comment), or None (BF16) when no fallback fits either.
pub fn quant_format(q: Format, cols: usize) -> Option<Format> {
    let fallback = match q {
        Format::Q4_K => Format::Q5_0,
        Format::Q5_K => Format::Q5_1,
        Format::Q6_K => Format::Q8_0,
        Format::Q2_K | Format::Q3_K => Format::Q4_0,
        f => f,
    };
    [q, fallback].into_iter().find(|f| f.is_block() && cols.is_multiple_of(f.block_elems()))
}

/// Every tensor the loader reads for `cfg`, in checkpoint naming.
fn tensors(cfg: &ModelConfig, quant: Option<Format>) -> Vec<Spec> {
    const W: Fill = Fill::Proj(0.02);
    let mut v = Vec::new();
    let mut t = |name: String, shape: &[usize], fill: Fill| {
        let fill = match fill {
            Fill::Proj(std) => quant.and_then(|q| quant_format(q, shape[shape.len() - 1])).map_or(Fill::Bf16(std), |f| Fill::Blocks(f, std)),
            f => f,
        };
        v.push(Spec { name, shape: shape.to_vec(), fill })
    };
    let (h, nh, qk) = (cfg.hidden, cfg.n_heads, cfg.qk_head_dim());
    t("model.embed_tokens.weight".into(), &[cfg.vocab, h], Fill::Bf16(1.0));
    for i in 0..cfg.n_layers {
        let p = format!("model.layers.{i}");
        let a = format!("{p}.self_attn");
        if let crate::config::Attention::Gqa { kv_heads, head_dim } = cfg.attention {
            t(format!("{a}.q_proj.weight"), &[nh * head_dim, h], W);
            t(format!("{a}.k_proj.weight"), &[kv_heads * head_dim, h], W);
            t(format!("{a}.v_proj.weight"), &[kv_heads * head_dim, h], W);
            t(format!("{a}.o_proj.weight"), &[h, nh * head_dim], W);
            t(format!("{a}.q_norm.weight"), &[head_dim], Fill::Ones);
            t(format!("{a}.k_norm.weight"), &[head_dim], Fill::Ones);
        } else {
        match cfg.q_lora {
            None => t(format!("{a}.q_proj.weight"), &[nh * qk, h], W),
            Some(r) => {
                t(format!("{a}.q_a_proj.weight"), &[r, h], W);
                t(format!("{a}.q_a_layernorm.weight"), &[r], Fill::Ones);
                t(format!("{a}.q_b_proj.weight"), &[nh * qk, r], W);
            }
        }
        t(format!("{a}.kv_a_proj_with_mqa.weight"), &[cfg.kv_lora + cfg.rope_dim, h], W);
        t(format!("{a}.kv_a_layernorm.weight"), &[cfg.kv_lora], Fill::Ones);
        if quant.is_some() {
            // as llama.cpp's converter stores kv_b: W_UK transposed per head, and W_UV
            t(format!("{a}.k_b_proj.weight"), &[nh, cfg.kv_lora, cfg.nope_dim], Fill::Proj(0.05));
            t(format!("{a}.v_b_proj.weight"), &[nh, cfg.v_dim, cfg.kv_lora], Fill::Proj(0.05));
        } else {
            t(format!("{a}.kv_b_proj.weight"), &[nh * (cfg.nope_dim + cfg.v_dim), cfg.kv_lora], Fill::Proj(0.05));
        }
        t(format!("{a}.o_proj.weight"), &[h, nh * cfg.v_dim], W);
        }
        t(format!("{p}.input_layernorm.weight"), &[h], Fill::Ones);
        t(format!("{p}.post_attention_layernorm.weight"), &[h], Fill::Ones);
        let mlp = |t: &mut dyn FnMut(String, &[usize], Fill), p: &str, width: usize| {
            t(format!("{p}.gate_proj.weight"), &[width, h], W);
            t(format!("{p}.up_proj.weight"), &[width, h], W);
            t(format!("{p}.down_proj.weight"), &[h, width], W);
        };
        match &cfg.moe {
            Some(m) if cfg.is_moe_layer(i) => {
                // Router scores must differ between tokens so that routing varies.
                t(format!("{p}.mlp.gate.weight"), &[m.n_routed, h], Fill::Bf16(0.1));
                if m.topk == crate::config::TopK::NoAuxTc {
                    t(format!("{p}.mlp.gate.e_score_correction_bias"), &[m.n_routed], Fill::F32(0.01));
                }
                for e in 0..m.n_routed {
                    mlp(&mut t, &format!("{p}.mlp.experts.{e}"), m.intermediate);
                }
                if m.n_shared > 0 {
                    mlp(&mut t, &format!("{p}.mlp.shared_experts"), m.n_shared * m.intermediate);
                }
            }
            _ => mlp(&mut t, &format!("{p}.mlp"), cfg.intermediate),
        }
    }
    t("model.norm.weight".into(), &[h], Fill::Ones);
    t("lm_head.weight".into(), &[cfg.vocab, h], W);
    v
}

/// Bytes the synthetic checkpoint of `cfg` occupies (≈ host memory needed to build it).
pub fn checkpoint_bytes(cfg: &ModelConfig) -> u64 {
    tensors(cfg, None).iter().map(|s| s.bytes() as u64).sum()
}

/// Bytes of [`quant_checkpoint`]'s checkpoint.
pub fn quant_checkpoint_bytes(cfg: &ModelConfig, quant: Format) -> u64 {
    tensors(cfg, Some(quant)).iter().map(|s| s.bytes() as u64).sum()
}

/// Each tensor's name and format in [`quant_checkpoint`]'s checkpoint (for reports).
pub fn quant_formats(cfg: &ModelConfig, quant: Format) -> Vec<(String, Format)> {
    tensors(cfg, Some(quant)).into_iter().map(|s| (s.name, s.fill.format())).collect()
}

/// A named shape's config and an in-memory checkpoint of random weights (deterministic in
/// `seed`). Building uses every core; r1-shape-small takes about 1.3 GB.
pub fn build(name: &str, seed: u64) -> Result<(ModelConfig, Checkpoint), SyntheticError> {
    let cfg = config(name)?;
    let ck = checkpoint(&cfg, seed)?;
    Ok((cfg, ck))
}

/// An in-memory safetensors checkpoint of random weights for `cfg`.
pub fn checkpoint(cfg: &ModelConfig, seed: u64) -> Result<Checkpoint, SyntheticError> {
    let specs = tensors(cfg, None);
    let mut header = BTreeMap::new();
    let mut spans = Vec::with_capacity(specs.len());
    let mut off = 0usize;
    for s in &specs {
        let n = s.bytes();
        header.insert(s.name.clone(), serde_json::json!({"dtype": s.fill.format().name(), "shape": s.shape, "data_offsets": [off, off + n]}));
        spans.push((off, n));
        off += n;
    }
    let mut head = serde_json::to_vec(&header).expect("a map of strings and numbers serialises");
    head.resize(head.len().next_multiple_of(8), b' ');
    let data_start = 8 + head.len();
    let mut file = Vec::with_capacity(data_start + off);
    file.extend_from_slice(&(head.len() as u64).to_le_bytes());
    file.extend_from_slice(&head);
    file.resize(data_start + off, 0);
    fill_all(&mut file[data_start..], &specs, &spans, seed);
    Ok(Checkpoint::from_memory(&format!("synthetic:{}", cfg_label(cfg)), vec![Storage::Owned(file)])?)
}

/// The checkpoint of [`checkpoint`] with the projections in the block format `quant` (see
/// the module comment; the other tensors hold the same values as there). Block formats are
/// not safetensors dtypes, so the tensors are views into one buffer, as a GGUF file's are.
pub fn quant_checkpoint(cfg: &ModelConfig, seed: u64, quant: Format) -> Result<Checkpoint, SyntheticError> {
    if !fill_formats().any(|f| f == quant) {
        return Err(SyntheticError::Quant(quant.name()));
    }
    let specs = tensors(cfg, Some(quant));
    let mut spans = Vec::with_capacity(specs.len());
    let mut off = 0usize;
    for s in &specs {
        spans.push((off, s.bytes()));
        off = (off + s.bytes()).next_multiple_of(32);
    }
    let mut data = vec![0u8; off];
    fill_all(&mut data, &specs, &spans, seed);
    let views = specs.iter().zip(&spans).map(|(s, &(o, n))| (s.name.clone(), s.fill.format(), s.shape.clone(), 0, o..o + n)).collect();
    let name = format!("synthetic:{}-{}", cfg_label(cfg), quant.name().to_lowercase());
    Ok(Checkpoint::from_views(std::path::Path::new(&name), vec![(name.clone().into(), Storage::Owned(data))], views)?)
}

fn cfg_label(cfg: &ModelConfig) -> String {
    format!("h{}-l{}-v{}", cfg.hidden, cfg.n_layers, cfg.vocab)
}

/// Fill every tensor's bytes, in pieces of 1 MiB spread over all cores. Each piece's values
/// depend only on (seed, tensor index, piece index), so the thread count never changes them.
fn fill_all(data: &mut [u8], specs: &[Spec], spans: &[(usize, usize)], seed: u64) {
    const PIECE: usize = 1 << 20;
    let mut jobs: Vec<(&mut [u8], Fill, u64)> = Vec::new();
    let mut rest = data;
    let mut pos = 0;
    for (i, (s, &(off, n))) in specs.iter().zip(spans).enumerate() {
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(off - pos);
        let (mine, tail) = tail.split_at_mut(n);
        rest = tail;
        pos = off + n;
        // whole blocks per piece
        let piece_len = PIECE / s.fill.format().block_bytes() * s.fill.format().block_bytes();
        for (j, piece) in mine.chunks_mut(piece_len).enumerate() {
            jobs.push((piece, s.fill, splitmix(seed ^ splitmix(i as u64) ^ splitmix((j as u64) << 32 | 0x5eed))));
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|sc| {
        let mut jobs = jobs;
        while !jobs.is_empty() {
            let batch: Vec<_> = jobs.drain(..per.min(jobs.len())).collect();
            sc.spawn(move || {
                for (piece, fill, s) in batch {
                    fill_piece(piece, fill, s);
                }
            });
        }
    });
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fill_piece(out: &mut [u8], fill: Fill, seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix(state)
    };
    // Uniform on [-a, a] has standard deviation a / √3.
    let uniform = |bits: u64, std: f32| ((bits & 0xffff) as f32 * (2.0 / 65535.0) - 1.0) * std * 3f32.sqrt();
    match fill {
        Fill::Bf16(std) | Fill::Proj(std) => {
            for quad in out.chunks_mut(8) {
                let r = next();
                for (k, v) in quad.chunks_mut(2).enumerate() {
                    let b = half::bf16::from_f32(uniform(r >> (16 * k), std)).to_le_bytes();
                    v.copy_from_slice(&b[..v.len()]);
                }
            }
        }
        Fill::Ones => {
            for v in out.chunks_mut(2) {
                v.copy_from_slice(&half::bf16::ONE.to_le_bytes()[..v.len()]);
            }
        }
        Fill::F32(std) => {
            for v in out.chunks_mut(4) {
                let b = uniform(next(), std).to_le_bytes();
                v.copy_from_slice(&b[..v.len()]);
            }
        }
        Fill::Blocks(f, std) => {
            for q in out.chunks_mut(8) {
                let b = next().to_le_bytes();
                q.copy_from_slice(&b[..q.len()]);
            }
            let (fields, value_std) = block_scales(f);
            for b in out.chunks_exact_mut(f.block_bytes()) {
                // this block's scale: the target's, within ±20%
                let d = std / value_std * (0.8 + 0.4 * (next() & 0xffff) as f32 / 65535.0);
                for &(o, ratio) in fields {
                    b[o..o + 2].copy_from_slice(&half::f16::from_f32(d * ratio).to_le_bytes());
                }
            }
        }
    }
}

/// A block format's f16 scale fields as (byte offset, value relative to the scale d), and
/// the standard deviation of its values for d = 1 over uniformly random quants and packed
/// sub-block scales. The mins (the second field where there is one) cancel the mean of
/// d · scale · q: Q4_1/Q5_1 store `m` (added: −7.5 d, −15.5 d), the K-quants `dmin`
/// (subtracted, times a sub-block min as large on average as the sub-block scale: E[q]·d).
fn block_scales(f: Format) -> (&'static [(usize, f32)], f32) {
    match f {
        Format::Q8_0 => (&[(0, 1.0)], 73.9),            // q ∈ [−128, 127]
        Format::Q4_0 => (&[(0, 1.0)], 4.61),            // q − 8 ∈ [−8, 7]
        Format::Q4_1 => (&[(0, 1.0), (2, -7.5)], 4.61), // q ∈ [0, 15]
        Format::Q5_0 => (&[(0, 1.0)], 9.23),            // q − 16 ∈ [−16, 15]
        Format::Q5_1 => (&[(0, 1.0), (2, -15.5)], 9.23),
        Format::Q2_K => (&[(80, 1.0), (82, 1.5)], 13.9), // sc, m ∈ [0, 15], q ∈ [0, 3]
        Format::Q3_K => (&[(108, 1.0)], 42.4),           // s − 32 ∈ [−32, 31], q − 4·!h ∈ [−4, 3]
        Format::Q4_K => (&[(0, 1.0), (2, 7.5)], 258.0),  // sc, m ∈ [0, 63], q ∈ [0, 15]
        Format::Q5_K => (&[(0, 1.0), (2, 15.5)], 527.0), // q ∈ [0, 31]
        Format::Q6_K => (&[(208, 1.0)], 1367.0),         // scale ∈ [−128, 127], q − 32 ∈ [−32, 31]
        f => unreachable!("{f:?} is not a block format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Family, Scoring, TopK};

    #[test]
    fn r1_shape_small_has_the_listed_sizes() {
        let c = config("r1-shape-small").unwrap();
        assert_eq!(c.family, Family::V3);
        assert_eq!((c.hidden, c.n_layers, c.first_k_dense, c.n_heads), (1024, 8, 1, 8));
        assert_eq!((c.q_lora, c.kv_lora, c.rope_dim, c.nope_dim, c.v_dim), (Some(384), 128, 32, 64, 64));
        assert_eq!((c.intermediate, c.vocab), (2816, 129280));
        let m = c.moe.as_ref().unwrap();
        assert_eq!((m.n_routed, m.intermediate, m.top_k, m.n_group, m.topk_group, m.n_shared), (64, 256, 8, 8, 4, 1));
        assert_eq!((m.scoring, m.topk, m.norm_topk_prob, m.routed_scaling_factor), (Scoring::Sigmoid, TopK::NoAuxTc, true, 2.5));
        assert_eq!(c.yarn.as_ref().unwrap().factor, 40.0);
        assert!(!c.is_moe_layer(0) && (1..8).all(|i| c.is_moe_layer(i)));
    }

    #[test]
    fn v2_lite_shape_has_the_real_sizes() {
        let c = config("v2-lite-shape").unwrap();
        assert_eq!((c.family, c.hidden, c.n_layers, c.n_heads, c.q_lora, c.kv_lora), (Family::V2, 2048, 27, 16, None, 512));
        let m = c.moe.as_ref().unwrap();
        assert_eq!((m.n_routed, m.intermediate, m.top_k, m.n_shared, m.scoring, m.topk), (64, 1408, 6, 2, Scoring::Softmax, TopK::Greedy));
        // 15.7B parameters in BF16.
        let gb = checkpoint_bytes(&c) as f64 / 1e9;
        assert!((31.0..32.0).contains(&gb), "{gb} GB");
    }

    /// The quantized checkpoint: projections in the format (or llama.cpp's fallback), the
    /// rest as in the BF16 one; block values finite, about zero mean, the BF16 spread.
    #[test]
    fn quant_checkpoint_formats_and_values() {
        let c = config("r1-shape-ci").unwrap();
        assert!(matches!(quant_checkpoint(&c, 7, Format::IQ2_XXS), Err(SyntheticError::Quant("IQ2_XXS"))));
        for q in fill_formats() {
            let ck = quant_checkpoint(&c, 7, q).unwrap();
            let fmt = |n: &str| ck.get(n).unwrap().dtype;
            assert_eq!(fmt("model.layers.1.mlp.experts.3.up_proj.weight"), q, "{q:?}");
            assert_eq!(fmt("lm_head.weight"), q);
            assert_eq!(fmt("model.embed_tokens.weight"), Format::BF16);
            assert_eq!(fmt("model.layers.1.mlp.gate.weight"), Format::BF16);
            assert_eq!(fmt("model.norm.weight"), Format::BF16);
            // v_b has kv_lora = 128 columns, k_b nope = 64: not whole K-quant blocks
            let fallback = quant_format(q, 64).unwrap();
            assert_eq!(fmt("model.layers.0.self_attn.k_b_proj.weight"), fallback);
            assert_eq!(fmt("model.layers.0.self_attn.v_b_proj.weight"), fallback);
            assert!(ck.get("model.layers.0.self_attn.kv_b_proj.weight").is_none());
            assert!(fallback.block_elems() == 32 || fallback == q);
            for name in ["model.layers.1.mlp.experts.3.up_proj.weight", "model.layers.0.self_attn.v_b_proj.weight"] {
                let w = ck.f32_vec(name).unwrap();
                let n = w.len() as f32;
                let mean = w.iter().sum::<f32>() / n;
                let std = (w.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt();
                let want = if name.contains("v_b") { 0.05 } else { 0.02 };
                assert!(w.iter().all(|v| v.is_finite()), "{q:?} {name}");
                assert!((0.75 * want..1.25 * want).contains(&std) && mean.abs() < 0.2 * want, "{q:?} {name}: std {std}, mean {mean}");
            }
            assert_eq!(quant_checkpoint_bytes(&c, q), ck.names().map(|n| ck.bytes(n).unwrap().len() as u64).sum::<u64>());
            let a = quant_checkpoint(&c, 7, q).unwrap();
            assert_eq!(a.bytes("lm_head.weight").unwrap(), ck.bytes("lm_head.weight").unwrap());
        }
        assert_eq!(quant_format(Format::Q4_K, 384), Some(Format::Q5_0));
        assert_eq!(quant_format(Format::Q6_K, 96), Some(Format::Q8_0));
        assert_eq!(quant_format(Format::Q8_0, 48), None);
    }

    #[test]
    fn checkpoint_is_deterministic_and_loadable() {
        assert!(matches!(config("r1-shape-huge"), Err(SyntheticError::Unknown(_))));
        let c = config("r1-shape-ci").unwrap();
        let a = checkpoint(&c, 7).unwrap();
        let b = checkpoint(&c, 7).unwrap();
        let name = "model.layers.1.mlp.experts.3.up_proj.weight";
        assert_eq!(a.bytes(name).unwrap(), b.bytes(name).unwrap());
        let w = a.f32_vec(name).unwrap();
        let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
        assert!((0.018..0.022).contains(&std), "std {std}");
        assert_eq!(a.f32_vec("model.norm.weight").unwrap(), vec![1.0; c.hidden]);
        let r = a.f32_vec("model.layers.1.mlp.gate.weight").unwrap();
        assert!(r.windows(2).any(|p| p[0] != p[1]));
    }
}
