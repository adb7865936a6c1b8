//! Synthetic models for benchmarks: a named shape (a `config.json` written here) with random
//! BF16 weights, built in memory as one safetensors file and loaded like any checkpoint.
//! Nothing is downloaded; the same name and seed give the same bytes.
//!
//! Shapes:
//! - `r1-shape-small`: DeepSeek-R1's structure at reduced width (hidden 1024, 8 layers, the
//!   first dense, 8 heads, q_lora 384, kv_lora 128, 64 routed experts of width 256, 8 active in
//!   8 groups keeping 4, one shared expert, R1's vocabulary of 129280, sigmoid + noaux_tc, YaRN).
//! - `r1-shape-ci`: the same structure, narrower and shallower, for the CI regression test;
//!   like R1 its decode is dominated by the 129280-row head.
//! - `v2-lite-shape`: DeepSeek-V2-Lite's real sizes (15.7B parameters, ~31 GB of BF16) for
//!   machines with a large GPU and as much host memory.

use std::collections::BTreeMap;

use crate::checkpoint::{Checkpoint, CheckpointError, Storage};
use crate::config::{ConfigError, ModelConfig};

#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error("unknown synthetic model {0:?}; known: {known}", known = NAMES.join(", "))]
    Unknown(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// Names accepted by [`config_json`] and [`build`].
pub const NAMES: &[&str] = &["r1-shape-small", "r1-shape-ci", "v2-lite-shape"];

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
}

struct Spec {
    name: String,
    shape: Vec<usize>,
    fill: Fill,
}

/// Every tensor the loader reads for `cfg`, in checkpoint naming.
fn tensors(cfg: &ModelConfig) -> Vec<Spec> {
    const W: Fill = Fill::Bf16(0.02);
    let mut v = Vec::new();
    let mut t = |name: String, shape: &[usize], fill: Fill| v.push(Spec { name, shape: shape.to_vec(), fill });
    let (h, nh, qk) = (cfg.hidden, cfg.n_heads, cfg.qk_head_dim());
    t("model.embed_tokens.weight".into(), &[cfg.vocab, h], Fill::Bf16(1.0));
    for i in 0..cfg.n_layers {
        let p = format!("model.layers.{i}");
        let a = format!("{p}.self_attn");
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
        t(format!("{a}.kv_b_proj.weight"), &[nh * (cfg.nope_dim + cfg.v_dim), cfg.kv_lora], Fill::Bf16(0.05));
        t(format!("{a}.o_proj.weight"), &[h, nh * cfg.v_dim], W);
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
    tensors(cfg).iter().map(|s| s.shape.iter().product::<usize>() as u64 * elem_size(s.fill) as u64).sum()
}

fn elem_size(f: Fill) -> usize {
    match f {
        Fill::F32(_) => 4,
        _ => 2,
    }
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
    let specs = tensors(cfg);
    let mut header = BTreeMap::new();
    let mut spans = Vec::with_capacity(specs.len());
    let mut off = 0usize;
    for s in &specs {
        let n = s.shape.iter().product::<usize>() * elem_size(s.fill);
        let dtype = if matches!(s.fill, Fill::F32(_)) { "F32" } else { "BF16" };
        header.insert(s.name.clone(), serde_json::json!({"dtype": dtype, "shape": s.shape, "data_offsets": [off, off + n]}));
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
        for (j, piece) in mine.chunks_mut(PIECE).enumerate() {
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
        Fill::Bf16(std) => {
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
