//! `bench`: prefill and decode throughput, GPU time per kernel family, bytes read per decode
//! token and the fraction of the memory roofline they reach, all measured in one run.
//!
//! The roofline is measured here too: on a CPU-backed adapter (lavapipe, whose "GPU memory" is
//! host memory) by a multi-threaded host read of a 1 GiB buffer; on a GPU by the best read
//! kernel the engine runs (`ops::read_bw`). Times are best-of-N wall times, so a busy shared
//! machine lowers every figure less than it would a single run; the efficiency divides two
//! such figures taken minutes apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use deepseek_wgpu::checkpoint::Checkpoint;
use deepseek_wgpu::config::ModelConfig;
use deepseek_wgpu::format::Format;
use deepseek_wgpu::gpu::{Gpu, Profile, ShaderChecks};
use deepseek_wgpu::model::{ExpertCache, KvCache, LoadOptions, LogitsMode, Model, Policy, Sample};
use deepseek_wgpu::ops::sample::Filter;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// checkpoint folder to benchmark (default: --synthetic r1-shape-small)
    #[arg(long, conflicts_with = "synthetic")]
    pub model: Option<PathBuf>,
    /// a synthetic shape with random weights: r1-shape-small, r1-shape-ci, v2-lite-shape
    #[arg(long)]
    pub synthetic: Option<String>,
    /// the synthetic model's projections and experts in this GGUF block format (q4_k, q8_0,
    /// q6_k, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q5_k); embedding, norms and router stay BF16
    #[arg(long, conflicts_with = "model", value_parser = parse_quant)]
    pub quant: Option<Format>,
    /// compare weight formats of the synthetic model in one process (e.g. bf16,q4_k,q8_0):
    /// every model is loaded, then their prefills and decode steps alternate, so that a
    /// busy machine slows each alike; reports ratios to the first. `FORMAT/POLICY:FRACTION`
    /// keeps only that fraction of each layer's routed experts on the GPU, in an expert cache
    /// of that policy (lfu or static), e.g. bf16,bf16/lfu:0.25,bf16/static:0.25. A suffix
    /// `@on`, `@auto` or `@off` sets that model's --shader-checks, e.g. bf16@on,bf16@off
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["model", "quant"])]
    pub compare: Vec<String>,
    /// --compare: rounds (each a prefill and --gen decode steps of every model, alternating)
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// prompt length of the prefill measurement (0 = skip)
    #[arg(long, default_value_t = 512)]
    pub prompt_len: usize,
    /// decode steps timed at each context length
    #[arg(long, default_value_t = 16)]
    pub gen: usize,
    /// context lengths (tokens already cached) at which decode is timed
    #[arg(long, value_delimiter = ',', default_values_t = [16, 256, 1024])]
    pub decode_at: Vec<usize>,
    /// prefill repetitions (the best counts)
    #[arg(long, default_value_t = 2)]
    pub reps: usize,
    /// skip the per-kernel GPU timings
    #[arg(long)]
    pub no_profile: bool,
    /// seed of the synthetic weights and the token ids
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// one JSON object on stdout instead of tables
    #[arg(long)]
    pub json: bool,
    /// cap the storage binding size (KiB) below the adapter's
    #[arg(long, hide = true)]
    pub max_binding_kib: Option<u64>,
    #[command(flatten)]
    pub device: super::DeviceArgs,
    /// GPU memory the model may use (e.g. 24G): a MoE model over it keeps its routed experts
    /// in host memory with an expert cache on the GPU; decode then reports the cache's hit
    /// rate per layer and the bytes uploaded per token
    #[arg(long, value_name = "SIZE", value_parser = super::parse_size, conflicts_with = "compare")]
    pub gpu_memory: Option<u64>,
    /// the expert cache's policy with --gpu-memory: lfu or static
    #[arg(long, value_name = "lfu|static", default_value = "lfu")]
    pub expert_policy: Policy,
    /// pretend the host has this much available memory (MiB), for tests
    #[arg(long, hide = true)]
    pub host_memory_mib: Option<u64>,
}

/// A `--compare` item: `FORMAT[/POLICY:FRACTION][@CHECKS]` (bf16 = the synthetic default).
struct Variant {
    quant: Option<Format>,
    cache: Option<(Policy, f64)>,
    checks: Option<ShaderChecks>,
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    let (s, checks) = match s.split_once('@') {
        Some((s, c)) => (s, Some(c.parse::<ShaderChecks>().map_err(|e| format!("after '@': {e}"))?)),
        None => (s, None),
    };
    let (fmt, cache) = match s.split_once('/') {
        Some((f, c)) => {
            let (p, frac) = c.split_once(':').ok_or("expected POLICY:FRACTION after '/', e.g. lfu:0.25")?;
            let frac: f64 = frac.parse().map_err(|_| format!("'{frac}' is not a fraction"))?;
            if !(frac > 0.0 && frac <= 1.0) {
                return Err(format!("the resident fraction {frac} must be in (0, 1]"));
            }
            (f, Some((p.parse::<Policy>()?, frac)))
        }
        None => (s, None),
    };
    let quant = if fmt.eq_ignore_ascii_case("bf16") { None } else { Some(parse_quant(fmt)?) };
    Ok(Variant { quant, cache, checks })
}

/// The expert cache's counters over `tokens` decode steps, for the report.
fn expert_cache_json(layers: &[deepseek_wgpu::model::LayerStats], tokens: usize) -> Value {
    let (picks, hits, bytes, waves) = layers.iter().fold((0, 0, 0, 0), |a, s| (a.0 + s.picks, a.1 + s.hits, a.2 + s.bytes, a.3 + s.extra_waves));
    let t = tokens.max(1) as f64;
    json!({
        "hit_rate": if picks == 0 { 1.0 } else { hits as f64 / picks as f64 },
        "hit_rate_per_layer": layers.iter().map(|s| s.hit_rate()).collect::<Vec<_>>(),
        "bytes_per_token": bytes as f64 / t,
        "uploads_per_token": layers.iter().map(|s| s.uploads).sum::<u64>() as f64 / t,
        "extra_waves_per_token": waves as f64 / t,
    })
}

fn parse_quant(s: &str) -> Result<Format, String> {
    Format::from_ggml_name(s).filter(|f| deepseek_wgpu::synthetic::fill_formats().any(|q| q == *f)).ok_or_else(|| {
        let names: Vec<String> = deepseek_wgpu::synthetic::fill_formats().map(|f| f.name().to_lowercase()).collect();
        format!("not a block format synthetic models are made in; one of {}", names.join(", "))
    })
}

pub fn run(a: Args) -> Result<()> {
    if a.gen == 0 {
        bail!("--gen 0 times no decode step; give at least 1 (the default is 16)");
    }
    let gpu = Arc::new(Gpu::new(&a.device.options(a.max_binding_kib))?);
    if !a.compare.is_empty() {
        return compare(&a, gpu);
    }
    let max_point = a.decode_at.iter().copied().max().unwrap_or(0);
    let max_ctx = (a.prompt_len.max(max_point) + a.gen + 8).max(64);
    let say = |msg: &str| {
        if !a.json {
            eprintln!("{msg}");
        }
    };
    let (name, cfg, ck) = match &a.model {
        Some(dir) => {
            let (cfg, ck) = deepseek_wgpu::model::open(dir)?;
            (dir.display().to_string(), cfg, ck)
        }
        None => synthetic_checkpoint(&a, &gpu, a.quant, 1)?,
    };
    say("uploading");
    let t0 = Instant::now();
    let opts = LoadOptions { max_ctx, memory_budget: a.gpu_memory, expert_policy: a.expert_policy, ..LoadOptions::default() };
    let Loaded { model, weight_formats, load_s } = load_with(&gpu, &name, cfg, ck, &opts, t0)?;
    if let Some(line) = super::describe_placement(&model.placement) {
        say(&format!("experts: {line}"));
    }

    say("measuring the memory roofline");
    let roof = roofline(&gpu)?;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0x70c3);
    let vocab = model.cfg.vocab as u32;
    let ids = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(0..vocab)).collect() };

    // Prefill: the whole prompt through one forward (internally chunked), last logits only.
    let mut prefill = Value::Null;
    let mut prefill_tok_s = 0.0;
    if a.prompt_len > 0 {
        say(&format!("prefill of {} tokens", a.prompt_len));
        let prompt = ids(&mut rng, a.prompt_len);
        let mut best = f64::INFINITY;
        for _ in 0..a.reps.max(1) {
            let mut cache = model.new_cache(max_ctx)?;
            let t = Instant::now();
            model.forward(&mut cache, &prompt, LogitsMode::Last)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let profile = if a.no_profile {
            None
        } else {
            let mut cache = model.new_cache(max_ctx)?;
            profiled(&gpu, || model.forward(&mut cache, &prompt, LogitsMode::Last).map(|_| ()))?
        };
        let flop = model.prefill_flop(a.prompt_len);
        prefill_tok_s = a.prompt_len as f64 / best;
        prefill = json!({
            "tokens": a.prompt_len, "best_s": best, "tokens_per_s": prefill_tok_s,
            "flop": flop, "gflop_per_s": flop / best / 1e9,
            "profile": profile.as_ref().map(profile_json),
        });
    }

    // Decode: one token per forward with GPU sampling, as a session does, after `ctx` cached
    // positions (filled with random latent rows: attention costs depend only on the length).
    let weights = model.decode_weight_bytes();
    let mut decode = Vec::new();
    let greedy = Sample { filter: Filter::greedy(), u: 0.5, penalty_ids: &[], mask: None };
    for &ctx in &a.decode_at {
        if ctx + a.gen + 2 > max_ctx {
            bail!("--decode-at {ctx} with --gen {} exceeds the context", a.gen);
        }
        say(&format!("decode at context {ctx}"));
        let mut cache = model.new_cache(max_ctx)?;
        fill_cache(&gpu, &model, &mut cache, ctx, &mut rng);
        let mut tok = ids(&mut rng, 1)[0];
        let mut times = Vec::with_capacity(a.gen);
        let mut cores = Vec::with_capacity(a.gen);
        for step in 0..a.gen + 2 {
            if step == 2 {
                model.reset_expert_stats();
            }
            let (t, c0) = (Instant::now(), process_cpu_s());
            let out = model.forward_sampled(&mut cache, &[tok], LogitsMode::None, Some(&greedy))?;
            let dt = t.elapsed().as_secs_f64();
            tok = out.token.unwrap_or(0);
            // The first two steps warm caches and lazily built state.
            if step >= 2 {
                times.push(dt);
                cores.push((process_cpu_s() - c0) / dt);
            }
        }
        cores.sort_by(f64::total_cmp);
        let expert_cache = model.expert_stats().map(|l| expert_cache_json(&l, times.len()));
        let profile =
            if a.no_profile { None } else { profiled(&gpu, || model.forward_sampled(&mut cache, &[tok], LogitsMode::None, Some(&greedy)).map(|_| ()))? };
        times.sort_by(f64::total_cmp);
        let (best, median) = (times[0], times[times.len() / 2]);
        // Rows read: the ctx cached ones plus the new one.
        let cache_bytes = ((ctx + 1) * model.cfg.n_layers * model.cfg.cache_dim() * 4) as u64;
        let bytes = weights + cache_bytes;
        let bw = bytes as f64 / best;
        decode.push(json!({
            "ctx": ctx, "steps": times.len(), "best_ms": best * 1e3, "median_ms": median * 1e3,
            "tokens_per_s": 1.0 / best, "median_tokens_per_s": 1.0 / median,
            "weight_bytes": weights, "cache_bytes": cache_bytes, "bytes_per_token": bytes,
            "gb_per_s": bw / 1e9, "roofline_fraction": bw / roof.bytes_per_s,
            "median_roofline_fraction": bytes as f64 / median / roof.bytes_per_s,
            "cores_used": cores.get(cores.len() / 2),
            "profile": profile.as_ref().map(profile_json),
            "expert_cache": expert_cache,
        }));
    }

    let first_decode = decode.first().and_then(|d| d["tokens_per_s"].as_f64()).unwrap_or(0.0);
    let report = json!({
        "model": name,
        "machine": machine(&gpu),
        "load_s": load_s,
        "weight_bytes_total": model.weight_bytes,
        "weight_formats": weight_formats,
        "roofline": {"method": roof.method, "gb_per_s": roof.bytes_per_s / 1e9, "read_kernel_gb_per_s": roof.kernel_bytes_per_s.map(|b| b / 1e9)},
        "prefill": prefill,
        "experts_resident": model.placement.expert_cache.map(|c| json!({"slots": c.slots, "of": model.placement.n_routed, "policy": c.policy.name()})),
        "decode": decode,
        "prefill_over_decode": if first_decode > 0.0 && prefill_tok_s > 0.0 { Value::from(prefill_tok_s / first_decode) } else { Value::Null },
    });
    if a.json {
        println!("{report}");
    } else {
        print_report(&report);
    }
    Ok(())
}

/// A synthetic model's name, config and in-memory checkpoint (BF16, or `quant`), after
/// checking that the host holds it `copies` times over (`bench --compare` keeps several).
fn synthetic_checkpoint(a: &Args, gpu: &Gpu, quant: Option<Format>, copies: u64) -> Result<(String, ModelConfig, Checkpoint)> {
    let name = a.synthetic.clone().unwrap_or_else(|| "r1-shape-small".into());
    let cfg = deepseek_wgpu::synthetic::config(&name)?;
    // The random weights are built in host memory before the upload; on a CPU adapter the
    // upload is host memory too. Refuse before allocating rather than be killed.
    let bytes = match quant {
        Some(q) => deepseek_wgpu::synthetic::quant_checkpoint_bytes(&cfg, q),
        None => deepseek_wgpu::synthetic::checkpoint_bytes(&cfg),
    };
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let need = bytes * if cpu { 2 } else { 1 } * copies;
    if let Some(avail) = a.host_memory_mib.map(|m| m << 20).or_else(deepseek_wgpu::model::host_available_memory) {
        if need > avail {
            bail!(
                "{name} needs {:.1} GB of host memory ({:.1} GB of random weights built in memory{}{}), but {:.1} GB is available. \
                 Use a smaller shape (r1-shape-small: {:.1} GB, r1-shape-ci: {:.1} GB) or a machine with more memory.",
                need as f64 / 1e9,
                bytes as f64 / 1e9,
                if cpu { ", and as much again for the CPU adapter's copy" } else { "" },
                if copies > 1 { format!(", for each of {copies} models") } else { String::new() },
                avail as f64 / 1e9,
                deepseek_wgpu::synthetic::config("r1-shape-small").map_or(0, |c| deepseek_wgpu::synthetic::checkpoint_bytes(&c)) as f64 / 1e9,
                deepseek_wgpu::synthetic::config("r1-shape-ci").map_or(0, |c| deepseek_wgpu::synthetic::checkpoint_bytes(&c)) as f64 / 1e9,
            );
        }
    }
    let what = quant.map_or("BF16".to_string(), |q| format!("{} (projections and experts)", q.name()));
    if !a.json {
        eprintln!("building {name} ({:.2} GB of random {what} weights)", bytes as f64 / 1e9);
    }
    let ck = match quant {
        Some(q) => deepseek_wgpu::synthetic::quant_checkpoint(&cfg, a.seed, q)?,
        None => deepseek_wgpu::synthetic::checkpoint(&cfg, a.seed)?,
    };
    let name = match quant {
        Some(q) => format!("synthetic:{name} --quant {}", q.name().to_lowercase()),
        None => format!("synthetic:{name}"),
    };
    Ok((name, cfg, ck))
}

struct Loaded {
    model: Model,
    /// bytes per weight format (a quantized model keeps some tensors BF16 or falls back)
    weight_formats: Vec<Value>,
    load_s: f64,
}

fn load_with(gpu: &Arc<Gpu>, name: &str, cfg: ModelConfig, ck: Checkpoint, opts: &LoadOptions, t0: Instant) -> Result<Loaded> {
    let model = Model::from_checkpoint(gpu.clone(), cfg, &ck, opts, &mut |_| {})
        .with_context(|| format!("loading {name}"))?;
    let mut by_format: std::collections::BTreeMap<u32, (Format, usize, u64)> = Default::default();
    for n in ck.names() {
        if let (Some(t), Ok(b)) = (ck.get(n), ck.bytes(n)) {
            let e = by_format.entry(t.dtype.wgsl_id()).or_insert((t.dtype, 0, 0));
            e.1 += 1;
            e.2 += b.len() as u64;
        }
    }
    let weight_formats = by_format.values().map(|(f, n, b)| json!({"format": f.name(), "tensors": n, "bytes": b})).collect();
    drop(ck);
    Ok(Loaded { model, weight_formats, load_s: t0.elapsed().as_secs_f64() })
}

/// `--compare`: several weight formats of one synthetic shape in one process. After one
/// warm-up prefill and two decode steps each (kernels compile on first use), `rounds` rounds
/// each time one prefill of every model, and the decode steps (at the first --decode-at
/// context, `gen` per round) alternate model by model, the order rotating, so that a shared
/// machine's load falls on every model alike. Best and median tok/s per model, and their
/// ratios to the first model.
fn compare(a: &Args, gpu: Arc<Gpu>) -> Result<()> {
    let variants: Vec<Variant> = a.compare.iter().map(|s| parse_variant(s).map_err(|e| anyhow::anyhow!("--compare {s}: {e}"))).collect::<Result<_>>()?;
    let (rounds, n) = (a.rounds.max(1), variants.len());
    let ctx = a.decode_at.first().copied().unwrap_or(16);
    let max_ctx = (a.prompt_len.max(ctx + a.gen * rounds + 2) + 8).max(64);
    let mut models = Vec::new();
    for v in &variants {
        let (name, cfg, ck) = synthetic_checkpoint(a, &gpu, v.quant, n as u64)?;
        let cache = v.cache.map(|(policy, f)| {
            let n = cfg.moe.as_ref().map_or(1, |m| m.n_routed);
            ExpertCache { slots: ((n as f64 * f).round() as usize).clamp(1, n), policy }
        });
        let name = match cache {
            Some(c) => format!("{name} experts {}/{} {}", c.slots, cfg.moe.as_ref().map_or(0, |m| m.n_routed), c.policy.name()),
            None => name,
        };
        let name = match v.checks {
            Some(c) => format!("{name} checks {c}"),
            None => name,
        };
        let opts = LoadOptions { max_ctx, expert_cache: cache, shader_checks: v.checks, ..LoadOptions::default() };
        models.push((name.clone(), load_with(&gpu, &name, cfg, ck, &opts, Instant::now())?));
    }
    let say = |msg: &str| {
        if !a.json {
            eprintln!("{msg}");
        }
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0x70c3);
    let vocab = models[0].1.model.cfg.vocab as u32;
    let prompt: Vec<u32> = (0..a.prompt_len).map(|_| rng.random_range(0..vocab)).collect();
    let greedy = Sample { filter: Filter::greedy(), u: 0.5, penalty_ids: &[], mask: None };
    let order = |r: usize| (0..n).map(move |i| (i + r) % n);

    // Prefill: one per model per round (after a warm-up each).
    let mut prefill_s = vec![Vec::new(); n];
    if a.prompt_len > 0 {
        say(&format!("prefill of {} tokens, {rounds} rounds", a.prompt_len));
        for r in 0..=rounds {
            for i in order(r) {
                let m = &models[i].1.model;
                let mut cache = m.new_cache(max_ctx)?;
                let t = Instant::now();
                m.forward(&mut cache, &prompt, LogitsMode::Last)?;
                if r > 0 {
                    prefill_s[i].push(t.elapsed().as_secs_f64());
                }
            }
        }
    }

    // Decode: steps alternate model by model.
    say(&format!("decode at context {ctx}, {} steps per model", a.gen * rounds));
    let mut caches = Vec::new();
    let mut toks = Vec::new();
    for (_, l) in &models {
        let mut cache = l.model.new_cache(max_ctx)?;
        fill_cache(&gpu, &l.model, &mut cache, ctx, &mut rng);
        caches.push(cache);
        toks.push(rng.random_range(0..vocab));
    }
    let (mut step_s, mut cores) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let mut expert_stats = vec![None; n];
    for s in 0..a.gen * rounds + 2 {
        if s == 2 {
            // the expert cache's counters cover the timed steps only
            models.iter().for_each(|(_, l)| l.model.reset_expert_stats());
        }
        for i in order(s) {
            let (t, c0) = (Instant::now(), process_cpu_s());
            let out = models[i].1.model.forward_sampled(&mut caches[i], &[toks[i]], LogitsMode::None, Some(&greedy))?;
            let dt = t.elapsed().as_secs_f64();
            toks[i] = out.token.unwrap_or(0);
            // The first two steps of each warm caches and lazily built state.
            if s >= 2 {
                step_s[i].push(dt);
                cores[i].push((process_cpu_s() - c0) / dt);
            }
        }
    }

    for (i, (_, l)) in models.iter().enumerate() {
        expert_stats[i] = l.model.expert_stats().map(|layers| expert_cache_json(&layers, step_s[i].len()));
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let mut rows = Vec::new();
    for (i, (name, l)) in models.iter().enumerate() {
        let m = &l.model;
        let bytes = m.decode_weight_bytes() + ((ctx + 1) * m.cfg.n_layers * m.cfg.cache_dim() * 4) as u64;
        let (decode_profile, prefill_profile) = if a.no_profile {
            (None, None)
        } else {
            let d = profiled(&gpu, || m.forward_sampled(&mut caches[i], &[toks[i]], LogitsMode::None, Some(&greedy)).map(|_| ()))?;
            let mut cache = m.new_cache(max_ctx)?;
            let p = if a.prompt_len > 0 { profiled(&gpu, || m.forward(&mut cache, &prompt, LogitsMode::Last).map(|_| ()))? } else { None };
            (d, p)
        };
        let tok = |s: f64| a.prompt_len as f64 / s;
        rows.push(json!({
            "model": name, "weight_bytes_total": m.weight_bytes, "weight_formats": l.weight_formats, "load_s": l.load_s,
            "decode": {
                "ctx": ctx, "steps": step_s[i].len(), "bytes_per_token": bytes,
                "tokens_per_s": 1.0 / best(&step_s[i]), "median_tokens_per_s": 1.0 / median(&step_s[i]),
                "cores_used": median(&cores[i]),
                "profile": decode_profile.as_ref().map(profile_json),
                "expert_cache": expert_stats[i],
            },
            "prefill": if a.prompt_len > 0 { json!({
                "tokens": a.prompt_len, "rounds_s": prefill_s[i],
                "tokens_per_s": tok(best(&prefill_s[i])), "median_tokens_per_s": tok(median(&prefill_s[i])),
                "profile": prefill_profile.as_ref().map(profile_json),
            }) } else { Value::Null },
        }));
    }
    let ratio = |r: &Value, k: &str, f: &str| r[k][f].as_f64().zip(rows[0][k][f].as_f64()).map(|(x, y)| x / y);
    let ratios: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "model": r["model"],
                "decode_best": ratio(r, "decode", "tokens_per_s"), "decode_median": ratio(r, "decode", "median_tokens_per_s"),
                "prefill_best": ratio(r, "prefill", "tokens_per_s"), "prefill_median": ratio(r, "prefill", "median_tokens_per_s"),
                // prefill per round, against the first model's prefill of the same round
                "prefill_rounds": r["prefill"]["rounds_s"].as_array().map(|v| v.iter().zip(prefill_s[0].iter()).map(|(x, y)| y / x.as_f64().unwrap_or(f64::NAN)).collect::<Vec<_>>()),
            })
        })
        .collect();
    let report = json!({"compare": rows, "ratios_to_first": ratios, "rounds": rounds, "machine": machine(&gpu)});
    if a.json {
        println!("{report}");
        return Ok(());
    }
    let m = &report["machine"];
    println!("adapter {} ({}), {} cores; {rounds} rounds, alternating", m["adapter"].as_str().unwrap_or("?"), m["device_type"].as_str().unwrap_or("?"), m["cores"]);
    println!("{:<44} {:>10} {:>10} {:>10} {:>10} {:>9} {:>7} {:>7}", "model", "MB/token", "decode", "(median)", "prefill", "(median)", "cores", "x dec");
    for (r, q) in rows.iter().zip(&ratios) {
        println!(
            "{:<44} {:>10.1} {:>10.2} {:>10.2} {:>10.1} {:>9.1} {:>7.2} {:>7.2}",
            r["model"].as_str().unwrap_or("?"),
            r["decode"]["bytes_per_token"].as_f64().unwrap_or(0.0) / 1e6,
            r["decode"]["tokens_per_s"].as_f64().unwrap_or(0.0),
            r["decode"]["median_tokens_per_s"].as_f64().unwrap_or(0.0),
            r["prefill"]["tokens_per_s"].as_f64().unwrap_or(0.0),
            r["prefill"]["median_tokens_per_s"].as_f64().unwrap_or(0.0),
            r["decode"]["cores_used"].as_f64().unwrap_or(0.0),
            q["decode_best"].as_f64().unwrap_or(0.0),
        );
    }
    for r in &rows {
        print_expert_cache(r["model"].as_str().unwrap_or("?"), &r["decode"]["expert_cache"]);
    }
    for r in &rows {
        println!("\n{} decode:", r["model"].as_str().unwrap_or("?"));
        print_profile(&r["decode"]["profile"]);
        println!("{} prefill:", r["model"].as_str().unwrap_or("?"));
        print_profile(&r["prefill"]["profile"]);
    }
    Ok(())
}

struct Roofline {
    method: &'static str,
    bytes_per_s: f64,
    /// what `ops::read_bw` reaches (also reported on CPU adapters, for comparison)
    kernel_bytes_per_s: Option<f64>,
}

fn roofline(gpu: &Gpu) -> Result<Roofline> {
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    // On a CPU adapter the kernel figure is only for comparison: a smaller probe will do.
    let kernel = deepseek_wgpu::ops::read_bw::measure(gpu, if cpu { 256 << 20 } else { 1 << 30 }, 4)?;
    if cpu {
        Ok(Roofline { method: "host read, all cores, 1 GiB, best of 5", bytes_per_s: host_read_bandwidth(1 << 30, 5), kernel_bytes_per_s: Some(kernel) })
    } else {
        Ok(Roofline { method: "read_bw kernel, 1 GiB, best of 4", bytes_per_s: kernel, kernel_bytes_per_s: Some(kernel) })
    }
}

/// CPU seconds used by this process so far, all threads (lavapipe runs the "GPU" work on
/// its own threads, so on a CPU adapter this says how many cores a step actually got on a
/// shared machine). 0 where /proc is unavailable.
fn process_cpu_s() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

/// Sum the u64s of a `bytes`-byte buffer with one thread per core; best of `reps`.
pub fn host_read_bandwidth(bytes: usize, reps: usize) -> f64 {
    let n = bytes / 8;
    let data: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = n.div_ceil(threads);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = data.chunks(per).map(|c| s.spawn(move || c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0)).fold(0u64, |a, b| a.wrapping_add(b))
        });
        std::hint::black_box(total);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n * 8) as f64 / best
}

fn profiled(gpu: &Gpu, f: impl FnOnce() -> Result<(), deepseek_wgpu::model::LoadError>) -> Result<Option<Profile>> {
    if !gpu.start_profile() {
        return Ok(None);
    }
    let r = f();
    let p = gpu.take_profile();
    r?;
    Ok(p)
}

fn profile_json(p: &Profile) -> Value {
    let total = p.gpu_ns();
    json!({
        "gpu_ms": total / 1e6,
        "record_ms": p.record_ns / 1e6,
        "submissions": p.submits,
        "bind_groups_created": p.bind_groups_created,
        "dispatches": p.dispatches.len(),
        "kernels": p.by_family().into_iter().map(|(k, ns, n)| json!({"kernel": k, "ms": ns / 1e6, "share": ns / total.max(1.0), "dispatches": n})).collect::<Vec<_>>(),
        "top_dispatches": top_dispatches(p, 8),
    })
}

/// The slowest single dispatches (label, workgroups, ms).
fn top_dispatches(p: &Profile, n: usize) -> Vec<Value> {
    let mut d: Vec<&(String, u32, f64)> = p.dispatches.iter().collect();
    d.sort_by(|a, b| b.2.total_cmp(&a.2));
    d.into_iter().take(n).map(|(l, g, ns)| json!({"kernel": l, "workgroups": g, "ms": ns / 1e6})).collect()
}

/// Pretend `ctx` tokens are cached: random latent rows (unit scale, like RMSNorm output).
fn fill_cache(gpu: &Gpu, m: &Model, cache: &mut KvCache, ctx: usize, rng: &mut impl Rng) {
    let n = ctx * m.cfg.cache_dim();
    let rows: Vec<f32> = (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    for layer in &cache.layers {
        gpu.queue.write_buffer(layer, 0, bytemuck::cast_slice(&rows));
    }
    cache.len = ctx;
}

fn machine(gpu: &Gpu) -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|p| p.1.trim().to_string()));
    json!({
        "adapter": gpu.info.name, "backend": format!("{:?}", gpu.info.backend), "device_type": format!("{:?}", gpu.info.device_type),
        "driver": format!("{} {}", gpu.info.driver, gpu.info.driver_info), "max_binding": gpu.max_binding,
        "subgroups": gpu.subgroups(), "timestamps": gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY),
        "cores": std::thread::available_parallelism().map_or(1, |t| t.get()), "cpu": cpu,
    })
}

fn print_report(r: &Value) {
    let m = &r["machine"];
    println!(
        "model {}  ({:.2} GB of weights, loaded in {:.1} s)",
        r["model"].as_str().unwrap_or("?"),
        r["weight_bytes_total"].as_f64().unwrap_or(0.0) / 1e9,
        r["load_s"].as_f64().unwrap_or(0.0)
    );
    let formats: Vec<String> = r["weight_formats"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| format!("{} {:.1} MB ({} tensors)", f["format"].as_str().unwrap_or("?"), f["bytes"].as_f64().unwrap_or(0.0) / 1e6, f["tensors"]))
        .collect();
    println!("weights by format: {}", formats.join(", "));
    println!(
        "adapter {} ({}, {}), {} cores, cpu {}",
        m["adapter"].as_str().unwrap_or("?"),
        m["backend"].as_str().unwrap_or("?"),
        m["device_type"].as_str().unwrap_or("?"),
        m["cores"],
        m["cpu"].as_str().unwrap_or("?")
    );
    println!(
        "memory roofline {:.2} GB/s ({}); read_bw kernel {:.2} GB/s",
        r["roofline"]["gb_per_s"].as_f64().unwrap_or(0.0),
        r["roofline"]["method"].as_str().unwrap_or("?"),
        r["roofline"]["read_kernel_gb_per_s"].as_f64().unwrap_or(0.0)
    );
    let p = &r["prefill"];
    if !p.is_null() {
        println!(
            "\nprefill {} tokens: {:.2} s  {:.1} tokens/s  {:.2} GFLOP/s",
            p["tokens"],
            p["best_s"].as_f64().unwrap_or(0.0),
            p["tokens_per_s"].as_f64().unwrap_or(0.0),
            p["gflop_per_s"].as_f64().unwrap_or(0.0)
        );
        print_profile(&p["profile"]);
    }
    println!("\n{:>6} {:>10} {:>10} {:>9} {:>12} {:>9} {:>9} {:>6}", "ctx", "best ms", "median ms", "tok/s", "MB/token", "GB/s", "roofline", "cores");
    for d in r["decode"].as_array().into_iter().flatten() {
        println!(
            "{:>6} {:>10.2} {:>10.2} {:>9.2} {:>12.1} {:>9.2} {:>8.1}% {:>6.2}",
            d["ctx"].as_u64().unwrap_or(0),
            d["best_ms"].as_f64().unwrap_or(0.0),
            d["median_ms"].as_f64().unwrap_or(0.0),
            d["tokens_per_s"].as_f64().unwrap_or(0.0),
            d["bytes_per_token"].as_f64().unwrap_or(0.0) / 1e6,
            d["gb_per_s"].as_f64().unwrap_or(0.0),
            d["roofline_fraction"].as_f64().unwrap_or(0.0) * 100.0,
            d["cores_used"].as_f64().unwrap_or(0.0)
        );
    }
    for d in r["decode"].as_array().into_iter().flatten() {
        print_expert_cache(&format!("decode at ctx {}", d["ctx"]), &d["expert_cache"]);
    }
    for d in r["decode"].as_array().into_iter().flatten() {
        println!("\ndecode at ctx {}:", d["ctx"]);
        print_profile(&d["profile"]);
    }
    if let Some(x) = r["prefill_over_decode"].as_f64() {
        println!("\nprefill per token is {x:.1}x faster than decode (at the first context length)");
    }
}

/// One line on the expert cache of a decode measurement (nothing when every expert is resident).
fn print_expert_cache(what: &str, c: &Value) {
    if c.is_null() {
        return;
    }
    let layers: Vec<String> = c["hit_rate_per_layer"].as_array().into_iter().flatten().map(|h| format!("{:.2}", h.as_f64().unwrap_or(0.0))).collect();
    println!(
        "{what}: expert cache hit rate {:.3} (per MoE layer {}), {:.1} MB uploaded per token, {:.2} extra waves per token; expert work all on the GPU (misses uploaded, none computed on the CPU)",
        c["hit_rate"].as_f64().unwrap_or(0.0),
        layers.join(" "),
        c["bytes_per_token"].as_f64().unwrap_or(0.0) / 1e6,
        c["extra_waves_per_token"].as_f64().unwrap_or(0.0)
    );
}

fn print_profile(p: &Value) {
    if p.is_null() {
        return;
    }
    println!(
        "  GPU {:.2} ms in {} dispatches, {} submission(s); host recording {:.2} ms ({} bind groups created)",
        p["gpu_ms"].as_f64().unwrap_or(0.0),
        p["dispatches"],
        p["submissions"],
        p["record_ms"].as_f64().unwrap_or(0.0),
        p["bind_groups_created"]
    );
    for k in p["kernels"].as_array().into_iter().flatten() {
        println!(
            "  {:<14} {:>9.3} ms {:>6.1}% {:>5} dispatches",
            k["kernel"].as_str().unwrap_or("?"),
            k["ms"].as_f64().unwrap_or(0.0),
            k["share"].as_f64().unwrap_or(0.0) * 100.0,
            k["dispatches"]
        );
    }
}
