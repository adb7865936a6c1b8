//! The engine side of the app: one thread owns the model and the `Session`. The UI sends
//! [`Command`]s in and drains [`WorkerEvent`]s out, so neither loading weights nor generating
//! ever blocks a frame. Every event is followed by `request_repaint` so the UI wakes up.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig, Message, TextKind};
use deepseek_wgpu::config::{Attention, ModelConfig};
use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, Model};
use deepseek_wgpu::session::{Event, Session, Settings, Stats, StopReason};
use eframe::egui;

use crate::perf::{families, GpuReport, KernelTimes};
use crate::remote::Remote;
use crate::routing::{PositionRoute, RoutingShape};

pub enum Command {
    /// Load a checkpoint folder or GGUF file with a latent cache of (at most) `ctx` tokens.
    /// First the library's preflight ([`Fit`]): a model that does not fit `budget` (bytes;
    /// `None`: what the adapter reports) is refused with the numbers, and one that fits only
    /// with its routed experts in host memory is loaded so only when `offload` says so.
    Load { dir: PathBuf, ctx: usize, budget: Option<u64>, offload: bool },
    /// Drop the model (or the server connection) and free its GPU memory.
    Unload,
    /// Make the conversation `system` + `history` and generate the reply to `user`.
    /// The UI owns the conversation; the session reuses whatever prefix of its cache still
    /// matches, so regenerate and edit-and-resend only re-feed what changed.
    Send { system: String, history: Vec<Message>, user: String, settings: Settings },
    /// Chat with the OpenAI-compatible server at `url` instead of a local model (the local
    /// model, if any, is freed). `key`: the API key, sent as a bearer token and never shown.
    Connect { url: String, key: Option<String> },
}

/// A remote model: where it is served and what the server reports.
#[derive(Clone, Debug)]
pub struct RemoteInfo {
    /// the API base (`http://host:port/v1`)
    pub base: String,
    /// the model id requests name
    pub model: String,
    /// who serves it, in words
    pub server: String,
    /// the server is `deepseek-wgpu serve`
    pub ours: bool,
    /// the server streams routing (ours, with an MoE model)
    pub routing: bool,
}

/// What the UI needs to know about a loaded model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub dir: PathBuf,
    pub shape: RoutingShape,
    pub n_layers: usize,
    pub vocab: usize,
    pub hidden: usize,
    pub ctx: usize,
    pub weight_bytes: u64,
    pub cache_bytes_per_token: u64,
    pub cache_bytes_allocated: u64,
    /// the attention and what its cache holds, in words
    pub attention: String,
    /// "latent KV cache" (MLA) or "K/V cache" (GQA): `ModelConfig::cache_name`
    pub cache_kind: &'static str,
    pub adapter: String,
    /// the engine runs on the UI's own wgpu device
    pub shared_device: bool,
    pub defaults: Settings,
    /// `Some`: the model runs on a remote server (the sizes above are then unknown, 0)
    pub remote: Option<RemoteInfo>,
}

/// What a model needs on the GPU against what the adapter has, before a byte is uploaded
/// (the library's `preflight` and `placement`).
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub dir: PathBuf,
    pub ctx: usize,
    /// every weight the load uploads (routed experts included)
    pub weights: u64,
    /// of which the routed experts
    pub expert_weights: u64,
    /// the cache at `ctx` tokens
    pub cache: u64,
    pub cache_kind: &'static str,
    pub activations: u64,
    /// the GPU memory the load may use: `--gpu-memory`, else what the adapter reports (a CPU
    /// adapter: the host's available memory); `None`: the adapter does not say
    pub budget: Option<u64>,
    /// the budget is `--gpu-memory`'s
    pub budget_given: bool,
    pub verdict: Verdict,
}

impl Fit {
    /// Everything on the GPU.
    pub fn total(&self) -> u64 {
        self.weights + self.cache + self.activations
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Fits,
    /// only with `slots` of each MoE layer's `n_routed` experts on the GPU (the expert cache),
    /// `gpu_bytes` in all
    Offload { slots: usize, n_routed: usize, gpu_bytes: u64 },
    /// the library's error, with its numbers
    WontFit(String),
}

#[derive(Clone, Debug)]
pub enum WorkerEvent {
    /// the preflight of a load, before the upload starts
    Fit(Box<Fit>),
    /// the model is dropped and its GPU memory freed
    Unloaded,
    Loading { dir: PathBuf, done: u64, total: u64, tensor: String },
    Loaded(Box<ModelInfo>),
    LoadFailed { dir: PathBuf, error: String },
    /// a generated token; `kind` says whether it is part of the reasoning
    Token { id: u32, position: usize, text: String, kind: TextKind },
    Text { kind: TextKind, text: String },
    Routing(PositionRoute),
    Stats(Stats),
    /// the turn ended; `assistant` is the message the session keeps for it
    Done { stop: StopReason, assistant: Option<Message> },
    TurnFailed(String),
    /// a remote server that does not split the reasoning sent `</think>` with no `<think>`
    /// before it (the prompt opened the block): the reply so far was reasoning, not answer
    AnswerWasReasoning,
    /// after a load and after each local reply (before its `Done`): GPU memory, and the
    /// reply's kernel times when profiling was asked for
    Gpu(GpuReport),
}

/// The UI's end of the worker.
pub struct Worker {
    tx: Sender<Command>,
    pub rx: Receiver<WorkerEvent>,
    /// set by Stop; checked by the session between tokens
    pub cancel: Arc<AtomicBool>,
    /// profile the GPU time of every dispatch of the following replies (Performance tab)
    pub profile: Arc<AtomicBool>,
}

impl Worker {
    /// `gpu`: the UI's device wrapped for the engine; `None` opens a separate device on first load.
    pub fn spawn(gpu: Option<Arc<Gpu>>, ctx: egui::Context) -> Worker {
        let (tx, cmd_rx) = channel();
        let (ev_tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let profile = Arc::new(AtomicBool::new(false));
        let (c, p) = (cancel.clone(), profile.clone());
        let spawned = std::thread::Builder::new().name("engine".into()).spawn(move || run(gpu, cmd_rx, ev_tx, ctx, c, p));
        if let Err(e) = spawned {
            // Without a thread there is no engine; say so through the usual channel.
            let (ev_tx, rx) = channel();
            let _ = ev_tx.send(WorkerEvent::LoadFailed { dir: PathBuf::new(), error: format!("cannot start the engine thread: {e}") });
            return Worker { tx, rx, cancel, profile };
        }
        Worker { tx, rx, cancel, profile }
    }

    pub fn send(&self, cmd: Command) -> Result<(), String> {
        self.tx.send(cmd).map_err(|_| "the engine thread has stopped; restart the app".to_string())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Let a running answer end at the next token; the thread exits when the channel closes.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

struct Engine {
    gpu: Option<Arc<Gpu>>,
    shared: bool,
    session: Option<Session>,
    remote: Option<Remote>,
    out: Sender<WorkerEvent>,
    ctx: egui::Context,
    cancel: Arc<AtomicBool>,
    profile: Arc<AtomicBool>,
}

fn run(gpu: Option<Arc<Gpu>>, rx: Receiver<Command>, out: Sender<WorkerEvent>, ctx: egui::Context, cancel: Arc<AtomicBool>, profile: Arc<AtomicBool>) {
    let shared = gpu.is_some();
    let mut e = Engine { gpu, shared, session: None, remote: None, out, ctx, cancel, profile };
    for cmd in rx {
        // A panic inside the engine must not take the window down: report it and drop the
        // session, whose state is unknown after it.
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| match cmd {
            Command::Load { dir, ctx, budget, offload } => e.load(dir, ctx, budget, offload),
            Command::Unload => e.unload(),
            Command::Send { system, history, user, settings } => e.send(&system, history, &user, &settings),
            Command::Connect { url, key } => e.connect(url, key),
        }));
        if let Err(p) = r {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "unknown panic".into());
            e.session = None;
            e.remote = None;
            e.emit(WorkerEvent::TurnFailed(format!("internal engine error: {msg}; reload the model")));
        }
    }
}

impl Engine {
    fn emit(&self, ev: WorkerEvent) {
        let _ = self.out.send(ev);
        self.ctx.request_repaint();
    }

    /// Drop the session (its model's buffers) and wait for the device to release them.
    fn unload(&mut self) {
        self.session = None;
        self.remote = None;
        if let Some(g) = &self.gpu {
            let _ = g.device.poll(eframe::egui_wgpu::wgpu::PollType::wait_indefinitely());
        }
        self.emit(WorkerEvent::Unloaded);
        let memory = self.gpu.as_ref().and_then(|g| GpuReport::memory_of(&g.device));
        self.emit(WorkerEvent::Gpu(GpuReport { kernels: None, memory }));
    }

    fn load(&mut self, dir: PathBuf, ctx: usize, budget: Option<u64>, offload: bool) {
        // Free the old model's buffers before uploading the new one.
        self.session = None;
        self.remote = None;
        match self.try_load(&dir, ctx, budget, offload) {
            Ok((session, info)) => {
                self.session = Some(session);
                self.emit(WorkerEvent::Loaded(Box::new(info)));
                let memory = self.gpu.as_ref().and_then(|g| GpuReport::memory_of(&g.device));
                self.emit(WorkerEvent::Gpu(GpuReport { kernels: None, memory }));
            }
            Err(error) => self.emit(WorkerEvent::LoadFailed { dir, error }),
        }
    }

    fn connect(&mut self, url: String, key: Option<String>) {
        self.session = None;
        self.remote = None;
        self.emit(WorkerEvent::Loading { dir: PathBuf::from(&url), done: 0, total: 0, tensor: String::new() });
        match Remote::connect(&url, key) {
            Ok((remote, info)) => {
                self.remote = Some(remote);
                self.emit(WorkerEvent::Loaded(Box::new(info)));
            }
            Err(error) => self.emit(WorkerEvent::LoadFailed { dir: PathBuf::from(url), error }),
        }
    }

    /// The library's preflight for `dir` on `gpu`: what the load needs (everything resident,
    /// `placement` without a budget) and whether it fits the budget (`preflight`).
    fn fit(gpu: &Gpu, dir: &std::path::Path, opts: &LoadOptions) -> Result<Fit, String> {
        use deepseek_wgpu::model::{open, placement, preflight, total_bytes};
        let (cfg, ck) = open(dir).map_err(|e| e.to_string())?;
        let weights = total_bytes(&ck, &cfg, opts.quantize);
        let need = placement(&ck, &cfg, gpu.max_binding, opts, weights, None).map_err(|e| e.to_string())?;
        let (budget, verdict) = match preflight(&ck, &cfg, gpu, opts, weights) {
            Ok(p) => (p.budget, match p.expert_cache {
                Some(c) => Verdict::Offload { slots: c.slots, n_routed: p.n_routed, gpu_bytes: p.gpu_bytes() },
                None => Verdict::Fits,
            }),
            Err(e) => (opts.memory_budget, Verdict::WontFit(e.to_string())),
        };
        Ok(Fit {
            dir: dir.to_path_buf(),
            ctx: opts.max_ctx,
            weights,
            expert_weights: need.expert_weights,
            cache: need.cache,
            cache_kind: cfg.cache_name(),
            activations: need.activations,
            budget,
            budget_given: opts.memory_budget.is_some(),
            verdict,
        })
    }

    fn try_load(&mut self, dir: &std::path::Path, ctx: usize, budget: Option<u64>, offload: bool) -> Result<(Session, ModelInfo), String> {
        let gguf = deepseek_wgpu::model::is_gguf(dir);
        if !dir.is_dir() && !gguf {
            return Err(format!("{} is neither a model folder nor a .gguf file", dir.display()));
        }
        // The config first: a cheap, clear error before any GPU work.
        let cfg = if gguf { deepseek_wgpu::model::open(dir).map(|(c, _)| c) } else { ModelConfig::load(dir).map_err(Into::into) }.map_err(|e| e.to_string())?;
        let ctx = ctx.min(cfg.max_position_embeddings).max(1);
        let gpu = match self.gpu.clone() {
            Some(g) => g,
            None => {
                let g = Arc::new(Gpu::new(&GpuOptions::default()).map_err(|e| e.to_string())?);
                self.gpu = Some(g.clone());
                g
            }
        };
        let opts = LoadOptions { max_chunk: 256, max_ctx: ctx, memory_budget: budget, ..LoadOptions::default() };
        let fit = Self::fit(&gpu, dir, &opts)?;
        self.emit(WorkerEvent::Fit(Box::new(fit.clone())));
        match fit.verdict {
            Verdict::WontFit(e) => return Err(e),
            Verdict::Offload { slots, n_routed, .. } if !offload => {
                return Err(format!("does not fit the GPU memory with all its experts; it can run with {slots} of each MoE layer's {n_routed} routed experts on the GPU and the rest in host memory (expert cache): press \"Load with expert cache\""))
            }
            _ => {}
        }
        let mut last_pct = u64::MAX;
        let model = Model::load(gpu.clone(), dir, &opts, &mut |p| {
            // Per-mille steps: R1 has tens of thousands of tensors; the bar needs ~1000 updates.
            let pct = (p.done * 1000).checked_div(p.total).unwrap_or(0);
            if pct != last_pct {
                last_pct = pct;
                self.emit(WorkerEvent::Loading { dir: dir.to_path_buf(), done: p.done, total: p.total, tensor: p.tensor.to_string() });
            }
        })
        .map_err(|e| e.to_string())?;
        let model = Arc::new(model);
        let tok = ChatTokenizer::load(dir, model.cfg.vocab).map_err(|e| e.to_string())?;
        if tok.chat_template.is_none() {
            return Err(format!("{} has no chat template (tokenizer_config.json chat_template); the app needs a chat model", dir.display()));
        }
        let generation = GenerationConfig::load(dir).map_err(|e| e.to_string())?;
        let session = Session::new(model.clone(), Arc::new(tok), generation, ctx).map_err(|e| e.to_string())?;
        let cfg = &model.cfg;
        let shape = match &cfg.moe {
            Some(m) => RoutingShape { layers: model.moe_layers(), n_experts: m.n_routed, n_group: m.n_group.max(1), topk_group: m.topk_group, top_k: m.top_k },
            None => RoutingShape { layers: Vec::new(), n_experts: 0, n_group: 1, topk_group: 1, top_k: 0 },
        };
        let per_token = cfg.cache_bytes_per_token();
        let attention = match cfg.attention {
            Attention::Mla => format!("MLA: a latent cache of {} + {} values per layer", cfg.kv_lora, cfg.rope_dim),
            Attention::Gqa { kv_heads, head_dim } => format!("GQA: {} query heads share {kv_heads} K/V heads of {head_dim}; the cache keeps K and V of those", cfg.n_heads),
        };
        let cache_kind = cfg.cache_name();
        let mut defaults = session.default_settings();
        defaults.max_tokens = 256;
        let info = ModelInfo {
            dir: dir.to_path_buf(),
            shape,
            n_layers: cfg.n_layers,
            vocab: cfg.vocab,
            hidden: cfg.hidden,
            ctx: session.context(),
            weight_bytes: model.weight_bytes,
            cache_bytes_per_token: per_token,
            cache_bytes_allocated: per_token * session.context() as u64,
            attention,
            cache_kind,
            adapter: format!("{} ({:?})", gpu.info.name, gpu.info.backend),
            shared_device: self.shared,
            defaults,
            remote: None,
        };
        Ok((session, info))
    }

    fn send(&mut self, system: &str, history: Vec<Message>, user: &str, settings: &Settings) {
        if let Some(r) = self.remote.as_mut() {
            let (out, ctx) = (&self.out, &self.ctx);
            return r.chat(system, history, user, settings, &self.cancel, &mut |ev| {
                let _ = out.send(ev);
                ctx.request_repaint();
            });
        }
        let Some(s) = self.session.as_mut() else {
            self.emit(WorkerEvent::TurnFailed("no model is loaded: open a model folder first".into()));
            return;
        };
        s.messages = history;
        s.set_system(system);
        let tok = match s.text_tokenizer() {
            Ok(t) => t,
            Err(e) => return self.emit(WorkerEvent::TurnFailed(e.to_string())),
        };
        let (out, ctx) = (self.out.clone(), self.ctx.clone());
        let emit = |ev: WorkerEvent| {
            let _ = out.send(ev);
            ctx.request_repaint();
        };
        let decode = |ids: &[u32]| tok.decode(ids).unwrap_or_default();
        let mut stop = None;
        // Profiling: everything up to the first generated token is the prompt's, the rest decode's.
        let gpu = self.gpu.clone();
        let asked = self.profile.load(Ordering::Relaxed);
        let profiling = asked && gpu.as_ref().is_some_and(|g| g.start_profile());
        let mut prompt_profile = None;
        let mut decoded = 0usize;
        let r = s.chat(user, settings, &self.cancel, &mut |ev| match ev {
            Event::Token { id, position, text, kind } => {
                decoded += 1;
                if let Some(g) = gpu.as_ref().filter(|_| profiling && prompt_profile.is_none()) {
                    prompt_profile = g.take_profile();
                    g.start_profile();
                }
                emit(WorkerEvent::Token { id: *id, position: *position, text: text.clone(), kind: *kind })
            }
            Event::Routing { position, token, layers } => {
                emit(WorkerEvent::Routing(PositionRoute { position: *position, token: *token, text: decode(&[*token]), layers: layers.clone() }))
            }
            Event::Text { kind, text } => emit(WorkerEvent::Text { kind: *kind, text: text.clone() }),
            Event::Stats(st) => emit(WorkerEvent::Stats(st.clone())),
            Event::Done(reason) => stop = Some(reason.clone()),
            Event::Logprob(_) => {}
        });
        let decode_profile = if profiling { gpu.as_ref().and_then(|g| g.take_profile()) } else { None };
        let kernels = match (asked, profiling) {
            (false, _) => None,
            (true, false) => Some(KernelTimes::Unavailable(format!(
                "{} has no timestamp queries (wgpu feature TIMESTAMP_QUERY), so the engine cannot time its kernels",
                gpu.as_ref().map_or("this adapter".to_string(), |g| g.info.name.clone())
            ))),
            // The first token's profile holds the prompt; the rest is decode (the first token
            // came from the prompt's last forward pass, so decode ran one pass per later token).
            (true, true) => Some(KernelTimes::Measured {
                prompt: prompt_profile.as_ref().or(decode_profile.as_ref().filter(|_| prompt_profile.is_none())).map(families).unwrap_or_default(),
                decode: decode_profile.as_ref().filter(|_| prompt_profile.is_some()).map(families).unwrap_or_default(),
                decode_tokens: decoded.saturating_sub(1),
            }),
        };
        let memory = gpu.as_ref().and_then(|g| GpuReport::memory_of(&g.device));
        emit(WorkerEvent::Gpu(GpuReport { kernels, memory }));
        match r {
            Ok(reply) => {
                let assistant = s.messages.last().filter(|m| m.role == "assistant").cloned();
                self.emit(WorkerEvent::Done { stop: stop.unwrap_or(reply.stop), assistant });
            }
            Err(e) => self.emit(WorkerEvent::TurnFailed(e.to_string())),
        }
    }
}
