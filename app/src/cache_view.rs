//! The right panel for a dense model (no experts to route): what its attention caches and
//! where. One cell per cached position, coloured by what it holds (prompt, reasoning,
//! answer); hover names the token, a click pins the position like a token chip does.

use std::collections::HashMap;

use deepseek_wgpu::chat::TextKind;
use eframe::egui::{self, Color32, Sense, Stroke, StrokeKind, Vec2};

use crate::app::fmt_bytes;
use crate::routing::Trace;
use crate::routing_view::show_token;

/// What the panel says about the model's cache.
pub struct CacheFacts<'a> {
    /// e.g. "GQA: 32 query heads share 8 K/V heads of 128"
    pub attention: &'a str,
    pub n_layers: usize,
    pub ctx: usize,
    pub bytes_per_token: u64,
}

const CELL: f32 = 9.0;
const GAP: f32 = 2.0;

fn colour(kind: Option<TextKind>, ui: &egui::Ui) -> Color32 {
    match kind {
        None => ui.visuals().widgets.inactive.bg_fill,
        Some(TextKind::Reasoning) => Color32::from_rgb(150, 120, 200),
        Some(TextKind::Answer) => Color32::from_rgb(90, 170, 110),
    }
}

fn role(kind: Option<TextKind>) -> &'static str {
    match kind {
        None => "prompt",
        Some(TextKind::Reasoning) => "reasoning",
        Some(TextKind::Answer) => "answer",
    }
}

/// Draws the panel; returns a position the user clicked (to pin or unpin).
pub fn panel(ui: &mut egui::Ui, trace: &Trace, kinds: &HashMap<usize, TextKind>, facts: &CacheFacts, pinned: Option<usize>) -> Option<usize> {
    ui.heading("K/V cache");
    ui.label("Dense model: every token runs through every weight, so there are no experts to route.");
    ui.label(facts.attention);
    let used = trace.positions.len();
    ui.label(format!(
        "{used} of {} positions cached · {} per position ({} layers) · {} in use",
        facts.ctx,
        fmt_bytes(facts.bytes_per_token),
        facts.n_layers,
        fmt_bytes(facts.bytes_per_token * used as u64)
    ));
    ui.horizontal(|ui| {
        for k in [None, Some(TextKind::Reasoning), Some(TextKind::Answer)] {
            let (r, _) = ui.allocate_exact_size(Vec2::splat(CELL), Sense::hover());
            ui.painter().rect_filled(r, 1.0, colour(k, ui));
            ui.label(role(k));
        }
    });
    ui.separator();
    if used == 0 {
        ui.weak("nothing cached yet: send a message");
        return None;
    }
    let cols = (((ui.available_width() + GAP) / (CELL + GAP)).floor() as usize).max(1);
    let rows = used.div_ceil(cols);
    let size = Vec2::new(cols as f32 * (CELL + GAP), rows as f32 * (CELL + GAP));
    let (rect, resp) = ui.allocate_exact_size(size, Sense::click());
    let cell_at = |i: usize| {
        let (r, c) = (i / cols, i % cols);
        egui::Rect::from_min_size(rect.min + Vec2::new(c as f32 * (CELL + GAP), r as f32 * (CELL + GAP)), Vec2::splat(CELL))
    };
    let painter = ui.painter_at(rect);
    for (i, p) in trace.positions.iter().enumerate() {
        let kind = kinds.get(&p.position).copied();
        painter.rect_filled(cell_at(i), 1.0, colour(kind, ui));
        if pinned == Some(p.position) {
            painter.rect_stroke(cell_at(i).expand(1.0), 1.0, Stroke::new(1.5, ui.visuals().strong_text_color()), StrokeKind::Outside);
        }
    }
    let hovered = resp.hover_pos().and_then(|pos| {
        let (c, r) = (((pos.x - rect.min.x) / (CELL + GAP)) as usize, ((pos.y - rect.min.y) / (CELL + GAP)) as usize);
        let i = r * cols + c;
        (c < cols && i < used).then_some(i)
    });
    let mut clicked = None;
    if let Some(i) = hovered {
        let p = &trace.positions[i];
        let kind = kinds.get(&p.position).copied();
        resp.clone().on_hover_ui_at_pointer(|ui| {
            ui.label(format!("position {} · {} · {} (id {})", p.position, role(kind), show_token(ui, &p.text), p.token));
        });
        if resp.clicked() {
            clicked = Some(p.position);
        }
    }
    if let Some(p) = pinned.and_then(|p| trace.get(p)) {
        ui.separator();
        ui.strong(format!("Pinned: position {} · {} (id {})", p.position, show_token(ui, &p.text), p.token));
        ui.label(format!("its K and V: {} across {} layers", fmt_bytes(facts.bytes_per_token), facts.n_layers));
    }
    clicked
}
