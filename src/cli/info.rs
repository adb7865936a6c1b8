//! `devices` and `inspect`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use deepseek_wgpu::checkpoint::Checkpoint;
use deepseek_wgpu::config::ModelConfig;
use deepseek_wgpu::gpu::list_adapters;

pub fn devices() -> Result<()> {
    let list = list_adapters();
    if list.is_empty() {
        bail!("no GPU adapters found; install a Vulkan driver (apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    for (i, (info, limits, features)) in list.iter().enumerate() {
        println!("[{i}] {} ({:?}, {:?}, driver {} {})", info.name, info.backend, info.device_type, info.driver, info.driver_info);
        println!("    max_storage_buffer_binding_size: {} MiB", limits.max_storage_buffer_binding_size as u64 >> 20);
        println!("    max_buffer_size: {} MiB", limits.max_buffer_size >> 20);
        println!("    max_compute_workgroup_storage_size: {} B", limits.max_compute_workgroup_storage_size);
        println!("    max_compute_invocations_per_workgroup: {}", limits.max_compute_invocations_per_workgroup);
        println!(
            "    shader-f16: {}  subgroups: {}  timestamps: {}",
            features.contains(wgpu::Features::SHADER_F16),
            features.contains(wgpu::Features::SUBGROUP),
            features.contains(wgpu::Features::TIMESTAMP_QUERY)
        );
    }
    Ok(())
}

pub fn inspect(dir: &Path, ctx: usize, json: bool) -> Result<()> {
    let cfg = ModelConfig::load(dir)?;
    let ck = Checkpoint::open(dir)?;
    let mtp: Vec<String> = (cfg.n_layers..cfg.n_layers + cfg.num_nextn_predict_layers).map(|i| format!("model.layers.{i}.")).collect();
    let (mut total, mut routed, mut bytes) = (0u64, 0u64, 0u64);
    let mut dtypes: BTreeMap<&str, u64> = BTreeMap::new();
    for name in ck.names() {
        if mtp.iter().any(|p| name.starts_with(p)) || name.ends_with("_scale_inv") {
            continue;
        }
        let t = ck.info(name)?;
        let n = t.numel() as u64;
        total += n;
        bytes += if t.shape.len() == 1 { n * 4 } else { n * t.dtype.size() as u64 };
        *dtypes.entry(t.dtype.name()).or_default() += n;
        if name.contains(".mlp.experts.") {
            routed += n;
        }
    }
    let active = match &cfg.moe {
        Some(m) => total - routed + routed * m.top_k as u64 / m.n_routed as u64,
        None => total,
    };
    let cache = (cfg.n_layers * ctx * cfg.cache_dim() * 4) as u64;
    let moe_layers = (0..cfg.n_layers).filter(|&i| cfg.is_moe_layer(i)).count();
    if json {
        let o = serde_json::json!({
            "model_type": format!("{:?}", cfg.family), "hidden_size": cfg.hidden, "layers": cfg.n_layers,
            "moe_layers": moe_layers, "heads": cfg.n_heads, "vocab": cfg.vocab, "q_lora_rank": cfg.q_lora,
            "kv_lora_rank": cfg.kv_lora, "experts": cfg.moe.as_ref().map(|m| m.n_routed),
            "experts_per_token": cfg.moe.as_ref().map(|m| m.top_k), "params_total": total, "params_active": active,
            "dtypes": dtypes, "weight_bytes": bytes, "kv_cache_bytes": cache, "ctx": ctx, "fp8_block": cfg.fp8_block,
        });
        println!("{o}");
        return Ok(());
    }
    println!("{} ({:?} family)", dir.display(), cfg.family);
    println!("  hidden {}  layers {} ({} MoE)  heads {}  vocab {}", cfg.hidden, cfg.n_layers, moe_layers, cfg.n_heads, cfg.vocab);
    println!("  MLA: q_lora {:?}  kv_lora {}  rope {}  nope {}  v {}", cfg.q_lora, cfg.kv_lora, cfg.rope_dim, cfg.nope_dim, cfg.v_dim);
    if let Some(m) = &cfg.moe {
        println!(
            "  MoE: {} routed experts (width {}), {} shared, {} per token, {} groups keep {}, {:?}/{:?}",
            m.n_routed, m.intermediate, m.n_shared, m.top_k, m.n_group, m.topk_group, m.scoring, m.topk
        );
    }
    if let Some(y) = &cfg.yarn {
        println!("  YaRN: factor {} original {} mscale_all_dim {}", y.factor, y.original_max_position_embeddings, y.mscale_all_dim);
    }
    println!("  parameters: {} total, {} active per token", human(total), human(active));
    println!("  dtypes: {}", dtypes.iter().map(|(d, n)| format!("{d} {}", human(*n))).collect::<Vec<_>>().join(", "));
    println!("  GPU memory: weights {} MiB, latent KV cache {} MiB at {ctx} tokens", bytes >> 20, cache >> 20);
    Ok(())
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
