//! The window: model bar on top, settings and context on the left, routing on the right,
//! transcript and composer in the middle. All engine work goes through the [`Worker`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use deepseek_wgpu::chat::{Message, TextKind};
use deepseek_wgpu::session::Stats;
use eframe::egui::{self, Key, KeyboardShortcut, Modifiers};

use crate::analysis_view::{self, Tab, ViewAction, ViewsState};
use crate::chat_view::{self, ChatAction, ChatCtx, Reply, TokenChip, Turn};
use crate::perf::{self, PerfState};
use crate::chats::Chats;
use crate::export::{self, Format};
use crate::cache_view;
use crate::routing::{RoutingShape, Trace};
use crate::routing_view::PanelState;
use crate::settings::SettingsForm;
use crate::picker::{self, Picker};
use crate::remote;
use crate::worker::{Command, ModelInfo, RemoteInfo, Verdict, Worker, WorkerEvent};

/// How the app starts (from the command line, or from a test).
#[derive(Clone, Debug)]
pub struct Startup {
    /// model folder; `None`: the embedded default model
    pub model_dir: Option<PathBuf>,
    /// sent as soon as the model is loaded
    pub prompt: Option<String>,
    /// latent cache size in tokens (capped by the model's max_position_embeddings)
    pub ctx: usize,
    pub max_tokens: Option<usize>,
    pub seed: Option<u64>,
    pub temperature: Option<f32>,
    /// MoE row whose top-1 expert colours the transcript
    pub colour_row: Option<usize>,
    /// show Thinking blocks open
    pub expand_thinking: bool,
    /// the API key for a server URL given as `model_dir`
    pub api_key: Option<String>,
    /// where chats, settings and the window layout are saved; `None`: `$DEEPSEEK_WGPU_APP_DATA`,
    /// else the platform's data folder ([`crate::store::data_dir`])
    pub data_dir: Option<PathBuf>,
    /// GPU memory a model may use (bytes; `--gpu-memory`); `None`: what the adapter reports
    pub gpu_memory: Option<u64>,
}

impl Default for Startup {
    fn default() -> Self {
        Startup { model_dir: None, prompt: None, ctx: 4096, max_tokens: None, seed: None, temperature: None, colour_row: None, expand_thinking: false, api_key: None, data_dir: None, gpu_memory: None }
    }
}

pub enum ModelState {
    None,
    Loading { dir: PathBuf, done: u64, total: u64, tensor: String },
    Ready(Box<ModelInfo>),
    Failed { dir: PathBuf, error: String },
}

pub struct App {
    pub(crate) worker: Worker,
    startup: Startup,
    pub model_path: String,
    /// sent to a remote server as a bearer token; shown masked, never logged
    pub api_key: String,
    pub model: ModelState,
    pub system_prompt: String,
    pub turns: Vec<Turn>,
    pub input: String,
    /// a reply is being generated
    pub busy: bool,
    pending_prompt: Option<String>,
    pub form: SettingsForm,
    pub trace: Trace,
    pub pinned: Option<usize>,
    pub routing: PanelState,
    /// the latest finished turn's stats
    pub stats: Option<Stats>,
    pub export_path: String,
    pub export_msg: Option<Result<String, String>>,
    pub editing: Option<(usize, String)>,
    pub expand_thinking: bool,
    /// an error that belongs to no section (shown in a banner)
    pub banner: Option<String>,
    /// the right panel's tabs (Expert, Co-activation, Compare) and what they cache
    pub views: ViewsState,
    /// the Performance tab's replies, kernel times and GPU memory
    pub perf: PerfState,
    /// saved chats and the open one (chats.rs)
    pub chats: Chats,
    /// the answers' parsed Markdown
    pub md: egui_commonmark::CommonMarkCache,
    /// the file dialog, recent models, the fit check and the adapters (picker.rs)
    pub picker: Picker,
}

fn empty_shape() -> RoutingShape {
    RoutingShape { layers: Vec::new(), n_experts: 0, n_group: 1, topk_group: 1, top_k: 0 }
}

impl App {
    pub fn new(cc: &eframe::CreationContext<'_>, startup: Startup) -> App {
        crate::markdown::install_copy_glyph(&cc.egui_ctx);
        let gpu = crate::gpu::shared_gpu(cc.wgpu_render_state.as_ref());
        let worker = Worker::spawn(gpu, cc.egui_ctx.clone());
        let mut app = App {
            worker,
            model_path: String::new(),
            api_key: startup.api_key.clone().unwrap_or_default(),
            model: ModelState::None,
            system_prompt: String::new(),
            turns: Vec::new(),
            input: String::new(),
            busy: false,
            pending_prompt: startup.prompt.clone(),
            form: SettingsForm::from_settings(&Default::default()),
            trace: Trace::new(empty_shape()),
            pinned: None,
            routing: PanelState { colour_row: startup.colour_row, ..Default::default() },
            stats: None,
            export_path: "routing_trace".into(),
            export_msg: None,
            editing: None,
            expand_thinking: startup.expand_thinking,
            banner: None,
            views: ViewsState::default(),
            perf: PerfState::default(),
            chats: Chats::open(crate::store::data_dir(startup.data_dir.as_deref())),
            md: Default::default(),
            picker: Picker::new(cc.wgpu_render_state.as_ref().map(|rs| rs.adapter.get_info().name).unwrap_or_default()),
            startup: startup.clone(),
        };
        app.restore_chats();
        match startup.model_dir.map(Ok).unwrap_or_else(deepseek_wgpu::default_model_dir) {
            Ok(dir) => {
                app.model_path = dir.display().to_string();
                app.open_model();
            }
            Err(e) => app.model = ModelState::Failed { dir: PathBuf::new(), error: format!("{e}. Type a model folder above and press Open.") },
        }
        app
    }

    pub fn model_info(&self) -> Option<&ModelInfo> {
        match &self.model {
            ModelState::Ready(i) => Some(i),
            _ => None,
        }
    }

    /// The remote server the model runs on, if it does.
    pub fn remote(&self) -> Option<&RemoteInfo> {
        self.model_info().and_then(|m| m.remote.as_ref())
    }

    pub fn loading(&self) -> bool {
        matches!(self.model, ModelState::Loading { .. })
    }

    pub fn open_model(&mut self) {
        self.open_model_with(false)
    }

    /// Open what the model field names; `offload`: load with the expert cache when the
    /// model fits only so (the user said so after the fit check).
    pub fn open_model_with(&mut self, offload: bool) {
        let dir = PathBuf::from(self.model_path.trim());
        if self.model_path.trim().is_empty() {
            self.model = ModelState::Failed { dir, error: "type a model folder (config.json, *.safetensors, tokenizer files), a .gguf file or a server URL (http://host:port/v1)".into() };
            return;
        }
        self.picker.fit = None;
        self.picker.msg = None;
        self.model = ModelState::Loading { dir: dir.clone(), done: 0, total: 0, tensor: String::new() };
        let cmd = if remote::is_url(&self.model_path) {
            Command::Connect { url: self.model_path.trim().to_string(), key: Some(self.api_key.clone()).filter(|k| !k.trim().is_empty()) }
        } else {
            Command::Load { dir: dir.clone(), ctx: self.startup.ctx, budget: self.startup.gpu_memory, offload }
        };
        if let Err(e) = self.worker.send(cmd) {
            self.model = ModelState::Failed { dir, error: e };
        }
    }

    /// Drain the worker's events (called every frame before drawing).
    pub fn poll(&mut self) {
        while let Ok(ev) = self.worker.rx.try_recv() {
            self.perf.observe(&ev, Instant::now());
            self.on_event(ev);
        }
    }

    fn current(&mut self) -> Option<&mut Reply> {
        if self.busy {
            self.turns.last_mut().map(|t| &mut t.reply)
        } else {
            None
        }
    }

    fn on_event(&mut self, ev: WorkerEvent) {
        if self.busy {
            self.chat_journal(&ev);
        }
        let ends_turn = self.busy && matches!(ev, WorkerEvent::Done { .. } | WorkerEvent::TurnFailed(_));
        self.on_event_inner(ev);
        if ends_turn {
            self.chat_turn_ended();
        }
    }

    fn on_event_inner(&mut self, ev: WorkerEvent) {
        match ev {
            WorkerEvent::Loading { dir, done, total, tensor } => self.model = ModelState::Loading { dir, done, total, tensor },
            WorkerEvent::Fit(fit) => self.picker.fit = Some(*fit),
            WorkerEvent::Unloaded => {
                self.model = ModelState::None;
                self.trace = Trace::new(empty_shape());
                self.pinned = None;
                self.busy = false;
            }
            WorkerEvent::Loaded(info) => {
                if info.remote.is_none() {
                    picker::remember(&mut self.picker.recent, &info.dir.display().to_string());
                    self.save_settings();
                }
                // The open chat stays (the next message re-feeds it to this model).
                self.trace = Trace::new(info.shape.clone());
                self.reload_chat_routing();
                self.pinned = None;
                self.stats = None;
                self.editing = None;
                self.busy = false;
                if self.routing.colour_row.is_some_and(|r| r >= info.shape.layers.len()) {
                    self.routing.colour_row = None;
                }
                let mut s = info.defaults.clone();
                s.max_tokens = self.startup.max_tokens.unwrap_or(s.max_tokens);
                s.seed = self.startup.seed.or(s.seed);
                s.sample.temperature = self.startup.temperature.unwrap_or(s.sample.temperature);
                self.form = SettingsForm::from_settings(&s);
                // The first model loaded uses the settings saved last time.
                if let Some(f) = self.chats.saved_form.take() {
                    self.form = f;
                    let st = &self.startup;
                    for (field, v) in [(&mut self.form.max_tokens, st.max_tokens.map(|x| x.to_string())), (&mut self.form.seed, st.seed.map(|x| x.to_string())), (&mut self.form.temperature, st.temperature.map(|x| x.to_string()))] {
                        if let Some(v) = v {
                            *field = v;
                        }
                    }
                }
                self.model = ModelState::Ready(info);
                if let Some(p) = self.pending_prompt.take() {
                    self.input = p;
                    self.send_input();
                }
            }
            WorkerEvent::LoadFailed { dir, error } => {
                self.pending_prompt = None;
                self.model = ModelState::Failed { dir, error };
            }
            WorkerEvent::Token { id, position, text, kind } => {
                if let Some(r) = self.current() {
                    let now = Instant::now();
                    r.first_token.get_or_insert(now);
                    r.last_token = Some(now);
                    match kind {
                        TextKind::Reasoning => {
                            r.reasoning_start.get_or_insert(now);
                        }
                        TextKind::Answer => {
                            if r.reasoning_start.is_some() && r.reasoning_end.is_none() {
                                r.reasoning_end = Some(now);
                            }
                        }
                    }
                    r.tokens.push(TokenChip { id, position, text, kind });
                }
            }
            WorkerEvent::Text { kind, text } => {
                if let Some(r) = self.current() {
                    match kind {
                        TextKind::Reasoning => r.reasoning.push_str(&text),
                        TextKind::Answer => r.answer.push_str(&text),
                    }
                }
            }
            WorkerEvent::Routing(route) => {
                let pos = route.position;
                if let Some(r) = self.current() {
                    // Positions routed before the first generated token are this turn's prompt.
                    if r.tokens.is_empty() {
                        let start = r.prompt.map_or(pos, |(s, _)| s);
                        r.prompt = Some((start, pos + 1));
                    }
                }
                self.trace.push(route);
            }
            WorkerEvent::Stats(s) => {
                if let Some(r) = self.current() {
                    r.stats = Some(s.clone());
                }
                self.trace.resident = s.expert_cache.as_ref().map(|c| c.resident.clone());
                self.stats = Some(s);
            }
            WorkerEvent::Done { stop, assistant } => {
                if let Some(r) = self.current() {
                    r.stop = Some(stop);
                    r.assistant = assistant;
                    if r.reasoning_start.is_some() && r.reasoning_end.is_none() {
                        r.reasoning_end = r.last_token;
                    }
                }
                self.busy = false;
            }
            WorkerEvent::AnswerWasReasoning => {
                if let Some(r) = self.current() {
                    let answer = std::mem::take(&mut r.answer);
                    r.reasoning = answer + &r.reasoning;
                    for t in &mut r.tokens {
                        t.kind = TextKind::Reasoning;
                    }
                    r.reasoning_start = r.first_token;
                    r.reasoning_end = None;
                }
            }
            // the Performance tab's (taken in by `perf.observe`)
            WorkerEvent::Gpu(_) => {}
            WorkerEvent::TurnFailed(e) => {
                if self.busy {
                    if let Some(t) = self.turns.last_mut() {
                        t.reply.error = Some(e);
                        if self.input.is_empty() {
                            // Give the message back so it can be fixed and resent.
                            self.input = t.user.clone();
                        }
                    }
                    self.busy = false;
                } else {
                    self.banner = Some(e);
                }
            }
        }
    }

    /// Send what is in the composer as a new turn.
    pub fn send_input(&mut self) {
        let text = self.input.trim().to_string();
        if text.is_empty() {
            self.banner = Some("type a message first".into());
            return;
        }
        if self.send(text, self.turns.len()) {
            self.input.clear();
        }
    }

    /// Keep turns `..keep`, then ask for the reply to `user`. Returns whether it was sent.
    pub fn send(&mut self, user: String, keep: usize) -> bool {
        if self.busy {
            return false;
        }
        if self.model_info().is_none() {
            self.banner = Some("no model is loaded yet".into());
            return false;
        }
        let settings = match self.form.parse() {
            Ok(s) => s,
            Err(errs) => {
                self.banner = Some(format!("fix the sampling settings first: {}", errs.join("; ")));
                return false;
            }
        };
        self.turns.truncate(keep);
        // Failed turns never reached the session's history; drop them from view too.
        self.turns.retain(|t| t.reply.assistant.is_some());
        let history: Vec<Message> = self
            .turns
            .iter()
            .flat_map(|t| [Message::new("user", &t.user), t.reply.assistant.clone().unwrap_or_else(|| Message::new("assistant", &t.reply.answer))])
            .collect();
        self.turns.push(Turn { user: user.clone(), reply: Reply::default() });
        self.pinned = None;
        self.editing = None;
        self.banner = None;
        self.worker.cancel.store(false, Ordering::Relaxed);
        match self.worker.send(Command::Send { system: self.system_prompt.clone(), history, user, settings }) {
            Ok(()) => {
                self.busy = true;
                self.chat_turn_started();
                true
            }
            Err(e) => {
                self.turns.pop();
                self.banner = Some(e);
                false
            }
        }
    }

    pub fn stop(&mut self) {
        self.worker.cancel.store(true, Ordering::Relaxed);
    }

    pub fn regenerate(&mut self) {
        if let Some(last) = self.turns.last() {
            let user = last.user.clone();
            self.send(user, self.turns.len() - 1);
        }
    }

    pub fn new_chat(&mut self) {
        if self.busy {
            return;
        }
        self.turns.clear();
        self.trace.clear();
        self.pinned = None;
        self.stats = None;
        self.editing = None;
        self.export_msg = None;
        self.chats.current = None;
        self.chats.title.clear();
        self.chats.renaming = None;
        self.chats.deleting = None;
    }

    pub fn export(&mut self, format: Format) {
        let model = match self.model_info() {
            Some(ModelInfo { remote: Some(r), .. }) => format!("{} at {}", r.model, r.base),
            Some(m) => m.dir.display().to_string(),
            None => String::new(),
        };
        let ext = match format {
            Format::Json => "json",
            Format::Csv => "csv",
        };
        // A path without an extension gets the format's, so one field serves both buttons.
        let mut path = self.export_path.trim().to_string();
        if !path.is_empty() && std::path::Path::new(&path).extension().is_none() {
            path = format!("{path}.{ext}");
        }
        self.export_msg = Some(export::write(&self.trace, &model, &path, format));
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        // wrapped: with the API key field, or in a narrow window, the picker's buttons go on
        // a second row instead of out of the window
        ui.horizontal_wrapped(|ui| {
            ui.heading("deepseek-wgpu");
            ui.separator();
            let width = if remote::is_url(&self.model_path) { 280.0 } else { 360.0 };
            let label = ui.label("Model (folder or .gguf)");
            let edit = ui
                .add(egui::TextEdit::singleline(&mut self.model_path).desired_width(width))
                .labelled_by(label.id)
                .on_hover_text("a checkpoint folder, a .gguf file, or the URL of an OpenAI-compatible server (http://host:port/v1; add #MODEL to pick one of its models)");
            let mut enter = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let url = remote::is_url(&self.model_path);
            if url {
                let label = ui.label("API key");
                let key = ui.add(egui::TextEdit::singleline(&mut self.api_key).password(true).desired_width(140.0).hint_text("none")).labelled_by(label.id);
                enter |= key.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            }
            let can_open = !self.busy && !self.loading();
            let open = ui.add_enabled(can_open, egui::Button::new(if url { "Connect" } else { "Open" })).on_disabled_hover_text("wait for the current answer or load to finish");
            if open.clicked() || (enter && can_open) {
                self.open_model();
            }
            self.picker_buttons(ui, can_open);
        });
        match &self.model {
            ModelState::None => {}
            ModelState::Loading { dir, .. } if remote::is_url(&dir.to_string_lossy()) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("connecting to {}…", dir.display()));
                });
            }
            ModelState::Loading { dir, done, total, tensor } => {
                let frac = if *total > 0 { *done as f32 / *total as f32 } else { 0.0 };
                ui.add(egui::ProgressBar::new(frac).show_percentage().text(format!(
                    "uploading {} to the GPU: {} of {} · {tensor}",
                    dir.display(),
                    fmt_bytes(*done),
                    fmt_bytes(*total)
                )));
            }
            ModelState::Ready(m) if m.remote.is_some() => {
                let r = m.remote.as_ref().expect("checked");
                let ctx = if m.ctx > 0 { format!("context {} tokens", m.ctx) } else { "context not reported".to_string() };
                let routing = match (r.routing, r.ours) {
                    (true, _) => format!("routing streamed: {} MoE layers × {} experts", m.shape.layers.len(), m.shape.n_experts),
                    (false, true) => "a dense model: no routing".to_string(),
                    (false, false) => "no routing reported".to_string(),
                };
                ui.label(format!("{} at {} · served by {} · {ctx} · {routing}", r.model, r.base, r.server));
            }
            ModelState::Ready(m) => {
                let name = m.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| m.dir.display().to_string());
                ui.label(format!(
                    "{name}: {} layers ({} MoE), hidden {}, vocab {}, {} of weights · context {} tokens · {} {}",
                    m.n_layers,
                    m.shape.layers.len(),
                    m.hidden,
                    m.vocab,
                    fmt_bytes(m.weight_bytes),
                    m.ctx,
                    m.adapter,
                    if m.shared_device { "(one device for UI and engine)" } else { "(separate engine device)" }
                ));
            }
            // a refusal by the fit check is told by the fit lines below, with the numbers
            ModelState::Failed { dir, .. } if self.picker.fit.as_ref().is_some_and(|f| &f.dir == dir && f.verdict != Verdict::Fits) => {}
            ModelState::Failed { dir, error } => {
                let what = match dir.to_string_lossy() {
                    d if d.is_empty() => "No model".to_string(),
                    d if remote::is_url(&d) => format!("Cannot use {d}"),
                    d => format!("Cannot load {d}"),
                };
                ui.colored_label(ui.visuals().error_fg_color, format!("{what}: {error}"));
            }
        }
        self.picker_lines(ui);
        if let Some(b) = self.banner.clone() {
            ui.horizontal(|ui| {
                ui.colored_label(ui.visuals().error_fg_color, b);
                if ui.small_button("Dismiss").clicked() {
                    self.banner = None;
                }
            });
        }
    }

    fn side_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Conversation");
        ui.checkbox(&mut self.expand_thinking, "Open new Thinking blocks").on_hover_text("show the reasoning of new replies expanded");
        ui.add_space(6.0);
        let label = ui.strong("System prompt");
        ui.add(egui::TextEdit::multiline(&mut self.system_prompt).desired_rows(3).desired_width(ui.available_width()).hint_text("optional; used from the next message"))
            .labelled_by(label.id);
        ui.add_space(6.0);
        ui.strong("Sampling");
        let errs = self.form.ui(ui);
        if errs.is_empty() {
            if let Some(m) = self.model_info() {
                let defaults = m.defaults.clone();
                if ui.small_button("Model defaults").on_hover_text("generation_config.json of the model").clicked() {
                    self.form = SettingsForm::from_settings(&defaults);
                }
            }
        }
        ui.add_space(6.0);
        ui.separator();
        self.context_section(ui);
        ui.separator();
        ui.strong("Export routing trace");
        let label = ui.label("File (.json / .csv added if missing)");
        ui.add(egui::TextEdit::singleline(&mut self.export_path).desired_width(ui.available_width())).labelled_by(label.id);
        ui.horizontal(|ui| {
            if ui.button("Export JSON").clicked() {
                self.export(Format::Json);
            }
            if ui.button("Export CSV").clicked() {
                self.export(Format::Csv);
            }
        });
        match &self.export_msg {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            None => {}
        }
    }

    fn context_section(&mut self, ui: &mut egui::Ui) {
        ui.strong("Context");
        let Some(m) = self.model_info() else {
            ui.weak("no model");
            return;
        };
        if m.remote.is_some() {
            return self.remote_context(ui);
        }
        let (ctx, per_token, alloc) = (m.ctx, m.cache_bytes_per_token, m.cache_bytes_allocated);
        // While streaming, the trace's last position is the live fill level.
        let used = if self.busy {
            self.trace.last().map_or(0, |r| r.position + 1)
        } else {
            self.stats.as_ref().map_or(0, |s| s.context_used)
        };
        let frac = used as f32 / ctx.max(1) as f32;
        ui.add(egui::ProgressBar::new(frac).text(format!("{used} / {ctx} tokens")).desired_width(ui.available_width()));
        ui.label(format!("{} {} of {} allocated", m.cache_kind, fmt_bytes(per_token * used as u64), fmt_bytes(alloc)));
        let live = self.turns.last().map(|t| &t.reply).filter(|_| self.busy);
        // One short, non-wrapping line per figure, so changing digits never move the layout.
        let line = |ui: &mut egui::Ui, text: String| ui.add(egui::Label::new(text).truncate());
        match (live, &self.stats) {
            (Some(r), _) => {
                let n = r.tokens.len();
                let rate = match (r.first_token, r.last_token) {
                    (Some(a), Some(b)) if n > 1 => (n - 1) as f64 / b.duration_since(a).as_secs_f64().max(1e-9),
                    _ => 0.0,
                };
                line(ui, format!("Decode: ≈ {rate:.1} tok/s ({n} tokens so far)"));
            }
            (None, Some(s)) => {
                line(ui, format!("Prefill: {:.1} tok/s", s.prefill_tokens_per_s));
                line(ui, format!("Decode: {:.1} tok/s", s.decode_tokens_per_s));
                ui.weak(format!("last reply: {} prompt tokens ({} reused), {} generated", s.prompt_tokens, s.reused_tokens, s.generated_tokens));
            }
            (None, None) => {
                ui.weak("Speed: no reply yet");
            }
        }
    }

    /// A remote model's context: what the server's usage reports, and speeds measured here
    /// (network included).
    fn remote_context(&self, ui: &mut egui::Ui) {
        let ctx = self.model_info().map_or(0, |m| m.ctx);
        let used = match (&self.stats, self.busy) {
            (_, true) => self.trace.last().map_or(0, |r| r.position + 1),
            (Some(s), false) => s.context_used,
            (None, false) => 0,
        };
        if ctx > 0 {
            ui.add(egui::ProgressBar::new(used as f32 / ctx as f32).text(format!("{used} / {ctx} tokens")).desired_width(ui.available_width()));
        } else {
            ui.label(format!("{used} tokens (the server reports no context size)"));
        }
        let line = |ui: &mut egui::Ui, text: String| ui.add(egui::Label::new(text).truncate());
        match &self.stats {
            Some(s) if !self.busy => {
                line(ui, format!("Prefill: {:.1} tok/s (from here, network included)", s.prefill_tokens_per_s));
                line(ui, format!("Decode: {:.1} tok/s", s.decode_tokens_per_s));
                ui.weak(format!("last reply: {} prompt tokens ({} cached by the server), {} generated", s.prompt_tokens, s.reused_tokens, s.generated_tokens));
            }
            _ => {
                ui.weak("the cache lives on the server");
            }
        }
    }

    fn composer(&mut self, ui: &mut egui::Ui) {
        ui.add_space(4.0);
        let id = egui::Id::unique("composer");
        // Enter sends, Shift+Enter is a new line.
        let focused = ui.memory(|m| m.has_focus(id));
        let enter = focused && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Enter));
        let ready = self.model_info().is_some();
        let valid = self.form.parse().is_ok();
        ui.horizontal(|ui| {
            let label = ui.label("Message");
            let w = ui.available_width() - 200.0;
            ui.add(
                egui::TextEdit::multiline(&mut self.input)
                    .id(id)
                    .desired_rows(2)
                    .desired_width(w.max(100.0))
                    .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter))
                    .hint_text("Type a message. Enter sends, Shift+Enter adds a line."),
            )
            .labelled_by(label.id);
            ui.vertical(|ui| {
                if self.busy {
                    if ui.button("Stop").on_hover_text("stop after the current token").clicked() {
                        self.stop();
                    }
                } else {
                    let why = if !ready {
                        "no model is loaded"
                    } else if !valid {
                        "fix the sampling settings on the left"
                    } else {
                        "type a message"
                    };
                    let can = ready && valid && !self.input.trim().is_empty();
                    if ui.add_enabled(can, egui::Button::new("Send")).on_disabled_hover_text(why).clicked() {
                        self.send_input();
                    }
                }
            });
        });
        if enter && !self.busy && ready && valid && !self.input.trim().is_empty() {
            self.send_input();
        }
        ui.add_space(4.0);
    }

    fn transcript(&mut self, ui: &mut egui::Ui) {
        let mut editing = self.editing.take();
        let actions = egui::ScrollArea::vertical()
            .id_salt(("transcript", crate::chats::chat_salt(self)))
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                let no_routing = self.remote().filter(|r| !r.routing).map(|_| NO_REMOTE_ROUTING);
                let mut c = ChatCtx { trace: &self.trace, colour_row: self.routing.colour_row, pinned: self.pinned, busy: self.busy, expand_thinking: self.expand_thinking, editing: &mut editing, no_routing, md: &mut self.md };
                chat_view::transcript(ui, &self.turns, &mut c)
            })
            .inner;
        self.editing = editing;
        for a in actions {
            match a {
                ChatAction::Pin(p) => self.pinned = if self.pinned == Some(p) { None } else { Some(p) },
                ChatAction::Edit(i) => self.editing = self.turns.get(i).map(|t| (i, t.user.clone())),
                ChatAction::CancelEdit => self.editing = None,
                ChatAction::Resend(i, text) => {
                    if text.trim().is_empty() {
                        self.banner = Some("the edited message is empty".into());
                    } else {
                        self.send(text.trim().to_string(), i);
                    }
                }
                ChatAction::Regenerate => self.regenerate(),
            }
        }
    }
}

impl eframe::App for App {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll();
    }

    /// On exit and every 30 s (eframe's `persistence`): the settings. The window's size and
    /// the panels' widths are eframe's and egui's own (`app.ron` beside them).
    fn save(&mut self, _storage: &mut dyn eframe::Storage) {
        self.save_settings();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.shortcuts(ui.ctx());
        self.picked_or_dropped(ui.ctx());
        egui::Panel::top("model bar").show(ui, |ui| {
            ui.add_space(2.0);
            self.top_bar(ui);
            ui.add_space(2.0);
        });
        // One left column, saved chats above the conversation's settings: with the routing
        // panel on the right, a 1280-px window still leaves the transcript half its width.
        egui::Panel::left("settings").resizable(true).default_size(260.0).size_range(200.0..=480.0).show(ui, |ui| {
            self.chats_panel(ui);
            ui.separator();
            egui::ScrollArea::vertical().id_salt("settings scroll").show(ui, |ui| self.side_panel(ui));
        });
        egui::Panel::right("routing").resizable(true).default_size(500.0).size_range(300.0..=1200.0).show(ui, |ui| {
            let routed = self.model_info().is_some_and(|m| !m.shape.layers.is_empty()) && self.remote().is_none_or(|r| r.routing);
            let dense_local = self.model_info().is_some_and(|m| m.shape.layers.is_empty() && m.remote.is_none());
            analysis_view::tab_bar(ui, &mut self.views.tab, routed, if dense_local { "K/V cache" } else { "Routing" });
            egui::ScrollArea::vertical().id_salt("routing scroll").show(ui, |ui| {
                if self.views.tab == Tab::Performance {
                    let facts = self.model_info().map(|m| perf::EngineFacts { weight_bytes: m.weight_bytes, cache_bytes: m.cache_bytes_allocated, remote: m.remote.is_some(), shared_device: m.shared_device });
                    return perf::panel(ui, &self.perf, &self.worker.profile, facts.as_ref());
                }
                // A dense model has no experts: the panel shows its K/V cache instead.
                let dense = self.model_info().filter(|m| m.shape.layers.is_empty());
                if let Some(r) = self.remote().filter(|r| !r.routing) {
                    ui.heading("Routing");
                    ui.add_space(8.0);
                    ui.label(if r.ours { "The model is dense: there are no experts to route to." } else { NO_REMOTE_ROUTING });
                    ui.weak(format!("{} at {}", r.model, r.base));
                } else if let Some(m) = dense {
                    let facts = cache_view::CacheFacts { attention: &m.attention, n_layers: m.n_layers, ctx: m.ctx, bytes_per_token: m.cache_bytes_per_token };
                    let kinds = self.turns.iter().flat_map(|t| t.reply.tokens.iter().map(|c| (c.position, c.kind))).collect();
                    if let Some(p) = cache_view::panel(ui, &self.trace, &kinds, &facts, self.pinned) {
                        self.pinned = if self.pinned == Some(p) { None } else { Some(p) };
                    }
                } else {
                    let spans = analysis_view::spans(&self.turns);
                    match analysis_view::panel(ui, &self.trace, &spans, self.pinned, &mut self.routing, &mut self.views) {
                        ViewAction::Unpin => self.pinned = None,
                        ViewAction::Pin(p) => self.pinned = if self.pinned == Some(p) { None } else { Some(p) },
                        ViewAction::None => {}
                    }
                }
            });
        });
        egui::Panel::bottom("composer").show(ui, |ui| self.composer(ui));
        egui::CentralPanel::default().show(ui, |ui| self.transcript(ui));
    }
}

/// What the routing panel and token chips say for a server without the routing extension.
pub const NO_REMOTE_ROUTING: &str = "This server does not report routing (only deepseek-wgpu serve does).";

pub fn fmt_bytes(b: u64) -> String {
    const K: f64 = 1024.0;
    let b = b as f64;
    if b < K {
        format!("{b} B")
    } else if b < K * K {
        format!("{:.1} KiB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MiB", b / K / K)
    } else {
        format!("{:.2} GiB", b / K / K / K)
    }
}
