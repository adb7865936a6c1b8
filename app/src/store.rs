//! Chats on disk. One folder (the platform's data folder, or `--data-dir` /
//! `DEEPSEEK_WGPU_APP_DATA`) holds:
//!
//! - `chats/ID.json`: the chat's finished turns (text, tokens, stop reason, stats), its title,
//!   system prompt and model, rewritten atomically (temporary file, fsync, rename) when a turn
//!   ends, a chat is renamed or a message is sent;
//! - `chats/ID.routing.json`: its routing trace (large for big models: read only when the chat
//!   is opened), written atomically with it;
//! - `chats/ID.journal.jsonl`: the reply being written, one line per event (token, text,
//!   routing), appended as they arrive and removed when the turn is saved. A crash loses at most
//!   the line being written; the next start replays the journal into the chat;
//! - `settings.json`: sampling settings, the open chat and view options;
//! - `app.ron`: eframe's window size and position and egui's layout (panel widths).
//!
//! The types here mirror the app's and the library's (which are not `Deserialize`), so the
//! file format is owned by this module.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use deepseek_wgpu::chat::{Message, TextKind};
use deepseek_wgpu::session::{LayerRoute, Stats, StopReason};
use serde::{Deserialize, Serialize};

use crate::chat_view::{Reply, TokenChip, Turn};
use crate::routing::{PositionRoute, RoutingShape, Trace};

/// The environment variable that moves the data folder (tests use a temporary one).
pub const DATA_ENV: &str = "DEEPSEEK_WGPU_APP_DATA";

/// `explicit`, else `$DEEPSEEK_WGPU_APP_DATA`, else the platform's data folder
/// (`~/.local/share/deepseek-wgpu` on Linux, `~/Library/Application Support/deepseek-wgpu` on
/// macOS, `%APPDATA%\deepseek-wgpu\data` on Windows).
pub fn data_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .or_else(|| eframe::storage_dir("deepseek-wgpu"))
}

/// Write `bytes` to `path` so that a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedStop {
    Eos,
    MaxTokens,
    StopString(String),
    ContextFull,
    Cancelled,
}

impl From<&StopReason> for SavedStop {
    fn from(s: &StopReason) -> Self {
        match s {
            StopReason::Eos => SavedStop::Eos,
            StopReason::MaxTokens => SavedStop::MaxTokens,
            StopReason::StopString(x) => SavedStop::StopString(x.clone()),
            StopReason::ContextFull => SavedStop::ContextFull,
            StopReason::Cancelled => SavedStop::Cancelled,
        }
    }
}

impl From<SavedStop> for StopReason {
    fn from(s: SavedStop) -> Self {
        match s {
            SavedStop::Eos => StopReason::Eos,
            SavedStop::MaxTokens => StopReason::MaxTokens,
            SavedStop::StopString(x) => StopReason::StopString(x),
            SavedStop::ContextFull => StopReason::ContextFull,
            SavedStop::Cancelled => StopReason::Cancelled,
        }
    }
}

/// A token: id, position, text, whether it is reasoning (a tuple keeps long chats compact).
pub type SavedToken = (u32, usize, String, bool);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedTurn {
    pub user: String,
    #[serde(default)]
    pub reasoning: String,
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub tokens: Vec<SavedToken>,
    #[serde(default)]
    pub prompt: Option<(usize, usize)>,
    #[serde(default)]
    pub assistant: Option<Message>,
    #[serde(default)]
    pub stop: Option<SavedStop>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub stats: Option<Stats>,
}

impl From<&Turn> for SavedTurn {
    fn from(t: &Turn) -> Self {
        let r = &t.reply;
        SavedTurn {
            user: t.user.clone(),
            reasoning: r.reasoning.clone(),
            answer: r.answer.clone(),
            tokens: r.tokens.iter().map(|c| (c.id, c.position, c.text.clone(), c.kind == TextKind::Reasoning)).collect(),
            prompt: r.prompt,
            assistant: r.assistant.clone(),
            stop: r.stop.as_ref().map(SavedStop::from),
            error: r.error.clone(),
            stats: r.stats.clone(),
        }
    }
}

impl From<SavedTurn> for Turn {
    fn from(t: SavedTurn) -> Self {
        let tokens = t
            .tokens
            .into_iter()
            .map(|(id, position, text, reasoning)| TokenChip { id, position, text, kind: if reasoning { TextKind::Reasoning } else { TextKind::Answer } })
            .collect();
        Turn {
            user: t.user,
            reply: Reply {
                tokens,
                reasoning: t.reasoning,
                answer: t.answer,
                prompt: t.prompt,
                assistant: t.assistant,
                stop: t.stop.map(StopReason::from),
                error: t.error,
                stats: t.stats,
                ..Reply::default()
            },
        }
    }
}

/// The chat file (`chats/ID.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatFile {
    pub version: u32,
    pub id: String,
    pub title: String,
    /// unix seconds
    pub created: u64,
    pub updated: u64,
    /// the model folder, file or server it was last used with
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub system: String,
    pub turns: Vec<SavedTurn>,
}

/// What the sidebar lists of a chat, without its tokens.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatMeta {
    pub id: String,
    pub title: String,
    pub updated: u64,
    pub turns: usize,
    /// title and message text, lowercased, for search
    pub haystack: String,
}

#[derive(Deserialize)]
struct MetaTurn {
    user: String,
    #[serde(default)]
    answer: String,
}

#[derive(Deserialize)]
struct MetaFile {
    id: String,
    title: String,
    updated: u64,
    turns: Vec<MetaTurn>,
}

impl ChatMeta {
    fn of(id: &str, title: &str, updated: u64, texts: impl Iterator<Item = (String, String)>) -> ChatMeta {
        let mut haystack = title.to_lowercase();
        let mut turns = 0;
        for (u, a) in texts {
            turns += 1;
            haystack.push('\n');
            haystack.push_str(&u.to_lowercase());
            haystack.push('\n');
            haystack.push_str(&a.to_lowercase());
        }
        ChatMeta { id: id.to_string(), title: title.to_string(), updated, turns, haystack }
    }

    pub fn from_file(c: &ChatFile) -> ChatMeta {
        ChatMeta::of(&c.id, &c.title, c.updated, c.turns.iter().map(|t| (t.user.clone(), t.answer.clone())))
    }

    /// Every word of `query` appears in the title or the messages (case-insensitive).
    pub fn matches(&self, query: &str) -> bool {
        query.split_whitespace().all(|w| self.haystack.contains(&w.to_lowercase()))
    }
}

/// The routing file (`chats/ID.routing.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingFile {
    /// MoE layers, experts, groups, groups per token, top-k
    pub shape: (Vec<usize>, usize, usize, usize, usize),
    pub positions: Vec<SavedRoute>,
}

/// position, token, text, per MoE layer: (layer, experts, weights)
pub type SavedRoute = (usize, u32, String, Vec<(usize, Vec<u32>, Vec<f32>)>);

pub fn save_route(r: &PositionRoute) -> SavedRoute {
    (r.position, r.token, r.text.clone(), r.layers.iter().map(|l| (l.layer, l.experts.clone(), l.weights.clone())).collect())
}

pub fn load_route(r: SavedRoute) -> PositionRoute {
    PositionRoute { position: r.0, token: r.1, text: r.2, layers: r.3.into_iter().map(|(layer, experts, weights)| LayerRoute { layer, experts, weights }).collect() }
}

impl RoutingFile {
    pub fn of(trace: &Trace) -> RoutingFile {
        let s = &trace.shape;
        RoutingFile { shape: (s.layers.clone(), s.n_experts, s.n_group, s.topk_group, s.top_k), positions: trace.positions.iter().map(save_route).collect() }
    }

    pub fn shape(&self) -> RoutingShape {
        let (layers, n_experts, n_group, topk_group, top_k) = self.shape.clone();
        RoutingShape { layers, n_experts, n_group, topk_group, top_k }
    }
}

/// One journal line: what arrived for the reply being written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum JournalLine {
    /// the turn started: the user's message
    Turn { user: String },
    Token { id: u32, position: usize, text: String, reasoning: bool },
    Text { reasoning: bool, text: String },
    Route { r: SavedRoute },
    /// a server's reply so far turned out to be reasoning
    AnswerWasReasoning,
}

/// The folder of saved chats.
#[derive(Debug)]
pub struct Store {
    pub dir: PathBuf,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Store {
    /// The store under `data` (`data/chats`), created if missing.
    pub fn open(data: &Path) -> Result<Store, String> {
        let dir = data.join("chats");
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create the chats folder {}: {e}", dir.display()))?;
        Ok(Store { dir })
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// A new id: the time in milliseconds, made unique in this folder.
    pub fn new_id(&self) -> String {
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mut id = format!("{ms}");
        let mut n = 1;
        while self.path(&id, "json").exists() {
            id = format!("{ms}-{n}");
            n += 1;
        }
        id
    }

    /// Every chat's metadata, newest first. Files that cannot be read are skipped and named in
    /// the second list.
    pub fn list(&self) -> (Vec<ChatMeta>, Vec<String>) {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return (out, vec![format!("cannot read {}", self.dir.display())]);
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // ID.json only (not ID.routing.json, temporary files or journals)
            if !name.ends_with(".json") || name.matches('.').count() != 1 {
                continue;
            }
            match fs::read(&p).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice::<MetaFile>(&b).map_err(|e| e.to_string())) {
                Ok(m) => out.push(ChatMeta::of(&m.id, &m.title, m.updated, m.turns.into_iter().map(|t| (t.user, t.answer)))),
                Err(e) => bad.push(format!("{}: {e}", p.display())),
            }
        }
        out.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
        (out, bad)
    }

    /// Read a chat, its routing (when saved) and replay its journal (a reply that was being
    /// written when the app stopped) into the last turn.
    pub fn load(&self, id: &str) -> Result<(ChatFile, Option<RoutingFile>), String> {
        let p = self.path(id, "json");
        let bytes = fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let mut chat: ChatFile = serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a chat file: {e}", p.display()))?;
        let rp = self.path(id, "routing.json");
        let mut routing = fs::read(&rp).ok().and_then(|b| serde_json::from_slice::<RoutingFile>(&b).ok());
        if let Ok(text) = fs::read_to_string(self.path(id, "journal.jsonl")) {
            replay(&mut chat, routing.as_mut(), &text);
        }
        Ok((chat, routing))
    }

    /// Save the chat and its routing atomically; the journal (now in the chat) is removed.
    pub fn save(&self, chat: &mut ChatFile, trace: Option<&Trace>) -> Result<(), String> {
        chat.version = 1;
        chat.updated = unix_now();
        if chat.created == 0 {
            chat.created = chat.updated;
        }
        let err = |p: &Path, e: &dyn std::fmt::Display| format!("cannot save the chat to {}: {e}", p.display());
        if let Some(t) = trace {
            let rp = self.path(&chat.id, "routing.json");
            let bytes = serde_json::to_vec(&RoutingFile::of(t)).map_err(|e| err(&rp, &e))?;
            write_atomic(&rp, &bytes).map_err(|e| err(&rp, &e))?;
        }
        let p = self.path(&chat.id, "json");
        let bytes = serde_json::to_vec(chat).map_err(|e| err(&p, &e))?;
        write_atomic(&p, &bytes).map_err(|e| err(&p, &e))?;
        let _ = fs::remove_file(self.path(&chat.id, "journal.jsonl"));
        Ok(())
    }

    /// Start the journal of a new reply (after the chat file was saved without it).
    pub fn begin_journal(&self, id: &str, user: &str) -> Result<Journal, String> {
        let p = self.path(id, "journal.jsonl");
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(&p).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        let mut j = Journal { file, path: p };
        j.append(&JournalLine::Turn { user: user.to_string() })?;
        Ok(j)
    }

    pub fn delete(&self, id: &str) -> Result<(), String> {
        for ext in ["journal.jsonl", "routing.json"] {
            let _ = fs::remove_file(self.path(id, ext));
        }
        let p = self.path(id, "json");
        fs::remove_file(&p).map_err(|e| format!("cannot delete {}: {e}", p.display()))
    }

    pub fn rename(&self, id: &str, title: &str) -> Result<(), String> {
        let (mut chat, _) = self.load(id)?;
        chat.title = title.to_string();
        let p = self.path(id, "json");
        let bytes = serde_json::to_vec(&chat).map_err(|e| e.to_string())?;
        write_atomic(&p, &bytes).map_err(|e| format!("cannot save {}: {e}", p.display()))
    }
}

/// Apply a journal to the chat it belongs to: its `Turn` line starts a turn, the rest fill
/// the reply. A reply replayed from a journal was cut off: it is marked so (and kept in the
/// history with what was written).
pub fn replay(chat: &mut ChatFile, mut routing: Option<&mut RoutingFile>, journal: &str) {
    let mut turn: Option<SavedTurn> = None;
    // a line cut by the crash does not parse: everything before it counts
    for line in journal.lines() {
        let Ok(l) = serde_json::from_str::<JournalLine>(line) else { break };
        match (l, turn.as_mut()) {
            (JournalLine::Turn { user }, _) => turn = Some(SavedTurn { user, ..SavedTurn::default() }),
            (JournalLine::Token { id, position, text, reasoning }, Some(t)) => t.tokens.push((id, position, text, reasoning)),
            (JournalLine::Text { reasoning: true, text }, Some(t)) => t.reasoning.push_str(&text),
            (JournalLine::Text { reasoning: false, text }, Some(t)) => t.answer.push_str(&text),
            (JournalLine::AnswerWasReasoning, Some(t)) => {
                t.reasoning = std::mem::take(&mut t.answer) + &t.reasoning;
                t.tokens.iter_mut().for_each(|k| k.3 = true);
            }
            (JournalLine::Route { r }, Some(t)) => {
                if t.tokens.is_empty() {
                    let start = t.prompt.map_or(r.0, |(s, _)| s);
                    t.prompt = Some((start, r.0 + 1));
                }
                if let Some(rf) = routing.as_deref_mut() {
                    // the same rule as Trace::push: a re-fed position replaces what follows
                    rf.positions.retain(|x| x.0 < r.0);
                    rf.positions.push(r);
                }
            }
            (_, None) => {}
        }
    }
    if let Some(mut t) = turn {
        t.error = Some(format!("interrupted: the app stopped after {} tokens of this reply (Regenerate to write it again)", t.tokens.len()));
        t.assistant = Some(Message::new("assistant", &t.answer));
        chat.turns.push(t);
    }
}

/// The reply being written, line by line.
#[derive(Debug)]
pub struct Journal {
    file: File,
    pub path: PathBuf,
}

impl Journal {
    /// One line per call, written at once (one `write` of the whole line).
    pub fn append(&mut self, line: &JournalLine) -> Result<(), String> {
        let mut s = serde_json::to_string(line).map_err(|e| e.to_string())?;
        s.push('\n');
        self.file.write_all(s.as_bytes()).map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// The chat as Markdown: the title, then each turn (the reasoning folded in `<details>`).
pub fn to_markdown(chat: &ChatFile) -> String {
    let mut s = format!("# {}\n\n", chat.title);
    if !chat.model.is_empty() {
        s += &format!("Model: `{}`\n\n", chat.model);
    }
    if !chat.system.trim().is_empty() {
        s += &format!("**System:** {}\n\n", chat.system.trim());
    }
    for t in &chat.turns {
        s += &format!("## You\n\n{}\n\n## Model\n\n", t.user.trim_end());
        if !t.reasoning.trim().is_empty() {
            s += &format!("<details><summary>Thinking</summary>\n\n{}\n\n</details>\n\n", t.reasoning.trim());
        }
        s += t.answer.trim();
        s += "\n\n";
        if let Some(e) = &t.error {
            s += &format!("> {e}\n\n");
        }
    }
    s
}

/// The chat as JSON with its routing: the chat file's fields plus `routing` (shape and, per
/// position, token and each MoE layer's experts and weights).
pub fn to_json(chat: &ChatFile, routing: Option<&RoutingFile>) -> String {
    let mut v = serde_json::to_value(chat).unwrap_or_default();
    if let (Some(o), Some(r)) = (v.as_object_mut(), routing) {
        let (layers, n_experts, n_group, topk_group, top_k) = &r.shape;
        let positions: Vec<serde_json::Value> = r
            .positions
            .iter()
            .map(|(position, token, text, ls)| {
                let layers: Vec<serde_json::Value> = ls.iter().map(|(layer, e, w)| serde_json::json!({"layer": layer, "experts": e, "weights": w})).collect();
                serde_json::json!({"position": position, "token": token, "text": text, "layers": layers})
            })
            .collect();
        o.insert(
            "routing".into(),
            serde_json::json!({"shape": {"moe_layers": layers, "n_experts": n_experts, "n_group": n_group, "topk_group": topk_group, "top_k": top_k}, "positions": positions}),
        );
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// A title from the first message: its first line, at most 48 characters.
pub fn title_of(user: &str) -> String {
    let line = user.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut t: String = line.chars().take(48).collect();
    if line.chars().count() > 48 {
        t.push('…');
    }
    if t.is_empty() {
        "New chat".into()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dsw-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn turn(user: &str, answer: &str) -> SavedTurn {
        SavedTurn { user: user.into(), answer: answer.into(), tokens: vec![(5, 3, answer.into(), false)], stop: Some(SavedStop::Eos), assistant: Some(Message::new("assistant", answer)), ..SavedTurn::default() }
    }

    #[test]
    fn save_list_load_rename_delete() {
        let d = tmp("crud");
        let s = Store::open(&d).unwrap();
        let mut a = ChatFile { id: s.new_id(), title: "First".into(), turns: vec![turn("hello", "hi **there**")], ..ChatFile::default() };
        s.save(&mut a, None).unwrap();
        let mut b = ChatFile { id: "b".into(), title: "Second".into(), turns: vec![turn("what is rust", "a language")], ..ChatFile::default() };
        b.updated = 0;
        s.save(&mut b, None).unwrap();
        let (list, bad) = s.list();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(list.len(), 2);
        assert!(list.iter().any(|m| m.title == "First" && m.turns == 1));
        assert!(list.iter().find(|m| m.id == "b").unwrap().matches("RUST lang"));
        assert!(!list.iter().find(|m| m.id == "b").unwrap().matches("hello"));
        let (back, routing) = s.load(&a.id).unwrap();
        assert_eq!(back, a);
        assert!(routing.is_none());
        s.rename("b", "Renamed").unwrap();
        assert_eq!(s.load("b").unwrap().0.title, "Renamed");
        s.delete(&a.id).unwrap();
        assert_eq!(s.list().0.len(), 1);
        // no temporary files are left behind
        assert_eq!(fs::read_dir(&s.dir).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn journal_replays_up_to_a_cut_line() {
        let d = tmp("journal");
        let s = Store::open(&d).unwrap();
        let mut c = ChatFile { id: "c".into(), title: "t".into(), turns: vec![turn("one", "1")], ..ChatFile::default() };
        let shape = RoutingShape { layers: vec![1], n_experts: 4, n_group: 1, topk_group: 1, top_k: 2 };
        let mut trace = Trace::new(shape.clone());
        trace.push(PositionRoute { position: 0, token: 9, text: "a".into(), layers: vec![LayerRoute { layer: 1, experts: vec![0, 3], weights: vec![0.5, 0.5] }] });
        s.save(&mut c, Some(&trace)).unwrap();
        let mut j = s.begin_journal("c", "two").unwrap();
        let route = |p: usize| JournalLine::Route { r: (p, 7, "x".into(), vec![(1, vec![1, 2], vec![0.6, 0.4])]) };
        j.append(&route(1)).unwrap();
        j.append(&JournalLine::Token { id: 11, position: 2, text: "Hel".into(), reasoning: false }).unwrap();
        j.append(&JournalLine::Text { reasoning: false, text: "Hel".into() }).unwrap();
        j.append(&route(2)).unwrap();
        j.append(&JournalLine::Token { id: 12, position: 3, text: "lo".into(), reasoning: false }).unwrap();
        drop(j);
        // a crash in the middle of the next line
        let jp = s.dir.join("c.journal.jsonl");
        let mut f = OpenOptions::new().append(true).open(&jp).unwrap();
        f.write_all(b"{\"e\":\"text\",\"reasoning\":false,\"te").unwrap();
        drop(f);
        let (chat, routing) = s.load("c").unwrap();
        assert_eq!(chat.turns.len(), 2);
        let t = &chat.turns[1];
        assert_eq!((t.user.as_str(), t.answer.as_str(), t.tokens.len()), ("two", "Hel", 2));
        assert_eq!(t.prompt, Some((1, 2)));
        assert!(t.error.as_deref().unwrap().starts_with("interrupted"));
        let r = routing.unwrap();
        assert_eq!(r.shape(), shape);
        assert_eq!(r.positions.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        // saving folds the journal in
        let mut chat = chat;
        s.save(&mut chat, None).unwrap();
        assert!(!jp.exists());
        assert_eq!(s.load("c").unwrap().0.turns.len(), 2);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn exports() {
        let c = ChatFile { id: "x".into(), title: "Sums".into(), model: "tiny".into(), turns: vec![SavedTurn { reasoning: "add them".into(), ..turn("2+2?", "**4**") }], ..ChatFile::default() };
        let md = to_markdown(&c);
        assert!(md.starts_with("# Sums\n"));
        assert!(md.contains("## You\n\n2+2?\n\n## Model\n\n<details><summary>Thinking</summary>\n\nadd them\n\n</details>\n\n**4**"), "{md}");
        let r = RoutingFile { shape: (vec![1], 4, 1, 1, 2), positions: vec![(0, 9, "a".into(), vec![(1, vec![0, 3], vec![0.5, 0.5])])] };
        let v: serde_json::Value = serde_json::from_str(&to_json(&c, Some(&r))).unwrap();
        assert_eq!(v["turns"][0]["answer"], "**4**");
        assert_eq!(v["routing"]["shape"]["top_k"], 2);
        assert_eq!(v["routing"]["positions"][0]["layers"][0]["experts"][1], 3);
        assert_eq!(title_of("\n  What is 347 + 589?\nmore"), "What is 347 + 589?");
        assert_eq!(title_of(&"x".repeat(60)).chars().count(), 49);
    }
}
