//! `devices` and `inspect`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use deepseek_wgpu::checkpoint::{Checkpoint, CheckpointError};
use deepseek_wgpu::config::{Attention, ConfigError, ModelConfig};
use deepseek_wgpu::format::quantize::{quantized_format, TARGETS};
use deepseek_wgpu::gpu::{list_adapters, AdapterChoice, Gpu, GpuOptions};
use deepseek_wgpu::model::{check, placement, total_bytes, LoadError, LoadOptions, Placement};

use super::{describe_placement, mib};

pub fn devices(model: Option<&Path>, ctx: usize, small: bool) -> Result<()> {
    let list = list_adapters();
    if list.is_empty() {
        bail!("no GPU adapters found; install a Vulkan driver (apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    let dir = super::model_dir(model)?;
    let name = match model {
        Some(p) => p.display().to_string(),
        None => "the embedded model".to_string(),
    };
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
        // Can it run the model? The adapter opened as the engine would, the model's tensors
        // and kernels checked against it; nothing uploaded.
        let opts = GpuOptions { adapter: Some(AdapterChoice::Index(i)), small, ..Default::default() };
        let how = if small { " (as a small GPU)" } else { "" };
        let verdict = Gpu::new(&opts).map_err(LoadError::from).and_then(|gpu| check(&gpu, &dir, &LoadOptions { max_ctx: ctx.max(1), ..Default::default() }));
        match verdict {
            Ok(()) => println!("    runs {name} at --ctx {ctx}{how}: yes"),
            Err(e) => println!("    runs {name} at --ctx {ctx}{how}: no: {e}"),
        }
    }
    Ok(())
}

/// Config-derived figures always; weight dtypes and bytes when the folder has weights (a folder
/// with only `config.json` is enough to see what a checkpoint needs before downloading it).
/// `dir` may also be a GGUF file (its metadata is the config).
pub fn inspect(dir: &Path, ctx: usize, json: bool, gpu_memory: Option<u64>) -> Result<()> {
    let (cfg, unknown, ck) = if deepseek_wgpu::model::is_gguf(dir) {
        let (cfg, ck) = deepseek_wgpu::model::open(dir)?;
        (cfg, Vec::new(), Some(ck))
    } else {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::Read { path: path.clone(), err })?;
        let cfg = ModelConfig::parse(&text, &path)?;
        let ck = match Checkpoint::open(dir) {
            Ok(ck) => Some(ck),
            Err(CheckpointError::NoWeights { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        (cfg, ModelConfig::unknown_keys(&text), ck)
    };
    let counts = cfg.param_counts();
    let mut dtypes: BTreeMap<&str, u64> = BTreeMap::new();
    // GPU bytes per upload format, as loaded and with each --quantize choice
    let mut dtype_bytes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut quantized: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut weights_total, mut bytes) = (None, None);
    if let Some(ck) = &ck {
        let mtp: Vec<String> = (cfg.n_layers..cfg.n_layers + cfg.num_nextn_predict_layers).map(|i| format!("model.layers.{i}.")).collect();
        let (mut total, mut b) = (0u64, 0u64);
        for name in ck.names() {
            if mtp.iter().any(|p| name.starts_with(p)) || name.ends_with("_scale_inv") {
                continue;
            }
            let t = ck.info(name)?;
            let n = t.numel() as u64;
            total += n;
            let gpu_bytes = |f: deepseek_wgpu::format::Format| if t.shape.len() == 1 { n * 4 } else { f.size_of(n as usize) as u64 };
            b += gpu_bytes(t.dtype);
            *dtypes.entry(t.dtype.name()).or_default() += n;
            *dtype_bytes.entry(t.dtype.name()).or_default() += gpu_bytes(t.dtype);
            let already = t.dtype.is_block();
            for q in TARGETS {
                // a checkpoint holding block formats is refused with --quantize: no figure
                let e = quantized.entry(q.name()).or_default();
                *e = if already || *e == u64::MAX { u64::MAX } else { *e + gpu_bytes(quantized_format(Some(q), name, t.dtype, &t.shape)) };
            }
        }
        weights_total = Some(total);
        bytes = Some(b);
    }
    let per_token = cfg.cache_bytes_per_token();
    let cache = per_token * ctx as u64;
    let moe_layers = (0..cfg.n_layers).filter(|&i| cfg.is_moe_layer(i)).count();
    let (kv_heads, head_dim) = match cfg.attention {
        Attention::Mla => (None, None),
        Attention::Gqa { kv_heads, head_dim } => (Some(kv_heads), Some(head_dim)),
    };
    let cache_kind = cfg.cache_name();
    // where the bytes would go under --gpu-memory (binding limits as WebGPU guarantees them:
    // they only size the activations); nothing is loaded
    let plan: Option<Placement> = match &ck {
        Some(ck) => {
            let opts = LoadOptions { max_ctx: ctx.max(1), ..Default::default() };
            let binding = wgpu::Limits::defaults().max_storage_buffer_binding_size as u64;
            Some(placement(ck, &cfg, binding, &opts, total_bytes(ck, &cfg, None), gpu_memory)?)
        }
        None => None,
    };
    if json {
        let o = serde_json::json!({
            "model_type": format!("{:?}", cfg.family), "hidden_size": cfg.hidden, "layers": cfg.n_layers,
            "moe_layers": moe_layers, "heads": cfg.n_heads, "vocab": cfg.vocab, "q_lora_rank": cfg.q_lora,
            "kv_lora_rank": cfg.kv_lora, "kv_heads": kv_heads, "head_dim": head_dim, "experts": cfg.moe.as_ref().map(|m| m.n_routed),
            "experts_per_token": cfg.moe.as_ref().map(|m| m.top_k), "params_total": counts.total,
            "params_active": counts.active, "params_embedding": counts.embedding, "params_routed": counts.routed,
            "params_in_weights": weights_total, "dtypes": dtypes, "dtype_bytes": dtype_bytes, "weight_bytes": bytes,
            "quantize_weight_bytes": quantized.iter().filter(|(_, b)| **b != u64::MAX).map(|(q, b)| (q.to_lowercase(), *b)).collect::<BTreeMap<_, _>>(),
            "kv_cache_bytes_per_token": per_token, "kv_cache_bytes": cache, "ctx": ctx, "fp8_block": cfg.fp8_block,
            "mtp_layers": cfg.num_nextn_predict_layers, "unknown_config_keys": unknown,
            "placement": plan.as_ref().map(|p| serde_json::json!({
                "budget_bytes": p.budget, "fixed_bytes": p.fixed_weights + p.cache + p.activations,
                "fixed_weight_bytes": p.fixed_weights, "expert_bytes": p.expert_weights, "bytes_per_expert": p.bytes_per_expert,
                "activation_bytes": p.activations, "gpu_bytes": p.gpu_bytes(),
                "expert_slots": p.expert_cache.map_or(cfg.moe.as_ref().map_or(0, |m| m.n_routed), |c| c.slots),
                "experts_in_host_memory": p.expert_cache.is_some(),
            })),
        });
        println!("{o}");
        return Ok(());
    }
    println!("{} ({:?} family)", dir.display(), cfg.family);
    println!("  hidden {}  layers {} ({} MoE)  heads {}  vocab {}", cfg.hidden, cfg.n_layers, moe_layers, cfg.n_heads, cfg.vocab);
    match cfg.attention {
        Attention::Mla => println!("  MLA: q_lora {:?}  kv_lora {}  rope {}  nope {}  v {}", cfg.q_lora, cfg.kv_lora, cfg.rope_dim, cfg.nope_dim, cfg.v_dim),
        Attention::Gqa { kv_heads, head_dim } => println!("  GQA: {} query heads share {kv_heads} K/V heads of {head_dim}; dense", cfg.n_heads),
    }
    if let Some(m) = &cfg.moe {
        println!(
            "  MoE: {} routed experts (width {}), {} shared, {} per token, {} groups keep {}, {:?}/{:?}",
            m.n_routed, m.intermediate, m.n_shared, m.top_k, m.n_group, m.topk_group, m.scoring, m.topk
        );
    }
    if let Some(y) = &cfg.yarn {
        println!("  YaRN: factor {} original {} mscale_all_dim {}", y.factor, y.original_max_position_embeddings, y.mscale_all_dim);
    }
    println!(
        "  parameters: {} total, {} active per token (without the {} input embedding){}",
        human(counts.total),
        human(counts.active),
        human(counts.embedding),
        if cfg.num_nextn_predict_layers > 0 { format!("; {} MTP layer(s) not counted, not run", cfg.num_nextn_predict_layers) } else { String::new() }
    );
    match (weights_total, bytes) {
        (Some(w), Some(b)) => {
            if w != counts.total {
                println!("  warning: the weights hold {w} parameters but config.json implies {}", counts.total);
            }
            println!("  dtypes: {}", dtypes.iter().map(|(d, n)| format!("{d} {}", human(*n))).collect::<Vec<_>>().join(", "));
            println!("  bytes: {}", dtype_bytes.iter().map(|(d, n)| format!("{d} {} MiB", mib(*n))).collect::<Vec<_>>().join(", "));
            println!("  GPU memory: weights {} MiB, {cache_kind} {} MiB at {ctx} tokens ({} bytes per token)", mib(b), mib(cache), per_token);
            if quantized.values().all(|&w| w != u64::MAX) {
                for (q, w) in &quantized {
                    println!("  with --quantize {}: weights {} MiB + cache {} MiB = {} MiB", q.to_lowercase(), mib(*w), mib(cache), mib(w + cache));
                }
            } else {
                println!("  --quantize: not available, the weights are already quantized");
            }
        }
        _ => {
            println!("  {cache_kind}: {} MiB at {ctx} tokens ({} bytes per token)", cache >> 20, per_token);
            println!("  no weights in {} (model.safetensors or model.safetensors.index.json): figures from config.json only", dir.display());
        }
    }
    match (&plan, gpu_memory) {
        (Some(p), Some(b)) => match describe_placement(p) {
            Some(line) => println!("  with --gpu-memory {} MiB: {line}", mib(b)),
            None => println!("  with --gpu-memory {} MiB: everything on the GPU ({} MiB)", mib(b), mib(p.gpu_bytes())),
        },
        (Some(p), None) if p.n_moe_layers > 0 => println!(
            "  routed experts: {} MiB ({} MiB each, {} per layer × {} MoE layers); the rest {} MiB with cache and activations: pass --gpu-memory SIZE to see what an expert cache keeps",
            mib(p.expert_weights),
            mib(p.bytes_per_expert),
            p.n_routed,
            p.n_moe_layers,
            mib(p.fixed_weights + p.cache + p.activations)
        ),
        _ => {}
    }
    if !unknown.is_empty() {
        println!("  config keys this engine does not know (ignored): {}", unknown.join(", "));
    }
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
