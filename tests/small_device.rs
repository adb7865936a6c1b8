//! The engine on a small GPU's device: WebGPU's guaranteed limits (256 invocations and
//! 16 KiB of memory per workgroup, 128 MiB bindings, 256 MiB buffers, 8 storage buffers per
//! stage) and no optional feature (no subgroups, no f16, no timestamp queries), as an
//! integrated GPU, or a program that creates the device itself (the desktop app shares
//! eframe's), offers it. Every kernel must build or fall back, and every golden must still
//! match, in prefill, decode and chunked prefill; an adapter below what the kernels need is
//! refused at load with the limit that stops it. Also `--adapter` and `devices` through the
//! CLI.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use deepseek_wgpu::gpu::{small_limits, Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, Model};

/// Every safetensors golden (each float format, MLA and GQA, MoE and dense) and two GGUF ones
/// whose block formats cover the K-quant kernels (Q4_K_M: Q4_K and Q6_K; MoE and dense).
/// Not every GGUF fixture: on lavapipe each block-format kernel without subgroups is a fresh
/// LLVM compile of minutes, and tests/block_kernels.rs already checks every format's kernels
/// without subgroups.
fn all_fixtures() -> Vec<(String, std::path::PathBuf)> {
    let mut v: Vec<(String, std::path::PathBuf)> = FIXTURES.iter().map(|n| (n.to_string(), fixture(n))).collect();
    for n in ["gguf_models/v3_tiny_q4_k_m", "gguf_models/qwen3_tiny_q4_k_m"] {
        v.push((n.to_string(), fixture(n).join("model.gguf")));
    }
    v
}

#[test]
fn every_golden_matches_on_a_small_gpu() {
    let gpu = Arc::new(Gpu::new(&GpuOptions { small: true, ..Default::default() }).expect("GPU adapter"));
    assert!(!gpu.subgroups() && gpu.features.is_empty(), "a small GPU's device has no optional feature");
    let (l, s) = (&gpu.limits, small_limits());
    assert!(l.max_compute_invocations_per_workgroup <= 256 && l.max_compute_workgroup_storage_size <= 16384 && l.max_storage_buffers_per_shader_stage <= 8);
    assert!(l.max_storage_buffer_binding_size <= s.max_storage_buffer_binding_size && l.max_buffer_size <= s.max_buffer_size);
    let mut report = Vec::new();
    for (name, path) in all_fixtures() {
        let t = std::time::Instant::now();
        let g = golden(&name);
        let model = Model::load(gpu.clone(), &path, &LoadOptions { max_ctx: 64, ..Default::default() }, &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        // the whole prompt (gemm paths), one token at a time (matvec paths), chunks of 3
        for step in [g.input_ids.len(), 1, 3] {
            let logits = logits_in_chunks(&model, &g.input_ids, step, 64);
            let err = rel_err(&logits, &g.logits);
            report.push(format!("{name} step {step}: {err:.2e} ({:.1} s)", t.elapsed().as_secs_f64()));
            assert!(err <= TOL, "{name} step {step}: logits off by {err:.3e} of their std on a small GPU");
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// A device with fewer invocations per workgroup than the sampler's 256: the load fails
/// before uploading, naming the limit, its value and the kernel that needs more.
#[test]
fn an_adapter_below_the_kernels_needs_is_refused_with_the_limit() {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("an adapter");
    let limits = wgpu::Limits { max_compute_invocations_per_workgroup: 128, max_compute_workgroup_size_x: 128, ..small_limits() }.or_worse_values_from(&adapter.limits());
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor { label: Some("tiny"), required_limits: limits, ..Default::default() })).expect("a device");
    let gpu = Arc::new(Gpu::from_device(&adapter, device, queue, &GpuOptions::default()));
    let err = Model::load(gpu, &fixture("qwen3_tiny"), &LoadOptions { max_ctx: 64, ..Default::default() }, &mut |_| {}).err().expect("refused").to_string();
    assert!(err.contains("max_compute_invocations_per_workgroup is 128") && err.contains("needs 256") && err.contains("kernel"), "{err}");
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn adapter_choice_and_devices_through_the_cli() {
    // `devices` says, per adapter, whether the (embedded) model runs, also as a small GPU
    let (ok, out, err) = cli(&["devices", "--ctx", "256"]);
    assert!(ok, "{err}");
    assert!(out.contains("[0] ") && out.contains("runs the embedded model at --ctx 256: yes"), "{out}");
    let (ok, out, err) = cli(&["devices", "--small-gpu", "--model", fixture("qwen3_tiny").to_str().unwrap(), "--ctx", "64"]);
    assert!(ok, "{err}");
    assert!(out.contains("at --ctx 64 (as a small GPU): yes"), "{out}");
    // a model that does not fit the budget says why, per adapter
    let (_, out, _) = cli(&["devices", "--ctx", "100000000"]);
    assert!(out.contains(": no: ") && out.contains("MiB"), "{out}");
    // --adapter by index and by part of the name picks it; an unknown one lists the adapters
    let name = out.lines().next().and_then(|l| l.strip_prefix("[0] ")).and_then(|l| l.split_whitespace().next()).expect("adapter 0's name").to_string();
    for pick in ["0", name.as_str()] {
        let (ok, out, err) = cli(&["generate", "--quiet", "--adapter", pick, "--ids", "1,2,3", "--max-tokens", "2", "--temperature", "0", "--json", "--ctx", "64"]);
        assert!(ok, "--adapter {pick}: {err}");
        assert!(out.contains("\"ids\""), "{out}");
    }
    let (ok, _, err) = cli(&["generate", "--quiet", "--adapter", "no-such-gpu", "--ids", "1", "--max-tokens", "1"]);
    assert!(!ok && err.contains("no adapter matches --adapter 'no-such-gpu'") && err.contains(&format!("0: {name}")), "{err}");
    let (ok, _, err) = cli(&["bench", "--adapter", "7", "--no-profile"]);
    assert!(!ok && err.contains("no adapter matches --adapter 7"), "{err}");
    // the small GPU through the CLI: same greedy ids as the full device
    let args = ["generate", "--quiet", "--ids", "1,2,3", "--max-tokens", "6", "--temperature", "0", "--json", "--ctx", "64"];
    let (ok, full, err) = cli(&args);
    assert!(ok, "{err}");
    let (ok, small, err) = cli(&[&args[..], &["--small-gpu"]].concat());
    assert!(ok, "{err}");
    let ids = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["ids"].clone();
    assert_eq!(ids(&full), ids(&small));
}
