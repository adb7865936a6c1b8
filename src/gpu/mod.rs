//! Adapter, device and queue, and buffer helpers that respect the binding limit
//! (`recorder`: batching a whole forward pass into one submission; `profile`: GPU time per
//! dispatch). Knows nothing about DeepSeek.

mod profile;
mod recorder;

pub use profile::Profile;
pub use recorder::Recorder;

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
    #[error("the kernel {label} does not build on this adapter: {msg}")]
    Kernel { label: String, msg: String },
    #[error("no adapter matches --adapter {want}; the adapters wgpu sees: {available}. Pass an index or part of a name from `deepseek-wgpu devices`")]
    AdapterNotFound { want: String, available: String },
    #[error("the adapter {adapter} cannot run deepseek-wgpu: its limit {limit} is {have}, and {what} needs {need}")]
    Limit { adapter: String, limit: &'static str, have: u64, need: u64, what: String },
}

/// Options for opening the device.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Use a smaller storage binding limit than the adapter offers (tests use this to force
    /// tensor splitting on small fixtures).
    pub max_binding_bytes: Option<u64>,
    /// Kernel shape overrides (none: the shapes chosen for the adapter).
    pub tuning: Tuning,
    /// Which adapter to open (none: wgpu's high-performance choice).
    pub adapter: Option<AdapterChoice>,
    /// Open the device as a small GPU would offer it: [`small_limits`] (each at most the
    /// adapter's) and no optional feature. Tests run the goldens this way; `--small-gpu`
    /// lets a user check a model before buying into an integrated GPU.
    pub small: bool,
    /// Which kernel families' shader modules skip wgpu's runtime checks (`--shader-checks`).
    pub shader_checks: ShaderChecks,
}

/// wgpu's runtime checks in the kernels: naga clamps every index into a fixed-size array
/// (and, where the driver is not robust itself, every buffer index), bounds every loop and
/// guards every integer division against a zero divisor. `--shader-checks` /
/// `DEEPSEEK_WGPU_SHADER_CHECKS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShaderChecks {
    /// every kernel checked
    On,
    /// no kernel checked, including families whose indices the host does not prove in range:
    /// for measuring what the checks cost (a kernel bug may then read or write out of bounds
    /// instead of being clamped)
    Off,
    /// checked except the families `ops::TRUSTED_FAMILIES` lists (none so far), whose every
    /// index the host proves in range and where leaving the checks out was measured to pay
    #[default]
    Auto,
}

impl std::str::FromStr for ShaderChecks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" => Ok(ShaderChecks::On),
            "off" => Ok(ShaderChecks::Off),
            "auto" => Ok(ShaderChecks::Auto),
            _ => Err(format!("'{s}' is not one of on, off, auto")),
        }
    }
}

impl std::fmt::Display for ShaderChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            ShaderChecks::On => "on",
            ShaderChecks::Off => "off",
            ShaderChecks::Auto => "auto",
        })
    }
}

/// `--adapter`: an index into `deepseek-wgpu devices`' list, or part of an adapter's name
/// (case-insensitive; the first match).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterChoice {
    Index(usize),
    Name(String),
}

impl std::str::FromStr for AdapterChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an adapter index or part of its name".into());
        }
        Ok(s.parse::<usize>().map(AdapterChoice::Index).unwrap_or_else(|_| AdapterChoice::Name(s.to_string())))
    }
}

impl std::fmt::Display for AdapterChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            AdapterChoice::Index(i) => write!(f, "{i}"),
            AdapterChoice::Name(n) => write!(f, "'{n}'"),
        }
    }
}

impl AdapterChoice {
    /// The chosen one among `infos` (in `enumerate_adapters` order), or why not.
    pub fn pick(&self, infos: &[wgpu::AdapterInfo]) -> Result<usize, GpuError> {
        let found = match self {
            AdapterChoice::Index(i) => (*i < infos.len()).then_some(*i),
            AdapterChoice::Name(n) => {
                let n = n.to_lowercase();
                infos.iter().position(|a| a.name.to_lowercase().contains(&n))
            }
        };
        found.ok_or_else(|| GpuError::AdapterNotFound {
            want: self.to_string(),
            available: if infos.is_empty() { "none".into() } else { infos.iter().enumerate().map(|(i, a)| format!("{i}: {} ({:?})", a.name, a.backend)).collect::<Vec<_>>().join(", ") },
        })
    }
}

/// The limits every WebGPU implementation guarantees, which a small (integrated, mobile)
/// GPU may not exceed: 256 invocations and 16 KiB of shared memory per workgroup, 128 MiB
/// storage bindings, 256 MiB buffers, 8 storage buffers per shader stage.
pub fn small_limits() -> wgpu::Limits {
    wgpu::Limits::defaults()
}

/// Kernel shape overrides, for tuning on a new adapter. The library never reads the
/// environment: binaries build this once at their boundary ([`Tuning::from_env`] reads
/// `DSW_GEMM_S`, `DSW_GEMM_NT`, `DSW_ATTN_TT`, `DSW_UNFUSED`) and pass it in [`GpuOptions`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// gemm weight rows streamed per lane (even, 2..=16)
    pub gemm_streams: Option<u32>,
    /// gemm items per tile
    pub gemm_nt: Option<u32>,
    /// prefill attention query tokens per workgroup (1..=8)
    pub attn_tt: Option<u32>,
    /// run the unfused dispatch sequence where a fused kernel exists (for A/B benches)
    pub unfused: bool,
}

impl Tuning {
    pub fn from_env() -> Self {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
        Tuning { gemm_streams: env("DSW_GEMM_S"), gemm_nt: env("DSW_GEMM_NT"), attn_tt: env("DSW_ATTN_TT"), unfused: env("DSW_UNFUSED").is_some_and(|v| v != 0) }
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
    /// The runtime checks the binary asked for (`ops::Kernels` may override it per model).
    pub shader_checks: ShaderChecks,
    /// Largest storage buffer the engine will bind (bytes, multiple of 4).
    pub max_binding: u64,
    /// Optional features the kernels may use (a subset of the device's): `SUBGROUP` selects
    /// the subgroup variants of the reductions, `TIMESTAMP_QUERY` allows [`Gpu::start_profile`].
    /// Clear a flag before building `ops::Kernels` to force the portable fallback.
    pub features: wgpu::Features,
    /// pipeline → label, for per-kernel timings
    labels: Mutex<HashMap<wgpu::ComputePipeline, String>>,
    profile: Mutex<Option<Profile>>,
    /// bind groups and the params arena, kept across submissions (see `recorder`)
    binds: Mutex<recorder::BindCache>,
}

/// Features the engine uses when the adapter offers them; none is required. A program that
/// creates the device itself (the desktop app) should request `adapter.features() & OPTIONAL_FEATURES`.
pub const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::SUBGROUP);

/// The backends the engine uses: Vulkan, Metal and DX12. GL is created only when asked for
/// with `WGPU_BACKEND` (e.g. `WGPU_BACKEND=gl`): through Mesa it lists the same device a second
/// time. No display handle is ever passed. (The CLI also turns off Mesa's device-select
/// layer, which connects to Wayland/X11 on its own: see `headless_vulkan` in main.rs.)
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
        let set = desc.backends;
        let backends = format!("{set:?}");
        let instance = wgpu::Instance::new(desc);
        let adapter = match &opts.adapter {
            Some(choice) => {
                let mut all = pollster::block_on(instance.enumerate_adapters(set));
                let infos: Vec<_> = all.iter().map(|a| a.get_info()).collect();
                all.swap_remove(choice.pick(&infos)?)
            }
            None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            }))
            .map_err(|_| GpuError::NoAdapter { backends })?,
        };
        Self::from_adapter(&adapter, opts)
    }

    pub fn from_adapter(adapter: &wgpu::Adapter, opts: &GpuOptions) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let (limits, features) = if opts.small {
            (small_limits().or_worse_values_from(&adapter.limits()), wgpu::Features::empty())
        } else {
            (adapter.limits(), adapter.features() & OPTIONAL_FEATURES)
        };
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
        Ok(Self { device, queue, info, limits, max_binding, features, tuning: opts.tuning, shader_checks: opts.shader_checks, labels: Mutex::default(), profile: Mutex::default(), binds: Mutex::default() })
    }

    /// Share a device created elsewhere (e.g. the desktop app's renderer), so the engine and
    /// the UI run on one GPU device.
    pub fn from_device(adapter: &wgpu::Adapter, device: wgpu::Device, queue: wgpu::Queue, opts: &GpuOptions) -> Self {
        let limits = device.limits();
        let dev_max = (limits.max_storage_buffer_binding_size as u64).min(limits.max_buffer_size);
        let max_binding = opts.max_binding_bytes.map_or(dev_max, |m| m.min(dev_max)) & !3;
        let features = device.features() & OPTIONAL_FEATURES;
        Self { device, queue, info: adapter.get_info(), limits, max_binding, features, tuning: opts.tuning, shader_checks: opts.shader_checks, labels: Mutex::default(), profile: Mutex::default(), binds: Mutex::default() }
    }

    /// Whether kernels may use subgroup operations.
    pub fn subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Time every dispatch of the following submissions on the GPU (timestamp queries, one
    /// compute pass per dispatch; each submission then waits for its timings). Returns false,
    /// and profiles nothing, when the device has no timestamp queries.
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
        self.storage_filled_as(label, bytes, wgpu::BufferUsages::empty(), fill)
    }

    /// [`Gpu::storage_filled`] with `extra` usages (COPY_DST for buffers written again later).
    pub fn storage_filled_as(&self, label: &str, bytes: u64, extra: wgpu::BufferUsages, fill: impl FnOnce(&mut wgpu::BufferViewMut)) -> wgpu::Buffer {
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | extra,
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
        self.pipeline_of(label, &module, entry, constants)
    }

    /// [`Gpu::compute_pipeline`] with wgpu's runtime checks left out of the shader: no index
    /// clamping, no loop bounding, no guard on integer division (see [`ShaderChecks`]).
    ///
    /// # Safety
    /// Every dispatch of the pipeline must index every array and buffer in range, end every
    /// loop, and never divide an integer by zero; otherwise the GPU reads or writes out of
    /// bounds, or the driver may compile the shader on the assumption that it cannot happen.
    pub unsafe fn compute_pipeline_trusted(&self, label: &str, source: &str, entry: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let desc = wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(source.into()) };
        // SAFETY: the caller promises what the checks would enforce (this function's contract).
        let module = unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) };
        self.pipeline_of(label, &module, entry, constants)
    }

    fn pipeline_of(&self, label: &str, module: &wgpu::ShaderModule, entry: &str, constants: &[(&str, f64)]) -> wgpu::ComputePipeline {
        let p = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module,
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
        // In an error scope: on a lost device the staging buffer is invalid, and mapping it
        // must be an error, not a panic in wgpu's default handler.
        let (tx, rx) = mpsc::channel();
        let staging = self.checked("reading results back", || {
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
            staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            staging
        })?;
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

/// Split `n` workgroups over x and y so neither exceeds the per-dimension limit.
pub fn grid(n: u32, max_dim: u32) -> [u32; 2] {
    if n <= max_dim {
        [n, 1]
    } else {
        [max_dim, n.div_ceil(max_dim)]
    }
}
