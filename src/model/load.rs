//! Loading a checkpoint folder onto the GPU, tensor by tensor, checking every shape against
//! the config. Expert weights are accepted both per expert (`mlp.experts.{e}.gate_proj.weight`,
//! as DeepSeek ships them) and fused (`mlp.experts.gate_up_proj` `[E][2·I][hidden]`,
//! `mlp.experts.down_proj` `[E][hidden][I]`, as some tools write them).

use std::path::Path;
use std::sync::Arc;

use super::offload::{ExpertCache, HostPool, Offload, Placement, Policy};
use super::{Activations, Attn, Ffn, Gqa, Layer, Mla, Mlp, Model, Moe, QProj};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::format::quantize::quantized_format;
use crate::format::Format;
use crate::config::{Attention, ConfigError, ModelConfig};
use crate::gpu::{Gpu, GpuError};
use crate::ops::moe_gate::Gate;
use crate::ops::mla_absorb::{self, Absorb};
use crate::ops::{rope, Kernels};
use crate::tensor::{Matrix, TensorError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Tensor(#[from] TensorError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Gguf(#[from] crate::gguf::GgufError),
    #[error("requested context {requested} is outside 1..={max}; pass a smaller --ctx")]
    Context { requested: usize, max: usize },
    #[error("a KV cache of {ctx} tokens needs {per_layer} bytes per layer, over the adapter's binding limit of {limit} bytes; pass a smaller --ctx")]
    CacheTooLarge { ctx: usize, per_layer: u64, limit: u64 },
    #[error("{tensor}: one {unit} is {need} bytes but this adapter binds at most {limit} bytes per storage buffer, so it cannot be split to fit; use a GPU whose max_storage_buffer_binding_size is at least {need} bytes")]
    Binding { tensor: String, unit: &'static str, need: u64, limit: u64 },
    #[error("the model needs about {need_mib} MiB of GPU memory (weights {weights_mib} MiB, {cache} for {ctx} tokens {cache_mib} MiB, activations {act_mib} MiB) but about {avail_mib} MiB are available; try a smaller --ctx, a smaller model, or an FP8 checkpoint")]
    Memory { need_mib: u64, weights_mib: u64, cache: &'static str, cache_mib: u64, act_mib: u64, ctx: usize, avail_mib: u64 },
    #[error("the model needs about {need_mib} MiB of GPU memory even with its routed experts in host memory (weights other than the routed experts {fixed_mib} MiB, {cache} for {ctx} tokens {cache_mib} MiB, activations {act_mib} MiB, one expert of each of {n_moe} MoE layers {slot_mib} MiB) but about {avail_mib} MiB are available; try a smaller --ctx or a larger --gpu-memory")]
    OffloadMemory { need_mib: u64, fixed_mib: u64, cache: &'static str, cache_mib: u64, act_mib: u64, ctx: usize, n_moe: usize, slot_mib: u64, avail_mib: u64 },
    #[error("an expert cache of {slots} slots per layer: the model has {n_routed} routed experts per MoE layer; give 1..={n_routed} slots")]
    ExpertSlots { slots: usize, n_routed: usize },
    #[error("--quantize with routed experts in host memory (--gpu-memory below the model's size) is not supported: quantize the checkpoint to GGUF first (llama-quantize), or give the model the memory it needs")]
    OffloadQuantize,
    #[error("{tensor}: fused FP8 expert tensors are not supported; use the per-expert layout DeepSeek ships")]
    FusedFp8Experts { tensor: String },
    #[error("--quantize {target}: {what} is already quantized ({src}); load it as it is, without --quantize")]
    AlreadyQuantized { target: &'static str, what: String, src: &'static str },
    #[error("--quantize {0}: the host quantizer writes Q8_0, Q6_K or Q4_K only")]
    QuantizeTarget(&'static str),
    #[error("no token ids to feed")]
    NoIds,
    #[error("token id {id} is outside the vocabulary (0..{vocab})")]
    IdOutOfVocab { id: u32, vocab: usize },
    #[error("context full: {cached} cached + {new} new tokens exceed the context of {ctx} tokens; start a new chat or pass a larger --ctx")]
    ContextFull { cached: usize, new: usize, ctx: usize },
    #[error("{n} penalty ids exceed the {max} the sampler holds")]
    PenaltyIds { n: usize, max: usize },
    #[error("a token mask of {n} words does not cover a vocabulary of {vocab} (ceil(vocab / 32) words)")]
    MaskWords { n: usize, vocab: usize },
}

/// Upload progress: bytes done of total, and the tensor just uploaded.
pub struct Progress<'a> {
    pub done: u64,
    pub total: u64,
    pub tensor: &'a str,
}

pub struct LoadOptions {
    /// tokens per internal forward chunk (bounded further by binding limits)
    pub max_chunk: usize,
    /// largest context a cache may be created with
    pub max_ctx: usize,
    /// GPU memory the model may use (bytes); `None`: what the adapter reports, where it does
    pub memory_budget: Option<u64>,
    /// Quantize the projection and expert matrices of a safetensors checkpoint to this format
    /// (Q8_0, Q6_K or Q4_K; see [`quantized_format`]) on the host while uploading.
    pub quantize: Option<Format>,
    /// Keep only this many routed experts per MoE layer on the GPU (the rest in host memory),
    /// whatever the budget; `None`: all of them when they fit the budget, else as many as fit
    /// (see [`placement`]).
    pub expert_cache: Option<ExpertCache>,
    /// The policy of an expert cache the budget makes necessary.
    pub expert_policy: Policy,
    /// The kernels' runtime checks for this model; `None`: the device's
    /// ([`GpuOptions::shader_checks`](crate::gpu::GpuOptions)).
    pub shader_checks: Option<crate::gpu::ShaderChecks>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_chunk: 256, max_ctx: 4096, memory_budget: None, quantize: None, expert_cache: None, expert_policy: Policy::Lfu, shader_checks: None }
    }
}

/// Memory a CPU adapter (lavapipe, SwiftShader) can use: the host's available memory.
/// Discrete GPUs do not report free memory through wgpu; there the upload itself reports
/// an out-of-memory error.
fn detect_budget(gpu: &Gpu) -> Option<u64> {
    if gpu.info.device_type != wgpu::DeviceType::Cpu {
        return None;
    }
    host_available_memory()
}

/// The host's available memory in bytes (MemAvailable), where /proc tells.
pub fn host_available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Whether `path` is a GGUF file (by extension or magic) rather than a model folder.
pub fn is_gguf(path: &Path) -> bool {
    let magic = || {
        let mut m = [0u8; 4];
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut m)).is_ok() && &m == b"GGUF"
    };
    path.is_file() && (path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) || magic())
}

/// A model's config and weights: from a folder (config.json + safetensors), or from a GGUF
/// file (llama.cpp's `deepseek2` or `qwen3` architecture; the rest of a split set is found
/// beside it).
pub fn open(path: &Path) -> Result<(ModelConfig, Checkpoint), LoadError> {
    if !is_gguf(path) {
        return Ok((ModelConfig::load(path)?, Checkpoint::open(path)?));
    }
    let g = crate::gguf::Gguf::open(path)?;
    let arch = crate::gguf::Arch::of(&g)?;
    let cfg = ModelConfig::parse(&arch.hf_config(&g)?.to_string(), path)?;
    Ok((cfg, arch.checkpoint(&g)?))
}

/// Checks that need no upload: every tensor can be split to fit one binding, and the whole
/// model fits the memory budget (`opts.memory_budget`, else what a CPU adapter's host has).
/// Fails with the numbers before a single byte moves; the placement says whether the routed
/// experts would have to live in host memory. `weights`: [`total_bytes`]. The app asks this
/// before it loads a model.
pub fn preflight(ck: &Checkpoint, cfg: &ModelConfig, gpu: &Gpu, opts: &LoadOptions, weights: u64) -> Result<Placement, LoadError> {
    let limit = gpu.max_binding;
    for name in ck.names() {
        let Some(t) = ck.get(name) else { continue };
        if t.shape.len() < 2 || name.ends_with("_scale_inv") || is_mtp(cfg, name) {
            continue;
        }
        let dt = quantized_format(opts.quantize, name, t.dtype, &t.shape);
        let row = dt.size_of(t.shape[t.shape.len() - 1]) as u64;
        let (unit, need) = if name.contains(".mlp.experts.") || name.contains("kv_b_proj") || name.contains("k_b_proj") {
            ("matrix", dt.size_of(t.numel()) as u64 / if t.shape.len() == 3 { t.shape[0] as u64 } else { 1 })
        } else {
            ("row", row)
        };
        if need > limit {
            return Err(LoadError::Binding { tensor: format!("{} in {}", name, ck.file_of(name).display()), unit, need, limit });
        }
    }
    placement(ck, cfg, limit, opts, weights, opts.memory_budget.or_else(|| detect_budget(gpu)))
}

/// A memory size: a number with an optional unit K, M, G, T (powers of 1024; `KiB`, `KB`,
/// `k` … alike); plain numbers are bytes. (`--gpu-memory` of the CLI and the app.)
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 24G, 1500M, 512MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    Ok((v * (1u64 << shift) as f64) as u64)
}

/// Whether a tensor is one of the routed experts' matrices.
fn is_routed_expert(name: &str) -> bool {
    name.contains(".mlp.experts.")
}

/// Where the model's bytes go under `budget` (bytes of GPU memory; `None`: unknown, which
/// keeps everything on the GPU): all of it when it fits; else, for a MoE model, every weight
/// but the routed experts, the KV cache and the activations, plus as many experts per MoE
/// layer as the rest of the budget holds (at least one). `opts.expert_cache` overrides the
/// choice. Nothing is read but the tensor table.
pub fn placement(ck: &Checkpoint, cfg: &ModelConfig, max_binding: u64, opts: &LoadOptions, weights: u64, budget: Option<u64>) -> Result<Placement, LoadError> {
    let expert_weights: u64 = ck
        .names()
        .filter(|n| is_routed_expert(n) && !n.ends_with("_scale_inv") && !is_mtp(cfg, n))
        .filter_map(|n| ck.get(n).map(|t| quantized_format(opts.quantize, n, t.dtype, &t.shape).size_of(t.numel()) as u64))
        .sum();
    let n_moe = (0..cfg.n_layers).filter(|&i| cfg.is_moe_layer(i)).count();
    let n_routed = cfg.moe.as_ref().map_or(0, |m| m.n_routed);
    let cache = cfg.cache_bytes_per_token() * opts.max_ctx as u64;
    let chunk = chunk_cap(cfg, max_binding).min(opts.max_chunk).max(1);
    // with the expert cache's wave buffers (slot ids and weights per item)
    let act = Activations::bytes(cfg, chunk, opts.max_ctx) + (chunk * cfg.moe.as_ref().map_or(0, |m| m.top_k) * 8) as u64;
    let per_expert = if n_moe * n_routed > 0 { expert_weights / (n_moe * n_routed) as u64 } else { 0 };
    let mut p = Placement {
        fixed_weights: weights - expert_weights,
        expert_weights,
        bytes_per_expert: per_expert,
        n_moe_layers: n_moe,
        n_routed,
        cache,
        activations: act,
        budget,
        expert_cache: None,
    };
    let mib = |b: u64| b.div_ceil(1 << 20);
    if let Some(c) = opts.expert_cache {
        if c.slots == 0 || c.slots > n_routed {
            return Err(LoadError::ExpertSlots { slots: c.slots, n_routed });
        }
        p.expert_cache = (c.slots < n_routed).then_some(c);
    }
    let Some(avail) = budget else { return Ok(p) };
    if p.expert_cache.is_none() && p.gpu_bytes() > avail {
        if expert_weights == 0 {
            let need = p.gpu_bytes();
            return Err(LoadError::Memory { need_mib: mib(need), weights_mib: mib(weights), cache: cfg.cache_name(), cache_mib: mib(cache), act_mib: mib(act), ctx: opts.max_ctx, avail_mib: mib(avail) });
        }
        let fixed = p.fixed_weights + cache + act;
        let slots = (avail.saturating_sub(fixed) / (per_expert * n_moe as u64).max(1)) as usize;
        if slots == 0 {
            let need = fixed + per_expert * n_moe as u64;
            return Err(LoadError::OffloadMemory {
                need_mib: mib(need),
                fixed_mib: mib(p.fixed_weights),
                cache: cfg.cache_name(),
                cache_mib: mib(cache),
                act_mib: mib(act),
                ctx: opts.max_ctx,
                n_moe,
                slot_mib: mib(per_expert * n_moe as u64),
                avail_mib: mib(avail),
            });
        }
        p.expert_cache = Some(ExpertCache { slots: slots.min(n_routed - 1), policy: opts.expert_policy });
    }
    if p.expert_cache.is_some() && opts.quantize.is_some() {
        return Err(LoadError::OffloadQuantize);
    }
    Ok(p)
}

/// The weight formats a load of `ck` uploads.
fn formats(ck: &Checkpoint, opts: &LoadOptions) -> Vec<Format> {
    let mut formats: Vec<Format> = ck.names().filter_map(|n| ck.get(n)).map(|t| t.dtype).chain(opts.quantize).collect();
    formats.sort_by_key(|f| f.wgsl_id());
    formats.dedup();
    formats
}

/// Whether the model at `path` can run on `gpu` with `opts`, without uploading a weight:
/// the adapter's limits are what the kernels need, the kernels of its weight formats build,
/// every tensor fits a binding and the whole (with the cache at `opts.max_ctx`) fits the
/// memory budget. `devices --model` asks this of every adapter.
pub fn check(gpu: &Gpu, path: &Path, opts: &LoadOptions) -> Result<(), LoadError> {
    let (cfg, ck) = open(path)?;
    preflight(&ck, &cfg, gpu, opts, total_bytes(&ck, &cfg, opts.quantize))?;
    Kernels::with_checks(gpu, opts.shader_checks.unwrap_or(gpu.shader_checks))?.prepare(gpu, &formats(&ck, opts))?;
    Ok(())
}

fn is_mtp(cfg: &ModelConfig, name: &str) -> bool {
    (cfg.n_layers..cfg.n_layers + cfg.num_nextn_predict_layers.max(1)).any(|i| name.starts_with(&format!("model.layers.{i}.")))
}

struct Loader<'a> {
    gpu: &'a Gpu,
    ck: &'a Checkpoint,
    cfg: &'a ModelConfig,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(Progress),
    quantize: Option<Format>,
    /// matrices `--quantize` had to keep in their source format (rows not whole blocks)
    kept: Vec<String>,
}

impl Loader<'_> {
    fn tick(&mut self, name: &str, bytes: u64) {
        self.done += bytes;
        (self.progress)(Progress { done: self.done, total: self.total, tensor: name });
    }

    /// The upload format of `names` (one stacked matrix each) or `None` to keep the source's;
    /// notes the matrices kept for want of whole blocks.
    fn target(&mut self, label: &str, names: &[String], cols: usize) -> Option<Format> {
        let q = self.quantize?;
        let t = self.ck.get(&names[0])?;
        let f = quantized_format(Some(q), &names[0], t.dtype, &t.shape);
        if f == t.dtype && !t.dtype.is_block() && !cols.is_multiple_of(q.block_elems()) && quantized_format(Some(q), &names[0], t.dtype, &[1, q.block_elems()]) == q {
            self.kept.push(format!("{label} ({cols} values per row, {})", t.dtype.name()));
        }
        (f == q).then_some(q)
    }

    /// Dequantize matrix `name` (`[rows][cols]`, BF16/F16/F32, or FP8 with its block scales)
    /// and quantize it row by row to `q` on the host, rows spread over the CPU's threads.
    fn quantize_matrix(&self, name: &str, rows: usize, cols: usize, q: Format) -> Result<Vec<u8>, LoadError> {
        let t = self.ck.expect_shape(name, &[rows, cols])?;
        let src = t.dtype;
        let bytes = self.ck.bytes(name)?;
        let scale = if src.external_scale() {
            let block = self.cfg.fp8_block.unwrap_or([128, 128]);
            let sn = format!("{name}_scale_inv");
            let shape = [rows.div_ceil(block[0]), cols.div_ceil(block[1])];
            if self.ck.get(&sn).is_none() {
                return Err(self.ck.mismatch(name, format!("is F8_E4M3 but its block scale {sn} is missing; the checkpoint is incomplete or not block-quantized")).into());
            }
            if self.ck.info(&sn)?.shape != shape {
                return Err(self.ck.mismatch(&sn, format!("shape {:?}, but weight [{rows}, {cols}] with blocks {block:?} needs {shape:?}", self.ck.info(&sn)?.shape)).into());
            }
            Some((self.ck.f32_vec(&sn)?, block, shape[1]))
        } else {
            None
        };
        Ok(quantize_rows(src, bytes, rows, cols, q, scale))
    }

    fn quantize_matrix_raw(&self, src: Format, bytes: &[u8], rows: usize, cols: usize, q: Format) -> Vec<u8> {
        quantize_rows(src, bytes, rows, cols, q, None)
    }

    /// Matrices `names` (`[rows][cols]` each) quantized to `q`, as one stack.
    fn quantized(&mut self, label: &str, names: &[String], rows: usize, cols: usize, q: Format) -> Result<Matrix, LoadError> {
        let first = self.ck.expect_shape(&names[0], &[rows, cols])?.dtype;
        let mut mats = Vec::with_capacity(names.len());
        for n in names {
            let d = self.ck.expect_shape(n, &[rows, cols])?.dtype;
            if d != first {
                return Err(self.ck.mismatch(n, format!("dtype {} differs from {} of {}", d.name(), first.name(), names[0])).into());
            }
            mats.push(self.quantize_matrix(n, rows, cols, q)?);
        }
        let m = Matrix::build(self.gpu, label, q, names.len(), rows, cols, |e| &mats[e], None)?;
        self.tick(label, m.bytes());
        Ok(m)
    }

    fn mat(&mut self, name: &str, rows: usize, cols: usize) -> Result<Matrix, LoadError> {
        let names = [name.to_string()];
        if let Some(q) = self.target(name, &names, cols) {
            return self.quantized(name, &names, rows, cols, q);
        }
        let m = Matrix::load(self.gpu, self.ck, name, &[name.to_string()], rows, cols, self.cfg.fp8_block)?;
        self.tick(name, m.bytes());
        Ok(m)
    }

    fn vec(&mut self, name: &str, n: usize) -> Result<wgpu::Buffer, LoadError> {
        self.ck.expect_shape(name, &[n])?;
        let v = self.ck.f32_vec(name)?;
        self.tick(name, (n * 4) as u64);
        Ok(self.gpu.storage_init(name, bytemuck::cast_slice(&v)))
    }

    /// A 3-D tensor `[n][rows][cols]` as a pool of n matrices.
    fn pool(&mut self, name: &str, n: usize, rows: usize, cols: usize) -> Result<Matrix, LoadError> {
        let t = self.ck.expect_shape(name, &[n, rows, cols])?;
        let (dt, bytes) = (t.dtype, self.ck.bytes(name)?);
        let mb = dt.size_of(rows * cols);
        let m = Matrix::build(self.gpu, name, dt, n, rows, cols, |e| &bytes[e * mb..][..mb], None)?;
        self.tick(name, m.bytes());
        Ok(m)
    }

    /// One layer's MLA weights under `a` (`model.layers.N.self_attn`).
    fn mla(&mut self, a: &str, kernels: &Kernels) -> Result<Mla, LoadError> {
        let cfg = self.cfg;
        let (h, nh, qk) = (cfg.hidden, cfg.n_heads, cfg.qk_head_dim());
        let q = match cfg.q_lora {
            None => QProj::Direct(self.mat(&format!("{a}.q_proj.weight"), nh * qk, h)?),
            Some(r) => QProj::LowRank {
                a: self.mat(&format!("{a}.q_a_proj.weight"), r, h)?,
                norm: self.vec(&format!("{a}.q_a_layernorm.weight"), r)?,
                b: self.mat(&format!("{a}.q_b_proj.weight"), nh * qk, r)?,
            },
        };
        let (kv_b_name, k_b_name) = (format!("{a}.kv_b_proj.weight"), format!("{a}.k_b_proj.weight"));
        let kv_b = if self.ck.get(&k_b_name).is_some() && self.ck.get(&kv_b_name).is_none() {
            // llama.cpp's split form (GGUF): W_UK transposed and W_UV, one pool of heads each
            let k_b = self.pool(&k_b_name, nh, cfg.kv_lora, cfg.nope_dim)?;
            Absorb::Split { k_b, v_b: self.pool(&format!("{a}.v_b_proj.weight"), nh, cfg.v_dim, cfg.kv_lora)? }
        } else {
            let kv_b = self.mat(&kv_b_name, nh * (cfg.nope_dim + cfg.v_dim), cfg.kv_lora)?;
            if kv_b.chunks.len() != 1 {
                // mla_absorb reads every head's W_UK / W_UV from one binding
                return Err(LoadError::Binding { tensor: kv_b_name, unit: "whole matrix", need: kv_b.bytes(), limit: self.gpu.max_binding });
            }
            let uk_t = mla_absorb::transpose_uk(kernels, self.gpu, &kv_b, super::attention::mla_heads(cfg))?;
            Absorb::KvB { kv_b, uk_t }
        };
        Ok(Mla {
            q,
            kv_a: self.mat(&format!("{a}.kv_a_proj_with_mqa.weight"), cfg.kv_lora + cfg.rope_dim, h)?,
            kv_a_norm: self.vec(&format!("{a}.kv_a_layernorm.weight"), cfg.kv_lora)?,
            kv_b,
            o: self.mat(&format!("{a}.o_proj.weight"), h, nh * cfg.v_dim)?,
        })
    }

    fn mlp(&mut self, p: &str, width: usize) -> Result<Mlp, LoadError> {
        let h = self.cfg.hidden;
        Ok(Mlp {
            gate: self.mat(&format!("{p}.gate_proj.weight"), width, h)?,
            up: self.mat(&format!("{p}.up_proj.weight"), width, h)?,
            down: self.mat(&format!("{p}.down_proj.weight"), h, width)?,
        })
    }

    fn experts(&mut self, p: &str, n: usize, width: usize) -> Result<Mlp, LoadError> {
        let h = self.cfg.hidden;
        let fused = format!("{p}.gate_up_proj");
        if self.ck.get(&fused).is_some() {
            let gu = self.ck.expect_shape(&fused, &[n, 2 * width, h])?;
            let down_name = format!("{p}.down_proj");
            let dn = self.ck.expect_shape(&down_name, &[n, h, width])?;
            if gu.dtype == Format::F8E4M3 || dn.dtype == Format::F8E4M3 {
                return Err(LoadError::FusedFp8Experts { tensor: fused });
            }
            let (gu_q, dn_q) = (self.target(&fused, std::slice::from_ref(&fused), h), self.target(&down_name, std::slice::from_ref(&down_name), width));
            let dt = gu.dtype;
            let bytes = self.ck.bytes(&fused)?;
            if gu_q.is_some() || dn_q.is_some() {
                // whole tensors through the host quantizer: [E·rows][cols] is one matrix of rows
                let gate_up = match gu_q {
                    Some(q) => (q, self.quantize_matrix_raw(dt, bytes, n * 2 * width, h, q)),
                    None => (dt, bytes.to_vec()),
                };
                let db = self.ck.bytes(&down_name)?;
                let down = match dn_q {
                    Some(q) => (q, self.quantize_matrix_raw(dn.dtype, db, n * h, width, q)),
                    None => (dn.dtype, db.to_vec()),
                };
                let (gdt, gb) = (gate_up.0, &gate_up.1);
                let mb = gdt.size_of(width * h);
                let gate = Matrix::build(self.gpu, &format!("{fused}[gate]"), gdt, n, width, h, |e| &gb[2 * e * mb..][..mb], None)?;
                let up = Matrix::build(self.gpu, &format!("{fused}[up]"), gdt, n, width, h, |e| &gb[(2 * e + 1) * mb..][..mb], None)?;
                self.tick(&fused, gate.bytes() + up.bytes());
                let (ddt, dbq) = (down.0, &down.1);
                let dmb = ddt.size_of(h * width);
                let down = Matrix::build(self.gpu, &down_name, ddt, n, h, width, |e| &dbq[e * dmb..][..dmb], None)?;
                self.tick(&down_name, down.bytes());
                return Ok(Mlp { gate, up, down });
            }
            let mb = dt.size_of(width * h);
            let gate = Matrix::build(self.gpu, &format!("{fused}[gate]"), dt, n, width, h, |e| &bytes[2 * e * mb..][..mb], None)?;
            let up = Matrix::build(self.gpu, &format!("{fused}[up]"), dt, n, width, h, |e| &bytes[(2 * e + 1) * mb..][..mb], None)?;
            self.tick(&fused, gate.bytes() + up.bytes());
            let db = self.ck.bytes(&down_name)?;
            let ddt = dn.dtype;
            let dmb = ddt.size_of(h * width);
            let down = Matrix::build(self.gpu, &down_name, ddt, n, h, width, |e| &db[e * dmb..][..dmb], None)?;
            self.tick(&down_name, down.bytes());
            return Ok(Mlp { gate, up, down });
        }
        let names = |w: &str| (0..n).map(|e| format!("{p}.{e}.{w}.weight")).collect::<Vec<_>>();
        let mut pool = |w: &str, rows, cols| -> Result<Matrix, LoadError> {
            let ns = names(w);
            let label = format!("{p}.*.{w}.weight");
            if let Some(q) = self.target(&label, &ns, cols) {
                return self.quantized(&label, &ns, rows, cols, q);
            }
            let m = Matrix::load(self.gpu, self.ck, &label, &ns, rows, cols, self.cfg.fp8_block)?;
            self.tick(&label, m.bytes());
            Ok(m)
        };
        Ok(Mlp { gate: pool("gate_proj", width, h)?, up: pool("up_proj", width, h)?, down: pool("down_proj", h, width)? })
    }
}

impl Loader<'_> {
    /// A MoE layer's routed experts with only `slots` of them on the GPU (experts
    /// `0..slots` to begin with) and every one readable in host memory: the checkpoint's own
    /// bytes (per-expert tensors, a GGUF's views, or slices of fused tensors), shared, not
    /// copied; FP8 block scales as f32 vectors.
    fn offloaded_experts(&mut self, p: &str, n: usize, width: usize, slots: usize) -> Result<(Mlp, [HostPool; 3]), LoadError> {
        let (h, ck) = (self.cfg.hidden, self.ck);
        let fused = format!("{p}.gate_up_proj");
        let (kinds, pools): ([(&str, usize, usize); 3], [HostPool; 3]) = if ck.get(&fused).is_some() {
            let gu = ck.expect_shape(&fused, &[n, 2 * width, h])?;
            let down_name = format!("{p}.down_proj");
            let dn = ck.expect_shape(&down_name, &[n, h, width])?;
            if gu.dtype == Format::F8E4M3 || dn.dtype == Format::F8E4M3 {
                return Err(LoadError::FusedFp8Experts { tensor: fused });
            }
            let (mb, dmb) = (gu.dtype.size_of(width * h), dn.dtype.size_of(h * width));
            let (gub, db) = (ck.shared_bytes(&fused)?, ck.shared_bytes(&down_name)?);
            let pool = |f: &dyn Fn(usize) -> std::ops::Range<usize>, b: &crate::checkpoint::HostBytes| HostPool { mats: (0..n).map(|e| b.slice(f(e))).collect(), scales: None };
            (
                [("gate_proj", width, h), ("up_proj", width, h), ("down_proj", h, width)],
                [pool(&|e| 2 * e * mb..(2 * e + 1) * mb, &gub), pool(&|e| (2 * e + 1) * mb..(2 * e + 2) * mb, &gub), pool(&|e| e * dmb..(e + 1) * dmb, &db)],
            )
        } else {
            let pool = |w: &str, rows: usize, cols: usize| -> Result<HostPool, LoadError> {
                let names: Vec<String> = (0..n).map(|e| format!("{p}.{e}.{w}.weight")).collect();
                let first = ck.expect_shape(&names[0], &[rows, cols])?.dtype;
                let mut mats = Vec::with_capacity(n);
                let mut scales = first.external_scale().then(Vec::new);
                for name in &names {
                    let d = ck.expect_shape(name, &[rows, cols])?.dtype;
                    if d != first {
                        return Err(ck.mismatch(name, format!("dtype {} differs from {} of {}", d.name(), first.name(), names[0])).into());
                    }
                    mats.push(ck.shared_bytes(name)?);
                    if let Some(sc) = &mut scales {
                        let block = self.cfg.fp8_block.unwrap_or([128, 128]);
                        let sn = format!("{name}_scale_inv");
                        let shape = [rows.div_ceil(block[0]), cols.div_ceil(block[1])];
                        if ck.get(&sn).map(|t| &t.shape[..]) != Some(&shape[..]) {
                            return Err(ck.mismatch(name, format!("is F8_E4M3 but its block scale {sn} is missing or not {shape:?}")).into());
                        }
                        sc.push(ck.f32_vec(&sn)?);
                    }
                }
                Ok(HostPool { mats, scales })
            };
            let kinds = [("gate_proj", width, h), ("up_proj", width, h), ("down_proj", h, width)];
            let pools = [pool(kinds[0].0, kinds[0].1, kinds[0].2)?, pool(kinds[1].0, kinds[1].1, kinds[1].2)?, pool(kinds[2].0, kinds[2].1, kinds[2].2)?];
            (kinds, pools)
        };
        let mut gpu_pools = Vec::with_capacity(3);
        for ((w, rows, cols), hp) in kinds.iter().zip(&pools) {
            let label = format!("{p}.*.{w}.weight (expert cache, {slots} of {n})");
            let dt = if ck.get(&fused).is_some() {
                let down = format!("{p}.down_proj");
                ck.info(if *w == "down_proj" { &down } else { &fused })?.dtype
            } else {
                ck.info(&format!("{p}.0.{w}.weight"))?.dtype
            };
            let scale = hp.scales.as_ref().map(|sc| (sc[..slots].concat(), self.cfg.fp8_block.unwrap_or([128, 128])));
            let m = Matrix::build_as(self.gpu, &label, dt, slots, *rows, *cols, |e| &hp.mats[e], scale, true)?;
            self.tick(&label, m.bytes());
            gpu_pools.push(m);
        }
        let [gate, up, down]: [Matrix; 3] = gpu_pools.try_into().unwrap_or_else(|_| unreachable!("three pools"));
        Ok((Mlp { gate, up, down }, pools))
    }
}

/// `rows` rows of `cols` values in `src` (FP8 times its block scales `(scales, block, s_cols)`)
/// quantized to `q` on the host, row by row, the rows spread over the CPU's threads.
fn quantize_rows(src: Format, bytes: &[u8], rows: usize, cols: usize, q: Format, scale: Option<(Vec<f32>, [usize; 2], usize)>) -> Vec<u8> {
        let (src_row, dst_row) = (src.size_of(cols), q.bytes_for(cols).expect("whole blocks"));
        let mut out = vec![0u8; rows * dst_row];
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(rows.div_ceil(16)).max(1);
        let per = rows.div_ceil(threads);
        std::thread::scope(|s| {
            for (k, dst) in out.chunks_mut(per * dst_row).enumerate() {
                let scale = &scale;
                s.spawn(move || {
                    let mut buf = Vec::with_capacity(dst_row);
                    for (i, d) in dst.chunks_exact_mut(dst_row).enumerate() {
                        let r = k * per + i;
                        let mut x = src.decode(&bytes[r * src_row..(r + 1) * src_row]);
                        if let Some((s, block, s_cols)) = scale {
                            let srow = &s[(r / block[0]) * s_cols..];
                            for (c, v) in x.iter_mut().enumerate() {
                                *v *= srow[c / block[1]];
                            }
                        }
                        buf.clear();
                        crate::format::quantize::quantize_into(q, &x, &mut buf);
                        d.copy_from_slice(&buf);
                    }
                });
            }
        });
    out
}

impl Model {
    /// Load `path` onto `gpu`: a folder (config.json + safetensors) or a GGUF file.
    pub fn load(gpu: Arc<Gpu>, path: &Path, opts: &LoadOptions, progress: &mut dyn FnMut(Progress)) -> Result<Model, LoadError> {
        let (cfg, ck) = open(path)?;
        Self::from_checkpoint(gpu, cfg, &ck, opts, progress)
    }

    /// Load from an already opened checkpoint (on disk, embedded or synthetic).
    pub fn from_checkpoint(gpu: Arc<Gpu>, cfg: ModelConfig, ck: &Checkpoint, opts: &LoadOptions, progress: &mut dyn FnMut(Progress)) -> Result<Model, LoadError> {
        if let Some(q) = opts.quantize {
            if !crate::format::quantize::TARGETS.contains(&q) {
                return Err(LoadError::QuantizeTarget(q.name()));
            }
            if let Some((n, t)) = ck.names().filter_map(|n| ck.get(n).map(|t| (n, t))).find(|(_, t)| t.dtype.is_block()) {
                return Err(LoadError::AlreadyQuantized { target: q.name(), what: format!("{n} in {}", ck.file_of(n).display()), src: t.dtype.name() });
            }
        }
        let total = total_bytes(ck, &cfg, opts.quantize);
        let plan = preflight(ck, &cfg, &gpu, opts, total)?;
        let kernels = Kernels::with_checks(&gpu, opts.shader_checks.unwrap_or(gpu.shader_checks))?;
        kernels.prepare(&gpu, &formats(ck, opts))?;
        let slots = plan.expert_cache.map(|c| c.slots);
        let uploaded = total - plan.expert_weights + slots.map_or(plan.expert_weights, |s| plan.bytes_per_expert * (s * plan.n_moe_layers) as u64);
        let mut l = Loader { gpu: &gpu, ck, cfg: &cfg, done: 0, total: uploaded, progress, quantize: opts.quantize, kept: Vec::new() };
        let mut host = Vec::new();
        let (h, nh) = (cfg.hidden, cfg.n_heads);
        
        let embed = l.mat("model.embed_tokens.weight", cfg.vocab, h)?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = format!("model.layers.{i}");
            let a = format!("{p}.self_attn");
            let attn = match cfg.attention {
                Attention::Mla => Attn::Mla(l.mla(&a, &kernels)?),
                Attention::Gqa { kv_heads, head_dim } => Attn::Gqa(Gqa {
                    q: l.mat(&format!("{a}.q_proj.weight"), nh * head_dim, h)?,
                    k: l.mat(&format!("{a}.k_proj.weight"), kv_heads * head_dim, h)?,
                    v: l.mat(&format!("{a}.v_proj.weight"), kv_heads * head_dim, h)?,
                    o: l.mat(&format!("{a}.o_proj.weight"), h, nh * head_dim)?,
                    q_norm: l.vec(&format!("{a}.q_norm.weight"), head_dim)?,
                    k_norm: l.vec(&format!("{a}.k_norm.weight"), head_dim)?,
                }),
            };
            let ffn = match (&cfg.moe, cfg.is_moe_layer(i)) {
                (Some(m), true) => {
                    let g = format!("{p}.mlp.gate");
                    let router = l.mat(&format!("{g}.weight"), m.n_routed, h)?;
                    let bias_name = format!("{g}.e_score_correction_bias");
                    let bias = if ck.get(&bias_name).is_some() {
                        l.vec(&bias_name, m.n_routed)?
                    } else if m.topk == crate::config::TopK::NoAuxTc {
                        return Err(ck.info(&bias_name).unwrap_err().into());
                    } else {
                        gpu.storage_init("zero bias", bytemuck::cast_slice(&vec![0f32; m.n_routed]))
                    };
                    let experts = match slots {
                        None => l.experts(&format!("{p}.mlp.experts"), m.n_routed, m.intermediate)?,
                        Some(s) => {
                            let (pools, h) = l.offloaded_experts(&format!("{p}.mlp.experts"), m.n_routed, m.intermediate, s)?;
                            host.push(h);
                            pools
                        }
                    };
                    let shared = if m.n_shared > 0 { Some(l.mlp(&format!("{p}.mlp.shared_experts"), m.n_shared * m.intermediate)?) } else { None };
                    Ffn::Moe(Moe { router, bias, gate: Gate::from_config(m, cfg.family), experts, shared })
                }
                _ => Ffn::Dense(l.mlp(&format!("{p}.mlp"), cfg.intermediate)?),
            };
            layers.push(Layer {
                input_layernorm: l.vec(&format!("{p}.input_layernorm.weight"), h)?,
                post_attention_layernorm: l.vec(&format!("{p}.post_attention_layernorm.weight"), h)?,
                attn,
                ffn,
            });
        }
        let norm = l.vec("model.norm.weight", h)?;
        let lm_head = if ck.get("lm_head.weight").is_none() && cfg.tie_word_embeddings {
            l.mat("model.embed_tokens.weight", cfg.vocab, h)?
        } else {
            l.mat("lm_head.weight", cfg.vocab, h)?
        };

        let max_chunk = chunk_cap(&cfg, gpu.max_binding).min(opts.max_chunk).max(1);
        let max_ctx = opts.max_ctx.max(1);
        let table = rope::table(&cfg, max_ctx);
        let rope_table = gpu.storage_init("rope cos/sin", bytemuck::cast_slice(&table));
        let act = Activations::new(&gpu, &cfg, max_chunk, max_ctx);
        let weight_bytes = l.done;
        let top_k = cfg.moe.as_ref().map_or(1, |m| m.top_k);
        let offload = plan.expert_cache.map(|c| Offload::new(&gpu, c, top_k, plan.n_routed, host, max_chunk * top_k));
        if let (Some(q), false) = (opts.quantize, l.kept.is_empty()) {
            log::warn!("--quantize {}: {} matrices kept their source format (rows not a multiple of {} values): {}", q.name(), l.kept.len(), q.block_elems(), l.kept.join(", "));
        }
        Ok(Model { gpu, cfg, kernels, embed, layers, norm, lm_head, rope_table, act, max_chunk, max_ctx, weight_bytes, placement: plan, offload, turns: Default::default() })
    }
}

/// Tokens per forward chunk so that every activation buffer fits one binding and the
/// per-dispatch grid stays within 65535 work items.
fn chunk_cap(cfg: &ModelConfig, max_binding: u64) -> usize {
    let k = cfg.moe.as_ref().map_or(1, |m| m.top_k);
    let width = widest_mlp(cfg);
    let per_token = [
        cfg.n_heads * cfg.kv_lora,
        cfg.n_heads * cfg.qk_head_dim(),
        k * width,
        k * cfg.hidden,
        cfg.vocab,
        cfg.moe.as_ref().map_or(0, |m| m.n_routed),
    ]
    .into_iter()
    .max()
    .unwrap_or(1) as u64
        * 4;
    ((max_binding / per_token) as usize).min(65535 / k).max(1)
}

fn widest_mlp(cfg: &ModelConfig) -> usize {
    let moe = cfg.moe.as_ref().map_or(0, |m| m.intermediate.max(m.n_shared * m.intermediate));
    cfg.intermediate.max(moe)
}

/// Bytes the loader will upload (for the progress bar and the memory preflight), with the
/// matrices in the format `--quantize target` gives them.
pub fn total_bytes(ck: &Checkpoint, cfg: &ModelConfig, target: Option<Format>) -> u64 {
    ck.names()
        .filter(|n| !n.ends_with("_scale_inv") && !is_mtp(cfg, n))
        .filter_map(|n| ck.get(n).map(|t| (n, t)))
        .map(|(n, t)| {
            // 1-D tensors (norms, biases) are widened to f32 on upload
            (if t.shape.len() == 1 { t.numel() * 4 } else { quantized_format(target, n, t.dtype, &t.shape).size_of(t.numel()) }) as u64
        })
        .sum()
}

impl Activations {
    /// Bytes [`Activations::new`] allocates.
    fn bytes(cfg: &ModelConfig, t: usize, max_ctx: usize) -> u64 {
        let total = std::cell::Cell::new(0u64);
        Self::build(cfg, t, max_ctx, &|_, n| {
            total.set(total.get() + (n.max(1) * 4) as u64);
        });
        total.get()
    }

    fn new(gpu: &Gpu, cfg: &ModelConfig, t: usize, max_ctx: usize) -> Self {
        Self::build(cfg, t, max_ctx, &|label, n| gpu.storage(label, (n.max(1) * 4) as u64))
    }

    fn build<B>(cfg: &ModelConfig, t: usize, max_ctx: usize, f: &dyn Fn(&str, usize) -> B) -> Activations<B> {
        let k = cfg.moe.as_ref().map_or(1, |m| m.top_k);
        let e = cfg.moe.as_ref().map_or(1, |m| m.n_routed);
        let moe_layers: Vec<usize> = (0..cfg.n_layers).filter(|&i| cfg.is_moe_layer(i)).collect();
        let hb_n = t * widest_mlp(cfg).max(k * cfg.moe.as_ref().map_or(0, |m| m.intermediate));
        Activations {
            ids: f("ids", t),
            x: f("x", t * cfg.hidden),
            xb: f("xb", t * cfg.hidden),
            qa: f("qa", t * cfg.q_lora.unwrap_or(1)),
            qa_n: f("qa_n", t * cfg.q_lora.unwrap_or(1)),
            q: f("q", t * cfg.n_heads * cfg.qk_head_dim()),
            kv: f("kv", t * cfg.cache_dim()),
            q_lat: f("q_lat", t * cfg.n_heads * cfg.kv_lora),
            o_lat: f("o_lat", t * cfg.n_heads * cfg.kv_lora),
            o: f("o", t * cfg.n_heads * cfg.v_dim),
            hb: f("hb", hb_n),
            hb2: f("hb2", hb_n),
            eo: f("eo", t * k * cfg.hidden),
            router: f("router logits", t * e),
            route_ids: moe_layers.iter().map(|i| f(&format!("route ids layer {i}"), t * k)).collect(),
            route_wts: moe_layers.iter().map(|i| f(&format!("gate weights layer {i}"), t * k)).collect(),
            logits: f("logits", t * cfg.vocab),
            penalty: f("penalty ids", max_ctx),
            mask: f("token mask", cfg.vocab.div_ceil(32)),
            sample_out: f("sample out", 4),
        }
    }
}
