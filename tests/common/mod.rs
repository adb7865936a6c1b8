//! Shared helpers for the integration tests: fixture goldens and the error metric.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const FIXTURES: &[&str] = &["v3_qlora_yarn", "v3_moonlight", "v2_greedy", "v2_group_limited", "v3_fp8", "v3_sharded", "qwen3_tiny", "qwen3_tiny_yarn_tied"];

/// Largest |ours − golden| over the golden logits' standard deviation.
pub const TOL: f64 = 1e-3;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Every fixture folder under tests/fixtures/gguf_models (each: model.gguf, golden.json,
/// logits.npy), the DeepSeek ones and the dense `qwen3_*` ones (tools/make_gguf_model_fixtures.py,
/// tools/make_qwen3_fixtures.py), as `gguf_models/NAME`.
pub fn gguf_fixtures() -> Vec<String> {
    let dir = fixture("gguf_models");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.gguf").is_file())
        // the i-quant file has its own test (tests/gguf_models.rs, `iq_mix_...`)
        .filter(|e| !e.file_name().to_string_lossy().contains("iq_mix"))
        .map(|e| format!("gguf_models/{}", e.file_name().to_string_lossy()))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "expected the GGUF fixtures in {}: {v:?}", dir.display());
    v
}

pub struct Golden {
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub input_ids: Vec<u32>,
    /// layer → per position sorted expert ids
    pub routing: std::collections::BTreeMap<String, Vec<Vec<u32>>>,
    pub logits: Vec<f32>,
    pub vocab: usize,
}

pub fn golden(name: &str) -> Golden {
    let dir = fixture(name);
    let g: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap()).unwrap();
    let ids = |k: &str| -> Vec<u32> { serde_json::from_value(g[k].clone()).unwrap() };
    let (shape, logits) = deepseek_wgpu::npy::read_f32(&dir.join("logits.npy")).unwrap();
    let mut routing: std::collections::BTreeMap<String, Vec<Vec<u32>>> = serde_json::from_value(g["routing"].clone()).unwrap();
    for per_pos in routing.values_mut() {
        for r in per_pos.iter_mut() {
            r.sort_unstable();
        }
    }
    Golden { prompt_ids: ids("prompt_ids"), generated_ids: ids("generated_ids"), input_ids: ids("input_ids"), routing, logits, vocab: shape[1] }
}

/// Max abs error over the std of the reference; panics with the worst index when shapes differ.
pub fn rel_err(ours: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "logit count differs");
    let n = reference.len() as f64;
    let mean = reference.iter().map(|v| *v as f64).sum::<f64>() / n;
    let std = (reference.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let max = ours.iter().zip(reference).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max);
    max / std
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_deepseek-wgpu")
}

/// The GPU the kernel tests run on, optionally with a lowered storage binding limit.
pub fn gpu_with(max_binding: Option<u64>) -> deepseek_wgpu::gpu::Gpu {
    use deepseek_wgpu::gpu::{Gpu, GpuOptions};
    Gpu::new(&GpuOptions { max_binding_bytes: max_binding, ..Default::default() }).expect("GPU tests need a wgpu adapter (install mesa-vulkan-drivers)")
}

/// The logits at every position of `ids`, fed `step` at a time through a fresh cache of
/// `ctx` (step = len: prefill; 1: decode; else chunked prefill).
pub fn logits_in_chunks(model: &deepseek_wgpu::model::Model, ids: &[u32], step: usize, ctx: usize) -> Vec<f32> {
    let mut cache = model.new_cache(ctx).unwrap();
    let mut logits = Vec::new();
    for chunk in ids.chunks(step) {
        logits.extend(model.forward(&mut cache, chunk, deepseek_wgpu::model::LogitsMode::All).unwrap_or_else(|e| panic!("forward of {} ids: {e}", chunk.len())).logits);
    }
    logits
}

/// `n` uniform values in `[-scale, scale)`.
pub fn rnd(rng: &mut rand::rngs::StdRng, n: usize, scale: f32) -> Vec<f32> {
    use rand::Rng;
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect()
}

pub fn upload(g: &deepseek_wgpu::gpu::Gpu, v: &[f32]) -> wgpu::Buffer {
    g.storage_init("test input", bytemuck::cast_slice(v))
}

/// `|got − want| ≤ atol + rtol·|want|` everywhere; fails with the worst index.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let mut worst = (0, 0.0f32);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let excess = (a - b).abs() - (atol + rtol * b.abs());
        if excess > worst.1 || a.is_nan() != b.is_nan() {
            worst = (i, excess.max(f32::MIN_POSITIVE));
        }
    }
    assert!(worst.1 <= 0.0, "{name}: worst at index {}: gpu {} vs ref {}", worst.0, got[worst.0], want[worst.0]);
}
