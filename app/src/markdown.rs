//! Answers as Markdown (headings, lists, tables, inline code, code blocks highlighted by
//! egui_extras, each with its copy button) through `egui_commonmark`, and the copy button of
//! a whole message. Streaming text is re-rendered as it grows: an unclosed code fence is a
//! code block to the end of the text (CommonMark's rule), so a half-written answer never
//! breaks the layout.

use eframe::egui;
use egui_commonmark::{CommonMarkCache, CommonMarkViewer};

/// Render `text` as Markdown.
pub fn show(ui: &mut egui::Ui, cache: &mut CommonMarkCache, text: &str) {
    // characters no installed font has (a random model's bytes, U+FFFD) become '?' as in the chips
    let text = crate::routing_view::printable(ui, text);
    CommonMarkViewer::new().show(ui, cache, &text);
}

/// A small "Copy" button that puts `text` on the clipboard; `what` names it for screen readers
/// and tests ("Copy message 2", "Copy answer 2").
pub fn copy_button(ui: &mut egui::Ui, text: &str, what: &str) {
    let r = ui.add(egui::Button::new("Copy").small()).on_hover_text(format!("{what} to the clipboard (as Markdown)"));
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, what));
    if r.clicked() {
        ui.ctx().copy_text(text.to_string());
    }
}

/// egui_commonmark labels its code blocks' copy button "🗐" (U+1F5D0), then "✔" once copied,
/// which egui's bundled fonts lack (a box would show): draw those two glyphs ourselves.
pub fn install_copy_glyph(ctx: &egui::Context) {
    use egui::epaint::text::{GlyphBitmap, GlyphRasterizer, RasterizedGlyph};
    ctx.add_glyph_rasterizer(GlyphRasterizer::new("deepseek_wgpu_app::copy_glyph", |req| {
        let check = match req.cluster {
            "🗐" => false,
            "✔" => true,
            _ => return None,
        };
        let s = req.font_size_px.max(6.0);
        let (w, h) = ((s * 0.8).round() as usize, (s * 0.8).round() as usize);
        let t = (s / 12.0).round().max(1.0) as usize;
        let mut px = vec![egui::Color32::TRANSPARENT; w * h];
        if check {
            // two strokes: down from the left to the bottom third, up to the top right
            let (wf, hf, tf) = (w as f32, h as f32, t as f32 * 1.2);
            let seg = |x: f32, y: f32, (ax, ay): (f32, f32), (bx, by): (f32, f32)| {
                let (dx, dy) = (bx - ax, by - ay);
                let k = (((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
                ((x - ax - k * dx).powi(2) + (y - ay - k * dy).powi(2)).sqrt() <= tf
            };
            let (a, b, c) = ((wf * 0.1, hf * 0.55), (wf * 0.4, hf * 0.85), (wf * 0.9, hf * 0.15));
            for y in 0..h {
                for x in 0..w {
                    let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                    if seg(fx, fy, a, b) || seg(fx, fy, b, c) {
                        px[y * w + x] = egui::Color32::WHITE;
                    }
                }
            }
            let image = egui::ColorImage::new([w, h], px);
            return Some(RasterizedGlyph { bitmap: GlyphBitmap { image, offset_px: egui::vec2(s * 0.1, -s * 0.8), is_color: false }, advance_px: s });
        }
        let (pw, ph) = (w * 7 / 10, h * 7 / 10);
        // the front page (bottom left) and the part of the back page (top right) it leaves
        let front = |x: usize, y: usize| x < pw && y >= h - ph;
        for y in 0..h {
            for x in 0..w {
                let edge = |x0: usize, y0: usize| {
                    let (dx, dy) = (x.wrapping_sub(x0), y.wrapping_sub(y0));
                    dx < pw && dy < ph && (dx < t || dx >= pw - t || dy < t || dy >= ph - t)
                };
                if edge(0, h - ph) || (edge(w - pw, 0) && !front(x, y)) {
                    px[y * w + x] = egui::Color32::WHITE;
                }
            }
        }
        let image = egui::ColorImage::new([w, h], px);
        Some(RasterizedGlyph { bitmap: GlyphBitmap { image, offset_px: egui::vec2(s * 0.1, -s * 0.8), is_color: false }, advance_px: s })
    }));
}
