//! The real app driven through egui_kittest: the tiny chat fixture loads on the harness's
//! wgpu device (lavapipe here), prompts are typed and sent, tokens stream in from the engine
//! thread, and the UI is clicked and rendered to snapshots under tests/snapshots/.
//!
//! Run with `cargo test --release -p deepseek-wgpu-app -- --test-threads=1`;
//! `UPDATE_SNAPSHOTS=true` rewrites snapshots that differ.

use std::path::PathBuf;

use deepseek_wgpu::session::StopReason;
use deepseek_wgpu_app::app::ModelState;
use deepseek_wgpu_app::{App, Startup};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

mod common;
use common::{clear_and_type, harness, reply_done, step_until, stop_a_long_answer, type_and_send, MODEL_FIELD};

fn fixture() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/chat_tiny"))
}

fn startup(max_tokens: usize) -> Startup {
    Startup { model_dir: Some(fixture()), ctx: 512, max_tokens: Some(max_tokens), temperature: Some(0.0), colour_row: Some(0), ..Startup::default() }
}

/// Step the UI until `cond` holds; a model that fails to load fails the test at once.
fn wait(h: &mut Harness<'static, App>, what: &str, secs: u64, cond: impl Fn(&App) -> bool) {
    step_until(h, what, secs, |a| {
        if cond(a) {
            return true;
        }
        if let ModelState::Failed { error, .. } = &a.model {
            panic!("model failed to load while waiting for {what}: {error}");
        }
        false
    });
}

fn loaded(h: &mut Harness<'static, App>) {
    wait(h, "the model to load", 120, |a| a.model_info().is_some());
}

/// Cover what changes from run to run (timings) or from checkout to checkout (the absolute
/// model path) before a snapshot.
fn mask_variable(h: &mut Harness<'static, App>) {
    common::mask_variable(h, &["Thinking ·", "tok/s"]);
}

/// CSV records: line breaks outside quoted fields (token text may hold line breaks).
fn csv_records(csv: &str) -> usize {
    let mut quoted = false;
    csv.chars()
        .filter(|&c| {
            if c == '"' {
                quoted = !quoted;
            }
            c == '\n' && !quoted
        })
        .count()
}

#[test]
fn chat_streams_pins_routing_and_exports() {
    let mut h = harness(startup(10));
    loaded(&mut h);
    let info = h.state().model_info().expect("loaded").clone();
    assert!(info.shared_device, "the engine should run on the UI's wgpu device");
    assert_eq!(info.shape.n_experts, 8);

    type_and_send(&mut h, "Hello there");
    // Tokens arrive while the reply is still running: the UI is not blocked.
    wait(&mut h, "the first tokens", 120, |a| a.turns[0].reply.tokens.len() >= 2 || !a.busy);
    reply_done(&mut h);

    let app = h.state();
    let r = &app.turns[0].reply;
    assert!(matches!(r.stop, Some(StopReason::MaxTokens) | Some(StopReason::Eos)), "{:?}", r.stop);
    assert!(!r.tokens.is_empty() && r.tokens.len() <= 10);
    let (start, end) = r.prompt.expect("prompt positions");
    assert_eq!(start, 0);
    assert_eq!(r.tokens[0].position, end, "generation continues right after the prompt");
    // Every position fed has its routing: the prompt and every generated token but the last.
    assert_eq!(app.trace.positions.len(), end + r.tokens.len() - 1);
    let stats = app.stats.clone().expect("stats");
    assert!(stats.prefill_tokens_per_s > 0.0 && stats.context_used == app.trace.positions.len());
    let first = r.tokens[0].position;
    let thinking = r.reasoning_tokens() > 0;

    // Open the thinking block (the fixture's template opens <think> for the model).
    if thinking {
        h.get_by_label_contains("Thinking ·").click();
        h.run_ok();
    }
    // Pin the first generated token's routing.
    h.get_by_label_contains(&format!("token {first}:")).click();
    h.run_ok();
    assert_eq!(h.state().pinned, Some(first));
    assert!(h.query_by_label_contains(&format!("Pinned: position {first}")).is_some());
    h.remove_cursor();
    h.run_ok();
    mask_variable(&mut h);
    h.snapshot("chat_reply_pinned");

    // Export the routing trace.
    let dir = std::env::temp_dir().join(format!("dsw-app-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    replace_text(&mut h, "File (.json / .csv added if missing)", &dir.join("trace").display().to_string());
    h.get_by_label("Export JSON").click();
    h.run_ok();
    h.get_by_label("Export CSV").click();
    h.run_ok();
    assert!(h.query_by_label_contains("wrote the routing of").is_some());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("trace.json")).expect("json written")).expect("valid json");
    let n = h.state().trace.positions.len();
    assert_eq!(json["positions"].as_array().map(|a| a.len()), Some(n));
    assert_eq!(json["shape"]["top_k"], 3);
    let csv = std::fs::read_to_string(dir.join("trace.csv")).expect("csv written");
    assert!(csv.starts_with("position,token_id,token_text,layer,rank,expert,weight\n"));
    // one row per position × MoE layer × rank (the fixture: 1 MoE layer, top-3)
    assert_eq!(csv_records(&csv), 1 + n * 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stop_ends_a_long_answer() {
    let mut h = harness(startup(400));
    loaded(&mut h);
    stop_a_long_answer(&mut h);
    let r = &h.state().turns[0].reply;
    assert!(r.tokens.len() < 400);
    // The stopped reply still counts as a turn: a follow-up (sent with Enter) reuses the cache.
    h.get_by_label("Message").click();
    h.run_ok();
    h.get_by_label("Message").type_text("and then?");
    h.key_press(egui::Key::Enter);
    h.run_ok();
    assert_eq!(h.state().turns.len(), 2, "Enter sends");
    assert_eq!(h.state().turns[1].user, "and then?");
    reply_done(&mut h);
    let s = h.state().turns[1].reply.stats.clone().expect("stats");
    assert!(s.reused_tokens > 0, "follow-up should reuse the cached prefix");
}

#[test]
fn regenerate_new_chat_and_edit_and_resend() {
    let mut s = startup(6);
    s.temperature = Some(0.8);
    s.seed = Some(7);
    let mut h = harness(s);
    loaded(&mut h);
    type_and_send(&mut h, "first question");
    reply_done(&mut h);
    let ids = |a: &App, i: usize| a.turns[i].reply.tokens.iter().map(|t| t.id).collect::<Vec<_>>();
    let a = ids(h.state(), 0);

    // Same seed: regenerating gives the same reply, and reuses the cached prompt.
    h.get_by_label("Regenerate").click();
    h.run_ok();
    reply_done(&mut h);
    assert_eq!(h.state().turns.len(), 1);
    assert_eq!(ids(h.state(), 0), a);

    type_and_send(&mut h, "second question");
    reply_done(&mut h);
    assert_eq!(h.state().turns.len(), 2);

    // Edit the first message: the second turn goes, the first is answered again.
    h.get_all_by_label("Edit").next().expect("an Edit button").click();
    h.run_ok();
    assert_eq!(h.state().editing.as_ref().map(|e| e.0), Some(0));
    h.get_by_label("Edited message:").click();
    h.run_ok();
    h.get_by_label("Edited message:").type_text(", edited");
    h.run_ok();
    assert_eq!(h.state().editing.as_ref().map(|e| e.1.as_str()), Some("first question, edited"));
    h.get_by_label("Resend").click();
    h.run_ok();
    reply_done(&mut h);
    let app = h.state();
    assert_eq!(app.turns.len(), 1);
    assert_eq!(app.turns[0].user, "first question, edited");
    let st = app.turns[0].reply.stats.clone().expect("stats");
    assert!(st.reused_tokens > 0 && st.reused_tokens < st.prompt_tokens, "edit re-feeds from the change: {st:?}");
    assert_eq!(app.trace.positions.len(), st.context_used, "the trace follows the edited conversation");

    h.get_by_label("New chat").click();
    h.run_ok();
    assert!(h.state().turns.is_empty() && h.state().trace.positions.is_empty());
}

/// Click a single-line field, clear it with Backspace and type `text`.
fn replace_text(h: &mut Harness<'static, App>, label: &str, text: &str) {
    clear_and_type(h, label, text);
    assert_eq!(h.get_by_label(label).value().as_deref(), Some(text), "typing into {label}");
}

#[test]
fn invalid_settings_and_bad_folders_show_messages() {
    let mut h = harness(Startup { model_dir: Some("/no/such/model".into()), ..startup(4) });
    wait(&mut h, "the load error", 60, |a| matches!(a.model, ModelState::Failed { .. }));
    assert!(h.query_by_label_contains("/no/such/model is neither a model folder nor a .gguf file").is_some());

    // A folder without config.json: the config error, still no crash.
    replace_text(&mut h, MODEL_FIELD, env!("CARGO_MANIFEST_DIR"));
    h.get_by_label("Open").click();
    h.run_ok();
    wait(&mut h, "the config error", 60, |a| matches!(a.model, ModelState::Failed { .. }));
    assert!(h.query_by_label_contains("config.json").is_some());

    // Then the real model, opened from the window.
    replace_text(&mut h, MODEL_FIELD, &fixture().display().to_string());
    h.key_press(egui::Key::Enter);
    h.run_ok();
    loaded(&mut h);

    // Invalid sampling values: messages, and Send stays disabled.
    replace_text(&mut h, "Top-p", "2");
    replace_text(&mut h, "Temperature", "warm");
    assert!(h.query_by_label_contains("temperature: \"warm\" is not a number").is_some());
    replace_text(&mut h, "Temperature", "0");
    assert!(h.query_by_label_contains("top-p 2 must be in (0, 1]").is_some());
    h.get_by_label("Message").click();
    h.get_by_label("Message").type_text("hi");
    h.run_ok();
    h.get_by_label("Send").click();
    h.run_ok();
    assert!(!h.state().busy && h.state().turns.is_empty(), "invalid settings must not send");
    replace_text(&mut h, "Top-p", "1");
    h.get_by_label("Send").click();
    h.run_ok();
    reply_done(&mut h);
}

/// A GGUF file typed into the model field loads like a folder (its tokenizer and chat template
/// come from the file's metadata), chats, and shows the MoE routing of its experts.
#[test]
fn opens_a_gguf_file_from_the_model_field() {
    let gguf = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/gguf_models/v3_tiny_q4_k_m/model.gguf"));
    let mut h = harness(Startup { model_dir: Some("/no/such/model".into()), ..startup(4) });
    wait(&mut h, "the load error", 60, |a| matches!(a.model, ModelState::Failed { .. }));
    replace_text(&mut h, MODEL_FIELD, &gguf.display().to_string());
    h.get_by_label("Open").click();
    h.run_ok();
    loaded(&mut h);
    let info = h.state().model_info().expect("loaded");
    assert_eq!(info.shape.layers, vec![1, 2], "the GGUF's two MoE layers");
    type_and_send(&mut h, "hello");
    reply_done(&mut h);
    assert!(!h.state().turns[0].reply.tokens.is_empty(), "the reply streamed tokens");
    assert!(!h.state().trace.positions.is_empty(), "routing recorded for every position fed");
}

/// A dense model (a tiny random Qwen3 with a cut of Qwen3's tokenizer, tests/fixtures/qwen3_tiny)
/// loads and chats; the right panel shows its K/V cache instead of an empty routing heatmap, and
/// a pinned token shows up there too.
#[test]
fn a_dense_model_shows_its_kv_cache() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/qwen3_tiny"));
    let mut h = harness(Startup { model_dir: Some(dir), colour_row: None, ..startup(6) });
    loaded(&mut h);
    let info = h.state().model_info().expect("loaded").clone();
    assert!(info.shape.layers.is_empty(), "a dense model has no MoE layers");
    assert_eq!(info.cache_kind, "K/V cache");
    assert!(h.query_by_label_contains("no experts to route").is_some());
    assert!(h.query_by_label_contains("nothing cached yet").is_some());
    assert!(h.query_by_label_contains("K/V cache 0 B of").is_some(), "the context section names the cache kind");

    type_and_send(&mut h, "hello");
    reply_done(&mut h);
    let app = h.state();
    let n = app.trace.positions.len();
    assert!(n > 0 && app.trace.positions.iter().all(|p| p.layers.is_empty()), "positions fed, no routing");
    assert!(h.query_by_label_contains(&format!("{n} of 512 positions cached")).is_some());
    assert!(h.query_by_label_contains("GQA: 4 query heads share 2 K/V heads of 64").is_some());
    let first = h.state().turns[0].reply.tokens[0].position;
    // the answer shows as Markdown; "Tokens" shows its chips
    if h.query_by_label_contains(&format!("token {first}:")).is_none() {
        h.get_by_label("Tokens").click();
        h.run_ok();
    }
    h.get_by_label_contains(&format!("token {first}:")).click();
    h.run_ok();
    assert_eq!(h.state().pinned, Some(first));
    assert!(h.query_by_label_contains(&format!("Pinned: position {first}")).is_some());
    h.remove_cursor();
    h.run_ok();
    mask_variable(&mut h);
    h.snapshot("dense_kv_cache");
}
