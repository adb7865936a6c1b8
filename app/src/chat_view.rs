//! The transcript: user turns (editable), each reply's prompt tokens, its reasoning in a
//! collapsible "Thinking" block and its answer. Every token is a clickable chip so its
//! routing can be pinned, and chips can be coloured by the expert a chosen layer picked.

use std::time::Instant;

use deepseek_wgpu::chat::{Message, TextKind};
use deepseek_wgpu::session::{Stats, StopReason};
use eframe::egui::{self, Color32, Sense, Stroke, StrokeKind, TextStyle, Vec2, WidgetInfo};

use crate::remote::UNKNOWN_ID;
use crate::routing::Trace;
use crate::routing_view::{expert_color, printable, show_token};

#[derive(Clone, Debug)]
pub struct TokenChip {
    pub id: u32,
    pub position: usize,
    pub text: String,
    pub kind: TextKind,
}

/// One reply as it streams in.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub tokens: Vec<TokenChip>,
    /// clean text as the session split it (tags removed)
    pub reasoning: String,
    pub answer: String,
    /// positions fed as this turn's prompt: `start..end` (earlier ones were reused from the cache)
    pub prompt: Option<(usize, usize)>,
    /// the message the session keeps for this reply (history for later turns)
    pub assistant: Option<Message>,
    pub stop: Option<StopReason>,
    pub error: Option<String>,
    pub stats: Option<Stats>,
    pub first_token: Option<Instant>,
    pub last_token: Option<Instant>,
    pub reasoning_start: Option<Instant>,
    pub reasoning_end: Option<Instant>,
}

impl Reply {
    pub fn reasoning_tokens(&self) -> usize {
        self.tokens.iter().filter(|t| t.kind == TextKind::Reasoning).count()
    }

    pub fn reasoning_secs(&self) -> f64 {
        match (self.reasoning_start, self.reasoning_end.or(self.last_token)) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    }

    pub fn finished(&self) -> bool {
        self.stop.is_some() || self.error.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct Turn {
    pub user: String,
    pub reply: Reply,
}

pub enum ChatAction {
    /// pin (or, when already pinned, unpin) a position's routing
    Pin(usize),
    Edit(usize),
    Resend(usize, String),
    CancelEdit,
    Regenerate,
}

/// What the transcript needs besides the turns.
pub struct ChatCtx<'a> {
    pub trace: &'a Trace,
    pub colour_row: Option<usize>,
    pub pinned: Option<usize>,
    pub busy: bool,
    /// open Thinking blocks by default
    pub expand_thinking: bool,
    /// the turn being edited and its new text
    pub editing: &'a mut Option<(usize, String)>,
    /// why no token has routing (a remote server without the extension)
    pub no_routing: Option<&'a str>,
    /// parsed Markdown and code-block state of the answers
    pub md: &'a mut egui_commonmark::CommonMarkCache,
}

pub fn transcript(ui: &mut egui::Ui, turns: &[Turn], c: &mut ChatCtx) -> Vec<ChatAction> {
    let mut actions = Vec::new();
    if turns.is_empty() {
        ui.add_space(20.0);
        ui.vertical_centered(|ui| ui.weak("Type a message below. Click any token to pin its routing on the right."));
    }
    let n = turns.len();
    let clip = ui.clip_rect();
    for (i, turn) in turns.iter().enumerate() {
        // A turn out of view whose height is known is only allocated, not laid out, so long
        // chats cost what the visible turns cost (heights are measured whenever a turn shows).
        let key = ui.scope_id().with(("turn height", i));
        let known: Option<f32> = ui.data(|d| d.get_temp(key));
        let top = ui.cursor().top();
        let live = i + 1 == n && !turn.reply.finished();
        if let Some(h) = known.filter(|h| !live && (top > clip.bottom() || top + h < clip.top())) {
            ui.allocate_space(Vec2::new(ui.available_width(), h));
            continue;
        }
        let r = ui.scope(|ui| {
            user_turn(ui, i, turn, c, &mut actions);
            ui.add_space(4.0);
            reply(ui, i, &turn.reply, c, i + 1 == n, &mut actions);
            ui.add_space(10.0);
        });
        ui.data_mut(|d| d.insert_temp(key, r.response.rect.height()));
    }
    actions
}

fn user_turn(ui: &mut egui::Ui, i: usize, turn: &Turn, c: &mut ChatCtx, actions: &mut Vec<ChatAction>) {
    egui::Frame::group(ui.style()).fill(ui.visuals().faint_bg_color).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.strong("You");
            crate::markdown::copy_button(ui, &turn.user, &format!("Copy message {}", i + 1));
            let editing_this = matches!(c.editing, Some((k, _)) if *k == i);
            if !editing_this {
                let edit = ui.add_enabled(!c.busy, egui::Button::new("Edit").small()).on_hover_text("edit this message and resend from here (later turns are replaced)");
                if edit.clicked() {
                    actions.push(ChatAction::Edit(i));
                }
            }
        });
        match c.editing {
            Some((k, text)) if *k == i => {
                let label = ui.label("Edited message:");
                ui.add(egui::TextEdit::multiline(text).desired_rows(2).desired_width(ui.available_width())).labelled_by(label.id);
                ui.horizontal(|ui| {
                    if ui.add_enabled(!c.busy, egui::Button::new("Resend")).clicked() {
                        actions.push(ChatAction::Resend(i, text.clone()));
                    }
                    if ui.button("Cancel edit").clicked() {
                        actions.push(ChatAction::CancelEdit);
                    }
                });
            }
            _ => {
                ui.label(&turn.user);
            }
        }
        if let Some((start, end)) = turn.reply.prompt {
            let reused = turn.reply.stats.as_ref().map(|s| s.reused_tokens);
            let title = match reused {
                Some(r) => format!("prompt: {} tokens fed, {r} reused from the cache", end - start),
                None => format!("prompt: {} tokens fed", end - start),
            };
            egui::CollapsingHeader::new(title).id_salt(("prompt", i)).default_open(false).show(ui, |ui| {
                chips_by_position(ui, start..end, c, actions);
            });
        }
    });
}

fn reply(ui: &mut egui::Ui, i: usize, r: &Reply, c: &mut ChatCtx, last: bool, actions: &mut Vec<ChatAction>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        // Answers show as Markdown; "Tokens" shows them as chips (click one to pin its routing).
        let chips_key = ui.scope_id().with(("answer as tokens", i));
        let mut as_tokens = ui.data(|d| d.get_temp::<bool>(chips_key)).unwrap_or(false);
        ui.horizontal(|ui| {
            ui.strong("Model");
            crate::markdown::copy_button(ui, &r.answer, &format!("Copy answer {}", i + 1));
            if ui.selectable_label(as_tokens, "Tokens").on_hover_text("show the answer as tokens (click one to pin its routing) instead of Markdown").clicked() {
                as_tokens = !as_tokens;
                ui.data_mut(|d| d.insert_temp(chips_key, as_tokens));
            }
        });
        let n_reason = r.reasoning_tokens();
        if n_reason > 0 {
            let live = !r.finished() && r.reasoning_end.is_none();
            let title = format!("Thinking · {n_reason} tokens · {:.1} s{}", r.reasoning_secs(), if live { " …" } else { "" });
            egui::CollapsingHeader::new(title).id_salt(("thinking", i)).default_open(c.expand_thinking).show(ui, |ui| {
                chips(ui, r.tokens.iter().filter(|t| t.kind == TextKind::Reasoning), c, actions);
            });
        }
        let answer: Vec<&TokenChip> = r.tokens.iter().filter(|t| t.kind == TextKind::Answer).collect();
        if !answer.is_empty() && as_tokens {
            chips(ui, answer.into_iter(), c, actions);
        } else if !r.answer.trim().is_empty() {
            crate::markdown::show(ui, c.md, &r.answer);
        } else if !answer.is_empty() {
            chips(ui, answer.into_iter(), c, actions);
        } else if !r.finished() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak(if r.tokens.is_empty() { "reading the prompt…" } else { "thinking…" });
            });
        }
        if let Some(e) = &r.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        // wrapped: a narrow transcript moves Regenerate to the next line instead of clipping it
        ui.horizontal_wrapped(|ui| {
            if let Some(stop) = &r.stop {
                ui.weak(format!("{} tokens · stopped: {stop}", r.tokens.len()));
            }
            if last && r.finished() && ui.add_enabled(!c.busy, egui::Button::new("Regenerate").small()).clicked() {
                actions.push(ChatAction::Regenerate);
            }
        });
    });
}

fn chips_by_position(ui: &mut egui::Ui, positions: std::ops::Range<usize>, c: &mut ChatCtx, actions: &mut Vec<ChatAction>) {
    let toks: Vec<TokenChip> = positions
        .filter_map(|p| c.trace.get(p))
        .map(|r| TokenChip { id: r.token, position: r.position, text: r.text.clone(), kind: TextKind::Answer })
        .collect();
    chips(ui, toks.iter(), c, actions);
}

fn chips<'a>(ui: &mut egui::Ui, tokens: impl Iterator<Item = &'a TokenChip>, c: &mut ChatCtx, actions: &mut Vec<ChatAction>) {
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = Vec2::new(0.0, 2.0);
        let row_h = ui.text_style_height(&TextStyle::Body);
        let mut started = false;
        for t in tokens {
            if chip(ui, t, c).clicked() {
                actions.push(ChatAction::Pin(t.position));
            }
            // Line breaks inside a token end the row (twice for a blank line), except the ones
            // a block starts with (the "\n\n" after </think>), which would only push it down.
            started |= !t.text.trim().is_empty();
            if started {
                for _ in 0..t.text.matches('\n').count().min(2) {
                    ui.allocate_exact_size(Vec2::new(0.0, row_h), Sense::hover());
                    ui.end_row();
                }
            }
        }
    });
}

/// One token: its text on the colour of the expert the chosen layer picked, outlined when pinned.
fn chip(ui: &mut egui::Ui, t: &TokenChip, c: &ChatCtx) -> egui::Response {
    let route = c.trace.get(t.position);
    let top1 = c.colour_row.and_then(|row| route.and_then(|r| r.top1(row)));
    let visible = t.text.replace(['\n', '\r'], "");
    let shown = printable(ui, if visible.is_empty() { "¶" } else { &visible });
    let weak = visible.is_empty();
    let font = TextStyle::Body.resolve(ui.style());
    let color = if weak { ui.visuals().weak_text_color() } else { ui.visuals().strong_text_color() };
    let galley = ui.painter().layout_no_wrap(shown, font, color);
    let size = Vec2::new(galley.size().x.max(4.0), galley.size().y);
    let (rect, resp) = ui.allocate_exact_size(size, Sense::click());
    if ui.is_rect_visible(rect) {
        let p = ui.painter();
        if let Some(e) = top1 {
            // A muted fill keeps the text readable; the bar underneath carries the full colour.
            let col = expert_color(e);
            p.rect_filled(rect, 0.0, col.gamma_multiply(0.3));
            let bar = egui::Rect::from_min_max(egui::pos2(rect.left(), rect.bottom() - 2.0), rect.max);
            p.rect_filled(bar, 0.0, col);
        }
        if c.pinned == Some(t.position) {
            p.rect_stroke(rect, 2.0, Stroke::new(2.0, Color32::from_rgb(255, 200, 60)), StrokeKind::Outside);
        } else if resp.hovered() {
            p.rect_stroke(rect, 2.0, Stroke::new(1.0, ui.visuals().weak_text_color()), StrokeKind::Outside);
        }
        p.galley(rect.min, galley, color);
    }
    let label = format!("token {}: {}", t.position, t.text);
    resp.widget_info(|| WidgetInfo::labeled(egui::Role::Button, true, &label));
    resp.on_hover_ui(|ui| {
        if t.id == UNKNOWN_ID {
            ui.label(format!("text {} (the server reports no token ids)", show_token(ui, &t.text)));
        } else {
            ui.label(format!("position {} · token id {} · {}", t.position, t.id, show_token(ui, &t.text)));
        }
        match (route, c.colour_row) {
            (None, _) => {
                ui.weak(c.no_routing.unwrap_or("no routing: this token was not fed back through the model"));
            }
            (Some(r), Some(row)) => {
                let layer = c.trace.shape.layers.get(row).copied().unwrap_or(0);
                if let (Some(e), Some(lr)) = (r.top1(row), r.layers.get(row)) {
                    let w = lr.experts.iter().position(|x| *x == e).map_or(0.0, |k| lr.weights[k]);
                    ui.label(format!("layer {layer}: top-1 expert {e} (weight {w:.3}); all: {:?}", lr.experts));
                }
            }
            (Some(_), None) => {}
        }
        ui.weak("click to pin its routing");
    })
}

