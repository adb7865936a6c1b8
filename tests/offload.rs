//! Routed experts beyond GPU memory (`model::offload`): with only a quarter of each layer's
//! experts on the GPU (at least one), every MoE golden still matches transformers in prefill,
//! decode and chunked prefill, for both cache policies; a memory budget below the model's size
//! chooses the expert cache by itself; and the CLI's `--gpu-memory` and `inspect --gpu-memory`
//! work as a user meets them.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use deepseek_wgpu::gpu::Gpu;
use deepseek_wgpu::model::{ExpertCache, LoadOptions, Model, Policy};

/// The MoE goldens: each float format (BF16, F32, FP8 with block scales), V2 and V3 routing,
/// per-expert and sharded safetensors, a K-quant GGUF (stacked experts, llama.cpp's file) and
/// the i-quant GGUF (experts in IQ1_S, IQ1_M and IQ2_XXS).
const MOE: &[(&str, &str)] = &[
    ("v3_qlora_yarn", ""),
    ("v3_moonlight", ""),
    ("v2_greedy", ""),
    ("v2_group_limited", ""),
    ("v3_fp8", ""),
    ("v3_sharded", ""),
    ("gguf_models/v3_tiny_q4_k_m", "model.gguf"),
    ("gguf_models/v3_tiny_iq_mix", "model.gguf"),
];

#[test]
fn every_moe_golden_matches_with_most_experts_in_host_memory() {
    let gpu = Arc::new(Gpu::new(&Default::default()).expect("GPU adapter"));
    let mut report = Vec::new();
    for (name, file) in MOE {
        let g = golden(name);
        let path = fixture(name).join(file);
        // LFU on every golden, the static placement on two (it only changes which slot a miss takes)
        let policies: &[Policy] = if matches!(*name, "v3_qlora_yarn" | "gguf_models/v3_tiny_q4_k_m") { &[Policy::Lfu, Policy::Static] } else { &[Policy::Lfu] };
        for &policy in policies {
            let (cfg, _) = deepseek_wgpu::model::open(&path).unwrap();
            let (n, k) = cfg.moe.as_ref().map(|m| (m.n_routed, m.top_k)).unwrap();
            let slots = (n / 4).max(1);
            let opts = LoadOptions { max_ctx: 64, expert_cache: Some(ExpertCache { slots, policy }), ..Default::default() };
            let model = Model::load(gpu.clone(), &path, &opts, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(model.placement.expert_cache.map(|c| c.slots), Some(slots));
            for step in [g.input_ids.len(), 1, 3] {
                model.reset_expert_stats();
                let logits = logits_in_chunks(&model, &g.input_ids, step, 64);
                let err = rel_err(&logits, &g.logits);
                let stats = model.expert_stats().expect("an expert cache");
                let picks: u64 = stats.iter().map(|s| s.picks).sum();
                let hits: u64 = stats.iter().map(|s| s.hits).sum();
                let uploads: u64 = stats.iter().map(|s| s.uploads).sum();
                report.push(format!("{name} {} {slots}/{n} slots step {step}: {err:.2e}, hit rate {:.2}, {uploads} uploads", policy.name(), hits as f64 / picks as f64));
                assert!(err <= TOL, "{name} ({}, {slots} of {n} experts resident) step {step}: logits off by {err:.3e} of their std", policy.name());
                assert_eq!(picks, (g.input_ids.len() * k * stats.len()) as u64);
                assert!(uploads > 0 && hits < picks, "{name}: with {slots} of {n} experts on the GPU some picks must miss");
            }
            // the ids the model chose are the golden's, whatever was resident
            let mut cache = model.new_cache(64).unwrap();
            let out = model.forward(&mut cache, &g.input_ids, deepseek_wgpu::model::LogitsMode::None).unwrap();
            let layers: Vec<&String> = g.routing.keys().collect();
            for (l, ids) in out.routing.iter().enumerate() {
                for (p, want) in g.routing[layers[l]].iter().enumerate() {
                    let mut got = ids[p * k..(p + 1) * k].to_vec();
                    got.sort_unstable();
                    assert_eq!(&got, want, "{name}: layer {} position {p}", layers[l]);
                }
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// A budget that holds everything but most experts: the load keeps the rest in host memory by
/// itself (LFU), and the golden still matches.
#[test]
fn a_budget_below_the_model_size_chooses_an_expert_cache() {
    let gpu = Arc::new(Gpu::new(&Default::default()).expect("GPU adapter"));
    let name = "v3_qlora_yarn";
    let path = fixture(name);
    let g = golden(name);
    let full = Model::load(gpu.clone(), &path, &LoadOptions { max_ctx: 64, ..Default::default() }, &mut |_| {}).unwrap();
    let p = full.placement.clone();
    assert!(p.expert_cache.is_none() && p.expert_weights > 0 && p.bytes_per_expert * (p.n_routed * p.n_moe_layers) as u64 == p.expert_weights);
    // room for 3 experts per layer beyond the fixed part (and the wave buffers)
    let budget = p.gpu_bytes() - p.expert_weights + 3 * p.bytes_per_expert * p.n_moe_layers as u64;
    drop(full);
    let model = Model::load(gpu.clone(), &path, &LoadOptions { max_ctx: 64, memory_budget: Some(budget), ..Default::default() }, &mut |_| {}).unwrap();
    let c = model.placement.expert_cache.expect("an expert cache under a budget below the model");
    assert_eq!((c.slots, c.policy), (3, Policy::Lfu));
    assert!(model.placement.gpu_bytes() <= budget);
    let err = rel_err(&logits_in_chunks(&model, &g.input_ids, 1, 64), &g.logits);
    assert!(err <= TOL, "{name} decode under a budget: {err:.3e}");
    // below even one expert per layer: refused with the numbers
    let tight = p.gpu_bytes() - p.expert_weights;
    let e = Model::load(gpu, &path, &LoadOptions { max_ctx: 64, memory_budget: Some(tight), ..Default::default() }, &mut |_| {}).err().expect("too small a budget");
    let msg = e.to_string();
    for part in ["even with its routed experts in host memory", "one expert of each of", "--gpu-memory"] {
        assert!(msg.contains(part), "{msg}");
    }
}

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{args:?} failed:\n{e}");
    (o, e)
}

/// `generate --gpu-memory` gives the same greedy ids as the resident model, and says what it
/// kept in host memory; `inspect --gpu-memory` tells before loading anything.
#[test]
fn gpu_memory_flag_through_the_cli() {
    let dir = fixture("v3_qlora_yarn");
    let d = dir.to_str().unwrap();
    let (plan, _) = run(&["inspect", "--model", d, "--ctx", "64", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let fixed = v["placement"]["fixed_bytes"].as_u64().unwrap();
    let per = v["placement"]["bytes_per_expert"].as_u64().unwrap();
    let layers = v["moe_layers"].as_u64().unwrap();
    let budget = fixed + 4 * per * layers;
    let size = format!("{}K", budget.div_ceil(1024));
    let (text, _) = run(&["inspect", "--model", d, "--ctx", "64", "--gpu-memory", &size]);
    assert!(text.contains("4 of 16 routed experts per MoE layer on the GPU"), "{text}");
    let (json, _) = run(&["inspect", "--model", d, "--ctx", "64", "--gpu-memory", &size, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["placement"]["expert_slots"], 4);

    let args = ["generate", "--model", d, "--ids", "1,2,3,4,5", "--max-tokens", "6", "--temperature", "0", "--json", "--quiet", "--ctx", "64"];
    let (resident, _) = run(&args);
    let mut off = args.to_vec();
    off.extend(["--gpu-memory", &size]);
    let (offloaded, err) = run(&off);
    let ids = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["ids"].clone();
    assert_eq!(ids(&resident), ids(&offloaded), "greedy ids with experts in host memory");
    assert!(err.contains("4 of 16 routed experts per MoE layer on the GPU"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&offloaded).unwrap();
    let hit = v["expert_cache"]["hit_rate"].as_f64().expect("expert cache stats in --json");
    assert!((0.0..1.0).contains(&hit), "{hit}");
    assert_eq!(v["expert_cache"]["hit_rate_per_layer"].as_array().map(|a| a.len()), Some(layers as usize));
    assert!(v["expert_cache"]["uploaded_bytes"].as_u64().unwrap() > 0);

    // bench: the cache's hit rate per layer and the bytes uploaded per decoded token
    let (bench, _) = run(&["bench", "--model", d, "--gpu-memory", &size, "--prompt-len", "8", "--gen", "3", "--decode-at", "4", "--reps", "1", "--no-profile", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&bench).unwrap();
    assert_eq!(v["experts_resident"]["slots"], 4);
    let c = &v["decode"][0]["expert_cache"];
    assert_eq!(c["hit_rate_per_layer"].as_array().map(|a| a.len()), Some(layers as usize), "{c}");
    assert!(c["bytes_per_token"].as_f64().unwrap() >= 0.0 && c["hit_rate"].as_f64().unwrap() <= 1.0, "{c}");
}
