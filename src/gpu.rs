//! Adapter, device and queue; buffer helpers that respect the binding limit; a command
//! recorder that batches a whole forward pass into one submission.
//!
//! Knows nothing about DeepSeek.

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};

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
    /// Kernel shape overrides (none: the shapes chosen for the adapter).
    pub tuning: Tuning,
}

/// Kernel shape overrides, for tuning on a new adapter. The library never reads the
/// environment: binaries build this once at their boundary ([`Tuning::from_env`] reads
/// `DSW_GEMM_S`, `DSW_GEMM_NT`, `DSW_ATTN_TT`) and pass it in [`GpuOptions`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// gemm weight rows streamed per lane (even, 2..=16)
    pub gemm_streams: Option<u32>,
    /// gemm items per tile
    pub gemm_nt: Option<u32>,
    /// prefill attention query tokens per workgroup (1..=8)
    pub attn_tt: Option<u32>,
}

impl Tuning {
    pub fn from_env() -> Self {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
        Tuning { gemm_streams: env("DSW_GEMM_S"), gemm_nt: env("DSW_GEMM_NT"), attn_tt: env("DSW_ATTN_TT") }
    }
}

/// One adapter + device + queue, with the limits the engine plans around.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Kernel shape overrides the binary asked for.
    pub tuning: Tuning,
    /// Largest storage buffer the engine will bind (bytes, multiple of 4).
    pub max_binding: u64,
    /// Optional features the kernels may use (a subset of the device's): `SUBGROUP` selects
    /// the subgroup variants of the reductions, `TIMESTAMP_QUERY` allows [`Gpu::start_profile`].
    /// Clear a flag before building `ops::Kernels` to force the portable fallback.
    pub features: wgpu::Features,
    /// pipeline → label, for per-kernel timings
    labels: Mutex<HashMap<wgpu::ComputePipeline, String>>,
    profile: Mutex<Option<Profile>>,
}

/// Features the engine uses when the adapter offers them; none is required. A program that
/// creates the device itself (the desktop app) should request `adapter.features() & OPTIONAL_FEATURES`.
pub const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::SUBGROUP);

/// GPU time of every dispatch recorded while profiling (see [`Gpu::start_profile`]).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// (pipeline label, workgroups, GPU nanoseconds) per dispatch, in order
    pub dispatches: Vec<(String, u32, f64)>,
    /// host time spent recording and submitting command buffers (nanoseconds)
    pub record_ns: f64,
    pub submits: usize,
}

impl Profile {
    /// GPU nanoseconds and dispatch count per kernel family (the label up to the first `/`),
    /// largest first.
    pub fn by_family(&self) -> Vec<(String, f64, usize)> {
        let mut m: HashMap<&str, (f64, usize)> = HashMap::new();
        for (label, _, ns) in &self.dispatches {
            let fam = label.split('/').next().unwrap_or(label);
            let e = m.entry(fam).or_default();
            e.0 += ns;
            e.1 += 1;
        }
        let mut v: Vec<(String, f64, usize)> = m.into_iter().map(|(k, (ns, n))| (k.to_string(), ns, n)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    pub fn gpu_ns(&self) -> f64 {
        self.dispatches.iter().map(|d| d.2).sum()
    }
}

/// The backends the engine uses: Vulkan, Metal and DX12. GL (EGL on Linux) is created only
/// when asked for with `WGPU_BACKEND` (e.g. `WGPU_BACKEND=gl`): it lists the same device a
/// second time, and on a headless Linux box its EGL/Wayland probing prints
/// `error: XDG_RUNTIME_DIR is invalid…` to stderr. No display handle is ever passed, so
/// nothing here touches a windowing system.
pub fn instance_descriptor() -> wgpu::InstanceDescriptor {
    wgpu::InstanceDescriptor { backends: wgpu::Backends::PRIMARY, ..wgpu::InstanceDescriptor::new_without_display_handle() }.with_env()
}

/// Describe every adapter wgpu can see (for `deepseek-wgpu devices`).
pub fn list_adapters() -> Vec<(wgpu::AdapterInfo, wgpu::Limits, wgpu::Features)> {
    let desc = instance_descriptor();
    let backends = desc.backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    adapters.into_iter().map(|a| (a.get_info(), a.limits(), a.features())).collect()
}

impl Gpu {
    pub fn new(opts: &GpuOptions) -> Result<Self, GpuError> {
        let desc = instance_descriptor();
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
        let features = adapter.features() & OPTIONAL_FEATURES;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("deepseek-wgpu"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|source| GpuError::Device { adapter: info.name.clone(), source })?;
        let adapter_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = opts.max_binding_bytes.map_or(adapter_max, |m| m.min(adapter_max)) & !3;
        Ok(Self { device, queue, info, limits, max_binding, features, tuning: opts.tuning, labels: Mutex::default(), profile: Mutex::default() })
    }

    /// Share a device created elsewhere (e.g. the desktop app's renderer), so the engine and
    /// the UI run on one GPU device.
    pub fn from_device(adapter: &wgpu::Adapter, device: wgpu::Device, queue: wgpu::Queue, opts: &GpuOptions) -> Self {
        let limits = device.limits();
        let dev_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = opts.max_binding_bytes.map_or(dev_max, |m| m.min(dev_max)) & !3;
        let features = device.features() & OPTIONAL_FEATURES;
        Self { device, queue, info: adapter.get_info(), limits, max_binding, features, tuning: opts.tuning, labels: Mutex::default(), profile: Mutex::default() }
    }

    /// Whether kernels may use subgroup operations.
    pub fn subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Time every dispatch of the following submissions on the GPU (timestamp queries, one
    /// compute pass per dispatch; each submission then waits for its timings). Returns false,
    /// and profiles nothing, when the device has no timestamp queries.
    pub fn start_profile(&self) -> bool {
        let ok = self.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        *self.profile.lock().unwrap_or_else(|e| e.into_inner()) = ok.then(Profile::default);
        ok
    }

    /// Stop profiling and return what was measured since [`Gpu::start_profile`].
    pub fn take_profile(&self) -> Option<Profile> {
        self.profile.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn profiling(&self) -> bool {
        self.profile.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn label_of(&self, p: &wgpu::ComputePipeline) -> String {
        self.labels.lock().unwrap_or_else(|e| e.into_inner()).get(p).cloned().unwrap_or_else(|| "unlabelled".into())
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
        let p = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory: true },
            cache: None,
        });
        self.labels.lock().unwrap_or_else(|e| e.into_inner()).insert(p.clone(), label.to_string());
        p
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

struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    params: (u64, u64),
    bufs: Vec<(u32, wgpu::Buffer)>,
    groups: [u32; 3],
}

/// Collects dispatches (each with its own small params block), then records them into a
/// single command buffer with one params arena for all of them.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    params: Vec<u8>,
    cmds: Vec<Dispatch>,
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Self { gpu, params: Vec::new(), cmds: Vec::new() }
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Queue one dispatch. `bufs` bind to bindings 1.. in order; binding 0 is `params`.
    pub fn dispatch<P: bytemuck::Pod>(&mut self, pipeline: &wgpu::ComputePipeline, params: &P, bufs: &[&wgpu::Buffer], groups: [u32; 3]) {
        let bound: Vec<(u32, &wgpu::Buffer)> = bufs.iter().enumerate().map(|(i, b)| (i as u32 + 1, *b)).collect();
        self.dispatch_bound(pipeline, params, &bound, groups);
    }

    /// Queue one dispatch with explicit binding numbers (for entry points of one shader
    /// module that use different subsets of its bindings); binding 0 is `params`.
    pub fn dispatch_bound<P: bytemuck::Pod>(&mut self, pipeline: &wgpu::ComputePipeline, params: &P, bufs: &[(u32, &wgpu::Buffer)], groups: [u32; 3]) {
        if groups.contains(&0) {
            return;
        }
        // Kernels may read their params as a uniform or as a storage buffer (see
        // shaders/common/mm_words.wgsl), so offsets satisfy both alignments.
        let l = &self.gpu.limits;
        let align = l.min_uniform_buffer_offset_alignment.max(l.min_storage_buffer_offset_alignment).max(16) as usize;
        let off = self.params.len().next_multiple_of(align);
        self.params.resize(off, 0);
        self.params.extend_from_slice(bytemuck::bytes_of(params));
        let size = (std::mem::size_of::<P>() as u64).next_multiple_of(16);
        self.params.resize(off + size as usize, 0);
        self.cmds.push(Dispatch {
            pipeline: pipeline.clone(),
            params: (off as u64, size),
            bufs: bufs.iter().map(|(i, b)| (*i, (*b).clone())).collect(),
            groups,
        });
    }

    /// Record everything into one command buffer and submit it (no wait; while profiling,
    /// wait for the timings).
    pub fn submit(self, label: &str) -> Result<(), GpuError> {
        let gpu = self.gpu;
        let t0 = std::time::Instant::now();
        let profiling = gpu.profiling();
        let n_disp = self.cmds.len() as u32;
        let queries = if profiling && n_disp > 0 { Some(Queries::new(gpu, n_disp)) } else { None };
        gpu.checked(label, || {
            // Not create_buffer_init: it panics when the device is lost; this reports it.
            let contents: &[u8] = if self.params.is_empty() { &[0u8; 16] } else { &self.params };
            let arena = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params arena"),
                size: (contents.len() as u64).next_multiple_of(4),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE,
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
                // While profiling, every dispatch gets its own pass with timestamps.
                let timestamp_writes = queries.as_ref().map(|q| q.writes(i as u32));
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes });
                while let Some(Dispatch { pipeline, params, bufs, groups }) = self.cmds.get(i) {
                    let layout = pipeline.get_bind_group_layout(0);
                    let mut entries = vec![wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &arena,
                            offset: params.0,
                            size: wgpu::BufferSize::new(params.1),
                        }),
                    }];
                    for (j, b) in bufs {
                        entries.push(wgpu::BindGroupEntry { binding: *j, resource: b.as_entire_binding() });
                    }
                    let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, &bg, &[]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    i += 1;
                    if queries.is_some() {
                        break;
                    }
                }
            }
            if let Some(q) = &queries {
                q.resolve(&mut enc);
            }
            gpu.queue.submit([enc.finish()]);
            Ok(())
        })??;
        let record_ns = t0.elapsed().as_nanos() as f64;
        if let Some(q) = queries {
            let ns = q.read(gpu)?;
            let dispatches: Vec<_> =
                self.cmds.iter().zip(&ns).map(|(c, &t)| (gpu.label_of(&c.pipeline), c.groups[0] * c.groups[1] * c.groups[2], t)).collect();
            if let Some(p) = gpu.profile.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                p.dispatches.extend(dispatches);
                p.record_ns += record_ns;
                p.submits += 1;
            }
        }
        Ok(())
    }
}

/// Timestamp queries for profiling: a begin and an end per dispatch, in query sets of at most
/// 4096 queries (wgpu's limit).
struct Queries {
    sets: Vec<wgpu::QuerySet>,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    n: u32,
}

const QUERIES_PER_SET: u32 = 4096;

impl Queries {
    fn new(gpu: &Gpu, n_disp: u32) -> Self {
        let n = 2 * n_disp;
        let sets = (0..n.div_ceil(QUERIES_PER_SET))
            .map(|s| {
                gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("dispatch timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: (n - s * QUERIES_PER_SET).min(QUERIES_PER_SET),
                })
            })
            .collect();
        let bytes = n as u64 * 8;
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Queries { sets, resolve, staging, n }
    }

    fn writes(&self, d: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        let q = 2 * d;
        wgpu::ComputePassTimestampWrites {
            query_set: &self.sets[(q / QUERIES_PER_SET) as usize],
            beginning_of_pass_write_index: Some(q % QUERIES_PER_SET),
            end_of_pass_write_index: Some(q % QUERIES_PER_SET + 1),
        }
    }

    fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        for (s, set) in self.sets.iter().enumerate() {
            let first = s as u32 * QUERIES_PER_SET;
            let count = (self.n - first).min(QUERIES_PER_SET);
            enc.resolve_query_set(set, 0..count, &self.resolve, first as u64 * 8);
        }
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, self.n as u64 * 8);
    }

    /// Nanoseconds per dispatch (blocks until the submission finished).
    fn read(&self, gpu: &Gpu) -> Result<Vec<f64>, GpuError> {
        let (tx, rx) = mpsc::channel();
        self.staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Map(e.to_string()))?;
        rx.recv().map_err(|e| GpuError::Map(e.to_string()))?.map_err(|e| GpuError::Map(e.to_string()))?;
        let period = gpu.queue.get_timestamp_period() as f64;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.staging.slice(..).get_mapped_range().map_err(|e| GpuError::Map(e.to_string()))?);
        self.staging.unmap();
        Ok(ticks.chunks_exact(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect())
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
