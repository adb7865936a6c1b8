//! llama.cpp's `qwen3` architecture: how its `convert_hf_to_gguf.py` (`Qwen3Model`, a
//! `Qwen2Model`) writes transformers' `Qwen3ForCausalLM` (Qwen3 dense models,
//! DeepSeek-R1-0528-Qwen3-8B). As in [`super::deepseek2`], the hyperparameters become the
//! `config.json` transformers would read and the tensors become views under transformers' names.
//!
//! What the converter changed, and how it is undone:
//! - names only: `blk.N.attn_q` ← `model.layers.N.self_attn.q_proj`, `attn_q_norm` ← `q_norm`, …
//!   ([`hf_name`]). Unlike its `LlamaModel`, the converter does not permute q/k rows for Qwen2 or
//!   Qwen3 (llama.cpp runs them with NEOX-style, half-split RoPE, as transformers does), so the
//!   bytes are transformers' `[out][in]` rows as they are;
//! - a tied model (`tie_word_embeddings`) has no `output.weight`: the config says so and the
//!   checkpoint has no `lm_head.weight`, as a tied safetensors checkpoint has none.
//!
//! What the file does not record: `head_dim` is `attention.key_length` (written from the
//! config's `head_dim`), else hidden / heads. YaRN's attention factor: llama.cpp ignores the
//! converter's `rope.scaling.yarn_attn_factor` (the config's `attn_factor` / `attention_factor`)
//! and uses `0.1·ln(factor) + 1`, times `rope.scaling.attn_factor` when present; so does this
//! config (transformers' default, with `attention_factor` written only for the latter).

use serde_json::{json, Map, Value as Json};

use super::{hf, Gguf, GgufError};
use crate::checkpoint::{Checkpoint, CheckpointError};

/// The architecture name this module reads.
pub const ARCH: &str = "qwen3";

/// `config.json` (transformers' names) from a `qwen3` GGUF's metadata.
pub fn hf_config(g: &Gguf) -> Result<Json, GgufError> {
    hf::require_arch(g, ARCH)?;
    let k = |s: &str| format!("{ARCH}.{s}");
    let u = |s: &str| g.get_u64(&k(s));
    let opt_u = |s: &str| g.get(&k(s)).map(|_| u(s)).transpose();
    let opt_f = |s: &str| g.get(&k(s)).map(|_| g.get_f64(&k(s))).transpose();
    let bad = |key: &str, msg: String| GgufError::Metadata { path: g.paths()[0].to_path_buf(), key: k(key), msg };
    let hidden = u("embedding_length")?;
    let heads = u("attention.head_count")?;
    if heads == 0 {
        return Err(bad("attention.head_count", "0 attention heads".into()));
    }
    let kv_heads = opt_u("attention.head_count_kv")?.unwrap_or(heads);
    let head_dim = opt_u("attention.key_length")?.unwrap_or(hidden / heads);
    if let Some(v) = opt_u("attention.value_length")?.filter(|&v| v != head_dim) {
        return Err(bad("attention.value_length", format!("{v} differs from the key length {head_dim}; Qwen3 has one head size")));
    }
    if let Some(r) = opt_u("rope.dimension_count")?.filter(|&r| r != head_dim) {
        return Err(bad("rope.dimension_count", format!("{r} differs from the head size {head_dim}; Qwen3 rotates whole heads")));
    }
    let mut c = Map::new();
    c.insert("model_type".into(), json!("qwen3"));
    c.insert("architectures".into(), json!(["Qwen3ForCausalLM"]));
    c.insert("vocab_size".into(), json!(hf::vocab_size(g, ARCH)?));
    c.insert("hidden_size".into(), json!(hidden));
    c.insert("intermediate_size".into(), json!(u("feed_forward_length")?));
    c.insert("num_hidden_layers".into(), json!(u("block_count")?));
    c.insert("num_attention_heads".into(), json!(heads));
    c.insert("num_key_value_heads".into(), json!(kv_heads));
    c.insert("head_dim".into(), json!(head_dim));
    c.insert("rms_norm_eps".into(), json!(f32_value(opt_f("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6))));
    c.insert("rope_theta".into(), json!(f32_value(opt_f("rope.freq_base")?.unwrap_or(10000.0))));
    c.insert("max_position_embeddings".into(), json!(opt_u("context_length")?.unwrap_or(4096)));
    c.insert("tie_word_embeddings".into(), json!(g.tensor("output.weight").is_none()));
    c.insert("hidden_act".into(), json!("silu"));
    c.insert("attention_bias".into(), json!(false));
    let kind = match g.get(&k("rope.scaling.type")) {
        Some(_) => g.get_str(&k("rope.scaling.type"))?,
        None => "none",
    };
    let scaling = match kind {
        "none" => Json::Null,
        "yarn" | "linear" => {
            let factor = f32_value(opt_f("rope.scaling.factor")?.ok_or_else(|| bad("rope.scaling.factor", format!("missing, but rope.scaling.type is {kind:?}")))?);
            let mut r = Map::new();
            r.insert("rope_type".into(), json!(kind));
            r.insert("factor".into(), json!(factor));
            if kind == "yarn" {
                let orig = opt_u("rope.scaling.original_context_length")?.ok_or_else(|| bad("rope.scaling.original_context_length", "missing, but rope.scaling.type is \"yarn\"".into()))?;
                r.insert("original_max_position_embeddings".into(), json!(orig));
                for (key, name) in [("rope.scaling.yarn_beta_fast", "beta_fast"), ("rope.scaling.yarn_beta_slow", "beta_slow")] {
                    if let Some(v) = opt_f(key)? {
                        r.insert(name.into(), json!(f32_value(v)));
                    }
                }
                if let Some(a) = opt_f("rope.scaling.attn_factor")?.filter(|&a| a != 1.0) {
                    r.insert("attention_factor".into(), json!(f32_value(a) * (0.1 * factor.ln() + 1.0)));
                }
                if let Some(a) = opt_f("rope.scaling.yarn_attn_factor")? {
                    log::debug!("{}: {} = {a} is ignored, as llama.cpp ignores it", g.paths()[0].display(), k("rope.scaling.yarn_attn_factor"));
                }
            }
            Json::Object(r)
        }
        other => return Err(bad("rope.scaling.type", format!("{other:?} is not a RoPE scaling this engine runs for Qwen3 (none, linear, yarn)"))),
    };
    c.insert("rope_scaling".into(), scaling);
    hf::insert_special_ids(g, &mut c)?;
    Ok(Json::Object(c))
}

/// An f32 metadata value as the decimal the config had (1e-6, not 9.999999974752427e-7): GGUF
/// stores these as f32, which the shortest f32 representation gives back.
fn f32_value(v: f64) -> f64 {
    let f = v as f32;
    if f as f64 == v {
        f.to_string().parse().unwrap_or(v)
    } else {
        v
    }
}

/// transformers' name of a GGUF tensor name; `None` for names the engine does not use.
pub fn hf_name(gguf_name: &str) -> Option<String> {
    hf::hf_name_with(gguf_name, |part| {
        Some(match part {
            "attn_norm.weight" => "input_layernorm.weight",
            "attn_q.weight" => "self_attn.q_proj.weight",
            "attn_k.weight" => "self_attn.k_proj.weight",
            "attn_v.weight" => "self_attn.v_proj.weight",
            "attn_q_norm.weight" => "self_attn.q_norm.weight",
            "attn_k_norm.weight" => "self_attn.k_norm.weight",
            "attn_output.weight" => "self_attn.o_proj.weight",
            "ffn_norm.weight" => "post_attention_layernorm.weight",
            "ffn_gate.weight" => "mlp.gate_proj.weight",
            "ffn_up.weight" => "mlp.up_proj.weight",
            "ffn_down.weight" => "mlp.down_proj.weight",
            _ => return None,
        })
    })
}

/// The GGUF's tensors as a [`Checkpoint`] under transformers' names (views into the mmap'd
/// files, nothing copied); tensors the engine does not use are left out.
pub fn checkpoint(g: &Gguf) -> Result<Checkpoint, CheckpointError> {
    hf::checkpoint_with(g, hf_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_transformers() {
        assert_eq!(hf_name("blk.1.attn_q_norm.weight").as_deref(), Some("model.layers.1.self_attn.q_norm.weight"));
        assert_eq!(hf_name("blk.0.attn_k.weight").as_deref(), Some("model.layers.0.self_attn.k_proj.weight"));
        assert_eq!(hf_name("blk.35.ffn_down.weight").as_deref(), Some("model.layers.35.mlp.down_proj.weight"));
        assert_eq!(hf_name("token_embd.weight").as_deref(), Some("model.embed_tokens.weight"));
        assert_eq!(hf_name("output.weight").as_deref(), Some("lm_head.weight"));
        assert_eq!(hf_name("blk.0.attn_kv_a_mqa.weight"), None);
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }

    #[test]
    fn f32_values_read_back_as_written() {
        assert_eq!(f32_value(1e-6f32 as f64), 1e-6);
        assert_eq!(f32_value(1e6), 1e6);
        assert_eq!(f32_value(0.1), 0.1);
    }
}
