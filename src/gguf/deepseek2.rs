//! llama.cpp's `deepseek2` architecture: how its `convert_hf_to_gguf.py` writes DeepSeek-V2,
//! V2-Lite, V3, R1, R1-0528 and Moonlight. Nothing here runs a model: the hyperparameters
//! become the `config.json` transformers would read (then validated by [`crate::config`] like
//! any other), and the tensors become views into the GGUF files under transformers' names
//! (a [`Checkpoint`]), so the loader and the graph are the safetensors ones.
//!
//! What the converter changed, and how it is undone:
//! - names: `blk.N.attn_q_a` ← `model.layers.N.self_attn.q_a_proj`, … (one table, [`hf_name`]);
//! - routed experts stacked per layer as `ffn_{gate,up,down}_exps` `[E][out][in]`: one view
//!   per expert, `model.layers.N.mlp.experts.E.{gate,up,down}_proj.weight`;
//! - newer files split `kv_b_proj` into `attn_k_b` (W_UK per head, transposed: `[H][kvl][nope]`)
//!   and `attn_v_b` (W_UV: `[H][v][kvl]`): kept split, as `self_attn.k_b_proj` /
//!   `self_attn.v_b_proj` (the graph runs both forms); older files keep `attn_kv_b`;
//! - 2-D weights keep transformers' `[out][in]` row-major bytes (ggml lists dims innermost
//!   first, so shapes are reversed); nothing is permuted (deepseek2 uses DeepSeek's
//!   interleaved RoPE pairs as they are).
//!
//! What a GGUF does not record is inferred, as llama.cpp does: the top-k method from the
//! gating function and group count (sigmoid: `noaux_tc`; softmax with groups:
//! `group_limited_greedy`; else `greedy`), YaRN's `mscale` equal to `mscale_all_dim` (true of
//! every published DeepSeek config) and its betas at transformers' defaults.

use serde_json::{json, Map, Value as Json};

use super::{hf, Gguf, GgufError};
use crate::checkpoint::{Checkpoint, CheckpointError};

/// The architecture name this module reads.
pub const ARCH: &str = "deepseek2";

/// `config.json` (transformers' names) from a `deepseek2` GGUF's metadata.
pub fn hf_config(g: &Gguf) -> Result<Json, GgufError> {
    hf::require_arch(g, ARCH)?;
    let k = |s: &str| format!("{ARCH}.{s}");
    let u = |s: &str| g.get_u64(&k(s));
    let opt_u = |s: &str| g.get(&k(s)).map(|_| u(s)).transpose();
    let opt_f = |s: &str| g.get(&k(s)).map(|_| g.get_f64(&k(s))).transpose();
    let hidden = u("embedding_length")?;
    let heads = u("attention.head_count")?;
    let rope = u("rope.dimension_count")?;
    let kv_lora = u("attention.kv_lora_rank")?;
    // Newer converters write the MLA head sizes as *_mla (key_length is then kvl + rope).
    let (qk, v) = match opt_u("attention.key_length_mla")? {
        Some(qk) => (qk, u("attention.value_length_mla")?),
        None => (u("attention.key_length")?, u("attention.value_length")?),
    };
    if qk <= rope {
        return Err(GgufError::Metadata {
            path: g.paths()[0].to_path_buf(),
            key: k("attention.key_length"),
            msg: format!("the query/key head size {qk} is not larger than the rope dimension {rope}"),
        });
    }
    let vocab = hf::vocab_size(g, ARCH)?;
    let sigmoid = opt_u("expert_gating_func")? == Some(2);
    let n_group = opt_u("expert_group_count")?.unwrap_or(1);
    let topk_method = if sigmoid {
        "noaux_tc"
    } else if n_group > 1 {
        "group_limited_greedy"
    } else {
        "greedy"
    };
    let mut c = Map::new();
    c.insert("model_type".into(), json!(if sigmoid { "deepseek_v3" } else { "deepseek_v2" }));
    c.insert("vocab_size".into(), json!(vocab));
    c.insert("hidden_size".into(), json!(hidden));
    c.insert("intermediate_size".into(), json!(u("feed_forward_length")?));
    c.insert("num_hidden_layers".into(), json!(u("block_count")?));
    c.insert("num_attention_heads".into(), json!(heads));
    c.insert("kv_lora_rank".into(), json!(kv_lora));
    c.insert("q_lora_rank".into(), json!(opt_u("attention.q_lora_rank")?));
    c.insert("qk_rope_head_dim".into(), json!(rope));
    c.insert("qk_nope_head_dim".into(), json!(qk - rope));
    c.insert("v_head_dim".into(), json!(v));
    c.insert("rms_norm_eps".into(), json!(opt_f("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6)));
    c.insert("rope_theta".into(), json!(opt_f("rope.freq_base")?.unwrap_or(10000.0)));
    c.insert("max_position_embeddings".into(), json!(opt_u("context_length")?.unwrap_or(4096)));
    c.insert("tie_word_embeddings".into(), json!(g.tensor("output.weight").is_none()));
    if let Some(n) = opt_u("expert_count")?.filter(|&n| n > 0) {
        c.insert("n_routed_experts".into(), json!(n));
        c.insert("num_experts_per_tok".into(), json!(u("expert_used_count")?));
        c.insert("n_shared_experts".into(), json!(opt_u("expert_shared_count")?.unwrap_or(0)));
        c.insert("moe_intermediate_size".into(), json!(u("expert_feed_forward_length")?));
        c.insert("first_k_dense_replace".into(), json!(opt_u("leading_dense_block_count")?.unwrap_or(0)));
        c.insert("routed_scaling_factor".into(), json!(opt_f("expert_weights_scale")?.unwrap_or(1.0)));
        c.insert("norm_topk_prob".into(), json!(g.get(&k("expert_weights_norm")).map(|_| g.get_bool(&k("expert_weights_norm"))).transpose()?.unwrap_or(false)));
        c.insert("scoring_func".into(), json!(if sigmoid { "sigmoid" } else { "softmax" }));
        c.insert("topk_method".into(), json!(topk_method));
        c.insert("n_group".into(), json!(n_group));
        c.insert("topk_group".into(), json!(opt_u("expert_group_used_count")?.unwrap_or(1)));
    }
    if g.get(&k("rope.scaling.type")).is_some() {
        let kind = g.get_str(&k("rope.scaling.type"))?;
        if kind != "none" {
            let mut r = Map::new();
            r.insert("type".into(), json!(kind));
            r.insert("factor".into(), json!(opt_f("rope.scaling.factor")?.unwrap_or(1.0)));
            if let Some(n) = opt_u("rope.scaling.original_context_length")? {
                r.insert("original_max_position_embeddings".into(), json!(n));
            }
            if let Some(mul) = opt_f("rope.scaling.yarn_log_multiplier")? {
                // the converter writes 0.1 · mscale_all_dim as an f32: undone in f32, it gives
                // back the config's value (1.0, not 1.0000000149)
                let m = (mul as f32 / 0.1f32) as f64;
                r.insert("mscale_all_dim".into(), json!(m));
                r.insert("mscale".into(), json!(m));
            }
            c.insert("rope_scaling".into(), Json::Object(r));
        }
    }
    hf::insert_special_ids(g, &mut c)?;
    Ok(Json::Object(c))
}

/// transformers' name of a GGUF tensor name's part after `blk.N.` (or of a whole global
/// name); `None` for names the engine does not use. Stacked experts come back with an `{e}`
/// where the expert index goes.
pub fn hf_name(gguf_name: &str) -> Option<String> {
    hf::hf_name_with(gguf_name, |part| {
        Some(match part {
            "attn_norm.weight" => "input_layernorm.weight",
            "ffn_norm.weight" => "post_attention_layernorm.weight",
            "attn_q.weight" => "self_attn.q_proj.weight",
            "attn_q_a.weight" => "self_attn.q_a_proj.weight",
            "attn_q_a_norm.weight" => "self_attn.q_a_layernorm.weight",
            "attn_q_b.weight" => "self_attn.q_b_proj.weight",
            "attn_kv_a_mqa.weight" => "self_attn.kv_a_proj_with_mqa.weight",
            "attn_kv_a_norm.weight" => "self_attn.kv_a_layernorm.weight",
            "attn_kv_b.weight" => "self_attn.kv_b_proj.weight",
            "attn_k_b.weight" => "self_attn.k_b_proj.weight",
            "attn_v_b.weight" => "self_attn.v_b_proj.weight",
            "attn_output.weight" => "self_attn.o_proj.weight",
            "ffn_gate.weight" => "mlp.gate_proj.weight",
            "ffn_up.weight" => "mlp.up_proj.weight",
            "ffn_down.weight" => "mlp.down_proj.weight",
            "ffn_gate_inp.weight" => "mlp.gate.weight",
            "exp_probs_b.bias" | "exp_probs_b" => "mlp.gate.e_score_correction_bias",
            "ffn_gate_exps.weight" => "mlp.experts.{e}.gate_proj.weight",
            "ffn_up_exps.weight" => "mlp.experts.{e}.up_proj.weight",
            "ffn_down_exps.weight" => "mlp.experts.{e}.down_proj.weight",
            "ffn_gate_shexp.weight" => "mlp.shared_experts.gate_proj.weight",
            "ffn_up_shexp.weight" => "mlp.shared_experts.up_proj.weight",
            "ffn_down_shexp.weight" => "mlp.shared_experts.down_proj.weight",
            _ => return None,
        })
    })
}

/// The GGUF's tensors as a [`Checkpoint`] under transformers' names (views into the mmap'd
/// files, nothing copied). A tensor type the engine does not decode is an error naming it;
/// tensors the engine does not use (e.g. a multi-token-prediction layer) are left out.
pub fn checkpoint(g: &Gguf) -> Result<Checkpoint, CheckpointError> {
    hf::checkpoint_with(g, hf_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_transformers() {
        assert_eq!(hf_name("blk.3.attn_kv_a_mqa.weight").as_deref(), Some("model.layers.3.self_attn.kv_a_proj_with_mqa.weight"));
        assert_eq!(hf_name("blk.12.ffn_up_exps.weight").as_deref(), Some("model.layers.12.mlp.experts.{e}.up_proj.weight"));
        assert_eq!(hf_name("blk.0.exp_probs_b.bias").as_deref(), Some("model.layers.0.mlp.gate.e_score_correction_bias"));
        assert_eq!(hf_name("output.weight").as_deref(), Some("lm_head.weight"));
        assert_eq!(hf_name("blk.x.attn_q.weight"), None);
        assert_eq!(hf_name("blk.1.nextn.eh_proj.weight"), None);
    }
}
