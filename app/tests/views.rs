//! The routing views at DeepSeek-R1's shape (58 MoE layers × 256 experts, 8 groups, top-8)
//! with synthetic group-limited routing: rendered through wgpu and compared to snapshots.

use deepseek_wgpu_app::routing::{r1_shape, Trace};
use deepseek_wgpu_app::routing_view::{self, PanelState, Zoom};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

struct State {
    trace: Trace,
    pinned: Option<usize>,
    panel: PanelState,
}

fn harness(state: State, size: [f32; 2]) -> Harness<'static, State> {
    Harness::builder().with_size(size).wgpu().build_ui_state(
        |ui, s: &mut State| {
            if let routing_view::PanelAction::Unpin = routing_view::panel(ui, &s.trace, s.pinned, &mut s.panel) {
                s.pinned = None;
            }
        },
        state,
    )
}

#[test]
fn r1_shape_views_fit_and_explain_on_hover() {
    let trace = Trace::synthetic(r1_shape(), 400, 42);
    assert_eq!(trace.positions.len(), 400);
    let mut h = harness(State { trace, pinned: Some(123), panel: PanelState::default() }, [760.0, 900.0]);
    h.run();
    assert!(h.query_by_label_contains("58 MoE layers × 256 experts · top-8 · 8 groups of 32, 4 per token").is_some());
    assert!(h.query_by_label_contains("Pinned: position 123").is_some());
    assert!(h.query_by_label_contains("400 tokens · mean max/mean").is_some());
    h.snapshot("r1_views_fit");

    // Hover a chosen expert of the pinned token (layer row 5): its details appear in a tooltip.
    let top = h.get_by_label_contains("Pinned: position 123").rect().bottom();
    let cell = h.state().panel.zoom.cell;
    let expert = h.state().trace.get(123).expect("routed").layers[5].experts[0] as f32;
    // grid origin: the harness margin (8) + row labels (34); 18 below the pinned line (axis labels)
    h.hover_at(egui::pos2(8.0 + 34.0 + (expert + 0.5) * cell.x, top + 18.0 + 5.5 * cell.y));
    h.run();
    assert!(h.query_by_label_contains("load so far:").is_some(), "hovering a cell shows its details");
    assert!(h.query_by_label_contains("chosen, rank 0, gate weight").is_some(), "the hovered cell is the chosen expert");
    h.snapshot("r1_views_hover");
}

#[test]
fn r1_shape_views_zoomed_in_scroll() {
    let trace = Trace::synthetic(r1_shape(), 50, 3);
    let panel = PanelState { zoom: Zoom { fit: false, cell: egui::vec2(12.0, 12.0) }, colour_row: Some(10), ..Default::default() };
    let mut h = harness(State { trace, pinned: None, panel }, [760.0, 900.0]);
    h.run();
    assert!(h.query_by_label_contains("Latest: position 49").is_some());
    let combo = h.get_by_label("Colour transcript by").value();
    assert!(combo.as_deref().is_some_and(|v| v.contains("layer 13 top-1 expert")), "colour choice shows the model layer: {combo:?}");
    h.snapshot("r1_views_zoomed");
}
