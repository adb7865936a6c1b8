//! Broken checkpoints, configs and tokenizers, and models that cannot fit: each gives an
//! error naming the file, the tensor and what was expected, a non-zero exit, and no panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// A scratch copy of a fixture folder.
fn copy(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dsw-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir
}

/// Run `generate` on a folder; returns stderr and asserts a clean failure.
fn fails(dir: &Path, extra: &[&str]) -> String {
    let o = Command::new(bin()).args(["generate", "--quiet", "--ctx", "64", "--temperature", "0", "--max-tokens", "2", "--model"]).arg(dir).args(extra).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "expected failure for {}: {err}", dir.display());
    assert_eq!(o.status.code(), Some(1), "an error exit, not a crash: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn fails_ids(dir: &Path) -> String {
    fails(dir, &["--ids", "1,2,3"])
}

/// Rewrite a safetensors file's header (data section kept as is).
fn edit_header(file: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let b = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Map<String, Value> = serde_json::from_slice(&b[8..8 + n]).unwrap();
    f(&mut h);
    let hs = serde_json::to_vec(&h).unwrap();
    let mut out = (hs.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&hs);
    out.extend_from_slice(&b[8 + n..]);
    std::fs::write(file, out).unwrap();
}

fn edit_json(file: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(file, v.to_string()).unwrap();
}

fn has_all(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "missing {p:?} in: {err}");
    }
}

const EMB: &str = "model.embed_tokens.weight";
const QA: &str = "model.layers.0.self_attn.q_a_proj.weight";

#[test]
fn truncated_file_and_header_beyond_the_file() {
    let d = copy("v3_fp8", "trunc");
    let f = d.join("model.safetensors");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&f).unwrap().set_len(len - 1000).unwrap();
    has_all(&fails_ids(&d), &["model.safetensors", "truncated", "tensor "]);
    let mut b = std::fs::read(&f).unwrap();
    b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&f, &b).unwrap();
    has_all(&fails_ids(&d), &["model.safetensors", "header length"]);
    std::fs::write(&f, [1u8, 2, 3]).unwrap();
    has_all(&fails_ids(&d), &["model.safetensors", "too short"]);
}

#[test]
fn offsets_outside_or_overlapping() {
    let d = copy("v3_qlora_yarn", "offs");
    let f = d.join("model.safetensors");
    edit_header(&f, |h| h[QA]["data_offsets"][1] = Value::from(u64::MAX >> 12));
    has_all(&fails_ids(&d), &["model.safetensors", QA, "outside"]);
    let d = copy("v3_qlora_yarn", "overlap");
    let f = d.join("model.safetensors");
    edit_header(&f, |h| {
        let emb = h[EMB]["data_offsets"].clone();
        let norm = "model.norm.weight";
        let len = h[norm]["data_offsets"][1].as_u64().unwrap() - h[norm]["data_offsets"][0].as_u64().unwrap();
        let start = emb[0].as_u64().unwrap();
        h[norm]["data_offsets"] = serde_json::json!([start, start + len]);
    });
    has_all(&fails_ids(&d), &["model.safetensors", "overlap"]);
}

#[test]
fn shape_dtype_and_missing_tensors() {
    let d = copy("v3_qlora_yarn", "shape");
    edit_header(&d.join("model.safetensors"), |h| {
        let s = h[QA]["shape"].clone();
        h[QA]["shape"] = serde_json::json!([s[1], s[0]]);
    });
    has_all(&fails_ids(&d), &["model.safetensors", QA, "shape", "config.json implies"]);

    let d = copy("v3_qlora_yarn", "dtype");
    edit_header(&d.join("model.safetensors"), |h| h[QA]["dtype"] = "I9".into());
    has_all(&fails_ids(&d), &["model.safetensors", QA, "I9", "not supported"]);

    let d = copy("v3_qlora_yarn", "bytes");
    edit_header(&d.join("model.safetensors"), |h| h[QA]["dtype"] = "BF16".into());
    has_all(&fails_ids(&d), &["model.safetensors", QA, "bytes"]);

    let d = copy("v3_qlora_yarn", "missing");
    edit_header(&d.join("model.safetensors"), |h| {
        h.remove(QA);
    });
    has_all(&fails_ids(&d), &[QA, "not found"]);
}

#[test]
fn fp8_scales_missing_or_misshapen() {
    let d = copy("v3_fp8", "noscale");
    let scale = format!("{QA}_scale_inv");
    edit_header(&d.join("model.safetensors"), |h| {
        h.remove(&scale);
    });
    has_all(&fails_ids(&d), &[QA, "F8_E4M3", "scale", "missing"]);
    let d = copy("v3_fp8", "badscale");
    edit_header(&d.join("model.safetensors"), |h| {
        let n: u64 = h[&scale]["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).product();
        h[&scale]["shape"] = serde_json::json!([n, 1]);
    });
    has_all(&fails_ids(&d), &[&scale, "shape", "needs"]);
}

#[test]
fn index_naming_a_missing_shard() {
    let d = copy("v3_sharded", "shard");
    std::fs::remove_file(d.join("model-00002-of-00003.safetensors")).unwrap();
    has_all(&fails_ids(&d), &["model.safetensors.index.json", "model-00002-of-00003.safetensors", "incomplete"]);
}

#[test]
fn config_problems() {
    let d = copy("v3_moonlight", "cfgmissing");
    std::fs::remove_file(d.join("config.json")).unwrap();
    has_all(&fails_ids(&d), &["config.json", "cannot read"]);
    std::fs::write(d.join("config.json"), "{ not json").unwrap();
    has_all(&fails_ids(&d), &["config.json", "invalid JSON"]);
    std::fs::copy(fixture("v3_moonlight").join("config.json"), d.join("config.json")).unwrap();
    edit_json(&d.join("config.json"), |v| v["hidden_size"] = 0.into());
    has_all(&fails_ids(&d), &["config.json", "hidden_size", "0"]);
    std::fs::copy(fixture("v3_moonlight").join("config.json"), d.join("config.json")).unwrap();
    edit_json(&d.join("config.json"), |v| v["model_type"] = "llama".into());
    has_all(&fails_ids(&d), &["config.json", "llama", "deepseek_v3"]);
    std::fs::copy(fixture("v3_moonlight").join("config.json"), d.join("config.json")).unwrap();
    edit_json(&d.join("config.json"), |v| v["n_group"] = 3.into());
    has_all(&fails_ids(&d), &["config.json", "n_group", "divisible"]);
    // Sizes that disagree with the weights: caught at the first tensor.
    std::fs::copy(fixture("v3_moonlight").join("config.json"), d.join("config.json")).unwrap();
    edit_json(&d.join("config.json"), |v| v["hidden_size"] = 48.into());
    has_all(&fails_ids(&d), &["model.safetensors", EMB, "shape", "config.json implies"]);
}

#[test]
fn tokenizer_missing_or_broken() {
    let d = copy("chat_tiny", "tokmissing");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    has_all(&fails(&d, &["--prompt", "hi"]), &["tokenizer", "vocabulary", "no tokenizer.json"]);
    std::fs::write(d.join("tokenizer.json"), "{\"model\": 5}").unwrap();
    has_all(&fails(&d, &["--prompt", "hi"]), &["tokenizer.json", "cannot load the tokenizer"]);
    std::fs::copy(fixture("chat_tiny").join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    std::fs::write(d.join("tokenizer_config.json"), "[1,").unwrap();
    has_all(&fails(&d, &["--prompt", "hi"]), &["tokenizer_config.json", "invalid JSON"]);
}

#[test]
fn models_that_do_not_fit_fail_before_uploading() {
    // Memory: the numbers and what to try.
    let err = fails(&fixture("v3_fp8"), &["--ids", "1", "--gpu-memory-mib", "1"]);
    has_all(&err, &["needs about", "MiB of GPU memory", "weights", "KV cache", "available", "--ctx"]);
    // Binding limit below one expert matrix: cannot be split.
    let err = fails(&fixture("v3_fp8"), &["--ids", "1", "--max-binding-kib", "8"]);
    has_all(&err, &["binds at most 8192 bytes", "model.layers", "cannot be split"]);
}
