//! Soak: 5,000 generated tokens in one session and 100 cancel/restart cycles, with host and
//! GPU memory flat apart from the (preallocated) latent cache. Prints the numbers and writes
//! them to target/soak-report.json.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig};
use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, Model};
use deepseek_wgpu::sampling::SampleParams;
use deepseek_wgpu::session::{Event, Session, Settings, StopReason};

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn gpu_bytes(gpu: &Gpu) -> u64 {
    gpu.device.generate_allocator_report().map_or(0, |r| r.total_allocated_bytes)
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn long_generation_and_cancel_cycles_keep_memory_flat() {
    let dir = common::fixture("chat_tiny");
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let model = Arc::new(Model::load(gpu.clone(), &dir, &LoadOptions { max_chunk: 64, max_ctx: 6000, ..Default::default() }, &mut |_| {}).unwrap());
    let tok = Arc::new(ChatTokenizer::load(&dir, model.cfg.vocab).unwrap());
    // An end-of-sequence id the model cannot produce: the reply runs to max_tokens.
    let gen = GenerationConfig { eos_token_ids: vec![u32::MAX], ..GenerationConfig::load(&dir).unwrap() };
    let mut s = Session::new(model, tok, gen, 6000).unwrap();
    let settings = Settings { sample: SampleParams { temperature: 0.8, top_p: 0.95, ..Default::default() }, seed: Some(1), prefill_step: 0, max_tokens: 5000, stop: vec![], constraint: None };
    let no = AtomicBool::new(false);

    let mut samples: Vec<(usize, u64, u64)> = Vec::new();
    let g2 = gpu.clone();
    let t0 = std::time::Instant::now();
    let r = s
        .chat("tell me everything", &settings, &no, &mut |e| {
            if let Event::Token { position, .. } = e {
                if position % 500 == 0 {
                    samples.push((*position, rss_bytes(), gpu_bytes(&g2)));
                }
            }
        })
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(r.ids.len(), 5000);
    assert_eq!(r.stop, StopReason::MaxTokens);
    // Compare after warm-up (the first samples include lazily initialised driver state).
    let (first, last) = (samples[1], *samples.last().unwrap());
    let host_growth = last.1 as f64 - first.1 as f64;
    let gpu_growth = last.2 as f64 - first.2 as f64;

    let mut cycles: Vec<(usize, u64, u64)> = Vec::new();
    let short = Settings { max_tokens: 200, ..settings.clone() };
    for i in 0..100 {
        let cancel = AtomicBool::new(false);
        let r = s
            .chat("again", &short, &cancel, &mut |e| {
                if let Event::Token { .. } = e {
                    cancel.store(true, Ordering::Relaxed);
                }
            })
            .unwrap();
        assert_eq!(r.stop, StopReason::Cancelled, "cycle {i}");
        s.reset();
        if i == 9 || i == 99 {
            cycles.push((i + 1, rss_bytes(), gpu_bytes(&gpu)));
        }
    }
    let cyc_host = cycles[1].1 as f64 - cycles[0].1 as f64;
    let cyc_gpu = cycles[1].2 as f64 - cycles[0].2 as f64;
    let report = serde_json::json!({
        "tokens": 5000, "seconds": secs, "tokens_per_s": 5000.0 / secs,
        "host_rss_mib_by_position": samples.iter().map(|(p, h, _)| (p.to_string(), *h as f64 / MIB)).collect::<std::collections::BTreeMap<_, _>>(),
        "gpu_allocated_mib_by_position": samples.iter().map(|(p, _, g)| (p.to_string(), *g as f64 / MIB)).collect::<std::collections::BTreeMap<_, _>>(),
        "host_growth_mib_500_to_5000": host_growth / MIB, "gpu_growth_mib_500_to_5000": gpu_growth / MIB,
        "cancel_cycles": 100, "host_growth_mib_cycles_10_to_100": cyc_host / MIB, "gpu_growth_mib_cycles_10_to_100": cyc_gpu / MIB,
    });
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak-report.json");
    let _ = std::fs::write(out, serde_json::to_string_pretty(&report).unwrap());
    assert!(host_growth < 16.0 * MIB, "host memory grew {:.1} MiB over 4,500 tokens", host_growth / MIB);
    assert!(gpu_growth.abs() < 1.0, "GPU allocations changed by {gpu_growth} bytes during generation");
    assert!(cyc_host < 16.0 * MIB, "host memory grew {:.1} MiB over 90 cancel/restart cycles", cyc_host / MIB);
    assert!(cyc_gpu.abs() < 1.0, "GPU allocations changed by {cyc_gpu} bytes over cancel cycles");
}
