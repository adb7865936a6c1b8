//! The routing views, drawn with the painter (one rectangle per selected expert, not per
//! cell) so that R1's 58 layers × 256 experts stay cheap to draw every frame:
//!
//! * [`token_heatmap`]: one position's routing, layers × experts, chosen experts coloured by
//!   gate weight, the groups the gate picked from highlighted and group boundaries drawn;
//! * [`load_heatmap`]: cumulative expert load per layer with each layer's imbalance.
//!
//! Both take plain data ([`RoutingShape`], [`PositionRoute`], [`Trace`]), scroll in both
//! directions, zoom (sliders, Fit, or Ctrl + scroll) and explain any cell on hover.

use eframe::egui::{self, Align2, Color32, ColorImage, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, TextureHandle, TextureOptions, Vec2};

use crate::routing::{Balance, PositionRoute, RoutingShape, Trace};

/// Cell size shared by both heatmaps, so their columns line up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Zoom {
    /// size cells to the available width
    pub fit: bool,
    pub cell: Vec2,
}

impl Default for Zoom {
    fn default() -> Self {
        Zoom { fit: true, cell: Vec2::new(6.0, 8.0) }
    }
}

const ROW_LABEL_W: f32 = 34.0;
const COL_LABEL_H: f32 = 14.0;
/// width of the per-layer imbalance column of the load view
const BALANCE_W: f32 = 78.0;
const MIN_CELL: Vec2 = Vec2::new(1.0, 2.0);
const MAX_CELL: Vec2 = Vec2::new(40.0, 32.0);

pub fn zoom_controls(ui: &mut egui::Ui, zoom: &mut Zoom) {
    ui.horizontal(|ui| {
        ui.checkbox(&mut zoom.fit, "Fit").on_hover_text("size the cells to the panel; Ctrl + scroll over a heatmap zooms");
        // While fitting, the sliders only show the fitted size: a disabled slider may still
        // round the value it is given, which must not count as the user choosing a size.
        let mut cell = zoom.cell;
        ui.add_enabled(!zoom.fit, egui::Slider::new(&mut cell.x, MIN_CELL.x..=MAX_CELL.x).text("cell width").fixed_decimals(1));
        ui.add_enabled(!zoom.fit, egui::Slider::new(&mut cell.y, MIN_CELL.y..=MAX_CELL.y).text("height").fixed_decimals(1));
        if !zoom.fit {
            zoom.cell = cell;
        }
    });
}

/// Fit the cells of a `rows` × `cols` grid into `width` (and about `height`) points.
fn fitted(zoom: &mut Zoom, rows: usize, cols: usize, width: f32, height: f32, extra_w: f32) {
    if zoom.fit && rows > 0 && cols > 0 {
        let w = ((width - ROW_LABEL_W - extra_w - 4.0) / cols as f32).clamp(MIN_CELL.x, MAX_CELL.x);
        let h = ((height - COL_LABEL_H) / rows as f32).clamp(3.0, 22.0);
        zoom.cell = Vec2::new(w, h);
    }
}

/// Gate weight (0..1) → colour (a viridis-like ramp, skipping the darkest end so that small
/// weights still stand out from the background).
pub fn weight_color(t: f32) -> Color32 {
    const STOPS: [[f32; 3]; 5] = [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];
    let t = 0.15 + 0.85 * t.clamp(0.0, 1.0);
    let x = t * (STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

/// A distinct colour per expert id (golden-ratio hues), for colouring the transcript.
pub fn expert_color(expert: u32) -> Color32 {
    let h = (expert as f32 * 0.618_034).fract();
    egui::ecolor::Hsva::new(h, 0.65, 0.9, 1.0).into()
}

// neutral grey, so it never reads as a (bluish) low gate weight
const GROUP_BAND: Color32 = Color32::from_rgba_premultiplied(58, 58, 58, 130);
const GROUP_LINE: Color32 = Color32::from_gray(120);
/// outline of the experts in the GPU's expert cache
const RESIDENT: Color32 = Color32::from_rgb(80, 200, 120);

struct Grid {
    origin: Pos2,
    cell: Vec2,
    rows: usize,
    cols: usize,
}

impl Grid {
    fn rect(&self, row: usize, col: usize) -> Rect {
        Rect::from_min_size(self.origin + Vec2::new(col as f32 * self.cell.x, row as f32 * self.cell.y), self.cell)
    }

    fn cells_rect(&self) -> Rect {
        Rect::from_min_size(self.origin, Vec2::new(self.cols as f32 * self.cell.x, self.rows as f32 * self.cell.y))
    }

    fn at(&self, p: Pos2) -> Option<(usize, usize)> {
        let d = p - self.origin;
        if d.x < 0.0 || d.y < 0.0 {
            return None;
        }
        let (c, r) = ((d.x / self.cell.x) as usize, (d.y / self.cell.y) as usize);
        (r < self.rows && c < self.cols).then_some((r, c))
    }

    fn row_at(&self, y: f32) -> Option<usize> {
        let d = y - self.origin.y;
        (d >= 0.0 && ((d / self.cell.y) as usize) < self.rows).then(|| (d / self.cell.y) as usize)
    }
}

/// Row labels (model layer index) and column labels (expert index), thinned to stay legible,
/// group boundaries, and the background.
fn paint_axes(painter: &egui::Painter, g: &Grid, shape: &RoutingShape, visuals: &egui::Visuals) {
    let font = FontId::proportional(10.0);
    let text = visuals.weak_text_color();
    painter.rect_filled(g.cells_rect(), 0.0, visuals.extreme_bg_color);
    let every_row = (12.0 / g.cell.y).ceil().max(1.0) as usize;
    for (row, layer) in shape.layers.iter().enumerate() {
        if row % every_row == 0 {
            let y = g.origin.y + (row as f32 + 0.5) * g.cell.y;
            painter.text(Pos2::new(g.origin.x - 4.0, y), Align2::RIGHT_CENTER, format!("L{layer}"), font.clone(), text);
        }
    }
    let step = [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 512].into_iter().find(|s| *s as f32 * g.cell.x >= 24.0).unwrap_or(1024);
    let mut col = 0;
    while col < g.cols {
        let x = g.origin.x + (col as f32 + 0.5) * g.cell.x;
        painter.text(Pos2::new(x, g.origin.y - 2.0), Align2::CENTER_BOTTOM, col.to_string(), font.clone(), text);
        col += step;
    }
    if shape.grouped() {
        let gs = shape.group_size();
        let r = g.cells_rect();
        for k in 1..shape.n_group {
            let x = g.origin.x + (k * gs) as f32 * g.cell.x;
            painter.line_segment([Pos2::new(x, r.top()), Pos2::new(x, r.bottom())], Stroke::new(1.0, GROUP_LINE));
        }
    }
    if g.cell.y >= 7.0 {
        // Row separators only when rows are tall enough for them not to turn the grid grey.
        let r = g.cells_rect();
        for row in 1..g.rows {
            let y = g.origin.y + row as f32 * g.cell.y;
            painter.line_segment([Pos2::new(r.left(), y), Pos2::new(r.right(), y)], Stroke::new(1.0, visuals.faint_bg_color));
        }
    }
}

/// Allocate the heatmap area inside a scroll area (both directions) and return its grid.
fn heatmap_area<R>(ui: &mut egui::Ui, id: &str, shape: &RoutingShape, zoom: &mut Zoom, max_h: f32, extra_w: f32, draw: impl FnOnce(&mut egui::Ui, &Grid, &egui::Response) -> R) -> Option<R> {
    let (rows, cols) = (shape.layers.len(), shape.n_experts);
    // Both views fit as if they had the balance column, so their columns line up.
    fitted(zoom, rows, cols, ui.available_width(), max_h, BALANCE_W);
    let size = Vec2::new(ROW_LABEL_W + cols as f32 * zoom.cell.x + extra_w + 2.0, COL_LABEL_H + rows as f32 * zoom.cell.y + 2.0);
    egui::ScrollArea::both()
        .id_salt(id)
        .max_height(max_h + 16.0)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            let (rect, resp) = ui.allocate_exact_size(size, Sense::click());
            // Ctrl + scroll zooms the grid under the pointer (both views share the zoom).
            if resp.hovered() {
                let z = ui.input(|i| i.zoom_delta());
                if z != 1.0 {
                    zoom.fit = false;
                    zoom.cell = (zoom.cell * z).clamp(MIN_CELL, MAX_CELL);
                }
            }
            let g = Grid { origin: rect.min + Vec2::new(ROW_LABEL_W, COL_LABEL_H), cell: zoom.cell, rows, cols };
            draw(ui, &g, &resp)
        })
        .inner
        .into()
}

/// (a) One position's routing: rows = MoE layers, columns = experts.
/// Returns the cell (MoE row, expert) the user clicked.
/// `resident`: per MoE row, the experts on the GPU (an expert cache), outlined.
#[allow(clippy::too_many_arguments)]
pub fn token_heatmap(ui: &mut egui::Ui, shape: &RoutingShape, route: Option<&PositionRoute>, load: &[Vec<u32>], resident: Option<&[Vec<u32>]>, zoom: &mut Zoom, max_h: f32) -> Option<(usize, usize)> {
    if shape.layers.is_empty() {
        ui.weak("this model has no MoE layers: nothing is routed");
        return None;
    }
    let max_w = route.map_or(0.0, |r| r.layers.iter().flat_map(|l| l.weights.iter().copied()).fold(0.0f32, f32::max));
    let clicked = heatmap_area(ui, "token heatmap", shape, zoom, max_h, 0.0, |ui, g, resp| {
        let painter = ui.painter();
        paint_axes(painter, g, shape, ui.visuals());
        let clicked = clicked_cell(g, resp);
        for (row, experts) in resident.into_iter().flatten().enumerate().take(g.rows) {
            for &e in experts.iter().filter(|&&e| (e as usize) < g.cols) {
                painter.rect_stroke(g.rect(row, e as usize).shrink(0.5), 0.0, Stroke::new(1.0, RESIDENT), StrokeKind::Inside);
            }
        }
        let Some(route) = route else { return clicked };
        let gs = shape.group_size();
        for (row, lr) in route.layers.iter().enumerate().take(g.rows) {
            if shape.grouped() {
                for (grp, sel) in route.selected_groups(row, shape).into_iter().enumerate() {
                    if sel {
                        let r = g.rect(row, grp * gs).union(g.rect(row, (grp + 1) * gs - 1));
                        painter.rect_filled(r, 0.0, GROUP_BAND);
                    }
                }
            }
            for (&e, &w) in lr.experts.iter().zip(&lr.weights) {
                if (e as usize) < g.cols {
                    let r = g.rect(row, e as usize);
                    // Keep at least a 1.5-point target so a chosen expert never vanishes when zoomed out.
                    let r = Rect::from_center_size(r.center(), r.size().max(Vec2::splat(1.5)));
                    painter.rect_filled(r, 0.0, weight_color(if max_w > 0.0 { w / max_w } else { 1.0 }));
                }
            }
        }
        if let Some((row, col)) = resp.hover_pos().and_then(|p| g.at(p)) {
            painter.rect_stroke(g.rect(row, col), 0.0, Stroke::new(1.0, Color32::WHITE), StrokeKind::Outside);
            let layer = shape.layers[row];
            let picked = route.layers.get(row).and_then(|l| l.experts.iter().position(|&e| e as usize == col).map(|k| (k, l.weights[k])));
            let picks = load.get(row).and_then(|l| l.get(col)).copied().unwrap_or(0);
            let total: u64 = load.get(row).map_or(0, |l| l.iter().map(|&c| c as u64).sum());
            let on_gpu = resident.and_then(|r| r.get(row)).map(|r| r.contains(&(col as u32)));
            let group_sel = shape.grouped() && route.selected_groups(row, shape).get(shape.group_of(col)).copied().unwrap_or(false);
            resp.clone().on_hover_ui_at_pointer(|ui| {
                ui.label(format!("layer {layer} · expert {col}{}", if shape.grouped() { format!(" (group {})", shape.group_of(col)) } else { String::new() }));
                match picked {
                    Some((rank, w)) => ui.label(format!("chosen, rank {rank}, gate weight {w:.4}")),
                    None => ui.weak("not chosen for this token"),
                };
                if shape.grouped() {
                    ui.label(if group_sel { "its group was selected" } else { "its group was not selected" });
                }
                ui.label(format!("load so far: {picks} picks ({:.1}% of this layer's {total})", pct(picks as u64, total)));
                if let Some(on) = on_gpu {
                    ui.label(if on { "in the GPU's expert cache (outlined)" } else { "in host memory: uploaded when picked" });
                }
                ui.weak("click: the tokens this expert took");
            });
        }
        clicked
    });
    legend(ui, max_w, shape.grouped());
    if let Some(r) = resident {
        ui.colored_label(RESIDENT, format!("outlined: the {} experts per layer in the GPU's expert cache; the others are in host memory", r.first().map_or(0, |l| l.len())));
    }
    clicked.flatten()
}

/// The cell under a click, if the response was clicked on the grid.
fn clicked_cell(g: &Grid, resp: &egui::Response) -> Option<(usize, usize)> {
    resp.clicked().then(|| resp.interact_pointer_pos()).flatten().and_then(|p| g.at(p))
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn legend(ui: &mut egui::Ui, max_w: f32, grouped: bool) {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        ui.weak("gate weight 0");
        let (r, _) = ui.allocate_exact_size(Vec2::new(90.0, 10.0), Sense::hover());
        for i in 0..30 {
            let x0 = r.left() + r.width() * i as f32 / 30.0;
            let cell = Rect::from_min_max(Pos2::new(x0, r.top()), Pos2::new(x0 + r.width() / 30.0 + 0.5, r.bottom()));
            ui.painter().rect_filled(cell, 0.0, weight_color(i as f32 / 29.0));
        }
        ui.weak(format!("{max_w:.3}"));
        if grouped {
            let (r, _) = ui.allocate_exact_size(Vec2::new(18.0, 10.0), Sense::hover());
            ui.painter().rect_filled(r, 0.0, GROUP_BAND);
            ui.painter().rect_stroke(r, 0.0, Stroke::new(1.0, GROUP_LINE), StrokeKind::Inside);
            ui.weak("selected group");
        }
    });
}

/// (b) Cumulative load per layer and expert over the conversation, with each layer's
/// imbalance (max/mean bar, numbers on hover) to the right.
/// Returns the cell (MoE row, expert) the user clicked.
pub fn load_heatmap(ui: &mut egui::Ui, trace: &Trace, zoom: &mut Zoom, tex: &mut LoadTexture, max_h: f32) -> Option<(usize, usize)> {
    let shape = &trace.shape;
    if shape.layers.is_empty() {
        return None;
    }
    // One texel per cell, rebuilt only when the trace changes: 58 × 256 rectangles a frame
    // cost more than the whole rest of the panel.
    let rev = trace.revision();
    if tex.0.as_ref().is_none_or(|(r, _)| *r != rev) {
        let n = shape.n_experts;
        let mut img = ColorImage::filled([n, shape.layers.len()], Color32::TRANSPARENT);
        for (row, loads) in trace.load.iter().enumerate().take(shape.layers.len()) {
            let max = loads.iter().copied().max().unwrap_or(0);
            for (col, &c) in loads.iter().enumerate().take(n) {
                if c > 0 {
                    img.pixels[row * n + col] = weight_color(c as f32 / max as f32);
                }
            }
        }
        tex.0 = Some((rev, ui.ctx().load_texture("expert load", img, TextureOptions::NEAREST)));
    }
    let tex_id = tex.0.as_ref().map(|(_, t)| t.id());
    let balances: Vec<Balance> = (0..shape.layers.len()).map(|r| trace.balance(r)).collect();
    summary(ui, trace, &balances);
    let worst = balances.iter().map(|b| b.max_over_mean).fold(1.0f64, f64::max);
    heatmap_area(ui, "load heatmap", shape, zoom, max_h, BALANCE_W, |ui, g, resp| {
        let painter = ui.painter();
        paint_axes(painter, g, shape, ui.visuals());
        let clicked = clicked_cell(g, resp);
        if let Some(id) = tex_id {
            painter.image(id, g.cells_rect(), Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
        }
        // Imbalance column: bar length ∝ max/mean − 1 (0 = perfectly even).
        let x0 = g.cells_rect().right() + 6.0;
        // room for the figure after the longest bar
        let bar_w = BALANCE_W - 34.0;
        painter.text(Pos2::new(x0, g.origin.y - 2.0), Align2::LEFT_BOTTOM, "max/mean", FontId::proportional(10.0), ui.visuals().weak_text_color());
        for (row, b) in balances.iter().enumerate() {
            if b.picks == 0 {
                continue;
            }
            let f = if worst > 1.0 { ((b.max_over_mean - 1.0) / (worst - 1.0)) as f32 } else { 0.0 };
            let y = g.origin.y + row as f32 * g.cell.y;
            let r = Rect::from_min_size(Pos2::new(x0, y + g.cell.y * 0.15), Vec2::new((bar_w * f).max(1.0), g.cell.y * 0.7));
            painter.rect_filled(r, 0.0, Color32::from_rgb(230, 140, 60));
            if g.cell.y >= 11.0 {
                painter.text(Pos2::new(r.right() + 3.0, y + g.cell.y * 0.5), Align2::LEFT_CENTER, format!("{:.2}", b.max_over_mean), FontId::proportional(9.5), ui.visuals().text_color());
            }
        }
        let Some(p) = resp.hover_pos() else { return clicked };
        if let Some((row, col)) = g.at(p) {
            painter.rect_stroke(g.rect(row, col), 0.0, Stroke::new(1.0, Color32::WHITE), StrokeKind::Outside);
            let c = trace.load[row][col] as u64;
            let b = balances[row];
            resp.clone().on_hover_ui_at_pointer(|ui| {
                ui.label(format!("layer {} · expert {col}{}", shape.layers[row], if shape.grouped() { format!(" (group {})", shape.group_of(col)) } else { String::new() }));
                ui.label(format!("{c} picks: {:.1}% of the layer's {} (even share {:.1}%)", pct(c, b.picks), b.picks, 100.0 / shape.n_experts.max(1) as f64));
                balance_lines(ui, &b);
                ui.weak("click: the tokens this expert took");
            });
        } else if let Some(row) = g.row_at(p.y).filter(|_| p.x > g.cells_rect().right()) {
            let b = balances[row];
            resp.clone().on_hover_ui_at_pointer(|ui| {
                ui.label(format!("layer {}", shape.layers[row]));
                balance_lines(ui, &b);
            });
        }
        clicked
    })
    .flatten()
}

fn balance_lines(ui: &mut egui::Ui, b: &Balance) {
    ui.label(format!("max/mean load {:.2} · CV {:.2} · entropy {:.3} (1 = even)", b.max_over_mean, b.cv, b.entropy));
}

fn summary(ui: &mut egui::Ui, trace: &Trace, balances: &[Balance]) {
    let used: Vec<&Balance> = balances.iter().filter(|b| b.picks > 0).collect();
    if used.is_empty() {
        ui.weak("no tokens routed yet");
        return;
    }
    let n = used.len() as f64;
    let mean_mm = used.iter().map(|b| b.max_over_mean).sum::<f64>() / n;
    let mean_h = used.iter().map(|b| b.entropy).sum::<f64>() / n;
    let (worst_row, worst) = balances.iter().enumerate().max_by(|a, b| a.1.max_over_mean.total_cmp(&b.1.max_over_mean)).map(|(r, b)| (r, *b)).unwrap_or_default();
    ui.label(format!(
        "{} tokens · mean max/mean {mean_mm:.2} · mean entropy {mean_h:.3} · most imbalanced: layer {} ({:.2})",
        trace.positions.len(),
        trace.shape.layers.get(worst_row).copied().unwrap_or(0),
        worst.max_over_mean
    ));
}

/// Every layer's balance figures as a table.
pub fn balance_table(ui: &mut egui::Ui, trace: &Trace) {
    egui::ScrollArea::vertical().id_salt("balance table").max_height(220.0).show(ui, |ui| {
        egui::Grid::new("balance grid").striped(true).num_columns(5).show(ui, |ui| {
            for h in ["layer", "picks", "max/mean", "CV", "entropy"] {
                ui.strong(h);
            }
            ui.end_row();
            for (row, layer) in trace.shape.layers.iter().enumerate() {
                let b = trace.balance(row);
                ui.label(layer.to_string());
                ui.label(b.picks.to_string());
                ui.label(format!("{:.2}", b.max_over_mean));
                ui.label(format!("{:.2}", b.cv));
                ui.label(format!("{:.3}", b.entropy));
                ui.end_row();
            }
        });
    });
}

/// What the routing panel remembers between frames.
#[derive(Clone, Debug, Default)]
pub struct PanelState {
    pub zoom: Zoom,
    /// MoE row whose top-1 expert colours the transcript (`None`: no colouring)
    pub colour_row: Option<usize>,
    pub load_tex: LoadTexture,
}

/// The load heatmap's texture and the trace revision it shows.
#[derive(Clone, Default)]
pub struct LoadTexture(Option<(u64, TextureHandle)>);

impl std::fmt::Debug for LoadTexture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadTexture(revision {:?})", self.0.as_ref().map(|(r, _)| r))
    }
}

pub enum PanelAction {
    None,
    Unpin,
    /// a heatmap cell was clicked: show the tokens this expert took
    Expert { row: usize, expert: usize },
}

/// The whole right-hand panel: shape, zoom, (a) the focused token, (b) the load, and the
/// transcript colouring choice. `pinned`: the position the user clicked, else the latest.
pub fn panel(ui: &mut egui::Ui, trace: &Trace, pinned: Option<usize>, state: &mut PanelState) -> PanelAction {
    let shape = &trace.shape;
    let mut action = PanelAction::None;
    ui.heading("Routing");
    if shape.layers.is_empty() {
        ui.weak("no model loaded, or the model has no MoE layers");
        return action;
    }
    let groups = if shape.grouped() {
        format!(" · {} groups of {}, {} per token", shape.n_group, shape.group_size(), shape.topk_group)
    } else {
        String::new()
    };
    ui.label(format!("{} MoE layers × {} experts · top-{}{groups}", shape.layers.len(), shape.n_experts, shape.top_k));
    ui.horizontal(|ui| {
        let label = ui.label("Colour transcript by");
        let text = match state.colour_row.and_then(|r| shape.layers.get(r)) {
            Some(l) => format!("layer {l} top-1 expert"),
            None => "nothing".to_string(),
        };
        egui::ComboBox::from_id_salt("colour layer").selected_text(text).show_ui(ui, |ui| {
            ui.selectable_value(&mut state.colour_row, None, "nothing");
            for (row, l) in shape.layers.iter().enumerate() {
                ui.selectable_value(&mut state.colour_row, Some(row), format!("layer {l} top-1 expert"));
            }
        })
        .response
        .labelled_by(label.id);
    });
    zoom_controls(ui, &mut state.zoom);
    ui.separator();
    let route = match pinned {
        Some(p) => trace.get(p),
        None => trace.last(),
    };
    ui.horizontal(|ui| {
        match (pinned, route) {
            (Some(p), Some(r)) => {
                ui.strong(format!("Pinned: position {p} · {} (id {})", show_token(ui, &r.text), r.token));
            }
            (Some(p), None) => {
                ui.strong(format!("Pinned: position {p}"));
                ui.weak("(not fed through the model: the last token of a reply has no routing)");
            }
            (None, Some(r)) => {
                ui.strong(format!("Latest: position {} · {} (id {})", r.position, show_token(ui, &r.text), r.token));
            }
            (None, None) => {
                ui.weak("No token routed yet");
            }
        }
        if pinned.is_some() && ui.button("Unpin").clicked() {
            action = PanelAction::Unpin;
        }
    });
    let h = (ui.available_height() * 0.42).clamp(120.0, 420.0);
    let mut clicked = token_heatmap(ui, shape, route, &trace.load, trace.resident.as_deref(), &mut state.zoom, h);
    ui.separator();
    ui.strong("Expert load over the conversation");
    clicked = load_heatmap(ui, trace, &mut state.zoom, &mut state.load_tex, h).or(clicked);
    if let Some((row, expert)) = clicked {
        action = PanelAction::Expert { row, expert };
    }
    egui::CollapsingHeader::new("Per-layer balance table").default_open(false).show(ui, |ui| balance_table(ui, trace));
    action
}

/// A token's text for a one-line label: quoted, with line breaks as ¶ and other control
/// characters escaped, and anything the UI font cannot draw replaced.
pub fn show_token(ui: &egui::Ui, text: &str) -> String {
    let mut s = String::from("\"");
    for c in text.chars() {
        match c {
            '\n' => s.push('¶'),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.push_str(&c.escape_unicode().to_string()),
            c => s.push(c),
        }
    }
    s.push('"');
    printable(ui, &s)
}

/// Text with every character the UI font cannot draw replaced by `?`, so odd bytes from a
/// model (or a partial UTF-8 character, decoded as U+FFFD) never show as missing glyphs.
pub fn printable(ui: &egui::Ui, s: &str) -> String {
    let font = egui::TextStyle::Body.resolve(ui.style());
    ui.fonts_mut(|f| {
        if f.has_glyphs(&font, s) {
            return s.to_string();
        }
        let fallback = if f.has_glyph(&font, '\u{FFFD}') { '\u{FFFD}' } else { '?' };
        s.chars()
            .map(|ch| match ch {
                c if c.is_whitespace() || f.has_glyph(&font, c) => c,
                // DeepSeek's special tokens (<｜User｜>, <｜end▁of▁sentence｜>) use these two.
                '｜' => '|',
                '▁' => '_',
                _ => fallback,
            })
            .collect()
    })
}
