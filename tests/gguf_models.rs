//! GGUF models made by llama.cpp's own converter (`convert_hf_to_gguf.py`) and quantizer
//! (`llama-quantize`) from tiny random DeepSeek-V3-like and V2-Lite-like checkpoints, against
//! goldens transformers computed on the weights gguf-py dequantizes from the same files
//! (`tools/make_gguf_model_fixtures.py`): logits in prefill, decode and chunked prefill,
//! greedy ids and routing through the CLI, inspect, and bad files.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use common::*;
use deepseek_wgpu::gpu::{Gpu, GpuOptions, ShaderChecks};
use deepseek_wgpu::model::{LoadOptions, Model};

fn gguf(name: &str) -> PathBuf {
    fixture(name).join("model.gguf")
}

/// With every kernel's runtime checks on (`--shader-checks on`), as a user who distrusts
/// the unchecked kernels runs them; the CLI test below runs the default (`auto`).
#[test]
fn logits_match_transformers_prefill_decode_chunked() {
    let gpu = Arc::new(Gpu::new(&GpuOptions { shader_checks: ShaderChecks::On, ..Default::default() }).expect("GPU adapter"));
    let mut report = Vec::new();
    for name in gguf_fixtures() {
        let g = golden(&name);
        let model = Model::load(gpu.clone(), &gguf(&name), &LoadOptions { max_ctx: 64, ..Default::default() }, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        for step in [g.input_ids.len(), 1, 3] {
            let logits = logits_in_chunks(&model, &g.input_ids, step, 64);
            let err = rel_err(&logits, &g.logits);
            report.push(format!("{name} step {step}: max|err|/std = {err:.2e}"));
            assert!(err <= TOL, "{name} step {step}: max|err|/std = {err:.3e} > {TOL}");
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// The i-quant mix (all nine i-quants, llama-quantize with an imatrix; tools/GGUF_FIXTURES.md)
/// against its transformers goldens: prefill, decode and chunks of 3. (max|err|/std 3.6e-6
/// prefill, 3.8e-6 decode, 3.6e-6 in chunks of 3.) A test of its own rather than one more
/// fixture of the tests above: its kernels (a matvec per i-quant, the generic kernel for
/// prefill) are its cold cost; its times are in tools/GGUF_FIXTURES.md.
#[test]
fn iq_mix_logits_match_transformers_prefill_decode_chunked() {
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let name = "gguf_models/v3_tiny_iq_mix";
    let g = golden(name);
    let model = Model::load(gpu, &gguf(name), &LoadOptions { max_ctx: 64, ..Default::default() }, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    for step in [g.input_ids.len(), 1, 3] {
        let err = rel_err(&logits_in_chunks(&model, &g.input_ids, step, 64), &g.logits);
        eprintln!("{name} step {step}: max|err|/std = {err:.2e}");
        assert!(err <= TOL, "{name} step {step}: max|err|/std = {err:.3e} > {TOL}");
    }
}

#[test]
fn greedy_ids_and_routing_through_the_cli() {
    for name in gguf_fixtures() {
        let g = golden(&name);
        let ids: Vec<String> = g.prompt_ids.iter().map(|i| i.to_string()).collect();
        let o = Command::new(bin())
            .args(["generate", "--quiet", "--ctx", "64", "--temperature", "0", "--json", "--model"])
            .arg(gguf(&name))
            .args(["--ids", &ids.join(","), "--max-tokens", &g.generated_ids.len().to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let got: Vec<u32> = serde_json::from_value(v["ids"].clone()).unwrap();
        // The golden's loop ignores end-of-sequence; the engine stops there (the GGUF's eos).
        let eos = deepseek_wgpu::gguf::Gguf::open(&gguf(&name)).unwrap().get_u64("tokenizer.ggml.eos_token_id").unwrap() as u32;
        let want: Vec<u32> = g.generated_ids.iter().copied().take_while(|&t| t != eos).collect();
        assert_eq!(got, want, "{name}: greedy ids (golden {:?}, eos {eos})", g.generated_ids);
        let stopped_at_eos = want.len() < g.generated_ids.len();
        assert_eq!(v["stop"] == "eos", stopped_at_eos, "{name}: {}", v["stop"]);
        let routing: std::collections::BTreeMap<String, Vec<Vec<u32>>> = serde_json::from_value(v["routing"].clone()).unwrap();
        assert_eq!(routing.keys().collect::<Vec<_>>(), g.routing.keys().collect::<Vec<_>>(), "{name}: MoE layers");
        // positions fed: the prompt and every generated token but the last (or all, before an eos)
        let fed = g.prompt_ids.len() + got.len() - usize::from(!stopped_at_eos);
        for (layer, per_pos) in &routing {
            assert_eq!(per_pos.len(), fed, "{name} layer {layer}: one routing entry per position fed");
            assert_eq!(per_pos[..], g.routing[layer][..fed], "{name} layer {layer}: routing");
        }
    }
}

#[test]
fn inspect_reads_a_gguf() {
    for name in gguf_fixtures() {
        let o = Command::new(bin()).args(["inspect", "--json", "--model"]).arg(gguf(&name)).output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["params_total"], v["params_in_weights"], "{name}: the config derived from the metadata counts the tensors: {v}");
        assert!(v["weight_bytes"].as_u64().unwrap() > 0, "{v}");
    }
}

/// Copies of a fixture broken in ways users meet: each is a clear error and a non-zero
/// exit, never a panic.
#[test]
fn bad_gguf_files_are_clear_errors() {
    // a DeepSeek file: the cases below edit its `deepseek2` architecture string
    let name = &gguf_fixtures().into_iter().find(|n| !n.contains("qwen3")).expect("a DeepSeek fixture");
    let bytes = std::fs::read(gguf(name)).unwrap();
    let dir = std::env::temp_dir().join(format!("dsw-bad-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let arch_at = bytes.windows(9).position(|w| w == b"deepseek2").expect("the architecture string");
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", bytes[..bytes.len() * 2 / 3].to_vec(), "truncated"),
        ("magic", [b"GGUX".as_slice(), &bytes[4..]].concat(), "GGUF"),
        ("version", [&bytes[..4], &9u32.to_le_bytes(), &bytes[8..]].concat(), "version"),
        ("count", [&bytes[..8], &u64::MAX.to_le_bytes(), &bytes[16..]].concat(), "tensor"),
    ];
    let mut arch = bytes.clone();
    arch[arch_at..arch_at + 9].copy_from_slice(b"deepseek9");
    cases.push(("arch", arch, "deepseek9"));
    // metadata that disagrees with the tensors: the hidden size doubled (key, u32 type id, value)
    let key = b"deepseek2.embedding_length";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("embedding_length key") + key.len();
    assert_eq!(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()), 4, "a u32 value");
    let hidden = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
    let mut shape = bytes.clone();
    shape[at + 4..at + 8].copy_from_slice(&(2 * hidden).to_le_bytes());
    cases.push(("shape", shape, "embed_tokens.weight: shape [512, 256], but the GGUF metadata implies [512, 512]"));
    for (what, data, needle) in cases {
        let path = dir.join(format!("{what}.gguf"));
        std::fs::write(&path, &data).unwrap();
        // (inspect shows what a file's metadata says; loading is what checks it against the tensors)
        let inspect = (what != "shape").then(|| vec!["inspect", "--model"]);
        for cmd in inspect.into_iter().chain([vec!["generate", "--quiet", "--ids", "1,2", "--model"]]) {
            let o = Command::new(bin()).args(&cmd).arg(&path).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{what} {cmd:?}: must fail");
            assert!(!err.contains("panicked"), "{what} {cmd:?}: {err}");
            assert!(err.contains(needle) && err.contains(&format!("{what}.gguf")), "{what} {cmd:?}: the error names the file and the problem: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
