//! Property-based fuzzing of the inputs users control: safetensors headers, config.json and
//! the text path (tokeniser, chat template, streaming decode, reasoning split). They must
//! never panic, and round trips must hold. CI runs the default 256 cases per property;
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz` is the long run (FUZZING.md).
//! Failing inputs proptest finds are kept in tests/fuzz.proptest-regressions and replayed.

mod common;

use std::path::Path;

use deepseek_wgpu::chat::{ChatTokenizer, Message, ReasoningSplitter, StreamDecoder, TextKind};
use deepseek_wgpu::checkpoint::parse_header;
use deepseek_wgpu::config::ModelConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

fn file_with_header(header: &str, data: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + data, 0);
    v
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..300).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        "[a-z_0-9]{0,12}".prop_map(Value::from),
        prop::collection::vec(0u64..500, 0..4).prop_map(Value::from),
    ]
}

const CONFIG_KEYS: &[&str] = &[
    "model_type", "vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers",
    "num_attention_heads", "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "n_group", "topk_group",
    "topk_method", "scoring_func", "norm_topk_prob", "routed_scaling_factor", "first_k_dense_replace", "moe_layer_freq",
    "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "rope_theta", "rope_scaling",
    "rope_parameters", "max_position_embeddings", "rms_norm_eps", "quantization_config", "eos_token_id",
];

fn base_config() -> Value {
    json!({
        "model_type": "deepseek_v3", "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
        "moe_intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "n_routed_experts": 8,
        "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "q_lora_rank": 16,
        "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 8,
        "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "mscale_all_dim": 1.0},
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}
    })
}

fn tiny() -> ChatTokenizer {
    ChatTokenizer::load(&common::fixture("chat_tiny"), 320).unwrap()
}

proptest! {
    #[test]
    fn header_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_header(&bytes, Path::new("fuzz.safetensors"));
    }

    #[test]
    fn header_parser_never_panics_on_structured_headers(
        entries in prop::collection::vec(("[a-z.]{1,8}", "(F32|BF16|F16|F8_E4M3|I8|U4|)", prop::collection::vec(0usize..70000, 0..4), any::<u32>(), any::<u32>()), 0..6),
        data in 0usize..4096,
        meta in any::<bool>(),
    ) {
        let mut h = serde_json::Map::new();
        if meta {
            h.insert("__metadata__".into(), json!({"format": "pt"}));
        }
        for (name, dtype, shape, a, b) in entries {
            h.insert(name, json!({"dtype": dtype, "shape": shape, "data_offsets": [a as u64 % 5000, b as u64 % 5000]}));
        }
        let f = file_with_header(&Value::Object(h).to_string(), data);
        if let Ok(ts) = parse_header(&f, Path::new("fuzz.safetensors")) {
            // Whatever it accepts lies inside the file.
            for (_, t) in ts {
                prop_assert!(t.dtype.size_of(t.numel()) <= data);
            }
        }
    }

    #[test]
    fn config_parser_never_panics(edits in prop::collection::vec((0..CONFIG_KEYS.len(), json_leaf()), 0..8), text in ".{0,40}") {
        let mut v = base_config();
        for (k, val) in edits {
            v[CONFIG_KEYS[k]] = val;
        }
        let path = Path::new("fuzz/config.json");
        if let Ok(c) = ModelConfig::parse(&v.to_string(), path) {
            // Accepted configs have sane derived values.
            prop_assert!(c.softmax_scale().is_finite());
            prop_assert!(c.hidden > 0 && c.n_heads > 0 && c.kv_lora > 0);
            if let Some(m) = &c.moe {
                prop_assert!(m.n_routed % m.n_group == 0 && m.top_k <= m.n_routed);
            }
        }
        let _ = ModelConfig::parse(&text, path);
    }

    #[test]
    fn tokenizer_round_trips_any_text(s in "\\PC{0,60}") {
        let tok = tiny();
        let ids = tok.encode(&s, false).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s.clone());
        // Streaming the same ids one at a time gives the same text.
        let mut d = StreamDecoder::default();
        let mut out = String::new();
        for id in ids {
            if let Some(p) = d.push(&tok, id).unwrap() {
                out.push_str(&p);
            }
        }
        if let Some(p) = d.finish(&tok).unwrap() {
            out.push_str(&p);
        }
        prop_assert_eq!(out, s);
    }

    #[test]
    fn streaming_random_ids_never_panics(ids in prop::collection::vec(0u32..300, 0..40)) {
        let tok = tiny();
        let mut d = StreamDecoder::default();
        for id in ids {
            let _ = d.push(&tok, id).unwrap();
        }
        let _ = d.finish(&tok).unwrap();
    }

    #[test]
    fn chat_template_renders_any_conversation(msgs in prop::collection::vec(("(system|user|assistant|tool)", "\\PC{0,30}"), 0..6), gen in any::<bool>()) {
        let tok = tiny();
        let messages: Vec<Message> = msgs.iter().map(|(r, c)| Message::new(r, c)).collect();
        let text = tok.render_chat(&messages, gen).unwrap();
        prop_assert!(text.starts_with("<｜begin▁of▁sentence｜>"));
        for m in &messages {
            if m.role == "user" {
                prop_assert!(text.contains(&m.content));
            }
        }
        let _ = tok.encode(&text, false).unwrap();
    }

    #[test]
    fn reasoning_split_keeps_every_character(pieces in prop::collection::vec("(<think>|</think>|<th|ink>|</|[a-z \\n<>/]{0,6})", 0..12), opened in any::<bool>()) {
        let mut s = ReasoningSplitter::new(opened);
        let mut got = String::new();
        let mut all: Vec<(TextKind, String)> = pieces.iter().flat_map(|p| s.push(p)).collect();
        all.extend(s.finish());
        for (_, t) in &all {
            got.push_str(t);
        }
        // Output = input without the tags that switched sections, modulo whitespace dropped
        // at the start of a section.
        let squash = |x: &str| x.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let input: String = pieces.concat();
        prop_assert!(squash(&input).len() >= squash(&got).len());
        prop_assert!(squash(&input).replace("<think>", "").replace("</think>", "").len() <= squash(&got).len());
    }
}
