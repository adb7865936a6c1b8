//! One module per WGSL kernel family: its params struct, its dispatch and a plain-Rust CPU
//! reference that the kernel tests compare against. Pipelines are built once in
//! [`Kernels`]; shaders are compiled into the binary with `include_str!`.

/// A `#[repr(C)]` params struct as Rust lays it out: size and `(field, offset, type)`. The
/// macro also checks at compile time that each listed field has the listed type.
#[cfg(test)]
pub(crate) struct Layout {
    pub name: &'static str,
    pub size: usize,
    pub fields: Vec<(&'static str, usize, &'static str)>,
}

#[cfg(test)]
macro_rules! layout {
    ($ty:ident { $($f:ident : $t:ty),* $(,)? }) => {{
        #[allow(clippy::let_unit_value)]
        fn _types_match(p: $ty) { $(let _: $t = p.$f;)* }
        super::Layout {
            name: stringify!($ty),
            size: std::mem::size_of::<$ty>(),
            fields: vec![$((stringify!($f), std::mem::offset_of!($ty, $f), stringify!($t))),*],
        }
    }};
}
#[cfg(test)]
pub(crate) use layout;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct Params` of `src` as naga lays it out: size and `(member, offset, type)`.
    fn wgsl_layout(label: &str, src: &str) -> (u32, Vec<(String, u32, String)>) {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
        let (_, ty) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params")).unwrap_or_else(|| panic!("{label}: no struct Params"));
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{label}: Params is not a struct") };
        let fields = members
            .iter()
            .map(|m| {
                let t = match &module.types[m.ty].inner {
                    naga::TypeInner::Scalar(s) => format!("{}{}", match s.kind {
                        naga::ScalarKind::Uint => "u",
                        naga::ScalarKind::Sint => "i",
                        naga::ScalarKind::Float => "f",
                        _ => "?",
                    }, s.width * 8),
                    other => format!("{other:?}"),
                };
                (m.name.clone().unwrap_or_default(), m.offset, t)
            })
            .collect();
        (*span, fields)
    }

    /// Every Rust params struct has the size, field names, offsets and scalar types of the WGSL
    /// struct its kernel reads (padding may be one array in Rust and several words in WGSL).
    #[test]
    fn params_layouts_match_wgsl() {
        let weights = |s: &str| format!("{FORMATS_WGSL}\n{WEIGHTS_WGSL}\n{s}");
        let lanes = include_str!("../../shaders/common/lanes_workgroup.wgsl");
        let words = format!("{FORMATS_WGSL}\n{}\nconst NT_MAX: u32 = 8u;\n{lanes}", include_str!("../../shaders/common/mm_words.wgsl"));
        let [mm, fast] = matmul::params_layouts();
        let cases: Vec<(&str, Layout, String)> = vec![
            ("copy_rows.wgsl", copy_rows::params_layout(), include_str!("../../shaders/copy_rows.wgsl").into()),
            ("embed.wgsl", embed::params_layout(), weights(include_str!("../../shaders/embed.wgsl"))),
            ("matmul.wgsl", mm, weights(include_str!("../../shaders/matmul.wgsl"))),
            ("matvec.wgsl", fast, format!("{words}\n{}", include_str!("../../shaders/matvec.wgsl"))),
            ("mla_absorb.wgsl", mla_absorb::params_layout(), weights(include_str!("../../shaders/mla_absorb.wgsl"))),
            ("mla_attn.wgsl", mla_attn::params_layout(), include_str!("../../shaders/mla_attn.wgsl").into()),
            ("moe_combine.wgsl", moe_combine::params_layout(), include_str!("../../shaders/moe_combine.wgsl").into()),
            ("moe_gate.wgsl", moe_gate::params_layout(), include_str!("../../shaders/moe_gate.wgsl").into()),
            ("moe_group.wgsl", moe_group::params_layout(), include_str!("../../shaders/moe_group.wgsl").into()),
            ("read_bw.wgsl", read_bw::params_layout(), include_str!("../../shaders/read_bw.wgsl").into()),
            ("rmsnorm.wgsl", rmsnorm::params_layout(), include_str!("../../shaders/rmsnorm.wgsl").into()),
            ("rope.wgsl", rope::params_layout(), include_str!("../../shaders/rope.wgsl").into()),
            ("sample.wgsl", sample::params_layout(), include_str!("../../shaders/sample.wgsl").into()),
            ("swiglu.wgsl", swiglu::params_layout(), include_str!("../../shaders/swiglu.wgsl").into()),
        ];
        let mut checked = 0;
        for (label, rust, src) in cases {
            let (span, wgsl) = wgsl_layout(label, &src);
            let what = format!("{label}: Rust {} vs WGSL Params", rust.name);
            assert_eq!(rust.size, span as usize, "{what}: size");
            let named = |v: Vec<(String, usize, String)>| v.into_iter().filter(|f| !f.0.starts_with('_')).collect::<Vec<_>>();
            let r = named(rust.fields.iter().map(|&(n, o, t)| (n.to_string(), o, t.to_string())).collect());
            let w = named(wgsl.into_iter().map(|(n, o, t)| (n, o as usize, t)).collect());
            assert_eq!(r, w, "{what}: fields (name, offset, type)");
            checked += 1;
        }
        assert_eq!(checked, 14);
    }

    fn validate(label: &str, src: &str) {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
    }

    /// Every variant the host-side template expansion (`repeat_lines`) can produce parses and
    /// validates: gemm for every stream count and tile width `Tune` allows, with and without
    /// subgroups, and the flash-decoding attention for 1..=8 query tokens per workgroup.
    #[test]
    fn every_expanded_shader_variant_validates() {
        let mut n = 0;
        for subgroups in [false, true] {
            for streams in (2..=16).step_by(2) {
                for nt in 1..=if subgroups { 32 } else { 8 } {
                    let tune = matmul::Tune { lanes: 8, subgroups, xreg: true, nsg: 1, nt, streams, attn_tt: 2 };
                    let fast = matmul::Fast::with_tune(tune);
                    let [matvec, gemm] = fast.sources();
                    validate(&format!("gemm streams {streams} nt {nt} subgroups {subgroups}"), gemm);
                    if streams == 2 && nt == 1 {
                        validate(&format!("matvec subgroups {subgroups}"), matvec);
                    }
                    n += 1;
                }
            }
        }
        for tt in 1..=8 {
            validate(&format!("mla_attn split tt {tt}"), &mla_attn::split_source(tt));
        }
        assert_eq!(n, 8 * (8 + 32));
    }
}
