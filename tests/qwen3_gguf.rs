//! `gguf::qwen3` against files llama.cpp's own converter and quantizer wrote from tiny random
//! transformers `Qwen3ForCausalLM` checkpoints (`tools/make_qwen3_fixtures.py`): the config
//! derived from the metadata equals the checkpoint's config.json, and every view under
//! transformers' name decodes to that name's safetensors tensor (exactly for F16, within the
//! quantization error for Q4_K_M, which gguf-py measured the same way). This checks the name
//! table and that nothing is permuted, independently of the model code.

mod common;

use common::fixture;
use deepseek_wgpu::checkpoint::Checkpoint;
use deepseek_wgpu::gguf::{qwen3, Arch, Gguf};
use serde_json::Value as Json;

/// (GGUF folder under gguf_models, the safetensors fixture it was converted from)
const FILES: [(&str, &str); 3] = [
    ("qwen3_tiny_f16", "qwen3_tiny"),
    ("qwen3_tiny_q4_k_m", "qwen3_tiny"),
    ("qwen3_tiny_yarn_tied_q4_k_m", "qwen3_tiny_yarn_tied"),
];

/// The keys `qwen3::hf_config` writes, all of which the source config.json has.
const KEYS: [&str; 18] = [
    "model_type",
    "architectures",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "rope_theta",
    "rms_norm_eps",
    "max_position_embeddings",
    "tie_word_embeddings",
    "rope_scaling",
    "bos_token_id",
    "eos_token_id",
    "hidden_act",
    "attention_bias",
];

fn open(name: &str) -> Gguf {
    Gguf::open(&fixture(&format!("gguf_models/{name}")).join("model.gguf")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_json(path: &std::path::Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// JSON equality with numbers compared as f64 (4 and 4.0 are the same value).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Object(x), Json::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}

#[test]
fn config_equals_the_transformers_config() {
    for (file, src) in FILES {
        let g = open(file);
        assert_eq!(Arch::of(&g).unwrap(), Arch::Qwen3, "{file}");
        let ours = qwen3::hf_config(&g).unwrap();
        assert_eq!(Arch::Qwen3.hf_config(&g).unwrap(), ours, "{file}: the dispatch gives the same config");
        let want = read_json(&fixture(src).join("config.json"));
        for key in KEYS {
            assert!(want.get(key).is_some(), "{src}/config.json has no {key}");
            assert!(same(&ours[key], &want[key]), "{file}: {key} = {} but config.json has {}", ours[key], want[key]);
        }
        let extra: Vec<_> = ours.as_object().unwrap().keys().filter(|k| !KEYS.contains(&k.as_str())).collect();
        assert!(extra.is_empty(), "{file}: keys not checked: {extra:?}");
    }
}

#[test]
fn views_decode_to_the_safetensors_tensors() {
    for (file, src) in FILES {
        let g = open(file);
        let ours = qwen3::checkpoint(&g).unwrap_or_else(|e| panic!("{file}: {e}"));
        let st = Checkpoint::open(&fixture(src)).unwrap();
        let mut a: Vec<_> = ours.names().cloned().collect();
        let mut b: Vec<_> = st.names().cloned().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{file}: tensor names");
        let golden = read_json(&fixture(&format!("gguf_models/{file}")).join("golden.json"));
        let quantized = !file.ends_with("_f16");
        for name in &a {
            assert_eq!(ours.info(name).unwrap().shape, st.info(name).unwrap().shape, "{file}: {name} shape");
            let x = ours.f32_vec(name).unwrap();
            let y = st.f32_vec(name).unwrap();
            let (mut d2, mut y2, mut max) = (0f64, 0f64, 0f64);
            for (p, q) in x.iter().zip(&y) {
                let d = (*p as f64 - *q as f64).abs();
                d2 += d * d;
                y2 += (*q as f64).powi(2);
                max = max.max(d);
            }
            let rel = (d2 / y2).sqrt();
            // gguf-py's dequantization of the same bytes, against the same tensor
            let py = golden["weight_rel_rms_err_vs_hf"][name.as_str()].as_f64().unwrap_or_else(|| panic!("{file}: no error for {name}"));
            if quantized && ours.info(name).unwrap().dtype.is_block() {
                assert!(rel < 0.12, "{file}: {name}: relative RMS error {rel} (a wrong mapping gives ~1.4)");
            } else {
                // F16 holds every BF16 value but those below its normal range, rounded to its
                // subnormal spacing 2^-24 (so off by at most 2^-25); F32 exactly
                assert!(max <= 2f64.powi(-25), "{file}: {name}: max |diff| {max}");
            }
            assert!((rel - py).abs() <= 1e-6 * py.max(1e-3), "{file}: {name}: relative error {rel}, gguf-py's {py}");
        }
    }
}

#[test]
fn tied_file_has_no_lm_head_and_untied_has_one() {
    let tied = qwen3::checkpoint(&open("qwen3_tiny_yarn_tied_q4_k_m")).unwrap();
    assert!(tied.get("lm_head.weight").is_none());
    let untied = qwen3::checkpoint(&open("qwen3_tiny_q4_k_m")).unwrap();
    assert_eq!(untied.info("lm_head.weight").unwrap().shape, vec![512, 256]);
}

#[test]
fn architectures_dispatch() {
    let ds = Gguf::open(&fixture("gguf_models/v2lite_tiny_q8_0").join("model.gguf")).unwrap();
    assert_eq!(Arch::of(&ds).unwrap(), Arch::Deepseek2);
    let err = qwen3::hf_config(&ds).unwrap_err().to_string();
    assert!(err.contains("architecture \"deepseek2\", not \"qwen3\""), "{err}");
    let err = deepseek_wgpu::gguf::deepseek2::hf_config(&open("qwen3_tiny_f16")).unwrap_err().to_string();
    assert!(err.contains("architecture \"qwen3\", not \"deepseek2\""), "{err}");
}
