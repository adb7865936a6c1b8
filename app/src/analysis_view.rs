//! The right panel's tabs and the routing views that answer questions (the data comes from
//! [`crate::analysis`]):
//!
//! * **Expert**: click a heatmap cell (or pick a layer and expert) and see every token of the
//!   conversation that expert took, with its gate weight and rank, in context, and where in the
//!   conversation they are;
//! * **Co-activation**: per layer, an experts × experts matrix of how often two experts were
//!   chosen for the same token (or that over chance: lift), with the most frequent pairs;
//! * **Compare**: the expert load of two prompts or replies side by side and their difference,
//!   with each layer's overlap.
//!
//! Dense matrices (256 × 256, 58 × 256) are drawn as textures that are rebuilt only when the
//! trace changes, so a frame costs the same at R1's shape as at a toy's.

use std::time::{Duration, Instant};

use eframe::egui::{self, Align2, Color32, ColorImage, FontId, Pos2, Rect, RichText, Sense, Stroke, StrokeKind, TextureHandle, TextureOptions, Vec2};

use crate::analysis::{expert_hits, CoActivation, Comparison, ExpertHit, Span};
use crate::chat_view::Turn;
use crate::routing::Trace;
use crate::routing_view::{self, show_token, weight_color, PanelAction, PanelState};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tab {
    #[default]
    Routing,
    Expert,
    CoActivation,
    Compare,
    Performance,
}

/// What the views remember between frames (selections and what they derived from the trace).
#[derive(Default)]
pub struct ViewsState {
    pub tab: Tab,
    /// (MoE row, expert) of the Expert view
    pub expert: Option<(usize, usize)>,
    /// list the expert's tokens by gate weight (else by position)
    pub by_weight: bool,
    /// MoE row of the co-activation matrix
    pub coact_row: usize,
    /// colour the matrix by lift (else by count)
    pub lift: bool,
    /// indices into the spans of the Compare view
    pub compare: Option<(usize, usize)>,
    cache: Cache,
}

#[derive(Default)]
struct Cache {
    hits: Option<((u64, usize, usize, bool), Vec<ExpertHit>)>,
    coact: Option<CoactCache>,
    compare: Option<(Built<(usize, usize)>, Comparison, [TextureHandle; 3])>,
}

/// How often a view rebuilds what it derives from a trace that only grew (a streaming reply):
/// a new selection rebuilds at once.
const REBUILD_EVERY: Duration = Duration::from_millis(250);

/// When and from what a cached view was built.
struct Built<S> {
    revision: u64,
    selection: S,
    at: Instant,
}

impl<S: PartialEq> Built<S> {
    fn new(revision: u64, selection: S) -> Self {
        Built { revision, selection, at: Instant::now() }
    }

    /// Still good for this trace revision and selection.
    fn fresh(&self, revision: u64, selection: &S) -> bool {
        self.selection == *selection && (self.revision == revision || self.at.elapsed() < REBUILD_EVERY)
    }
}

struct CoactCache {
    key: Built<(usize, bool)>,
    c: CoActivation,
    tex: TextureHandle,
    /// the most frequent pairs and the largest pair count
    pairs: Vec<(usize, usize, u32, f64)>,
    max: u32,
}

pub enum ViewAction {
    None,
    Unpin,
    /// pin (or unpin, when already pinned) a position
    Pin(usize),
}

/// The tab row. Without routing only the first tab (`first`: what the panel shows instead)
/// and Performance are offered.
pub fn tab_bar(ui: &mut egui::Ui, tab: &mut Tab, routing: bool, first: &str) {
    if !routing && !matches!(tab, Tab::Routing | Tab::Performance) {
        *tab = Tab::Routing;
    }
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(tab, Tab::Routing, first);
        if routing {
            ui.selectable_value(tab, Tab::Expert, "Expert").on_hover_text("the tokens one expert took (click a heatmap cell)");
            ui.selectable_value(tab, Tab::CoActivation, "Co-activation").on_hover_text("which experts of a layer fire together");
            ui.selectable_value(tab, Tab::Compare, "Compare").on_hover_text("routing of two prompts or replies side by side");
        }
        ui.selectable_value(tab, Tab::Performance, "Performance").on_hover_text("tokens/s, GPU time per kernel family, GPU memory");
    });
    ui.separator();
}

/// The routing tabs (everything but Performance, which the app draws with [`crate::perf`]).
pub fn panel(ui: &mut egui::Ui, trace: &Trace, spans: &[Span], pinned: Option<usize>, routing: &mut PanelState, state: &mut ViewsState) -> ViewAction {
    match state.tab {
        Tab::Routing | Tab::Performance => match routing_view::panel(ui, trace, pinned, routing) {
            PanelAction::None => ViewAction::None,
            PanelAction::Unpin => ViewAction::Unpin,
            PanelAction::Expert { row, expert } => {
                state.expert = Some((row, expert));
                state.coact_row = row;
                state.tab = Tab::Expert;
                ViewAction::None
            }
        },
        Tab::Expert => expert_view(ui, trace, pinned, state),
        Tab::CoActivation => coactivation_view(ui, trace, state),
        Tab::Compare => {
            compare_view(ui, trace, spans, state);
            ViewAction::None
        }
    }
}

/// Each turn's prompt (the positions fed for it) and reply (its generated tokens), in order.
pub fn spans(turns: &[Turn]) -> Vec<Span> {
    let mut v = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        if let Some((s, e)) = t.reply.prompt {
            v.push(Span { label: format!("prompt {}", i + 1), range: s..e });
        }
        if let (Some(a), Some(b)) = (t.reply.tokens.first(), t.reply.tokens.last()) {
            v.push(Span { label: format!("reply {}", i + 1), range: a.position..b.position + 1 });
        }
    }
    v
}

fn layer_combo(ui: &mut egui::Ui, id: &str, trace: &Trace, row: &mut usize) {
    let layers = &trace.shape.layers;
    *row = (*row).min(layers.len().saturating_sub(1));
    let label = ui.label("Layer");
    egui::ComboBox::from_id_salt(id)
        .selected_text(format!("layer {}", layers.get(*row).copied().unwrap_or(0)))
        .show_ui(ui, |ui| {
            for (r, l) in layers.iter().enumerate() {
                ui.selectable_value(row, r, format!("layer {l}"));
            }
        })
        .response
        .labelled_by(label.id);
}

/// A token's text without the quotes `show_token` adds.
fn bare(ui: &egui::Ui, text: &str) -> String {
    let q = show_token(ui, text);
    q[1..q.len() - 1].to_string()
}

fn group_note(trace: &Trace, expert: usize) -> String {
    if trace.shape.grouped() {
        format!(" (group {})", trace.shape.group_of(expert))
    } else {
        String::new()
    }
}

const ROW_H: f32 = 18.0;

fn expert_view(ui: &mut egui::Ui, trace: &Trace, pinned: Option<usize>, state: &mut ViewsState) -> ViewAction {
    let mut action = ViewAction::None;
    let shape = &trace.shape;
    ui.heading("Expert");
    let (mut row, mut expert) = state.expert.unwrap_or((state.coact_row, 0));
    ui.horizontal(|ui| {
        layer_combo(ui, "expert layer", trace, &mut row);
        let label = ui.label("expert");
        ui.add(egui::DragValue::new(&mut expert).range(0..=shape.n_experts.saturating_sub(1))).labelled_by(label.id);
        ui.checkbox(&mut state.by_weight, "by gate weight").on_hover_text("list the tokens by gate weight, largest first (else in conversation order)");
    });
    state.expert = Some((row, expert));
    let key = (trace.revision(), row, expert, state.by_weight);
    if state.cache.hits.as_ref().is_none_or(|(k, _)| *k != key) {
        let mut hits = expert_hits(trace, row, expert);
        if state.by_weight {
            hits.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        }
        state.cache.hits = Some((key, hits));
    }
    let hits = &state.cache.hits.as_ref().expect("just filled").1;
    let layer = shape.layers.get(row).copied().unwrap_or(0);
    let n = trace.positions.len();
    if hits.is_empty() {
        ui.label(format!("Layer {layer} · expert {expert}{}: took none of the {n} tokens routed so far.", group_note(trace, expert)));
        ui.weak("Click a cell of the Routing tab's heatmaps to pick an expert.");
        return action;
    }
    let mean_w = hits.iter().map(|h| h.weight as f64).sum::<f64>() / hits.len() as f64;
    let max_w = hits.iter().map(|h| h.weight).fold(0.0f32, f32::max);
    let even = shape.top_k as f64 / shape.n_experts.max(1) as f64;
    ui.label(format!(
        "Layer {layer} · expert {expert}{}: took {} of {n} tokens ({:.1}%; an even share is {:.1}%)",
        group_note(trace, expert),
        hits.len(),
        100.0 * hits.len() as f64 / n.max(1) as f64,
        100.0 * even
    ));
    let mut ranks = vec![0usize; shape.top_k.max(1)];
    for h in hits {
        if let Some(r) = ranks.get_mut(h.rank) {
            *r += 1;
        }
    }
    ui.label(format!("gate weight: mean {mean_w:.3}, max {max_w:.3} · chosen first for {} of them", ranks[0]));
    // Where in the conversation: one tick per token it took, coloured by gate weight.
    ui.weak("where in the conversation (start to now), coloured by gate weight:");
    let w = ui.available_width().max(50.0);
    let (rect, resp) = ui.allocate_exact_size(Vec2::new(w, 14.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
    let cols = rect.width().max(1.0) as usize;
    let mut col_w = vec![0.0f32; cols];
    for h in hits {
        let c = (h.index * cols / n.max(1)).min(cols - 1);
        col_w[c] = col_w[c].max(h.weight);
    }
    for (c, &wt) in col_w.iter().enumerate() {
        if wt > 0.0 {
            let x = rect.left() + c as f32;
            painter.rect_filled(Rect::from_min_max(Pos2::new(x, rect.top()), Pos2::new(x + 1.0, rect.bottom())), 0.0, weight_color(wt / max_w.max(1e-9)));
        }
    }
    if let Some(p) = resp.hover_pos() {
        let i = (((p.x - rect.left()) / rect.width()) * n as f32) as usize;
        if let Some(pr) = trace.positions.get(i.min(n - 1)) {
            resp.on_hover_text_at_pointer(format!("position {}", pr.position));
        }
    }
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.weak(format!("{:>6}", "pos"));
        ui.weak("token in context · gate weight · rank (click a row to pin its routing)");
    });
    let text_w = (ui.available_width() - 150.0).max(80.0);
    egui::ScrollArea::vertical().id_salt("expert tokens").max_height(420.0).auto_shrink([false, true]).show_rows(ui, ROW_H, hits.len(), |ui, range| {
        for h in &hits[range] {
            let p = &trace.positions[h.index];
            let before: String = trace.positions[h.index.saturating_sub(3)..h.index].iter().map(|q| bare(ui, &q.text)).collect();
            let after: String = trace.positions.get(h.index + 1..(h.index + 4).min(n)).unwrap_or(&[]).iter().map(|q| bare(ui, &q.text)).collect();
            let r = ui
                .horizontal(|ui| {
                    ui.set_height(ROW_H);
                    ui.spacing_mut().item_spacing.x = 0.0;
                    let sel = pinned == Some(p.position);
                    let pos = ui.selectable_label(sel, RichText::new(format!("{:>6}", p.position)).monospace().strong()).on_hover_text("pin this token's routing");
                    ui.add_space(6.0);
                    ui.allocate_ui(Vec2::new(text_w, ROW_H), |ui| {
                        ui.horizontal(|ui| {
                            ui.spacing_mut().item_spacing.x = 0.0;
                            ui.add(egui::Label::new(RichText::new(format!("…{before}")).weak()).truncate().selectable(false));
                            ui.add(egui::Label::new(RichText::new(bare(ui, &p.text)).strong().background_color(weight_color(h.weight / max_w.max(1e-9)).gamma_multiply(0.6))).selectable(false));
                            ui.add(egui::Label::new(RichText::new(format!("{after}…")).weak()).truncate().selectable(false));
                        });
                    });
                    let (bar, _) = ui.allocate_exact_size(Vec2::new(60.0, 10.0), Sense::hover());
                    ui.painter().rect_filled(Rect::from_min_size(bar.min, Vec2::new(60.0 * h.weight / max_w.max(1e-9), 10.0)), 0.0, weight_color(h.weight / max_w.max(1e-9)));
                    ui.add(egui::Label::new(RichText::new(format!(" {:.3} #{}", h.weight, h.rank)).monospace()).selectable(false));
                    pos.clicked()
                });
            if r.inner || r.response.interact(Sense::click()).clicked() {
                action = ViewAction::Pin(p.position);
            }
        }
    });
    action
}

fn coactivation_view(ui: &mut egui::Ui, trace: &Trace, state: &mut ViewsState) -> ViewAction {
    let shape = &trace.shape;
    ui.heading("Co-activation");
    ui.horizontal(|ui| {
        layer_combo(ui, "coact layer", trace, &mut state.coact_row);
        ui.checkbox(&mut state.lift, "colour by lift").on_hover_text("colour by how much more often a pair fires together than chance (picks(a)·picks(b)/tokens); else by count");
    });
    let row = state.coact_row;
    let sel = (row, state.lift);
    if state.cache.coact.as_ref().is_none_or(|k| !k.key.fresh(trace.revision(), &sel)) {
        let key = Built::new(trace.revision(), sel);
        let c = CoActivation::of(trace, row);
        let n = c.n_experts;
        let max_pair = c.max_pair();
        let max = max_pair.max(1) as f32;
        let bg = ui.visuals().extreme_bg_color;
        let mut img = ColorImage::filled([n, n], bg);
        for a in 0..n {
            for b in 0..n {
                let count = c.get(a, b);
                img.pixels[a * n + b] = if a == b || count == 0 {
                    if a == b { Color32::from_gray(70) } else { bg }
                } else if state.lift {
                    lift_color(c.lift(a, b), bg)
                } else {
                    weight_color(count as f32 / max)
                };
            }
        }
        let tex = ui.ctx().load_texture("co-activation", img, TextureOptions::NEAREST);
        let pairs = c.top_pairs(8);
        state.cache.coact = Some(CoactCache { key, c, tex, pairs, max: max_pair });
    }
    let CoactCache { c, tex, pairs, max, .. } = state.cache.coact.as_ref().expect("just filled");
    let n = c.n_experts;
    let layer = shape.layers.get(row).copied().unwrap_or(0);
    ui.label(format!("layer {layer}: {} tokens, each choosing {} experts ({} pairs per token); the diagonal is grey", c.tokens, shape.top_k, shape.top_k * shape.top_k.saturating_sub(1) / 2));
    if c.tokens == 0 || n == 0 {
        ui.weak("no tokens routed yet");
        return ViewAction::None;
    }
    const LABEL: f32 = 26.0;
    let side = (ui.available_width() - LABEL - 8.0).clamp(128.0, 600.0);
    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(side + LABEL), Sense::click());
    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "co-activation matrix"));
    let m = Rect::from_min_size(rect.min + Vec2::splat(LABEL), Vec2::splat(side));
    let painter = ui.painter_at(rect);
    painter.image(tex.id(), m, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
    let cell = side / n as f32;
    let font = FontId::proportional(9.0);
    let text = ui.visuals().weak_text_color();
    let step = [1usize, 2, 4, 8, 16, 32, 64, 128, 256].into_iter().find(|s| *s as f32 * cell >= 24.0).unwrap_or(512);
    for k in (0..n).step_by(step) {
        let at = (k as f32 + 0.5) * cell;
        painter.text(Pos2::new(m.left() + at, m.top() - 2.0), Align2::CENTER_BOTTOM, k.to_string(), font.clone(), text);
        painter.text(Pos2::new(m.left() - 3.0, m.top() + at), Align2::RIGHT_CENTER, k.to_string(), font.clone(), text);
    }
    if shape.grouped() {
        let gs = shape.group_size();
        for g in 1..shape.n_group {
            let x = (g * gs) as f32 * cell;
            painter.line_segment([Pos2::new(m.left() + x, m.top()), Pos2::new(m.left() + x, m.bottom())], Stroke::new(1.0, Color32::from_gray(110)));
            painter.line_segment([Pos2::new(m.left(), m.top() + x), Pos2::new(m.right(), m.top() + x)], Stroke::new(1.0, Color32::from_gray(110)));
        }
    }
    let mut go = None;
    if let Some(p) = resp.hover_pos().filter(|p| m.contains(*p)) {
        let (b, a) = (((p.x - m.left()) / cell) as usize, ((p.y - m.top()) / cell) as usize);
        let (a, b) = (a.min(n - 1), b.min(n - 1));
        painter.rect_stroke(Rect::from_min_size(m.min + Vec2::new(b as f32 * cell, a as f32 * cell), Vec2::splat(cell.max(2.0))), 0.0, Stroke::new(1.0, Color32::WHITE), StrokeKind::Outside);
        let (ca, cb, both) = (c.get(a, a), c.get(b, b), c.get(a, b));
        resp.clone().on_hover_ui_at_pointer(|ui| {
            if a == b {
                ui.label(format!("layer {layer} · expert {a}{}: {ca} tokens", group_note(trace, a)));
            } else {
                ui.label(format!("layer {layer} · experts {a}{} and {b}{}", group_note(trace, a), group_note(trace, b)));
                ui.label(format!("together for {both} tokens · lift {:.2} (1 = chance)", c.lift(a, b)));
                ui.label(format!("{:.0}% of expert {a}'s {ca} tokens also chose {b}; {:.0}% of {b}'s {cb} chose {a}", 100.0 * both as f64 / ca.max(1) as f64, 100.0 * both as f64 / cb.max(1) as f64));
            }
            ui.weak(format!("click: the tokens expert {a} took"));
        });
        if resp.clicked() {
            go = Some(a);
        }
    }
    legend_row(ui, state.lift, *max);
    ui.strong("Pairs chosen together most often");
    egui::Grid::new("top pairs").striped(true).num_columns(4).show(ui, |ui| {
        for h in ["experts", "tokens", "lift", ""] {
            ui.weak(h);
        }
        ui.end_row();
        for &(a, b, count, lift) in pairs {
            ui.label(format!("{a} + {b}"));
            ui.label(count.to_string());
            ui.label(format!("{lift:.2}"));
            if ui.small_button("tokens").on_hover_text(format!("the tokens expert {a} took")).clicked() {
                go = Some(a);
            }
            ui.end_row();
        }
    });
    if let Some(a) = go {
        state.expert = Some((row, a));
        state.tab = Tab::Expert;
    }
    ViewAction::None
}

/// Lift → colour: above chance warm, below cool, stronger the further from 1 (log scale,
/// saturating at 8× either way).
fn lift_color(lift: f64, bg: Color32) -> Color32 {
    let l = (lift.max(1e-3).log2() / 3.0).clamp(-1.0, 1.0) as f32;
    let to = if l >= 0.0 { Color32::from_rgb(250, 150, 50) } else { Color32::from_rgb(70, 140, 240) };
    lerp(bg, to, 0.25 + 0.75 * l.abs())
}

fn lerp(a: Color32, b: Color32, t: f32) -> Color32 {
    let f = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Color32::from_rgb(f(a.r(), b.r()), f(a.g(), b.g()), f(a.b(), b.b()))
}

fn legend_row(ui: &mut egui::Ui, lift: bool, max: u32) {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        let bg = ui.visuals().extreme_bg_color;
        let (lo, hi) = if lift { ("lift 1/8", "8") } else { ("tokens 1", "") };
        ui.weak(lo);
        let (r, _) = ui.allocate_exact_size(Vec2::new(90.0, 10.0), Sense::hover());
        for i in 0..30 {
            let t = i as f32 / 29.0;
            let c = if lift { lift_color(2f64.powf((t as f64 * 2.0 - 1.0) * 3.0), bg) } else { weight_color(t) };
            let x0 = r.left() + r.width() * i as f32 / 30.0;
            ui.painter().rect_filled(Rect::from_min_max(Pos2::new(x0, r.top()), Pos2::new(x0 + r.width() / 30.0 + 0.5, r.bottom())), 0.0, c);
        }
        ui.weak(if lift { hi.to_string() } else { max.to_string() });
    });
}

fn diff_color(d: f64, max: f64, bg: Color32) -> Color32 {
    if d == 0.0 || max <= 0.0 {
        return bg;
    }
    let t = (d.abs() / max).sqrt() as f32;
    lerp(bg, if d > 0.0 { Color32::from_rgb(250, 150, 50) } else { Color32::from_rgb(70, 140, 240) }, t)
}

fn compare_view(ui: &mut egui::Ui, trace: &Trace, spans: &[Span], state: &mut ViewsState) {
    let shape = &trace.shape;
    ui.heading("Compare");
    if spans.len() < 2 {
        ui.weak("Compare needs two prompts or replies: send a message (its prompt and reply are two).");
        return;
    }
    // Default: the last two replies, else the last prompt and its reply.
    let (mut a, mut b) = state.compare.unwrap_or_else(|| {
        let replies: Vec<usize> = spans.iter().enumerate().filter(|(_, s)| s.label.starts_with("reply")).map(|(i, _)| i).collect();
        match replies.as_slice() {
            [.., x, y] => (*x, *y),
            _ => (spans.len() - 2, spans.len() - 1),
        }
    });
    a = a.min(spans.len() - 1);
    b = b.min(spans.len() - 1);
    ui.horizontal(|ui| {
        for (name, sel, id) in [("A", &mut a, "compare a"), ("B", &mut b, "compare b")] {
            let label = ui.label(name);
            egui::ComboBox::from_id_salt(id)
                .selected_text(&spans[*sel].label)
                .show_ui(ui, |ui| {
                    for (i, s) in spans.iter().enumerate() {
                        ui.selectable_value(sel, i, format!("{} (positions {}..{})", s.label, s.range.start, s.range.end.saturating_sub(1)));
                    }
                })
                .response
                .labelled_by(label.id);
        }
    });
    state.compare = Some((a, b));
    if state.cache.compare.as_ref().is_none_or(|(k, ..)| !k.fresh(trace.revision(), &(a, b))) {
        let key = Built::new(trace.revision(), (a, b));
        let cmp = Comparison::of(trace, &spans[a].range, &spans[b].range);
        let (rows, n) = (shape.layers.len(), shape.n_experts);
        let bg = ui.visuals().extreme_bg_color;
        let max_share = (0..rows).flat_map(|r| (0..n).map(move |e| (r, e))).map(|(r, e)| cmp.a.share(r, e).max(cmp.b.share(r, e))).fold(0.0f64, f64::max);
        let share_img = |s: &crate::analysis::SpanLoad| {
            let mut img = ColorImage::filled([n, rows], bg);
            for r in 0..rows {
                for e in 0..n {
                    let v = s.share(r, e);
                    if v > 0.0 {
                        img.pixels[r * n + e] = weight_color((v / max_share.max(1e-12)) as f32);
                    }
                }
            }
            img
        };
        let max_d = cmp.max_abs_diff();
        let mut diff = ColorImage::filled([n, rows], bg);
        for r in 0..rows {
            for e in 0..n {
                diff.pixels[r * n + e] = diff_color(cmp.diff[r][e], max_d, bg);
            }
        }
        let ctx = ui.ctx();
        let texs = [ctx.load_texture("compare a", share_img(&cmp.a), TextureOptions::NEAREST), ctx.load_texture("compare b", share_img(&cmp.b), TextureOptions::NEAREST), ctx.load_texture("compare diff", diff, TextureOptions::NEAREST)];
        state.cache.compare = Some((key, cmp, texs));
    }
    let (_, cmp, texs) = state.cache.compare.as_ref().expect("just filled");
    let (sa, sb) = (&spans[a], &spans[b]);
    if cmp.a.tokens == 0 || cmp.b.tokens == 0 {
        ui.weak(format!("{} has no routed tokens", if cmp.a.tokens == 0 { &sa.label } else { &sb.label }));
        return;
    }
    ui.label(format!("Share of each layer's picks per expert: A = {} ({} tokens), B = {} ({} tokens)", sa.label, cmp.a.tokens, sb.label, cmp.b.tokens));
    let rows = shape.layers.len();
    let n = shape.n_experts;
    let gap = 10.0;
    let half = ((ui.available_width() - gap) / 2.0).max(60.0);
    let row_h = (260.0 / rows.max(1) as f32).clamp(2.0, 8.0);
    let h = row_h * rows as f32;
    let hover = |ui: &mut egui::Ui, resp: &egui::Response, rect: Rect| {
        let Some(p) = resp.hover_pos().filter(|p| rect.contains(*p)) else { return };
        let e = (((p.x - rect.left()) / rect.width()) * n as f32) as usize;
        let r = (((p.y - rect.top()) / rect.height()) * rows as f32) as usize;
        let (e, r) = (e.min(n - 1), r.min(rows - 1));
        let _ = ui;
        resp.clone().on_hover_ui_at_pointer(|ui| {
            ui.label(format!("layer {} · expert {e}{}", shape.layers[r], group_note(trace, e)));
            ui.label(format!("A {:.2}% · B {:.2}% of the layer's picks ({:+.2} points)", 100.0 * cmp.a.share(r, e), 100.0 * cmp.b.share(r, e), 100.0 * cmp.diff[r][e]));
            ui.label(format!("layer overlap {:.2}", cmp.overlap[r]));
        });
    };
    let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = gap;
        for (tex, s) in [(&texs[0], sa), (&texs[1], sb)] {
            ui.vertical(|ui| {
                ui.weak(s.label.as_str());
                let (rect, resp) = ui.allocate_exact_size(Vec2::new(half, h), Sense::hover());
                ui.painter().image(tex.id(), rect, uv, Color32::WHITE);
                hover(ui, &resp, rect);
            });
        }
    });
    ui.add_space(4.0);
    ui.label(RichText::new("A - B: orange = more in A, blue = more in B; right: each layer's overlap (1 = same experts in the same proportions)").small());
    let bars = 70.0;
    let (rect, resp) = ui.allocate_exact_size(Vec2::new(ui.available_width(), h), Sense::hover());
    let m = Rect::from_min_size(rect.min, Vec2::new(rect.width() - bars, h));
    ui.painter().image(texs[2].id(), m, uv, Color32::WHITE);
    hover(ui, &resp, m);
    let painter = ui.painter_at(rect);
    for (r, o) in cmp.overlap.iter().enumerate() {
        let y = rect.top() + r as f32 * row_h;
        let bar = Rect::from_min_size(Pos2::new(m.right() + 6.0, y + row_h * 0.1), Vec2::new((bars - 10.0) * *o as f32, (row_h * 0.8).max(1.0)));
        painter.rect_filled(bar, 0.0, Color32::from_rgb(110, 170, 120));
    }
    if let Some(p) = resp.hover_pos().filter(|p| p.x > m.right()) {
        let r = (((p.y - rect.top()) / row_h) as usize).min(rows - 1);
        resp.clone().on_hover_text_at_pointer(format!("layer {}: overlap {:.3}", shape.layers[r], cmp.overlap[r]));
    }
    let mean = cmp.overlap.iter().sum::<f64>() / cmp.overlap.len().max(1) as f64;
    let worst: Vec<String> = cmp.most_different(5).into_iter().map(|(r, o)| format!("{} ({o:.2})", shape.layers[r])).collect();
    ui.label(format!("mean overlap {mean:.3} · layers that differ most: {}", worst.join(", ")));
    ui.weak("(two samples of the same routing overlap less than 1 too: fewer tokens, more noise)");
}
