//! The model picker as a user meets it: a file dropped onto the window loads, the recent list
//! (newest first, kept across a restart, a deleted model marked missing), Unload frees the
//! model's GPU memory, the fit check before loading ("won't fit" with the numbers; the expert
//! cache offered when only the experts are too many), and the adapter list. The native file
//! dialog cannot be driven from a test: what it returns goes through the same path as a drop.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use deepseek_wgpu::model::{open, placement, total_bytes, LoadOptions};
use deepseek_wgpu_app::app::ModelState;
use deepseek_wgpu_app::worker::Verdict;
use deepseek_wgpu_app::{App, Startup};
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

fn fixture() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/chat_tiny"))
}

fn gguf_fixture() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/gguf_models/v3_tiny_q4_k_m/model.gguf"))
}

fn startup(data: &Path) -> Startup {
    Startup { model_dir: Some(fixture()), ctx: 512, max_tokens: Some(4), temperature: Some(0.0), data_dir: Some(data.to_path_buf()), ..Startup::default() }
}

/// A file as winit hands a drop to egui.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn loaded_from(h: &mut Harness<'static, App>, dir: &Path) {
    step_until(h, "the model to load", 120, |a| {
        if let ModelState::Failed { error, .. } = &a.model {
            panic!("load failed: {error}");
        }
        a.model_info().is_some_and(|m| m.dir == dir)
    });
}

#[test]
fn drop_recent_unload_and_wont_fit() {
    let data = temp_data_dir("picker");
    // a copy of a GGUF model that is deleted before the restart
    let gguf = data.join("models").join("tiny").join("model.gguf");
    std::fs::create_dir_all(gguf.parent().unwrap()).unwrap();
    std::fs::copy(gguf_fixture(), &gguf).unwrap();

    let mut h = harness(startup(&data));
    loaded_from(&mut h, &fixture());
    let fit = h.state().picker.fit.clone().expect("the fit check ran before the load");
    let info = h.state().model_info().unwrap().clone();
    assert_eq!(fit.verdict, Verdict::Fits);
    assert_eq!(fit.weights, info.weight_bytes, "the preflight counts the bytes the upload moved");
    assert_eq!(fit.cache, info.cache_bytes_allocated, "the cache at the load's context");

    // drop the GGUF file onto the window: it loads
    h.input_mut().dropped_files.push(Arc::new(Dropped(gguf.clone())));
    h.run_ok();
    loaded_from(&mut h, &gguf);
    assert_eq!(h.model_recent(), vec![gguf.display().to_string(), fixture().display().to_string()], "newest first");

    // Unload: the model is gone and its GPU memory freed
    let before = h.state().perf.memory.expect("lavapipe reports its allocations").allocated;
    let weights = h.state().model_info().unwrap().weight_bytes;
    h.get_by_label("Unload").click();
    h.run_ok();
    step_until(&mut h, "the unload", 60, |a| matches!(a.model, ModelState::None));
    step_until(&mut h, "the memory report after the unload", 60, |a| a.perf.memory.is_some_and(|m| m.allocated < before));
    let after = h.state().perf.memory.unwrap().allocated;
    assert!(before - after >= weights, "unload freed {} bytes, the weights are {weights}", before - after);
    assert!(h.state().model_info().is_none() && h.state().trace.positions.is_empty());
    assert!(h.query_by_label_contains("v3_tiny").is_none() && h.query_by_label_contains("of weights").is_none(), "the model line is gone");
    drop(h);

    // Restart on the same data folder with 1 MiB of GPU memory: the recent list is kept, the
    // deleted copy is marked missing, and the model does not fit, with the numbers.
    std::fs::remove_file(&gguf).unwrap();
    let mut h = harness(Startup { gpu_memory: Some(1 << 20), ..startup(&data) });
    step_until(&mut h, "the refusal", 60, |a| matches!(a.model, ModelState::Failed { .. }));
    assert_eq!(h.model_recent(), vec![gguf.display().to_string(), fixture().display().to_string()], "kept across a restart");
    let fit = h.state().picker.fit.clone().expect("fit check");
    let Verdict::WontFit(why) = &fit.verdict else { panic!("1 MiB cannot hold the model: {:?}", fit.verdict) };
    // the numbers: the budget, and what the model needs, counted here by the library's own
    // placement without a budget
    let (cfg, ck) = open(&fixture()).unwrap();
    let need = placement(&ck, &cfg, u64::MAX, &LoadOptions { max_ctx: 512, ..LoadOptions::default() }, total_bytes(&ck, &cfg, None), None).unwrap();
    assert_eq!(fit.weights, need.fixed_weights + need.expert_weights);
    assert!(why.contains("about 1 MiB are available"), "{why}");
    assert!(h.query_by_label_contains("chat_tiny won't fit: the model needs about").is_some());
    assert!(h.query_by_label_contains("the GPU memory given (--gpu-memory) is 1.0 MiB").is_some());
    assert!(h.state().model_info().is_none(), "nothing was loaded");

    h.get_by_label("Recent").click();
    h.run_ok();
    let missing = h.get_by_label("tiny/model.gguf (missing)").rect();
    let tiny = h.get_by_label("fixtures/chat_tiny").rect();
    assert!(missing.top() < tiny.top(), "newest first");
    h.remove_cursor();
    h.run_ok();
    mask_variable(&mut h, &[]);
    h.snapshot("model_picker");

    // the recent entry opens the model (here: refused again, the budget is the same)
    h.get_by_label("fixtures/chat_tiny").click();
    h.run_ok();
    step_until(&mut h, "the second refusal", 60, |a| matches!(a.model, ModelState::Failed { .. }) && a.picker.fit.is_some());
}

#[test]
fn expert_cache_offered_and_adapters_listed() {
    let data = temp_data_dir("picker-offload");
    // a budget that holds everything but half of the routed experts
    let (cfg, ck) = open(&fixture()).unwrap();
    let need = placement(&ck, &cfg, u64::MAX, &LoadOptions { max_ctx: 512, ..LoadOptions::default() }, total_bytes(&ck, &cfg, None), None).unwrap();
    let budget = need.fixed_weights + need.cache + need.activations + need.expert_weights / 2;
    let mut h = harness(Startup { gpu_memory: Some(budget), ..startup(&data) });
    step_until(&mut h, "the offer", 60, |a| matches!(a.model, ModelState::Failed { .. }));
    let fit = h.state().picker.fit.clone().expect("fit check");
    let Verdict::Offload { slots, n_routed, gpu_bytes } = fit.verdict else { panic!("{:?}", fit.verdict) };
    assert_eq!(n_routed, 8);
    assert!((1..n_routed).contains(&slots) && gpu_bytes <= budget, "{slots} of {n_routed}, {gpu_bytes} of {budget}");
    assert!(h.query_by_label_contains(&format!("{slots} of {n_routed} routed experts per MoE layer on the GPU")).is_some());
    h.get_by_label("Load with expert cache").click();
    h.run_ok();
    loaded_from(&mut h, &fixture());
    type_and_send(&mut h, "hi");
    reply_done(&mut h);
    assert!(!h.state().turns[0].reply.tokens.is_empty());

    // the adapters, with the one in use marked; choosing one is kept for the next start
    h.get_by_label("Adapter").click();
    h.run_ok();
    let current = h.state().picker.current_adapter.clone();
    assert!(!current.is_empty());
    assert!(h.query_by_label_contains(&format!("{current} · Vulkan")).is_some(), "the adapter in use is listed with its backend");
    assert!(h.query_by_label_contains(&format!("{current} · Vulkan · Cpu · host memory:")).is_some(), "lavapipe is a CPU adapter: the host's memory");
    assert!(h.query_by_label_contains(" · in use").is_some());
    assert!(h.query_by_label_contains("takes effect at next start").is_some());
    h.get_by_label_contains(&format!("{current} · Vulkan")).click();
    h.run_ok();
    let saved = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(saved.contains(&format!("\"adapter\": \"{current}\"")), "{saved}");
}

trait Recent {
    fn model_recent(&self) -> Vec<String>;
}

impl Recent for Harness<'static, App> {
    fn model_recent(&self) -> Vec<String> {
        self.state().picker.recent.clone()
    }
}
