//! Shared pieces of the commands: model arguments, loading with a progress bar, sampling flags.

pub mod bench;
pub mod chat;
pub mod eval;
pub mod generate;
pub mod info;
pub mod serve;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig};
use deepseek_wgpu::format::Format;
use deepseek_wgpu::gpu::{AdapterChoice, Gpu, GpuOptions, ShaderChecks, Tuning};
use deepseek_wgpu::model::{LoadOptions, LogitsMode, Model, Placement, Policy};
use deepseek_wgpu::npy;
use deepseek_wgpu::session::{Session, Settings};

#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Hugging Face checkpoint folder (config.json + safetensors); default: the embedded model
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// context length to allocate the latent KV cache for
    #[arg(long, default_value_t = 4096)]
    pub ctx: usize,
    /// cap the storage binding size (KiB) below the adapter's, to exercise tensor splitting
    #[arg(long, hide = true)]
    pub max_binding_kib: Option<u64>,
    /// GPU memory the model may use, e.g. 24G, 1500M, 512MiB (plain numbers are bytes);
    /// default: what a CPU adapter has free, else no limit. A MoE model that does not fit keeps
    /// its routed experts in host memory and as many per layer as fit on the GPU (an expert
    /// cache chosen by the routing)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub gpu_memory: Option<u64>,
    /// the same in MiB (older spelling)
    #[arg(long, hide = true, conflicts_with = "gpu_memory")]
    pub gpu_memory_mib: Option<u64>,
    /// how the expert cache chooses resident experts: lfu (by the routing, with decay) or
    /// static (the first experts, as llama.cpp's fixed placement)
    #[arg(long, value_name = "lfu|static", default_value = "lfu")]
    pub expert_policy: Policy,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// hide the upload progress bar
    #[arg(long)]
    pub quiet: bool,
    /// quantize a safetensors checkpoint's projection and expert matrices on the host while
    /// uploading (llama.cpp's reference rounding); norms, router, embedding and kv_b_proj stay
    /// as they are, and so do matrices whose rows are not whole blocks (32 or 256 values)
    #[arg(long, value_name = "q8_0|q6_k|q4_k", value_parser = parse_quantize)]
    pub quantize: Option<Format>,
}

/// Which GPU, and how it is opened (every command that runs a model).
#[derive(clap::Args, Clone, Default)]
pub struct DeviceArgs {
    /// GPU adapter: an index or part of a name from `deepseek-wgpu devices` (default: wgpu's
    /// high-performance choice)
    #[arg(long, value_name = "N|NAME")]
    pub adapter: Option<AdapterChoice>,
    /// open the GPU as a small one offers it (WebGPU's guaranteed limits: 256 invocations and
    /// 16 KiB of memory per workgroup, 128 MiB bindings; no subgroups, f16 or timestamps), to
    /// check that a model runs on an integrated GPU
    #[arg(long)]
    pub small_gpu: bool,
    /// wgpu's runtime checks in the kernels (index clamping, loop bounding, division guards):
    /// on (every kernel), auto (off only for the kernel families whose indices the host proves
    /// in range, where that was measured to pay: none so far) or off (no kernel, unproven: for
    /// measuring what the checks cost)
    #[arg(long, value_name = "on|auto|off", env = "DEEPSEEK_WGPU_SHADER_CHECKS", default_value = "auto")]
    pub shader_checks: ShaderChecks,
}

impl ModelArgs {
    pub fn budget(&self) -> Option<u64> {
        self.gpu_memory.or(self.gpu_memory_mib.map(|x| x << 20))
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { max_ctx: self.ctx.max(1), memory_budget: self.budget(), quantize: self.quantize, expert_policy: self.expert_policy, ..LoadOptions::default() }
    }
}

impl DeviceArgs {
    pub fn options(&self, max_binding_kib: Option<u64>) -> GpuOptions {
        GpuOptions { max_binding_bytes: max_binding_kib.map(|k| k * 1024), tuning: Tuning::from_env(), adapter: self.adapter.clone(), small: self.small_gpu, shader_checks: self.shader_checks }
    }
}

pub use deepseek_wgpu::model::parse_size;

/// MiB, rounded up (a small fixture's weights are not 0 MiB).
pub fn mib(b: u64) -> u64 {
    b.div_ceil(1 << 20)
}

/// What a placement keeps where, in one line (None when everything is on the GPU).
pub fn describe_placement(p: &Placement) -> Option<String> {
    let c = p.expert_cache?;
    let resident = p.bytes_per_expert * (c.slots * p.n_moe_layers) as u64;
    Some(format!(
        "{} of {} routed experts per MoE layer on the GPU (expert cache, {}): {} MiB of experts on the GPU, {} MiB in host memory; GPU total {} MiB{}",
        c.slots,
        p.n_routed,
        c.policy.name(),
        mib(resident),
        mib(p.expert_weights - resident),
        mib(p.gpu_bytes()),
        p.budget.map_or(String::new(), |b| format!(" of a {} MiB budget", mib(b)))
    ))
}

/// `--quantize`'s value: q8_0, q6_k or q4_k (any case).
pub fn parse_quantize(s: &str) -> Result<Format, String> {
    Format::from_ggml_name(s)
        .filter(|f| deepseek_wgpu::format::quantize::TARGETS.contains(f))
        .ok_or_else(|| format!("'{s}' is not one of q8_0, q6_k, q4_k"))
}

/// Sampling flags; unset ones fall back to the checkpoint's generation_config.json.
#[derive(clap::Args, Clone, Default)]
pub struct SamplingArgs {
    /// 0 = greedy
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    /// 0 = off
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long, allow_negative_numbers = true)]
    pub min_p: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub repeat_penalty: Option<f32>,
    /// same seed, same text
    #[arg(long)]
    pub seed: Option<u64>,
    /// stop before this text (repeatable)
    #[arg(long)]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    pub fn settings(&self, base: Settings, max_tokens: usize) -> Result<Settings> {
        let mut s = base;
        s.sample.temperature = self.temperature.unwrap_or(s.sample.temperature);
        s.sample.top_p = self.top_p.unwrap_or(s.sample.top_p);
        s.sample.top_k = self.top_k.unwrap_or(s.sample.top_k);
        s.sample.min_p = self.min_p.unwrap_or(s.sample.min_p);
        s.sample.repeat_penalty = self.repeat_penalty.unwrap_or(s.sample.repeat_penalty);
        s.seed = self.seed.or(s.seed);
        s.stop = self.stop.clone();
        s.max_tokens = max_tokens;
        // validated here, where a bad flag is met first (chat would otherwise start and fail
        // on the first message); the session turns it into the kernel's Filter the same way
        s.sample.filter().map_err(anyhow::Error::msg)?;
        Ok(s)
    }
}

/// What to load: `--model` (a folder, or a GGUF file), else the embedded default model.
pub fn model_dir(model: Option<&Path>) -> Result<PathBuf> {
    match model {
        Some(p) => Ok(p.to_path_buf()),
        None => deepseek_wgpu::default_model_dir().map_err(anyhow::Error::msg),
    }
}

pub fn load(m: &ModelArgs) -> Result<Arc<Model>> {
    let dir = model_dir(m.model.as_deref())?;
    let gpu = Arc::new(Gpu::new(&m.device.options(m.max_binding_kib))?);
    let bar = if m.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(match m.quantize {
        Some(q) => format!("uploading weights (quantizing to {})", q.name()),
        None => "uploading weights".to_string(),
    });
    let opts = m.load_options();
    let model = Model::load(gpu, &dir, &opts, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    })
    .with_context(|| format!("loading {}", dir.display()))?;
    bar.finish_and_clear();
    if let Some(line) = describe_placement(&model.placement) {
        eprintln!("experts: {line}");
    }
    Ok(Arc::new(model))
}

/// Model, tokenizer and a session over them.
pub fn session(m: &ModelArgs) -> Result<Session> {
    session_on(m, load(m)?)
}

/// A session over an already loaded model (needs the folder's tokenizer).
pub fn session_on(m: &ModelArgs, model: Arc<Model>) -> Result<Session> {
    let dir = model_dir(m.model.as_deref())?;
    let tok = ChatTokenizer::load(&dir, model.cfg.vocab).with_context(|| format!("loading the tokenizer of {}", dir.display()))?;
    let gen = GenerationConfig::load(&dir)?;
    let ctx = m.ctx.min(model.max_ctx);
    Ok(Session::new(model, Arc::new(tok), gen, ctx)?)
}

/// A session over token ids alone, for a checkpoint without a tokenizer.
pub fn ids_session(m: &ModelArgs, model: Arc<Model>) -> Result<Session> {
    let dir = model_dir(m.model.as_deref())?;
    let gen = GenerationConfig::load(&dir)?;
    let ctx = m.ctx.min(model.max_ctx);
    Ok(Session::ids_only(model, gen, ctx)?)
}

pub fn logits(m: &ModelArgs, ids: &[u32], step: Option<usize>, out: &Path) -> Result<()> {
    let model = load(m)?;
    let mut cache = model.new_cache(m.ctx.min(model.max_ctx))?;
    if ids.len() > cache.ctx {
        bail!("{} ids exceed the context of {} tokens; pass --ctx {}", ids.len(), cache.ctx, ids.len());
    }
    let step = step.unwrap_or(ids.len()).max(1);
    let mut logits = Vec::with_capacity(ids.len() * model.cfg.vocab);
    for chunk in ids.chunks(step) {
        logits.extend(model.forward(&mut cache, chunk, LogitsMode::All)?.logits);
    }
    npy::write_f32(out, &[ids.len(), model.cfg.vocab], &logits).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} ([{}, {}] float32)", out.display(), ids.len(), model.cfg.vocab);
    Ok(())
}
