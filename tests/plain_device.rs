//! The engine on a device created without any optional feature (no subgroups, no timestamp
//! queries), as a program that creates the device itself might (the desktop app shares
//! eframe's): every kernel must still build, and the logits must match the goldens. Kernels
//! that use subgroup operations live in their own shader modules, because a module that
//! mentions them does not validate on such a device at all.

mod common;

use std::sync::Arc;

use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{LoadOptions, LogitsMode, Model};

fn plain_gpu() -> Gpu {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("an adapter");
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("no optional features"),
        required_features: wgpu::Features::empty(),
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("a device");
    let gpu = Gpu::from_device(&adapter, device, queue, &GpuOptions::default());
    assert!(!gpu.subgroups(), "the device was created without subgroups");
    gpu
}

#[test]
fn every_fixture_matches_its_golden_without_optional_features() {
    let gpu = Arc::new(plain_gpu());
    for name in common::FIXTURES {
        let g = common::golden(name);
        let model = Model::load(gpu.clone(), &common::fixture(name), &LoadOptions::default(), &mut |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut cache = model.new_cache(g.input_ids.len() + 8).unwrap();
        // Prefill of the whole sequence (gemm paths), then the last position again by decode
        // (matvec paths) on a fresh cache.
        let all = model.forward(&mut cache, &g.input_ids, LogitsMode::All).unwrap_or_else(|e| panic!("{name}: {e}"));
        let err = common::rel_err(&all.logits, &g.logits);
        assert!(err < common::TOL, "{name}: prefill logits off by {err:.2e} of their std");
        let n = g.input_ids.len();
        let mut cache = model.new_cache(n + 8).unwrap();
        model.forward(&mut cache, &g.input_ids[..n - 1], LogitsMode::None).unwrap();
        let last = model.forward(&mut cache, &g.input_ids[n - 1..], LogitsMode::Last).unwrap();
        let err = common::rel_err(&last.logits, &g.logits[(n - 1) * g.vocab..]);
        assert!(err < common::TOL, "{name}: decode logits off by {err:.2e} of their std");
    }
}
