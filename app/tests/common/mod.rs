//! What the app's UI tests (ui.rs, remote.rs) share: the app in a kittest harness on the
//! test's wgpu device, stepping it until a condition holds, typing, sending, masking.
#![allow(dead_code)] // each test file uses its part

use std::time::{Duration, Instant};

use deepseek_wgpu_app::{App, Startup};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

pub const MODEL_FIELD: &str = "Model (folder or .gguf)";

pub fn harness(s: Startup) -> Harness<'static, App> {
    harness_sized(s, [1280.0, 800.0])
}

/// The app in a window of `size` points; chats are saved in a fresh temporary folder unless
/// `s.data_dir` names one (never in the user's data folder).
pub fn harness_sized(mut s: Startup, size: [f32; 2]) -> Harness<'static, App> {
    if s.data_dir.is_none() {
        s.data_dir = Some(temp_data_dir("harness"));
    }
    // The harness's own adapter choice (software rasteriser first), with the app's device limits.
    let setup = deepseek_wgpu_app::gpu::with_full_limits(egui_kittest::wgpu::default_wgpu_setup());
    Harness::builder().with_size(size).with_max_steps(20).wgpu_setup(setup).build_eframe(move |cc| App::new(cc, s))
}

/// An empty folder under the system's temporary folder, unique to this process and call.
pub fn temp_data_dir(what: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("dsw-app-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temporary data folder");
    d
}

/// Step the UI until `cond` holds (the worker thread works meanwhile); `cond` may panic to
/// fail early.
pub fn step_until(h: &mut Harness<'static, App>, what: &str, secs: u64, cond: impl Fn(&App) -> bool) {
    let t0 = Instant::now();
    while !cond(h.state()) {
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out after {secs} s waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_ok();
}

/// Type `text` into the composer and click Send: a new turn starts.
pub fn type_and_send(h: &mut Harness<'static, App>, text: &str) {
    let turns = h.state().turns.len();
    h.get_by_label("Message").click();
    h.run_ok();
    h.get_by_label("Message").type_text(text);
    h.run_ok();
    assert_eq!(h.state().input, text);
    h.get_by_label("Send").click();
    h.run_ok();
    // (the tiny model may already have finished: check the turn, not `busy`)
    let a = h.state();
    assert_eq!(a.turns.len(), turns + 1, "Send should start a reply (banner {:?})", a.banner);
    assert_eq!(a.turns[turns].user, text);
    assert!(a.input.is_empty(), "the composer is cleared");
}

/// Wait for the reply to end, without an error.
pub fn reply_done(h: &mut Harness<'static, App>) {
    step_until(h, "the reply to finish", 120, |a| !a.busy);
    let r = &h.state().turns.last().expect("a turn").reply;
    assert!(r.error.is_none(), "reply failed: {:?}", r.error);
}

/// Click a single-line field, clear it with Backspace and type `text`.
pub fn clear_and_type(h: &mut Harness<'static, App>, label: &str, text: &str) {
    // as a user would: scroll the field into view (the left column scrolls) before clicking it
    h.get_by_label(label).scroll_to_me();
    h.run_ok();
    h.get_by_label(label).click();
    h.run_ok();
    h.key_press(egui::Key::End);
    let n = h.get_by_label(label).value().unwrap_or_default().chars().count();
    for _ in 0..n {
        h.key_press(egui::Key::Backspace);
    }
    h.get_by_label(label).type_text(text);
    h.run_ok();
}

/// Cover the widgets whose labels contain `labels`, and the model field, before a snapshot:
/// what changes from run to run (timings, a server's port) or from checkout to checkout (the
/// absolute model path).
pub fn mask_variable(h: &mut Harness<'static, App>, labels: &[&str]) {
    let mut rects = Vec::new();
    for label in labels {
        rects.extend(h.query_all_by_label_contains(label).map(|n| n.rect()));
    }
    rects.push(h.get_by_label(MODEL_FIELD).rect());
    // the temporary chats folder: its own rect (the sidebar is narrow)
    let saved: Vec<egui::Rect> = h.query_all_by_label_contains("saved in ").map(|n| n.rect()).collect();
    for r in saved {
        h.mask(r);
    }
    for r in rects {
        // A fixed width: the text itself (and so its rect) changes length from run to run.
        h.mask(egui::Rect::from_min_size(r.min, egui::vec2(r.width().max(260.0), r.height())));
    }
}

/// Ask for a long story and click Stop after a few tokens: the reply ends as cancelled.
pub fn stop_a_long_answer(h: &mut Harness<'static, App>) {
    type_and_send(h, "Tell me a long story");
    let turn = h.state().turns.len() - 1;
    step_until(h, "a few tokens", 120, |a| a.turns[turn].reply.tokens.len() >= 3 || !a.busy);
    assert!(h.state().busy, "the answer ended before Stop: {:?}", h.state().turns[turn].reply.stop);
    h.get_by_label("Stop").click();
    h.run_ok();
    reply_done(h);
    assert_eq!(h.state().turns[turn].reply.stop, Some(deepseek_wgpu::session::StopReason::Cancelled));
}
