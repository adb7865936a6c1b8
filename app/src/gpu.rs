//! One wgpu device for the UI and the engine: eframe creates it with the adapter's full limits
//! (the engine binds storage buffers as large as the adapter allows; eframe's default limits
//! would cap them at 128 MiB), and the engine wraps the same device and queue.

use std::sync::Arc;

use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use eframe::egui_wgpu::{self, wgpu};

/// The device eframe should ask for: the adapter's full limits and the optional features the
/// engine's fast kernels use (subgroups, timestamps) where the adapter has them.
pub fn device_descriptor(adapter: &wgpu::Adapter) -> wgpu::DeviceDescriptor<'static> {
    let limits = adapter.limits();
    wgpu::DeviceDescriptor {
        label: Some("deepseek-wgpu (UI + engine)"),
        required_features: adapter.features() & deepseek_wgpu::gpu::OPTIONAL_FEATURES,
        required_limits: limits,
        memory_hints: wgpu::MemoryHints::Performance,
        ..Default::default()
    }
}

/// eframe's wgpu setup with [`device_descriptor`].
pub fn wgpu_setup() -> egui_wgpu::WgpuSetup {
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.device_descriptor = Arc::new(device_descriptor);
    egui_wgpu::WgpuSetup::CreateNew(setup)
}

/// Use [`device_descriptor`] in an existing setup (the test harness brings its own adapter choice).
pub fn with_full_limits(mut setup: egui_wgpu::WgpuSetup) -> egui_wgpu::WgpuSetup {
    if let egui_wgpu::WgpuSetup::CreateNew(s) = &mut setup {
        s.device_descriptor = Arc::new(device_descriptor);
    }
    setup
}

pub fn wgpu_configuration() -> egui_wgpu::WgpuConfiguration {
    egui_wgpu::WgpuConfiguration { wgpu_setup: wgpu_setup(), ..Default::default() }
}

/// The engine's view of the renderer's device, when eframe runs on wgpu.
pub fn shared_gpu(render_state: Option<&egui_wgpu::RenderState>) -> Option<Arc<Gpu>> {
    let rs = render_state?;
    Some(Arc::new(Gpu::from_device(&rs.adapter, rs.device.clone(), rs.queue.clone(), &GpuOptions::default())))
}
