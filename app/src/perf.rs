//! The Performance tab: tokens/s over the current reply and the last ones (egui_plot), prompt
//! vs decode speed per reply, GPU time per kernel family from the engine's timestamp profile
//! (`Gpu::start_profile`, split at the first generated token into prompt and decode), and the
//! GPU memory the device has allocated (wgpu's allocator report).
//!
//! [`PerfState::observe`] builds everything from the worker's events, so the app only passes
//! each event by.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use deepseek_wgpu::session::Stats;
use eframe::egui::{self, Color32, RichText, Sense, Vec2};
use egui_plot::{Bar, BarChart, Legend, Line, Plot};

use crate::app::fmt_bytes;
use crate::worker::WorkerEvent;

/// GPU time of one kernel family (the pipeline label up to its first `/`).
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyTime {
    pub family: String,
    pub ns: f64,
    pub dispatches: usize,
}

/// What the engine's profile of a reply says.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelTimes {
    /// timestamps were not available: why (shown instead of zeros)
    Unavailable(String),
    /// per family, largest first; prompt = up to the first generated token, decode = after
    Measured { prompt: Vec<FamilyTime>, decode: Vec<FamilyTime>, decode_tokens: usize },
}

/// What the device's allocator reports (Vulkan and DX12 report; Metal and GL do not).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuMemory {
    pub allocated: u64,
    pub reserved: u64,
    pub blocks: usize,
}

/// Sent by the worker after a load and after each reply.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuReport {
    /// `None`: the reply was not profiled (or this is a load)
    pub kernels: Option<KernelTimes>,
    /// `None`: the backend does not report its allocations
    pub memory: Option<GpuMemory>,
}

impl GpuReport {
    pub fn memory_of(device: &eframe::egui_wgpu::wgpu::Device) -> Option<GpuMemory> {
        device.generate_allocator_report().map(|r| GpuMemory { allocated: r.total_allocated_bytes, reserved: r.total_reserved_bytes, blocks: r.blocks.len() })
    }
}

/// Families of a profile, largest first.
pub fn families(p: &deepseek_wgpu::gpu::Profile) -> Vec<FamilyTime> {
    p.by_family().into_iter().map(|(family, ns, dispatches)| FamilyTime { family, ns, dispatches }).collect()
}

/// One reply as the performance views see it.
#[derive(Clone, Debug, Default)]
pub struct ReplyPerf {
    /// 1, 2, … since the model was loaded
    pub number: usize,
    /// seconds since the reply's first token, per generated token
    pub times: Vec<f64>,
    pub stats: Option<Stats>,
    pub kernels: Option<KernelTimes>,
}

impl ReplyPerf {
    /// Decode tokens/s at each token after the first, over the last `window` tokens.
    pub fn rate_series(&self, window: usize) -> Vec<[f64; 2]> {
        (1..self.times.len())
            .map(|k| {
                let w = k.min(window.max(1));
                let dt = (self.times[k] - self.times[k - w]).max(1e-9);
                [k as f64, w as f64 / dt]
            })
            .collect()
    }
}

/// How many replies the tab keeps.
pub const KEEP: usize = 16;
/// Tokens the live tokens/s is averaged over.
pub const WINDOW: usize = 8;

#[derive(Default)]
pub struct PerfState {
    /// the last replies, oldest first; the last one may be streaming
    pub replies: Vec<ReplyPerf>,
    /// the last reply is still streaming
    pub live: bool,
    start: Option<Instant>,
    pub memory: Option<GpuMemory>,
    /// a report arrived (so `memory == None` means "not reported", not "not asked yet")
    pub reported: bool,
    numbered: usize,
}

impl PerfState {
    fn begin(&mut self, now: Instant) {
        self.numbered += 1;
        self.replies.push(ReplyPerf { number: self.numbered, ..Default::default() });
        if self.replies.len() > KEEP {
            self.replies.remove(0);
        }
        self.live = true;
        self.start = Some(now);
    }

    /// Take in one worker event (the app calls this for every event, before handling it).
    pub fn observe(&mut self, ev: &WorkerEvent, now: Instant) {
        match ev {
            WorkerEvent::Loaded(_) => *self = PerfState { memory: self.memory, reported: self.reported, ..Default::default() },
            WorkerEvent::Token { .. } => {
                if !self.live {
                    self.begin(now);
                }
                let t0 = *self.start.get_or_insert(now);
                if let Some(r) = self.replies.last_mut() {
                    r.times.push(now.duration_since(t0).as_secs_f64());
                }
            }
            WorkerEvent::Stats(s) => {
                if !self.live {
                    self.begin(now);
                }
                if let Some(r) = self.replies.last_mut() {
                    r.stats = Some(s.clone());
                }
            }
            WorkerEvent::Gpu(rep) => {
                self.memory = rep.memory;
                self.reported = true;
                if let (Some(k), Some(r)) = (&rep.kernels, self.replies.last_mut().filter(|_| self.live)) {
                    r.kernels = Some(k.clone());
                }
            }
            WorkerEvent::Done { .. } | WorkerEvent::TurnFailed(_) => self.live = false,
            _ => {}
        }
    }
}

/// What the tab shows about the model's own buffers.
pub struct EngineFacts {
    pub weight_bytes: u64,
    pub cache_bytes: u64,
    /// the model runs on a server: no GPU figures from here
    pub remote: bool,
    /// the engine shares the UI's device (the allocator report then includes the UI's textures)
    pub shared_device: bool,
}

const PROMPT: Color32 = Color32::from_rgb(110, 170, 230);
const DECODE: Color32 = Color32::from_rgb(240, 160, 70);

/// Draws the tab. `profile`: the worker's switch for profiling the following replies.
/// The expert cache of the last finished reply (routed experts beyond GPU memory): hit rate
/// per MoE layer as bars, bytes uploaded per token; nothing when every expert is resident.
fn expert_cache(ui: &mut egui::Ui, state: &PerfState) {
    let Some((n, s, c)) = state.replies.iter().rev().find_map(|r| r.stats.as_ref().and_then(|s| s.expert_cache.as_ref().map(|c| (r.number, s, c)))) else { return };
    ui.separator();
    ui.strong("Expert cache");
    let tokens = (s.prompt_tokens - s.reused_tokens + s.generated_tokens).max(1);
    let slots = c.resident.first().map_or(0, |r| r.len());
    ui.label(format!(
        "Reply {n}: {slots} experts per MoE layer on the GPU, the rest in host memory · hit rate {:.0}% · {} uploaded ({} per token fed) · all expert work on the GPU",
        c.hit_rate * 100.0,
        fmt_bytes(c.uploaded_bytes),
        fmt_bytes(c.uploaded_bytes / tokens as u64)
    ));
    let bars: Vec<Bar> = c.hit_rate_per_layer.iter().enumerate().map(|(i, h)| Bar::new(i as f64, h * 100.0).width(0.8).name(format!("MoE layer {i}"))).collect();
    Plot::new("expert cache hit rate")
        .height(90.0)
        .x_axis_label("MoE layer")
        .y_axis_label("hit %")
        .include_y(0.0)
        .include_y(100.0)
        .allow_scroll(false)
        .show(ui, |p| p.bar_chart(BarChart::new("hit rate %", bars).color(DECODE)));
}

pub fn panel(ui: &mut egui::Ui, state: &PerfState, profile: &AtomicBool, engine: Option<&EngineFacts>) {
    ui.heading("Performance");
    let last = state.replies.last();
    match last {
        None => {
            ui.weak("no reply yet: send a message");
        }
        Some(r) => {
            let n = r.times.len();
            if state.live {
                let rate = r.rate_series(WINDOW).last().map_or(0.0, |p| p[1]);
                ui.label(format!("Reply {} streaming: {n} tokens, ≈ {rate:.1} tok/s over the last {WINDOW}", r.number));
            } else if let Some(s) = &r.stats {
                ui.label(format!(
                    "Reply {}: prompt {} tokens ({} reused) at {:.1} tok/s · decode {} tokens at {:.1} tok/s",
                    r.number, s.prompt_tokens, s.reused_tokens, s.prefill_tokens_per_s, s.generated_tokens, s.decode_tokens_per_s
                ));
            }
        }
    }
    ui.strong("Decode tokens/s over each reply");
    Plot::new("rate plot")
        .height(150.0)
        .legend(Legend::default())
        .x_axis_label("token of the reply")
        .y_axis_label("tok/s")
        .include_y(0.0)
        .allow_scroll(false)
        .show(ui, |p| {
            let shown = state.replies.iter().rev().take(4).collect::<Vec<_>>();
            for (i, r) in shown.iter().rev().enumerate() {
                let newest = i + 1 == shown.len();
                let colour = if newest { DECODE } else { Color32::from_gray(90 + 30 * i as u8) };
                p.line(Line::new(format!("reply {}", r.number), r.rate_series(WINDOW)).color(colour).width(if newest { 2.0 } else { 1.0 }));
            }
        });
    ui.strong("Prompt vs decode, last replies");
    let done: Vec<(usize, &Stats)> = state.replies.iter().filter_map(|r| r.stats.as_ref().map(|s| (r.number, s))).collect();
    if done.is_empty() {
        ui.weak("speeds appear when a reply ends");
    } else {
        let prompt: Vec<Bar> = done.iter().map(|(n, s)| Bar::new(*n as f64 - 0.18, s.prefill_tokens_per_s).width(0.34).name(format!("reply {n} prompt"))).collect();
        let decode: Vec<Bar> = done.iter().map(|(n, s)| Bar::new(*n as f64 + 0.18, s.decode_tokens_per_s).width(0.34).name(format!("reply {n} decode"))).collect();
        Plot::new("speed bars")
            .height(120.0)
            .legend(Legend::default())
            .x_axis_label("reply")
            .y_axis_label("tok/s")
            .include_y(0.0)
            .allow_scroll(false)
            .show(ui, |p| {
                p.bar_chart(BarChart::new("prompt tok/s", prompt).color(PROMPT));
                p.bar_chart(BarChart::new("decode tok/s", decode).color(DECODE));
            });
        egui::Grid::new("speed table").striped(true).num_columns(5).show(ui, |ui| {
            for h in ["reply", "prompt tokens", "prompt tok/s", "generated", "decode tok/s"] {
                ui.weak(h);
            }
            ui.end_row();
            for (n, s) in done.iter().rev().take(5) {
                ui.label(n.to_string());
                ui.label(format!("{} ({} reused)", s.prompt_tokens, s.reused_tokens));
                ui.label(format!("{:.1}", s.prefill_tokens_per_s));
                ui.label(s.generated_tokens.to_string());
                ui.label(format!("{:.1}", s.decode_tokens_per_s));
                ui.end_row();
            }
        });
    }
    expert_cache(ui, state);
    ui.separator();
    ui.strong("GPU time per kernel family");
    if engine.is_some_and(|e| e.remote) {
        ui.weak("the model runs on a server: its GPU is not profiled from here");
    } else {
        let mut on = profile.load(Ordering::Relaxed);
        if ui.checkbox(&mut on, "Profile the next replies").on_hover_text("time every GPU dispatch with timestamp queries (one compute pass per dispatch, waiting for each submission: generation gets slower while this is on)").changed() {
            profile.store(on, Ordering::Relaxed);
        }
        match state.replies.iter().rev().find_map(|r| r.kernels.as_ref().map(|k| (r.number, k))) {
            None => {
                ui.weak(if on { "the next reply will be profiled" } else { "no reply profiled yet" });
            }
            Some((_, KernelTimes::Unavailable(why))) => {
                ui.colored_label(ui.visuals().warn_fg_color, format!("no kernel times: {why}"));
            }
            Some((n, KernelTimes::Measured { prompt, decode, decode_tokens })) => kernel_table(ui, n, prompt, decode, *decode_tokens),
        }
    }
    ui.separator();
    ui.strong("GPU memory");
    match engine {
        Some(e) if e.remote => {
            ui.weak("the model's memory is on the server");
        }
        Some(e) => {
            ui.label(format!("engine: weights {} · cache {} allocated", fmt_bytes(e.weight_bytes), fmt_bytes(e.cache_bytes)));
            match (state.memory, state.reported) {
                (Some(m), _) => {
                    ui.label(format!(
                        "device allocator: {} in use of {} reserved in {} blocks{}",
                        fmt_bytes(m.allocated),
                        fmt_bytes(m.reserved),
                        m.blocks,
                        if e.shared_device { " (engine and UI)" } else { " (engine device)" }
                    ));
                }
                (None, true) => {
                    ui.weak("this backend does not report its allocations (wgpu's allocator report comes from Vulkan and DX12)");
                }
                (None, false) => {
                    ui.weak("the device reports its allocations after the next reply");
                }
            }
        }
        None => {
            ui.weak("no model loaded");
        }
    }
}

fn kernel_table(ui: &mut egui::Ui, reply: usize, prompt: &[FamilyTime], decode: &[FamilyTime], decode_tokens: usize) {
    let total = |v: &[FamilyTime]| v.iter().map(|f| f.ns).sum::<f64>();
    let (tp, td) = (total(prompt), total(decode));
    let per = if decode_tokens > 0 { format!(", {:.2} ms per token", td / 1e6 / decode_tokens as f64) } else { String::new() };
    ui.label(format!(
        "reply {reply}: prompt {:.1} ms in {} dispatches · decode {:.1} ms in {} dispatches ({decode_tokens} tokens{per})",
        tp / 1e6,
        prompt.iter().map(|f| f.dispatches).sum::<usize>(),
        td / 1e6,
        decode.iter().map(|f| f.dispatches).sum::<usize>()
    ));
    let mut names: Vec<&str> = Vec::new();
    for f in prompt.iter().chain(decode) {
        if !names.contains(&f.family.as_str()) {
            names.push(&f.family);
        }
    }
    let get = |v: &[FamilyTime], n: &str| v.iter().find(|f| f.family == n).map_or(0.0, |f| f.ns);
    names.sort_by(|a, b| (get(prompt, b) + get(decode, b)).total_cmp(&(get(prompt, a) + get(decode, a))));
    let max = names.iter().map(|n| get(prompt, n) + get(decode, n)).fold(0.0f64, f64::max).max(1.0);
    egui::Grid::new("kernel table").striped(true).num_columns(5).show(ui, |ui| {
        for h in ["kernel family", "prompt ms", "decode ms", "share", ""] {
            ui.weak(h);
        }
        ui.end_row();
        for n in names {
            let (p, d) = (get(prompt, n), get(decode, n));
            ui.label(RichText::new(n).monospace());
            ui.label(format!("{:.2}", p / 1e6));
            ui.label(format!("{:.2}", d / 1e6));
            ui.label(format!("{:.1}%", 100.0 * (p + d) / (tp + td).max(1.0)));
            let (r, _) = ui.allocate_exact_size(Vec2::new(120.0, 10.0), Sense::hover());
            let wp = 120.0 * (p / max) as f32;
            let wd = 120.0 * (d / max) as f32;
            ui.painter().rect_filled(egui::Rect::from_min_size(r.min, Vec2::new(wp, 10.0)), 0.0, PROMPT);
            ui.painter().rect_filled(egui::Rect::from_min_size(r.min + Vec2::new(wp, 0.0), Vec2::new(wd, 10.0)), 0.0, DECODE);
            ui.end_row();
        }
    });
    ui.horizontal(|ui| {
        for (c, t) in [(PROMPT, "prompt"), (DECODE, "decode")] {
            let (r, _) = ui.allocate_exact_size(Vec2::new(10.0, 10.0), Sense::hover());
            ui.painter().rect_filled(r, 0.0, c);
            ui.weak(t);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_builds_replies_from_events() {
        let mut s = PerfState::default();
        let t0 = Instant::now();
        let tok = |p| WorkerEvent::Token { id: 1, position: p, text: "a".into(), kind: deepseek_wgpu::chat::TextKind::Answer };
        for k in 0..5 {
            s.observe(&tok(k), t0 + std::time::Duration::from_millis(100 * k as u64));
        }
        assert!(s.live && s.replies.len() == 1);
        let rates = s.replies[0].rate_series(WINDOW);
        assert_eq!(rates.len(), 4);
        assert!(rates.iter().all(|p| (p[1] - 10.0).abs() < 1e-6), "100 ms per token = 10 tok/s: {rates:?}");
        s.observe(&WorkerEvent::Gpu(GpuReport { kernels: Some(KernelTimes::Unavailable("x".into())), memory: None }), t0);
        s.observe(&WorkerEvent::Done { stop: deepseek_wgpu::session::StopReason::Eos, assistant: None }, t0);
        assert!(!s.live && s.replies[0].kernels.is_some() && s.reported);
        s.observe(&tok(9), t0);
        assert_eq!(s.replies.iter().map(|r| r.number).collect::<Vec<_>>(), [1, 2]);
        for _ in 0..KEEP + 3 {
            s.observe(&WorkerEvent::TurnFailed("e".into()), t0);
            s.observe(&tok(0), t0);
        }
        assert_eq!(s.replies.len(), KEEP);
    }
}
