//! Bind groups are kept across submissions: a decode step that binds what the last one bound
//! creates none, and the logits stay the golden's (each step rewrites the shared params arena
//! while the previous step's commands may still be queued).

mod common;

use std::sync::Arc;

use common::*;
use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, LogitsMode, Model};

#[test]
fn decode_steps_reuse_bind_groups() {
    let name = "v3_moonlight";
    let g = golden(name);
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let model = Model::load(gpu.clone(), &fixture(name), &LoadOptions { max_ctx: 64, ..Default::default() }, &mut |_| {}).unwrap();
    let mut cache = model.new_cache(64).unwrap();
    let mut logits = model.forward(&mut cache, &g.input_ids[..1], LogitsMode::All).unwrap().logits;
    let mut created = vec![gpu.bind_groups_created()];
    for &id in &g.input_ids[1..] {
        logits.extend(model.forward(&mut cache, &[id], LogitsMode::All).unwrap().logits);
        created.push(gpu.bind_groups_created());
    }
    assert!(created[0] > 0, "the first one-token forward builds its bind groups: {created:?}");
    assert!(created[1..].iter().all(|&n| n == 0), "the decode steps after it create none: {created:?}");
    let err = rel_err(&logits, &g.logits);
    assert!(err <= TOL, "{name}: token-by-token max|err|/std = {err:.3e}");
    // A new cache binds new buffers: its first step builds bind groups again.
    drop(cache);
    let mut cache = model.new_cache(64).unwrap();
    model.forward(&mut cache, &g.input_ids[..1], LogitsMode::All).unwrap();
    assert!(gpu.bind_groups_created() > 0, "a new cache's buffers need new bind groups");
}
