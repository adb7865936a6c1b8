//! One wgpu device for the UI and the engine: eframe creates it with the adapter's full limits
//! (the engine binds storage buffers as large as the adapter allows; eframe's default limits
//! would cap them at 128 MiB), and the engine wraps the same device and queue.

use std::sync::Arc;

use deepseek_wgpu::gpu::{AdapterChoice, Gpu, GpuOptions};
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

/// eframe's configuration: [`wgpu_setup`], on the adapter `--adapter` names (an index into
/// `deepseek-wgpu devices`' list, or part of a name) when given.
pub fn wgpu_configuration(adapter: Option<AdapterChoice>) -> egui_wgpu::WgpuConfiguration {
    let mut setup = wgpu_setup();
    if let (Some(choice), egui_wgpu::WgpuSetup::CreateNew(s)) = (adapter, &mut setup) {
        s.native_adapter_selector = Some(Arc::new(move |adapters: &[wgpu::Adapter], _surface: Option<&wgpu::Surface<'_>>| pick(&choice, adapters)));
    }
    egui_wgpu::WgpuConfiguration { wgpu_setup: setup, ..Default::default() }
}

/// The adapter `choice` names among eframe's `adapters`: an index counts in the engine's own
/// list (`deepseek-wgpu devices`), which may order or filter backends differently, so it is
/// turned into that adapter's name and backend first.
pub fn pick(choice: &AdapterChoice, adapters: &[wgpu::Adapter]) -> Result<wgpu::Adapter, String> {
    let infos: Vec<_> = adapters.iter().map(|a| a.get_info()).collect();
    let i = match choice {
        AdapterChoice::Index(_) => {
            let engine: Vec<_> = deepseek_wgpu::gpu::list_adapters().into_iter().map(|(info, _, _)| info).collect();
            let want = &engine[choice.pick(&engine).map_err(|e| e.to_string())?];
            infos.iter().position(|a| a.name == want.name && a.backend == want.backend).ok_or_else(|| format!("adapter {} ({:?}) is not offered for this window", want.name, want.backend))?
        }
        AdapterChoice::Name(_) => choice.pick(&infos).map_err(|e| e.to_string())?,
    };
    Ok(adapters[i].clone())
}

/// The engine's view of the renderer's device, when eframe runs on wgpu.
pub fn shared_gpu(render_state: Option<&egui_wgpu::RenderState>) -> Option<Arc<Gpu>> {
    let rs = render_state?;
    Some(Arc::new(Gpu::from_device(&rs.adapter, rs.device.clone(), rs.queue.clone(), &GpuOptions::default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_choice_picks_by_index_and_name_and_says_which_exist() {
        let instance = wgpu::Instance::new(deepseek_wgpu::gpu::instance_descriptor());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        assert!(!adapters.is_empty(), "the app tests need a wgpu adapter (lavapipe)");
        let first = deepseek_wgpu::gpu::list_adapters()[0].0.clone();
        let by_index = pick(&AdapterChoice::Index(0), &adapters).unwrap().get_info();
        assert_eq!((by_index.name.as_str(), by_index.backend), (first.name.as_str(), first.backend));
        let part = first.name.split_whitespace().next().unwrap().to_uppercase();
        assert_eq!(pick(&AdapterChoice::Name(part), &adapters).unwrap().get_info().name, first.name);
        let err = pick(&AdapterChoice::Name("no-such-gpu".into()), &adapters).err().unwrap();
        assert!(err.contains("no-such-gpu") && err.contains(&first.name), "{err}");
        let err = pick(&AdapterChoice::Index(99), &adapters).err().unwrap();
        assert!(err.contains("--adapter 99"), "{err}");
    }
}
