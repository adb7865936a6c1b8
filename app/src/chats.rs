//! Saved chats in the app: the sidebar (list, search, rename, delete, export), opening a
//! chat, and keeping the open one on disk as it changes (see [`crate::store`] for the files).
//! The app calls in at a few points: start, send, each engine event, the end of a turn.

use std::path::{Path, PathBuf};

use eframe::egui::{self, Key, KeyboardShortcut, Modifiers};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::chat_view::Turn;
use crate::settings::SettingsForm;
use crate::store::{self, ChatFile, ChatMeta, Journal, JournalLine, Store};
use crate::worker::WorkerEvent;

/// What persists besides the chats (`settings.json` in the data folder).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SavedSettings {
    pub form: Option<SettingsForm>,
    /// the chat open when the app closed
    pub open_chat: Option<String>,
    #[serde(default)]
    pub expand_thinking: bool,
    /// model paths opened before, newest first
    #[serde(default)]
    pub recent: Vec<String>,
    /// the adapter chosen in the window, used from the next start (`--adapter` wins)
    #[serde(default)]
    pub adapter: Option<String>,
}

/// The adapter chosen in the window last time, from `settings.json` in `data` (main.rs asks
/// before the window, and so the device, exists).
pub fn saved_adapter(data: Option<PathBuf>) -> Option<String> {
    Chats { data, ..Chats::default() }.load_settings().adapter
}

/// The saved chats and the open one.
#[derive(Default)]
pub struct Chats {
    /// the data folder (chats, settings, window); `None` when there is none (nothing is saved)
    pub data: Option<PathBuf>,
    pub store: Option<Store>,
    /// every saved chat, newest first
    pub list: Vec<ChatMeta>,
    /// the open chat's id; `None`: a new chat, saved when its first message is sent
    pub current: Option<String>,
    pub title: String,
    created: u64,
    journal: Option<Journal>,
    pub search: String,
    /// (chat id, new title) while renaming
    pub renaming: Option<(String, String)>,
    /// the chat whose deletion waits for a confirmation
    pub deleting: Option<String>,
    pub export_path: String,
    pub msg: Option<Result<String, String>>,
    /// the sampling settings saved last time, used at the first model load
    pub saved_form: Option<SettingsForm>,
}

/// The search field's id (Ctrl+F focuses it).
pub fn search_id() -> egui::Id {
    egui::Id::unique("chat search")
}

impl Chats {
    /// Open the store under `data` and list its chats.
    pub fn open(data: Option<PathBuf>) -> Chats {
        let mut c = Chats { export_path: "chat".into(), ..Chats::default() };
        let Some(data) = data else {
            c.msg = Some(Err("no data folder (set DEEPSEEK_WGPU_APP_DATA): chats are not saved".into()));
            return c;
        };
        match Store::open(&data) {
            Ok(s) => {
                let (list, bad) = s.list();
                c.list = list;
                if !bad.is_empty() {
                    c.msg = Some(Err(format!("skipped unreadable chat files: {}", bad.join("; "))));
                }
                c.store = Some(s);
            }
            Err(e) => c.msg = Some(Err(e)),
        }
        c.data = Some(data);
        c
    }

    fn settings_path(&self) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.join("settings.json"))
    }

    pub fn load_settings(&self) -> SavedSettings {
        self.settings_path().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    fn meta_updated(&mut self, chat: &ChatFile) {
        self.list.retain(|m| m.id != chat.id);
        self.list.insert(0, ChatMeta::from_file(chat));
    }
}

impl App {
    /// At start: the saved settings and the chat that was open (with a reply that was being
    /// written, if the app stopped in the middle of one).
    pub(crate) fn restore_chats(&mut self) {
        let s = self.chats.load_settings();
        if let Some(f) = s.form.filter(|f| f.parse().is_ok()) {
            self.form = f.clone();
            self.chats.saved_form = Some(f);
        }
        self.expand_thinking |= s.expand_thinking;
        self.picker.recent = s.recent;
        self.picker.adapter_choice = s.adapter;
        if let Some(id) = s.open_chat.filter(|id| self.chats.list.iter().any(|m| &m.id == id)) {
            self.open_chat(&id);
        }
    }

    /// Write `settings.json` (sampling, open chat, view options).
    pub fn save_settings(&mut self) {
        let Some(p) = self.chats.settings_path() else { return };
        let s = SavedSettings {
            form: Some(self.form.clone()),
            open_chat: self.chats.current.clone(),
            expand_thinking: self.expand_thinking,
            recent: self.picker.recent.clone(),
            adapter: self.picker.adapter_choice.clone(),
        };
        if let Err(e) = serde_json::to_vec_pretty(&s).map_err(|e| e.to_string()).and_then(|b| store::write_atomic(&p, &b).map_err(|e| e.to_string())) {
            self.chats.msg = Some(Err(format!("cannot save the settings to {}: {e}", p.display())));
        }
    }

    fn chat_file(&self, turns: &[Turn]) -> ChatFile {
        let model = match self.model_info() {
            Some(m) => m.remote.as_ref().map_or_else(|| m.dir.display().to_string(), |r| format!("{} at {}", r.model, r.base)),
            None => self.model_path.clone(),
        };
        ChatFile {
            version: 1,
            id: self.chats.current.clone().unwrap_or_default(),
            title: self.chats.title.clone(),
            created: self.chats.created,
            updated: 0,
            model,
            system: self.system_prompt.clone(),
            turns: turns.iter().map(store::SavedTurn::from).collect(),
        }
    }

    fn write_chat(&mut self, turns: usize, trace: bool) {
        let Some(store) = &self.chats.store else { return };
        let mut f = self.chat_file(&self.turns[..turns.min(self.turns.len())]);
        let trace = trace.then_some(&self.trace);
        match store.save(&mut f, trace) {
            Ok(()) => {
                self.chats.created = f.created;
                self.chats.meta_updated(&f);
            }
            Err(e) => self.chats.msg = Some(Err(e)),
        }
    }

    /// A turn was just pushed: save the chat as it was before it (a new chat gets its id and
    /// title here) and start the reply's journal.
    pub(crate) fn chat_turn_started(&mut self) {
        let Some(store) = &self.chats.store else { return };
        let user = self.turns.last().map(|t| t.user.clone()).unwrap_or_default();
        if self.chats.current.is_none() {
            self.chats.current = Some(store.new_id());
            self.chats.title = store::title_of(&user);
            self.chats.created = 0;
        }
        let id = self.chats.current.clone().unwrap_or_default();
        let routing_missing = !store.dir.join(format!("{id}.routing.json")).exists();
        self.write_chat(self.turns.len() - 1, routing_missing);
        if let Some(store) = &self.chats.store {
            match store.begin_journal(&id, &user) {
                Ok(j) => self.chats.journal = Some(j),
                Err(e) => self.chats.msg = Some(Err(e)),
            }
        }
        self.save_settings();
    }

    /// An engine event for the reply being written: one journal line.
    pub(crate) fn chat_journal(&mut self, ev: &WorkerEvent) {
        let Some(j) = self.chats.journal.as_mut() else { return };
        use deepseek_wgpu::chat::TextKind::Reasoning;
        let line = match ev {
            WorkerEvent::Token { id, position, text, kind } => JournalLine::Token { id: *id, position: *position, text: text.clone(), reasoning: *kind == Reasoning },
            WorkerEvent::Text { kind, text } => JournalLine::Text { reasoning: *kind == Reasoning, text: text.clone() },
            WorkerEvent::Routing(r) => JournalLine::Route { r: store::save_route(r) },
            WorkerEvent::AnswerWasReasoning => JournalLine::AnswerWasReasoning,
            _ => return,
        };
        if let Err(e) = j.append(&line) {
            self.chats.msg = Some(Err(e));
            self.chats.journal = None;
        }
    }

    /// The reply ended (or failed): save the whole chat with its routing; the journal goes.
    pub(crate) fn chat_turn_ended(&mut self) {
        if self.chats.journal.take().is_some() {
            self.write_chat(self.turns.len(), true);
        }
    }

    /// Show a saved chat (its routing too when it was recorded with a model of the loaded shape).
    pub fn open_chat(&mut self, id: &str) {
        if self.busy {
            return;
        }
        let Some(store) = &self.chats.store else { return };
        match store.load(id) {
            Ok((chat, routing)) => {
                self.turns = chat.turns.into_iter().map(Turn::from).collect();
                self.system_prompt = chat.system;
                self.trace.clear();
                if let Some(r) = routing.filter(|r| r.shape() == self.trace.shape) {
                    for p in r.positions {
                        self.trace.push(store::load_route(p));
                    }
                }
                self.chats.current = Some(chat.id);
                self.chats.title = chat.title;
                self.chats.created = chat.created;
                self.pinned = None;
                self.stats = None;
                self.editing = None;
                self.chats.deleting = None;
            }
            Err(e) => self.chats.msg = Some(Err(e)),
        }
    }

    /// After a model loads: the open chat's routing, if it was recorded at this shape.
    pub(crate) fn reload_chat_routing(&mut self) {
        let (Some(store), Some(id)) = (&self.chats.store, &self.chats.current) else { return };
        if let Ok((_, Some(r))) = store.load(id) {
            if r.shape() == self.trace.shape {
                for p in r.positions {
                    self.trace.push(store::load_route(p));
                }
            }
        }
    }

    pub fn delete_chat(&mut self, id: &str) {
        let Some(store) = &self.chats.store else { return };
        match store.delete(id) {
            Ok(()) => {
                self.chats.list.retain(|m| m.id != id);
                if self.chats.current.as_deref() == Some(id) {
                    self.new_chat();
                }
                self.chats.msg = None;
            }
            Err(e) => self.chats.msg = Some(Err(e)),
        }
        self.chats.deleting = None;
    }

    pub fn rename_chat(&mut self, id: &str, title: &str) {
        let title = title.trim();
        if title.is_empty() {
            self.chats.msg = Some(Err("a chat's name cannot be empty".into()));
            return;
        }
        let Some(store) = &self.chats.store else { return };
        match store.rename(id, title) {
            Ok(()) => {
                if let Some(m) = self.chats.list.iter_mut().find(|m| m.id == id) {
                    m.title = title.to_string();
                    m.haystack = format!("{}\n{}", title.to_lowercase(), m.haystack);
                }
                if self.chats.current.as_deref() == Some(id) {
                    self.chats.title = title.to_string();
                }
                self.chats.renaming = None;
            }
            Err(e) => self.chats.msg = Some(Err(e)),
        }
    }

    /// Write the open chat as Markdown or as JSON with its routing to the export field's path
    /// (the extension added when missing).
    pub fn export_chat(&mut self, json: bool) {
        let ext = if json { "json" } else { "md" };
        let mut path = self.chats.export_path.trim().to_string();
        if path.is_empty() {
            self.chats.msg = Some(Err("type a file name to export to".into()));
            return;
        }
        if Path::new(&path).extension().is_none() {
            path = format!("{path}.{ext}");
        }
        let mut chat = self.chat_file(&self.turns);
        if chat.title.is_empty() {
            chat.title = self.turns.first().map_or_else(|| "New chat".into(), |t| store::title_of(&t.user));
        }
        let text = if json { store::to_json(&chat, Some(&store::RoutingFile::of(&self.trace))) } else { store::to_markdown(&chat) };
        self.chats.msg = Some(match std::fs::write(&path, text) {
            Ok(()) => Ok(format!("wrote {} turns to {path}", chat.turns.len())),
            Err(e) => Err(format!("cannot write {path}: {e}")),
        });
    }

    /// Esc stops, Ctrl+N starts a new chat, Ctrl+F searches the chats. (Enter / Shift+Enter
    /// are the composer's; Ctrl+C is egui's on any selected text.)
    pub(crate) fn shortcuts(&mut self, ctx: &egui::Context) {
        if self.busy && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) {
            self.stop();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::N))) {
            self.new_chat();
        }
        if ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::F))) {
            ctx.memory_mut(|m| m.request_focus(search_id()));
        }
    }

    /// The chats sidebar.
    pub(crate) fn chats_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Chats");
        if ui.add_enabled(!self.busy, egui::Button::new("New chat")).on_hover_text("Ctrl+N").on_disabled_hover_text("stop the answer first").clicked() {
            self.new_chat();
        }
        let label = ui.label("Search chats");
        ui.add(egui::TextEdit::singleline(&mut self.chats.search).id(search_id()).hint_text("Ctrl+F").desired_width(ui.available_width())).labelled_by(label.id);
        let shown: Vec<usize> = (0..self.chats.list.len()).filter(|&i| self.chats.list[i].matches(&self.chats.search)).collect();
        if self.chats.store.is_some() && shown.is_empty() {
            ui.weak(if self.chats.list.is_empty() { "no saved chats yet" } else { "no chat matches" });
        }
        let row_h = ui.spacing().interact_size.y;
        let mut open = None;
        // One row per chat, only the visible rows laid out: hundreds of chats stay cheap.
        egui::ScrollArea::vertical().id_salt("chat list").max_height((ui.available_height() * 0.3).clamp(100.0, 400.0)).auto_shrink([false, true]).show_rows(ui, row_h, shown.len(), |ui, rows| {
            for &i in &shown[rows] {
                let m = &self.chats.list[i];
                let current = self.chats.current.as_deref() == Some(m.id.as_str());
                let r = ui.add_sized([ui.available_width(), row_h], egui::Button::selectable(current, egui::RichText::new(&m.title)).truncate());
                let r = r.on_hover_text(format!("{} · {} turns", m.title, m.turns));
                if r.clicked() && !current {
                    open = Some(m.id.clone());
                }
            }
        });
        if let Some(id) = open {
            if self.busy {
                self.chats.msg = Some(Err("stop the answer before switching chats".into()));
            } else {
                self.open_chat(&id);
            }
        }
        ui.separator();
        self.open_chat_section(ui);
    }

    /// Rename, delete and export the open chat.
    fn open_chat_section(&mut self, ui: &mut egui::Ui) {
        let Some(id) = self.chats.current.clone() else {
            ui.weak("A new chat: saved when you send its first message.");
            self.chat_message(ui);
            return;
        };
        match self.chats.renaming.clone() {
            Some((rid, mut title)) if rid == id => {
                let label = ui.label("New name");
                let r = ui.add(egui::TextEdit::singleline(&mut title).desired_width(ui.available_width())).labelled_by(label.id);
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                self.chats.renaming = Some((rid, title.clone()));
                ui.horizontal(|ui| {
                    if ui.button("Save name").clicked() || enter {
                        self.rename_chat(&id, &title);
                    }
                    if ui.button("Cancel").clicked() {
                        self.chats.renaming = None;
                    }
                });
            }
            _ => {
                ui.add(egui::Label::new(egui::RichText::new(&self.chats.title).strong()).truncate());
                ui.horizontal(|ui| {
                    if ui.button("Rename").clicked() {
                        self.chats.renaming = Some((id.clone(), self.chats.title.clone()));
                    }
                    if self.chats.deleting.as_deref() == Some(id.as_str()) {
                        if ui.button("Really delete").clicked() {
                            self.delete_chat(&id);
                        }
                        if ui.button("Keep").clicked() {
                            self.chats.deleting = None;
                        }
                    } else if ui.add_enabled(!self.busy, egui::Button::new("Delete")).clicked() {
                        self.chats.deleting = Some(id.clone());
                    }
                });
            }
        }
        let label = ui.label("Export chat to (.md / .json added)");
        ui.add(egui::TextEdit::singleline(&mut self.chats.export_path).desired_width(ui.available_width())).labelled_by(label.id);
        ui.horizontal(|ui| {
            if ui.button("Markdown").on_hover_text("the turns, the reasoning folded").clicked() {
                self.export_chat(false);
            }
            if ui.button("JSON + routing").on_hover_text("the turns with their tokens and every position's experts and weights").clicked() {
                self.export_chat(true);
            }
        });
        self.chat_message(ui);
    }

    fn chat_message(&mut self, ui: &mut egui::Ui) {
        match &self.chats.msg {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            None => {}
        }
        if let Some(d) = &self.chats.data {
            // one truncated line (the whole path on hover), so a long path never moves the layout
            let text = egui::RichText::new(format!("saved in {}", d.join("chats").display())).weak();
            ui.add(egui::Label::new(text).truncate()).on_hover_text(format!("{} (--data-dir or DEEPSEEK_WGPU_APP_DATA moves it)", d.join("chats").display()));
        }
    }
}

/// The chat's id salt for per-chat UI state (scroll position, measured turn heights).
pub fn chat_salt(app: &App) -> String {
    app.chats.current.clone().unwrap_or_default()
}
