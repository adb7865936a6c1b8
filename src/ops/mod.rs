//! One module per WGSL kernel family: its params struct, its dispatch and a plain-Rust CPU
//! reference that the kernel tests compare against. Pipelines are built once in
//! [`Kernels`]; shaders are compiled into the binary with `include_str!`.

pub mod copy_rows;
pub mod embed;
pub mod matmul;
pub mod mla_absorb;
pub mod mla_attn;
pub mod moe_combine;
pub mod moe_gate;
pub mod moe_group;
pub mod read_bw;
pub mod rmsnorm;
pub mod rope;
pub mod sample;
pub mod swiglu;

use crate::format::Format;
use crate::gpu::Gpu;

/// One decode function per weight format (included by every kernel that reads weights).
pub const FORMATS_WGSL: &str = include_str!("../../shaders/common/formats.wgsl");
const WEIGHTS_WGSL: &str = include_str!("../../shaders/common/weights.wgsl");

/// A pipeline per weight dtype for kernels that read packed weights.
pub struct PerDType([wgpu::ComputePipeline; Format::ALL.len()]);

impl PerDType {
    fn new(gpu: &Gpu, label: &str, src: &str, entry: &str) -> Self {
        let full = format!("{FORMATS_WGSL}\n{WEIGHTS_WGSL}\n{src}");
        let mk = |f: Format| {
            let d = f.wgsl_id();
            gpu.compute_pipeline(&format!("{label}/{entry}/wdt{d}"), &full, entry, &[("WDT", d as f64)])
        };
        Self(Format::ALL.map(mk))
    }

    pub fn get(&self, f: Format) -> &wgpu::ComputePipeline {
        &self.0[Format::ALL.iter().position(|&a| a == f).unwrap_or(0)]
    }
}

pub struct Kernels {
    pub matmul: PerDType,
    /// matvec and gemm pipelines (built on first use) and how they are tuned for the adapter
    pub fast: matmul::Fast,
    pub moe_group: wgpu::ComputePipeline,
    /// the flash-decoding attention pipelines (built on first use)
    pub attn: mla_attn::Split,
    /// scratch buffers of the kernels (moe_group lists, attention partials), grown on demand
    scratch: std::sync::Mutex<std::collections::HashMap<&'static str, wgpu::Buffer>>,
    /// weights rearranged once for a faster kernel, by source buffer (W_UK transposed)
    pub(crate) derived: std::sync::Mutex<std::collections::HashMap<wgpu::Buffer, wgpu::Buffer>>,
    pub embed: PerDType,
    pub q_absorb: PerDType,
    pub v_up: PerDType,
    pub transpose_uk: PerDType,
    pub rmsnorm: wgpu::ComputePipeline,
    pub rope: wgpu::ComputePipeline,
    pub mla_attn: wgpu::ComputePipeline,
    pub moe_gate: wgpu::ComputePipeline,
    pub moe_combine: wgpu::ComputePipeline,
    pub swiglu: wgpu::ComputePipeline,
    pub copy_rows: wgpu::ComputePipeline,
    pub sample: wgpu::ComputePipeline,
    /// 4-byte placeholder bound where a kernel's optional input is unused.
    pub dummy: wgpu::Buffer,
}

impl Kernels {
    pub fn new(gpu: &Gpu) -> Result<Self, crate::gpu::GpuError> {
        gpu.checked("compiling the WGSL kernels", || {
            let plain = |label: &str, src: &str| gpu.compute_pipeline(label, src, "main", &[]);
            let absorb = include_str!("../../shaders/mla_absorb.wgsl");
            let fast = matmul::Fast::new(gpu);
            let attn = mla_attn::Split::new(&fast.tune);
            Kernels {
                matmul: PerDType::new(gpu, "matmul", include_str!("../../shaders/matmul.wgsl"), "main"),
                fast,
                moe_group: plain("moe_group", include_str!("../../shaders/moe_group.wgsl")),
                attn,
                scratch: std::sync::Mutex::new(std::collections::HashMap::new()),
                derived: std::sync::Mutex::new(std::collections::HashMap::new()),
                embed: PerDType::new(gpu, "embed", include_str!("../../shaders/embed.wgsl"), "main"),
                q_absorb: PerDType::new(gpu, "mla_absorb", absorb, "q_absorb"),
                v_up: PerDType::new(gpu, "mla_absorb", absorb, "v_up"),
                transpose_uk: PerDType::new(gpu, "mla_absorb", absorb, "transpose_uk"),
                rmsnorm: plain("rmsnorm", include_str!("../../shaders/rmsnorm.wgsl")),
                rope: plain("rope", include_str!("../../shaders/rope.wgsl")),
                mla_attn: plain("mla_attn", include_str!("../../shaders/mla_attn.wgsl")),
                moe_gate: plain("moe_gate", include_str!("../../shaders/moe_gate.wgsl")),
                moe_combine: plain("moe_combine", include_str!("../../shaders/moe_combine.wgsl")),
                swiglu: plain("swiglu", include_str!("../../shaders/swiglu.wgsl")),
                copy_rows: plain("copy_rows", include_str!("../../shaders/copy_rows.wgsl")),
                sample: plain("sample", include_str!("../../shaders/sample.wgsl")),
                dummy: gpu.storage("dummy", 16),
            }
        })
    }
}

/// Host-side unrolling of a shader template: every line of `src` containing `marker` is
/// repeated for i in 0..n as `subst(line, i)`; other lines are kept. The gemm and attention
/// kernels use it to give each stream, item or head state its own named variable, which
/// lavapipe keeps in registers whatever NIR's loop unrolling decides.
pub(crate) fn repeat_lines(src: &str, marker: &str, n: u32, subst: impl Fn(&str, u32) -> String) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    for line in src.lines() {
        if line.contains(marker) {
            for i in 0..n {
                out.push_str(&subst(line, i));
                out.push('\n');
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Kernels {
    /// A scratch buffer of at least `bytes`, shared by every use of `name`: the commands of
    /// one submission run in order, so one buffer serves every layer. A grown buffer replaces
    /// the old one, which lives on while recorded commands still hold it.
    fn scratch(&self, gpu: &Gpu, name: &'static str, bytes: u64) -> wgpu::Buffer {
        let mut m = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(name) {
            Some(b) if b.size() >= bytes => b.clone(),
            _ => {
                let b = gpu.storage(name, bytes);
                m.insert(name, b.clone());
                b
            }
        }
    }

    /// Output of moe_group (`moe_group::out_len` u32 values).
    pub fn groups_buffer(&self, gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
        self.scratch(gpu, "moe groups", bytes)
    }

    /// Per-split partial sums of the flash-decoding attention.
    pub fn attn_partials(&self, gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
        self.scratch(gpu, "attention partials", bytes)
    }
}
