//! The model picker in the top bar: the native file dialog (`rfd`), recent models, drag and
//! drop onto the window, what a model needs against what the adapter has (the worker's
//! [`Fit`], from the library's preflight) with *Load with expert cache* when only the routed
//! experts are too many, *Unload*, and the adapter list.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use eframe::egui;

use crate::app::{fmt_bytes, App, ModelState};
use crate::worker::Command;
use crate::worker::{Fit, Verdict};

/// How many recent models are kept.
pub const RECENT_MAX: usize = 10;

/// A dialog that answers "nothing chosen" sooner than this did not open (rfd reports a
/// missing portal only in its log); no one cancels a dialog that fast.
const DIALOG_FAILED_WITHIN: Duration = Duration::from_millis(500);

/// One adapter of `deepseek_wgpu::gpu::list_adapters`, in words.
#[derive(Clone, Debug)]
pub struct AdapterRow {
    pub name: String,
    pub backend: String,
    pub kind: String,
    pub memory: String,
}

#[derive(Default)]
pub struct Picker {
    /// model paths loaded before, newest first (saved in `settings.json`)
    pub recent: Vec<String>,
    /// a file dialog running on its own thread, and when it opened
    dialog: Option<(Receiver<Option<PathBuf>>, Instant)>,
    /// what the dialog (or the adapter choice) has to say
    pub msg: Option<String>,
    /// the preflight of the last load
    pub fit: Option<Fit>,
    /// the adapters, listed when the menu first opens
    adapters: Option<Vec<AdapterRow>>,
    /// the adapter chosen for the next start (saved in `settings.json`)
    pub adapter_choice: Option<String>,
    /// the adapter the UI and the engine run on
    pub current_adapter: String,
}

/// Put `path` first in `recent` (once), keeping at most [`RECENT_MAX`].
pub fn remember(recent: &mut Vec<String>, path: &str) {
    recent.retain(|p| p != path);
    recent.insert(0, path.to_string());
    recent.truncate(RECENT_MAX);
}

/// A recent entry's label: its last two path components (`chat_tiny` alone says little,
/// `model.gguf` nothing), "(missing)" when the path is gone.
pub fn recent_label(path: &str) -> String {
    let p = Path::new(path);
    let parts: Vec<_> = p.components().rev().take(2).collect();
    let short: PathBuf = parts.into_iter().rev().collect();
    if p.exists() {
        short.display().to_string()
    } else {
        format!("{} (missing)", short.display())
    }
}

/// Why no file dialog can open here, if that can be told before trying: on Linux rfd talks to
/// the desktop portal over the D-Bus session bus, else runs zenity.
pub fn dialog_unavailable(dbus_address: Option<&str>, runtime_bus: bool, zenity: bool) -> Option<String> {
    if !cfg!(target_os = "linux") || dbus_address.is_some_and(|a| !a.is_empty()) || runtime_bus || zenity {
        return None;
    }
    Some(NO_DIALOG.to_string())
}

pub const NO_DIALOG: &str = "No file dialog here: it needs the desktop portal (xdg-desktop-portal on the D-Bus session bus) or zenity, and neither answered. Type the path in the model field, pick a recent model, or drop a file or folder onto the window.";

fn dialog_unavailable_here() -> Option<String> {
    let dbus = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    let zenity = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("zenity").is_file()));
    dialog_unavailable(dbus.as_deref(), runtime_bus, zenity)
}

impl Picker {
    /// Nothing opened yet, on the adapter named `current`.
    pub fn new(current_adapter: String) -> Picker {
        Picker { current_adapter, ..Default::default() }
    }

    /// Open the native dialog (a folder, or a `.safetensors` / `.gguf` file) on its own thread;
    /// [`Picker::poll_dialog`] gets the answer.
    pub fn open_dialog(&mut self, ctx: &egui::Context, folder: bool) {
        if self.dialog.is_some() {
            return;
        }
        if let Some(why) = dialog_unavailable_here() {
            self.msg = Some(why);
            return;
        }
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("file dialog".into()).spawn(move || {
            let d = rfd::FileDialog::new().set_title("Open a model");
            let picked = if folder { d.pick_folder() } else { d.add_filter("model", &["gguf", "safetensors"]).pick_file() };
            let _ = tx.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => {
                self.msg = None;
                self.dialog = Some((rx, Instant::now()));
            }
            Err(e) => self.msg = Some(format!("cannot open the file dialog: {e}")),
        }
    }

    /// The dialog's answer once it closed: the model path to open. A `.safetensors` file opens
    /// its folder (the checkpoint is the folder: config, shards, tokenizer).
    pub fn poll_dialog(&mut self) -> Option<PathBuf> {
        let (rx, opened) = self.dialog.as_ref()?;
        let answer = rx.try_recv().ok()?;
        let fast = opened.elapsed() < DIALOG_FAILED_WITHIN;
        self.dialog = None;
        match answer {
            Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) => p.parent().map(Path::to_path_buf),
            Some(p) => Some(p),
            None if fast => {
                self.msg = Some(NO_DIALOG.to_string());
                None
            }
            None => None,
        }
    }

    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    pub fn adapters(&mut self) -> &[AdapterRow] {
        self.adapters.get_or_insert_with(|| {
            deepseek_wgpu::gpu::list_adapters()
                .into_iter()
                .map(|(info, limits, _)| {
                    let cpu = info.device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu;
                    let memory = match deepseek_wgpu::model::host_available_memory().filter(|_| cpu) {
                        Some(m) => format!("host memory: {} available", fmt_bytes(m)),
                        None => format!("memory not reported by wgpu (largest buffer {})", fmt_bytes(limits.max_buffer_size)),
                    };
                    AdapterRow { name: info.name, backend: format!("{:?}", info.backend), kind: format!("{:?}", info.device_type), memory }
                })
                .collect()
        })
    }
}

/// What the model needs against what the adapter has, and the verdict. Returns true when
/// *Load with expert cache* was clicked.
pub fn fit_view(ui: &mut egui::Ui, fit: &Fit, can_load: bool) -> bool {
    let has = match (fit.budget, fit.budget_given) {
        (Some(b), true) => format!("the GPU memory given (--gpu-memory) is {}", fmt_bytes(b)),
        (Some(b), false) => format!("the adapter has {}", fmt_bytes(b)),
        (None, _) => "the adapter does not report its memory (the upload says if it runs out)".to_string(),
    };
    ui.label(format!(
        "Needs {} on the GPU: weights {} (routed experts {}) + {} {} at {} tokens + activations {} · {has}",
        fmt_bytes(fit.total()),
        fmt_bytes(fit.weights),
        fmt_bytes(fit.expert_weights),
        fit.cache_kind,
        fmt_bytes(fit.cache),
        fit.ctx,
        fmt_bytes(fit.activations)
    ));
    let mut offload = false;
    match &fit.verdict {
        Verdict::Fits => {
            ui.colored_label(egui::Color32::from_rgb(60, 160, 60), "Fits.");
        }
        Verdict::Offload { slots, n_routed, gpu_bytes } => {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("Won't fit with all experts on the GPU; with the expert cache: {slots} of {n_routed} routed experts per MoE layer on the GPU ({} in all), the rest in host memory.", fmt_bytes(*gpu_bytes)),
                );
                offload = ui.add_enabled(can_load, egui::Button::new("Load with expert cache")).clicked();
            });
        }
        Verdict::WontFit(e) => {
            let name = fit.dir.file_name().map_or_else(|| fit.dir.display().to_string(), |n| n.to_string_lossy().to_string());
            ui.colored_label(ui.visuals().error_fg_color, format!("{name} won't fit: {e}"));
        }
    }
    offload
}

impl App {
    /// The top bar's picker buttons, after *Open*.
    pub(crate) fn picker_buttons(&mut self, ui: &mut egui::Ui, can_open: bool) {
        let dialog = !self.picker.dialog_open();
        if ui.add_enabled(can_open && dialog, egui::Button::new("Open file…")).on_hover_text("a .gguf file, or a .safetensors file of a checkpoint folder").clicked() {
            self.picker.open_dialog(ui.ctx(), false);
        }
        if ui.add_enabled(can_open && dialog, egui::Button::new("Open folder…")).on_hover_text("a checkpoint folder: config.json, *.safetensors, tokenizer files").clicked() {
            self.picker.open_dialog(ui.ctx(), true);
        }
        let mut open = None;
        ui.add_enabled_ui(can_open, |ui| {
            ui.menu_button("Recent", |ui| {
                if self.picker.recent.is_empty() {
                    ui.weak("no model opened yet");
                }
                for p in &self.picker.recent {
                    let exists = Path::new(p).exists();
                    let b = ui.add_enabled(exists, egui::Button::new(recent_label(p))).on_hover_text(p.as_str()).on_disabled_hover_text(format!("{p} is gone"));
                    if b.clicked() {
                        open = Some(p.clone());
                    }
                }
            });
        });
        if let Some(p) = open {
            self.model_path = p;
            self.open_model();
        }
        let loaded = matches!(self.model, ModelState::Ready(_));
        if ui.add_enabled(loaded && !self.busy, egui::Button::new("Unload")).on_hover_text("drop the model and free its GPU memory").clicked() {
            if let Err(e) = self.worker.send(Command::Unload) {
                self.banner = Some(e);
            }
        }
        ui.menu_button("Adapter", |ui| self.adapter_menu(ui));
    }

    fn adapter_menu(&mut self, ui: &mut egui::Ui) {
        ui.strong("GPU adapters (wgpu)");
        let current = self.picker.current_adapter.clone();
        let rows = self.picker.adapters().to_vec();
        let mut chosen = None;
        for (i, a) in rows.iter().enumerate() {
            let now = if a.name == current { " · in use" } else { "" };
            let text = format!("{i}: {} · {} · {} · {}{now}", a.name, a.backend, a.kind, a.memory);
            if ui.selectable_label(self.picker.adapter_choice.as_deref() == Some(a.name.as_str()), text).clicked() {
                chosen = Some(a.name.clone());
            }
        }
        if rows.len() < 2 {
            ui.weak("only one adapter: nothing to choose");
        }
        ui.weak("The UI and the engine share one device: a new adapter takes effect at next start.");
        if let Some(name) = chosen {
            self.picker.msg = Some(if name == current {
                format!("{name} is in use.")
            } else {
                format!("Adapter {name} chosen: takes effect at next start (the UI and the engine share one device).")
            });
            self.picker.adapter_choice = Some(name);
            self.save_settings();
        }
    }

    /// Below the model line: the fit check and the picker's messages.
    pub(crate) fn picker_lines(&mut self, ui: &mut egui::Ui) {
        let can_load = !self.busy && !self.loading();
        // while loading and when refused; once loaded the model line tells what is on the GPU
        if let Some(fit) = self.picker.fit.as_ref().filter(|_| !matches!(self.model, ModelState::Ready(_))) {
            if fit_view(ui, fit, can_load) {
                self.model_path = fit.dir.display().to_string();
                self.open_model_with(true);
            }
        }
        if let Some(m) = self.picker.msg.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.label(m);
                if ui.small_button("OK").clicked() {
                    self.picker.msg = None;
                }
            });
        }
    }

    /// A path chosen in the dialog or dropped onto the window opens like one typed.
    pub(crate) fn picked_or_dropped(&mut self, ctx: &egui::Context) {
        // while something is dragged over the window: say what a drop does
        if ctx.input(|i| !i.raw.hovered_files.is_empty()) {
            let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::new("drop hint")));
            let rect = ctx.content_rect();
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(180));
            painter.text(rect.center(), egui::Align2::CENTER_CENTER, "Drop a .gguf file or a model folder to open it", egui::FontId::proportional(24.0), egui::Color32::WHITE);
        }
        let dropped = ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        let Some(p) = self.picker.poll_dialog().or(dropped) else { return };
        if self.busy || self.loading() {
            self.picker.msg = Some(format!("{} not opened: wait for the current answer or load to finish", p.display()));
            return;
        }
        self.model_path = p.display().to_string();
        self.open_model();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_newest_first_once_and_at_most_ten() {
        let mut r = Vec::new();
        for i in 0..12 {
            remember(&mut r, &format!("/m/{i}"));
        }
        remember(&mut r, "/m/5");
        assert_eq!(r.len(), RECENT_MAX);
        assert_eq!(r[..3], ["/m/5".to_string(), "/m/11".into(), "/m/10".into()]);
        assert_eq!(r.iter().filter(|p| *p == "/m/5").count(), 1);
    }

    #[test]
    fn recent_labels_and_missing_paths() {
        assert_eq!(recent_label("/no/such/dir/model.gguf"), "dir/model.gguf (missing)");
        let here = env!("CARGO_MANIFEST_DIR");
        assert_eq!(recent_label(&format!("{here}/src")), format!("{}/src", Path::new(here).file_name().unwrap().to_string_lossy()));
    }

    /// What the dialog's thread sends back: nothing at once is a dialog that did not open (a
    /// message), a `.safetensors` file opens its folder, a `.gguf` file itself.
    #[test]
    fn dialog_answers() {
        let answer = |a: Option<PathBuf>, opened: Instant| {
            let (tx, rx) = channel();
            tx.send(a).unwrap();
            let mut p = Picker { dialog: Some((rx, opened)), ..Picker::default() };
            let path = p.poll_dialog();
            (path, p.msg.clone(), p.dialog_open())
        };
        assert_eq!(answer(None, Instant::now()), (None, Some(NO_DIALOG.to_string()), false));
        let long_ago = Instant::now() - Duration::from_secs(5);
        assert_eq!(answer(None, long_ago), (None, None, false), "cancelled by the user: no message");
        assert_eq!(answer(Some("/m/r1/model-00001-of-00002.safetensors".into()), long_ago).0, Some(PathBuf::from("/m/r1")));
        assert_eq!(answer(Some("/m/x.gguf".into()), long_ago).0, Some(PathBuf::from("/m/x.gguf")));
        let (tx, rx) = channel::<Option<PathBuf>>();
        let mut p = Picker { dialog: Some((rx, Instant::now())), ..Picker::default() };
        assert_eq!(p.poll_dialog(), None);
        assert!(p.dialog_open(), "still open while the thread has not answered");
        drop(tx);
    }

    #[test]
    fn no_dialog_without_a_session_bus_or_zenity() {
        if !cfg!(target_os = "linux") {
            return;
        }
        assert!(dialog_unavailable(None, false, false).unwrap().contains("xdg-desktop-portal"));
        assert!(dialog_unavailable(Some(""), false, false).is_some());
        assert!(dialog_unavailable(Some("unix:path=/run/user/1000/bus"), false, false).is_none());
        assert!(dialog_unavailable(None, true, false).is_none());
        assert!(dialog_unavailable(None, false, true).is_none());
    }
}
