//! `deepseek-wgpu` command line: devices, inspect, logits, generate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use deepseek_wgpu::checkpoint::Checkpoint;
use deepseek_wgpu::config::ModelConfig;
use deepseek_wgpu::gpu::{list_adapters, Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, LogitsMode, Model};
use deepseek_wgpu::{generate, npy};

#[derive(Parser)]
#[command(name = "deepseek-wgpu", version, about = "DeepSeek-V3/R1/V2 inference on any GPU (wgpu: Vulkan, Metal, DX12)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// Hugging Face checkpoint folder (config.json + safetensors)
    #[arg(long)]
    model: PathBuf,
    /// context length to allocate the latent KV cache for
    #[arg(long, default_value_t = 4096)]
    ctx: usize,
    /// cap the storage binding size (MiB) below the adapter's, to exercise tensor splitting
    #[arg(long, hide = true)]
    max_binding_kib: Option<u64>,
    /// hide the upload progress bar
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// List GPU adapters with backend, type and key limits
    Devices,
    /// Summarise a checkpoint: config, parameter counts, dtypes, GPU memory
    Inspect {
        #[arg(long)]
        model: PathBuf,
        /// context length for the KV cache estimate
        #[arg(long, default_value_t = 4096)]
        ctx: usize,
        #[arg(long)]
        json: bool,
    },
    /// Write the logits at every position of --ids to a float32 .npy [n_ids, vocab]
    Logits {
        #[command(flatten)]
        m: ModelArgs,
        /// comma-separated token ids
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
        /// feed the ids N at a time through the cache (1 = pure decode); default all at once
        #[arg(long)]
        step: Option<usize>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Greedy continuation of --ids
    Generate {
        #[command(flatten)]
        m: ModelArgs,
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
        #[arg(long, default_value_t = 32)]
        max_tokens: usize,
        /// only 0 (greedy) for now
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// feed the prompt N tokens at a time
        #[arg(long)]
        step: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Devices => devices(),
        Cmd::Inspect { model, ctx, json } => inspect(&model, ctx, json),
        Cmd::Logits { m, ids, step, out } => {
            let model = load(&m)?;
            let mut cache = model.new_cache(m.ctx.min(model.max_ctx))?;
            if ids.len() > cache.ctx {
                bail!("{} ids exceed the context of {} tokens; pass --ctx {}", ids.len(), cache.ctx, ids.len());
            }
            let step = step.unwrap_or(ids.len()).max(1);
            let mut logits = Vec::with_capacity(ids.len() * model.cfg.vocab);
            for chunk in ids.chunks(step) {
                logits.extend(model.forward(&mut cache, chunk, LogitsMode::All)?.logits);
            }
            npy::write_f32(&out, &[ids.len(), model.cfg.vocab], &logits).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} ([{}, {}] float32)", out.display(), ids.len(), model.cfg.vocab);
            Ok(())
        }
        Cmd::Generate { m, ids, max_tokens, temperature, step, json } => {
            if temperature != 0.0 {
                bail!("--temperature {temperature}: only greedy decoding (--temperature 0) is implemented in this build");
            }
            let model = load(&m)?;
            let mut cache = model.new_cache(m.ctx.min(model.max_ctx))?;
            if ids.len() + max_tokens > cache.ctx {
                bail!("{} prompt ids + {max_tokens} new tokens exceed the context of {} tokens; pass a larger --ctx", ids.len(), cache.ctx);
            }
            let g = generate::greedy(&model, &mut cache, &ids, max_tokens, step.unwrap_or(0))?;
            if json {
                let mut routing = BTreeMap::new();
                for (l, per_pos) in model.moe_layers().iter().zip(&g.routing) {
                    let sorted: Vec<Vec<u32>> = per_pos
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            r.sort_unstable();
                            r
                        })
                        .collect();
                    routing.insert(l.to_string(), sorted);
                }
                let o = serde_json::json!({ "prompt_ids": ids, "ids": g.ids, "routing": routing });
                println!("{o}");
            } else {
                println!("{}", g.ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","));
            }
            Ok(())
        }
    }
}

fn load(m: &ModelArgs) -> Result<Model> {
    let gpu = Arc::new(Gpu::new(&GpuOptions { max_binding_bytes: m.max_binding_kib.map(|k| k * 1024) })?);
    let bar = if m.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("uploading");
    let opts = LoadOptions { max_ctx: m.ctx.max(1), ..LoadOptions::default() };
    let model = Model::load(gpu, &m.model, &opts, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
    .with_context(|| format!("loading {}", m.model.display()))?;
    bar.finish_and_clear();
    Ok(model)
}

fn devices() -> Result<()> {
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

fn inspect(dir: &Path, ctx: usize, json: bool) -> Result<()> {
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
