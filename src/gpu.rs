//! Adapter, device and queue; buffer helpers that respect the binding limit; a command
//! recorder that batches a whole forward pass into one submission.
//!
//! Knows nothing about DeepSeek.

use std::sync::mpsc;

use wgpu::util::DeviceExt;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found (wgpu backends: {backends}). Install a Vulkan driver (e.g. `apt-get install mesa-vulkan-drivers libvulkan1`) or set WGPU_BACKEND")]
    NoAdapter { backends: String },
    #[error("could not open the GPU device {adapter}: {source}")]
    Device { adapter: String, source: wgpu::RequestDeviceError },
    #[error("GPU readback failed: {0}")]
    Map(String),
    #[error("GPU error during {what}: {msg}")]
    Validation { what: String, msg: String },
}

/// Options for opening the device.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use a smaller storage binding limit than the adapter offers (tests use this to force
    /// tensor splitting on small fixtures).
    pub max_binding_bytes: Option<u64>,
}

/// One adapter + device + queue, with the limits the engine plans around.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Largest storage buffer the engine will bind (bytes, multiple of 4).
    pub max_binding: u64,
}

/// Describe every adapter wgpu can see (for `deepseek-wgpu devices`).
pub fn list_adapters() -> Vec<(wgpu::AdapterInfo, wgpu::Limits, wgpu::Features)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.into_iter().map(|a| (a.get_info(), a.limits(), a.features())).collect()
}

impl Gpu {
    pub fn new(opts: &GpuOptions) -> Result<Self, GpuError> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = format!("{:?}", desc.backends);
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|_| GpuError::NoAdapter { backends })?;
        Self::from_adapter(&adapter, opts)
    }

    pub fn from_adapter(adapter: &wgpu::Adapter, opts: &GpuOptions) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("deepseek-wgpu"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|source| GpuError::Device { adapter: info.name.clone(), source })?;
        let adapter_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = opts.max_binding_bytes.map_or(adapter_max, |m| m.min(adapter_max)) & !3;
        Ok(Self { device, queue, info, limits, max_binding })
    }

    /// Share a device created elsewhere (e.g. the desktop app's renderer), so the engine and
    /// the UI run on one GPU device.
    pub fn from_device(adapter: &wgpu::Adapter, device: wgpu::Device, queue: wgpu::Queue, opts: &GpuOptions) -> Self {
        let limits = device.limits();
        let dev_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = opts.max_binding_bytes.map_or(dev_max, |m| m.min(dev_max)) & !3;
        Self { device, queue, info: adapter.get_info(), limits, max_binding }
    }

    pub fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn storage_init(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let mut padded;
        let contents = if data.len() % 4 != 0 || data.is_empty() {
            padded = data.to_vec();
            padded.resize(data.len().max(4).next_multiple_of(4), 0);
            &padded[..]
        } else {
            data
        };
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// A storage buffer filled by `fill` while mapped (weights stream straight from the mmap
    /// into it, so the host never holds a second copy).
    pub fn storage_filled(&self, label: &str, bytes: u64, fill: impl FnOnce(&mut wgpu::BufferViewMut)) -> wgpu::Buffer {
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        {
            let mut view = buf.slice(..).get_mapped_range_mut().expect("buffer was created mapped");
            fill(&mut view);
        }
        buf.unmap();
        buf
    }

    pub fn compute_pipeline(&self, label: &str, source: &str, entry: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory: true },
            cache: None,
        })
    }

    /// Read `len` bytes at `offset` of a buffer back to the host (blocks).
    pub fn read_bytes(&self, buf: &wgpu::Buffer, offset: u64, len: u64) -> Result<Vec<u8>, GpuError> {
        let mut out = Vec::new();
        self.read_many(&[(buf, offset, len)], |_, b| out = b.to_vec())?;
        Ok(out)
    }

    pub fn read_f32(&self, buf: &wgpu::Buffer, offset_elems: u64, len: u64) -> Result<Vec<f32>, GpuError> {
        let b = self.read_bytes(buf, offset_elems * 4, len * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }

    pub fn read_u32(&self, buf: &wgpu::Buffer, offset_elems: u64, len: u64) -> Result<Vec<u32>, GpuError> {
        let b = self.read_bytes(buf, offset_elems * 4, len * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }

    /// Read several buffer ranges through one staging buffer and one wait; `each(i, bytes)`
    /// is called per range in order.
    pub fn read_many(&self, ranges: &[(&wgpu::Buffer, u64, u64)], mut each: impl FnMut(usize, &[u8])) -> Result<(), GpuError> {
        let total: u64 = ranges.iter().map(|r| r.2.next_multiple_of(4)).sum();
        if total == 0 {
            return Ok(());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let mut at = 0;
        for &(buf, off, len) in ranges {
            let len4 = len.next_multiple_of(4);
            enc.copy_buffer_to_buffer(buf, off, &staging, at, len4);
            at += len4;
        }
        self.queue.submit([enc.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Map(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Map(e.to_string()))?
            .map_err(|e| GpuError::Map(e.to_string()))?;
        {
            let view = staging.slice(..).get_mapped_range().map_err(|e| GpuError::Map(e.to_string()))?;
            let mut at = 0usize;
            for (i, &(_, _, len)) in ranges.iter().enumerate() {
                each(i, &view[at..at + len as usize]);
                at += len.next_multiple_of(4) as usize;
            }
        }
        staging.unmap();
        Ok(())
    }

    /// Run `f` and turn any wgpu validation or out-of-memory error into a `GpuError`.
    pub fn checked<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(GpuError::Validation { what: what.to_string(), msg: e.to_string() });
        }
        Ok(out)
    }
}

enum Cmd {
    Dispatch { pipeline: wgpu::ComputePipeline, params: (u64, u64), bufs: Vec<wgpu::Buffer>, groups: [u32; 3] },
    Copy { src: wgpu::Buffer, src_off: u64, dst: wgpu::Buffer, dst_off: u64, size: u64 },
}

/// Collects dispatches (each with its own small params block) and copies, then records them
/// into a single command buffer with one uniform arena for all params.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    params: Vec<u8>,
    cmds: Vec<Cmd>,
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Self { gpu, params: Vec::new(), cmds: Vec::new() }
    }

    /// Queue one dispatch. `bufs` bind to bindings 1.. in order; binding 0 is `params`.
    pub fn dispatch<P: bytemuck::Pod>(&mut self, pipeline: &wgpu::ComputePipeline, params: &P, bufs: &[&wgpu::Buffer], groups: [u32; 3]) {
        if groups.contains(&0) {
            return;
        }
        let align = self.gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let off = self.params.len().next_multiple_of(align);
        self.params.resize(off, 0);
        self.params.extend_from_slice(bytemuck::bytes_of(params));
        let size = (std::mem::size_of::<P>() as u64).next_multiple_of(16);
        self.params.resize(off + size as usize, 0);
        self.cmds.push(Cmd::Dispatch {
            pipeline: pipeline.clone(),
            params: (off as u64, size),
            bufs: bufs.iter().map(|b| (*b).clone()).collect(),
            groups,
        });
    }

    pub fn copy(&mut self, src: &wgpu::Buffer, src_off: u64, dst: &wgpu::Buffer, dst_off: u64, size: u64) {
        if size > 0 {
            self.cmds.push(Cmd::Copy { src: src.clone(), src_off, dst: dst.clone(), dst_off, size });
        }
    }

    /// Record everything into one command buffer and submit it (no wait).
    pub fn submit(self, label: &str) -> Result<(), GpuError> {
        let gpu = self.gpu;
        gpu.checked(label, || {
            // Not create_buffer_init: it panics when the device is lost; this reports it.
            let contents: &[u8] = if self.params.is_empty() { &[0u8; 16] } else { &self.params };
            let arena = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params arena"),
                size: (contents.len() as u64).next_multiple_of(4),
                usage: wgpu::BufferUsages::UNIFORM,
                mapped_at_creation: true,
            });
            match arena.slice(..).get_mapped_range_mut() {
                Ok(mut view) => view.slice(..contents.len()).copy_from_slice(contents),
                Err(e) => return Err(GpuError::Validation { what: label.to_string(), msg: format!("the GPU device is lost or out of memory ({e}); reload the model") }),
            }
            arena.unmap();
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
            let mut i = 0;
            while i < self.cmds.len() {
                match &self.cmds[i] {
                    Cmd::Copy { src, src_off, dst, dst_off, size } => {
                        enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *size);
                        i += 1;
                    }
                    Cmd::Dispatch { .. } => {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
                        while let Some(Cmd::Dispatch { pipeline, params, bufs, groups }) = self.cmds.get(i) {
                            let layout = pipeline.get_bind_group_layout(0);
                            let mut entries = vec![wgpu::BindGroupEntry {
                                binding: 0,
                                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer: &arena,
                                    offset: params.0,
                                    size: wgpu::BufferSize::new(params.1),
                                }),
                            }];
                            for (j, b) in bufs.iter().enumerate() {
                                entries.push(wgpu::BindGroupEntry { binding: j as u32 + 1, resource: b.as_entire_binding() });
                            }
                            let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
                            pass.set_pipeline(pipeline);
                            pass.set_bind_group(0, &bg, &[]);
                            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                            i += 1;
                        }
                    }
                }
            }
            gpu.queue.submit([enc.finish()]);
            Ok(())
        })?
    }
}

/// Split `n` workgroups over x and y so neither exceeds the per-dimension limit.
pub fn grid(n: u32, max_dim: u32) -> [u32; 2] {
    if n <= max_dim {
        [n, 1]
    } else {
        [max_dim, n.div_ceil(max_dim)]
    }
}
