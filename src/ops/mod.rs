//! One module per WGSL kernel family. Every op has one calling convention:
//!
//! `op::run(rec, kernels, weights…, inputs…, outputs…, settings…)`
//!
//! where activations are [`Rows`] views (buffer, offset, stride, width, rows) or, for routed
//! experts, a [`Routed`] view, and weights are [`Matrix`](crate::tensor::Matrix) stacks or
//! small vectors. Each module keeps its params struct private, owns its pipelines (built on
//! first use through the [`Kernels`] registry, keyed by shader, entry, weight format and
//! variant) and makes its own fast/portable choice; the graph never names a kernel. Each
//! module also has a plain-Rust CPU reference that the kernel tests compare against.
//! Shaders are compiled into the binary with `include_str!`.

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
pub mod gqa_attn;
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
#[cfg(test)]
mod translate;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::format::Format;
use crate::gpu::{Gpu, GpuError, ShaderChecks};

/// One decode function per weight format (included by every kernel that reads weights).
pub const FORMATS_WGSL: &str = include_str!("../../shaders/common/formats.wgsl");
const WEIGHTS_WGSL: &str = include_str!("../../shaders/common/weights.wgsl");
/// The i-quants' lookup-table binding (read by weights.wgsl and blocks_words.wgsl).
const IQ_TABLES_WGSL: &str = include_str!("../../shaders/common/iq_tables.wgsl");
/// The binding number of the i-quants' tables (`shaders/common/iq_tables.wgsl`).
pub(crate) const IQ_TABLES_BINDING: u32 = 11;

/// The helpers the attention kernels share (NEG, workgroup reductions, the split combine).
const ATTN_WGSL: &str = include_str!("../../shaders/common/attn.wgsl");

/// An attention kernel's `src` with the shared attention helpers before it.
fn with_attn(src: &str) -> String {
    format!("{ATTN_WGSL}\n{src}")
}

/// `src` with the weight-format decoders and the single-element weight gathers before it.
fn with_weights(src: &str) -> String {
    format!("{FORMATS_WGSL}\n{IQ_TABLES_WGSL}\n{WEIGHTS_WGSL}\n{src}")
}

/// f32 activations in a storage buffer, counted in elements: row `r` (of `rows`) holds
/// `width` values starting at `off + r·stride`.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub buf: &'a wgpu::Buffer,
    pub off: usize,
    pub stride: usize,
    pub width: usize,
    pub rows: usize,
}

impl<'a> Rows<'a> {
    /// `rows` contiguous rows of `width` values from the start of `buf`.
    pub fn new(buf: &'a wgpu::Buffer, width: usize, rows: usize) -> Self {
        Rows { buf, off: 0, stride: width, width, rows }
    }

    /// `rows` rows of `width` values, row r at `off + r·stride`.
    pub fn strided(buf: &'a wgpu::Buffer, off: usize, stride: usize, width: usize, rows: usize) -> Self {
        Rows { buf, off, stride, width, rows }
    }

    /// Rows `first .. first + n`.
    pub fn range(self, first: usize, n: usize) -> Self {
        Rows { off: self.off + first * self.stride, rows: n, ..self }
    }

    /// Columns `c0 .. c0 + width` of every row.
    pub fn cols(self, c0: usize, width: usize) -> Self {
        Rows { off: self.off + c0, width, ..self }
    }

    /// Each row split into `n` rows of `width / n` (heads of a token): rows·n rows.
    pub fn split(self, n: usize) -> Self {
        debug_assert!(self.width % n == 0 && self.stride == self.width);
        Rows { stride: self.width / n, width: self.width / n, rows: self.rows * n, ..self }
    }

    /// The rows are packed one after another from `off`.
    pub fn contiguous(&self) -> bool {
        self.stride == self.width || self.rows <= 1
    }
}

/// Routed work items: item `(t, s)` for `t < x.rows`, `s < slots` runs expert
/// `ids[t·slots + s]` on `x.width` values at `x.off + t·x.stride + s·slot_stride`
/// (`slot_stride` 0: every slot reads the token's row). Outputs are rows in item order.
#[derive(Clone, Copy)]
pub struct Routed<'a> {
    pub x: Rows<'a>,
    pub slots: usize,
    pub slot_stride: usize,
    pub ids: &'a wgpu::Buffer, // [x.rows][slots] u32
}

impl Routed<'_> {
    pub fn items(&self) -> usize {
        self.x.rows * self.slots
    }
}

/// Which pipeline: a shader family and entry point, the weight format it decodes (if any)
/// and a variant number its module defines (words per lane, unroll count, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    pub family: &'static str,
    pub entry: &'static str,
    pub format: Option<Format>,
    pub variant: u32,
}

impl Key {
    pub const fn plain(family: &'static str) -> Self {
        Key { family, entry: "main", format: None, variant: 0 }
    }

    /// The label of the pipeline: the family first (profiles group by it).
    fn label(&self) -> String {
        let mut l = format!("{}/{}", self.family, self.entry);
        if let Some(f) = self.format {
            l.push_str(&format!("/wdt{}", f.wgsl_id()));
        }
        if self.variant != 0 {
            l.push_str(&format!("/v{}", self.variant));
        }
        l
    }
}

/// The pipeline registry: every op's pipelines, built on first use and kept (a failed build
/// is kept too, so it is reported once), plus the kernels' scratch buffers and the tuning of
/// the fast kernels for this adapter.
pub struct Kernels {
    pub(crate) tune: matmul::Tune,
    pipelines: Mutex<HashMap<Key, Result<wgpu::ComputePipeline, String>>>,
    /// scratch buffers of the kernels (moe_group lists, attention partials), grown on demand
    scratch: Mutex<HashMap<&'static str, wgpu::Buffer>>,
    /// 4-byte placeholder bound where a kernel's optional input is unused.
    pub(crate) dummy: wgpu::Buffer,
    /// the i-quants' lookup tables (`format::iquants::table_words`), bound at
    /// [`IQ_TABLES_BINDING`] by every kernel that decodes them
    pub(crate) iq_tables: wgpu::Buffer,
    /// which families' modules leave wgpu's runtime checks out
    checks: ShaderChecks,
}

impl Kernels {
    /// The registry for `gpu`, with the kernels every model needs built (so a shader that
    /// does not build on this adapter fails here, by name).
    pub fn new(gpu: &Gpu) -> Result<Self, GpuError> {
        Self::with_tune(gpu, matmul::Tune::for_gpu(gpu))
    }

    /// Fast kernels of a given shape (tests cover the shapes other adapters get).
    pub fn with_tune(gpu: &Gpu, tune: matmul::Tune) -> Result<Self, GpuError> {
        Self::build(gpu, tune, gpu.shader_checks)
    }

    /// The registry with runtime checks `checks` instead of the device's (`bench --compare`
    /// runs one model each way).
    pub fn with_checks(gpu: &Gpu, checks: ShaderChecks) -> Result<Self, GpuError> {
        Self::build(gpu, matmul::Tune::for_gpu(gpu), checks)
    }

    fn build(gpu: &Gpu, tune: matmul::Tune, checks: ShaderChecks) -> Result<Self, GpuError> {
        check_limits(gpu)?;
        let iq_tables = gpu.storage_init("iq tables", bytemuck::cast_slice(&crate::format::iquants::table_words()));
        let k = Kernels { tune, pipelines: Mutex::default(), scratch: Mutex::default(), dummy: gpu.storage("dummy", 16), iq_tables, checks };
        k.prepare(gpu, &[])?;
        Ok(k)
    }

    /// The fast kernels' shape on this adapter.
    pub fn tune(&self) -> matmul::Tune {
        self.tune
    }

    /// Build the pipelines a model with weights in `formats` needs, up front: the load then
    /// reports a kernel that does not build on this adapter instead of the first forward.
    /// (The fast matvec/gemm/attention variants are built on first use and fall back to the
    /// portable kernels when they do not build.)
    pub fn prepare(&self, gpu: &Gpu, formats: &[Format]) -> Result<(), GpuError> {
        for key in PLAIN {
            self.plain(gpu, key)?;
        }
        for &f in formats {
            embed::pipeline(self, gpu, f)?;
            matmul::generic_pipeline(self, gpu, f)?;
            mla_absorb::pipelines(self, gpu, f)?;
        }
        Ok(())
    }

    /// The pipeline of `key`, built on first use from `build()` = (WGSL source, override
    /// constants). A shader that does not validate on this adapter is an error naming it.
    pub(crate) fn pipeline(&self, gpu: &Gpu, key: Key, build: impl FnOnce() -> (String, Vec<(&'static str, f64)>)) -> Result<wgpu::ComputePipeline, GpuError> {
        let mut m = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key)
            .or_insert_with(|| {
                let label = key.label();
                let (src, mut consts) = build();
                if let Some(f) = key.format {
                    consts.push(("WDT", f.wgsl_id() as f64));
                }
                let trusted = trusted(self.checks, key.family);
                gpu.checked(&label, || {
                    if trusted {
                        // SAFETY: under `auto` only the families of TRUSTED_FAMILIES get
                        // here, whose every index, loop and divisor the host proves in range
                        // (see there). Under `off` the user asked for every kernel unchecked,
                        // to measure what the checks cost (`--shader-checks` says so): the
                        // promise then rests on the kernels being correct, which the tests
                        // check (tests/kernels.rs runs a golden both ways), not on a proof.
                        unsafe { gpu.compute_pipeline_trusted(&label, &src, key.entry, &consts) }
                    } else {
                        gpu.compute_pipeline(&label, &src, key.entry, &consts)
                    }
                })
                .map_err(|e| match e {
                    GpuError::Validation { msg, .. } => msg,
                    e => e.to_string(),
                })
            })
            .clone()
            .map_err(|msg| GpuError::Kernel { label: key.label(), msg })
    }

    /// A kernel without variants: `shaders/<family>.wgsl`'s `main`.
    fn plain(&self, gpu: &Gpu, key: Key) -> Result<wgpu::ComputePipeline, GpuError> {
        self.pipeline(gpu, key, || (plain_source(key.family), vec![]))
    }

    /// A scratch buffer of at least `bytes`, shared by every use of `name`: the commands of
    /// one submission run in order, so one buffer serves every layer. A grown buffer replaces
    /// the old one, which lives on while recorded commands still hold it; cached bind groups
    /// are dropped then, so they do not keep it alive too.
    fn scratch(&self, gpu: &Gpu, name: &'static str, bytes: u64) -> wgpu::Buffer {
        let mut m = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(name) {
            Some(b) if b.size() >= bytes => b.clone(),
            old => {
                if old.is_some() {
                    gpu.clear_bind_cache();
                }
                let b = gpu.storage(name, bytes);
                m.insert(name, b.clone());
                b
            }
        }
    }
}

impl Kernels {
    /// The bindings of a kernel that gathers weights (`with_weights`): `bufs` at 1.. in order
    /// and the i-quants' tables, which its per-format switch always reaches.
    pub(crate) fn weights_bound<'a>(&'a self, bufs: &[&'a wgpu::Buffer]) -> Vec<(u32, &'a wgpu::Buffer)> {
        let mut b: Vec<(u32, &wgpu::Buffer)> = bufs.iter().enumerate().map(|(i, b)| (i as u32 + 1, *b)).collect();
        b.push((IQ_TABLES_BINDING, &self.iq_tables));
        b
    }

    /// `[items]` u32 with item i's head `i % heads` (the "expert" ids that run a per-head
    /// pool through the routed kernels), grown on demand like a scratch buffer.
    fn head_ids(&self, gpu: &Gpu, heads: usize, items: usize) -> wgpu::Buffer {
        let name = "head ids";
        let have = self.scratch.lock().unwrap_or_else(|e| e.into_inner()).get(name).map(|b| b.size());
        let b = self.scratch(gpu, name, (items * 4) as u64);
        if have != Some(b.size()) {
            let ids: Vec<u32> = (0..b.size() as usize / 4).map(|i| (i % heads) as u32).collect();
            gpu.queue.write_buffer(&b, 0, bytemuck::cast_slice(&ids));
        }
        b
    }
}

/// Whether `family`'s modules leave wgpu's runtime checks out under `checks`.
pub fn trusted(checks: ShaderChecks, family: &str) -> bool {
    match checks {
        ShaderChecks::On => false,
        ShaderChecks::Off => true,
        ShaderChecks::Auto => TRUSTED_FAMILIES.contains(&family),
    }
}

/// The kernel families built without wgpu's runtime checks by default (`--shader-checks
/// auto`): none. A family belongs here only when both hold:
/// - the host proves every index in range by construction: each view the op binds lies in
///   its buffer (asserted where the op records the dispatch), every fixed-size array index
///   and loop bound in the shader follows from the params the op writes, and no integer
///   divisor can be zero;
/// - leaving the checks out was measured to pay.
///
/// The second has held for no family on lavapipe (BENCHMARKS.md, "Runtime checks"): there
/// the driver is robust itself (robustBufferAccess2), so wgpu adds no buffer checks in either
/// mode, and what `off` removes (clamps on the kernels' small private and workgroup arrays,
/// a counter per loop, zero-divisor guards) is a few integer operations per iteration of
/// memory-bound loops: decode and prefill of r1-shape-small (BF16, Q4_K), and every kernel
/// family's GPU time, moved by less than the noise between rounds. Measure again on a GPU
/// (`bench --compare bf16@on,bf16@off`) before adding a family, and discharge the first
/// condition for it then.
pub const TRUSTED_FAMILIES: &[&str] = &[];

/// The kernels without a portable fallback, and what each asks of the adapter.
const PLAIN: [Key; 10] = [copy_rows::KEY, rmsnorm::KEY, rope::KEY, moe_gate::KEY, moe_combine::KEY, moe_group::KEY, swiglu::KEY, sample::KEY, mla_attn::KEY, gqa_attn::KEY];

/// What one kernel family asks of an adapter, read from its WGSL by naga: its largest fixed
/// workgroup, its workgroup memory and the storage buffers it binds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub invocations: u32,
    pub size_x: u32,
    pub workgroup_bytes: u32,
    pub storage_buffers: u32,
}

/// [`Needs`] of a WGSL source, the largest over its entry points (None: it does not
/// validate, which building it reports).
pub fn needs_of(src: &str) -> Option<Needs> {
    use wgpu::naga;
    let module = naga::front::wgsl::parse_str(src).ok()?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::empty(), naga::valid::Capabilities::all()).validate(&module).ok()?;
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).ok()?;
    let mut n = Needs::default();
    for (i, ep) in module.entry_points.iter().enumerate() {
        let [x, y, z] = ep.workgroup_size;
        n.invocations = n.invocations.max(x * y * z);
        n.size_x = n.size_x.max(x);
        let used = info.get_entry_point(i);
        let (mut bytes, mut storage) = (0, 0);
        for (h, var) in module.global_variables.iter() {
            if used[h].is_empty() {
                continue;
            }
            match var.space {
                naga::AddressSpace::WorkGroup => bytes += layouter[var.ty].size,
                naga::AddressSpace::Storage { .. } => storage += 1,
                _ => {}
            }
        }
        n.workgroup_bytes = n.workgroup_bytes.max(bytes);
        n.storage_buffers = n.storage_buffers.max(storage);
    }
    Some(n)
}

/// Refuse an adapter whose limits are below what the kernels without a fallback need, naming
/// the limit (the fast kernels adapt their shape to the limits, or fall back).
pub fn check_limits(gpu: &Gpu) -> Result<(), GpuError> {
    let l = &gpu.limits;
    for key in PLAIN {
        let Some(n) = needs_of(&plain_source(key.family)) else { continue };
        let what = format!("the {} kernel", key.family);
        for (limit, have, need) in [
            ("max_compute_invocations_per_workgroup", l.max_compute_invocations_per_workgroup, n.invocations),
            ("max_compute_workgroup_size_x", l.max_compute_workgroup_size_x, n.size_x),
            ("max_compute_workgroup_storage_size", l.max_compute_workgroup_storage_size, n.workgroup_bytes),
            ("max_storage_buffers_per_shader_stage", l.max_storage_buffers_per_shader_stage, n.storage_buffers),
        ] {
            if need > have {
                return Err(GpuError::Limit { adapter: gpu.info.name.clone(), limit, have: have as u64, need: need as u64, what });
            }
        }
    }
    Ok(())
}

/// The source of a kernel without weights or templates.
fn plain_source(family: &str) -> String {
    let src = match family {
        "copy_rows" => include_str!("../../shaders/copy_rows.wgsl"),
        "rmsnorm" => include_str!("../../shaders/rmsnorm.wgsl"),
        "rope" => include_str!("../../shaders/rope.wgsl"),
        "moe_gate" => include_str!("../../shaders/moe_gate.wgsl"),
        "moe_combine" => include_str!("../../shaders/moe_combine.wgsl"),
        "moe_group" => include_str!("../../shaders/moe_group.wgsl"),
        "swiglu" => include_str!("../../shaders/swiglu.wgsl"),
        "sample" => include_str!("../../shaders/sample.wgsl"),
        "mla_attn" => return mla_attn::base(),
        "gqa_attn" => return gqa_attn::base(),
        other => unreachable!("no plain shader named {other}"),
    };
    src.to_string()
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
        let weights = with_weights;
        let lanes = include_str!("../../shaders/common/lanes_workgroup.wgsl");
        let words = format!("{FORMATS_WGSL}\n{}\nconst NT_MAX: u32 = 8u;\n{lanes}", include_str!("../../shaders/common/mm_words.wgsl"));
        let [mm, fast] = matmul::params_layouts();
        let cases: Vec<(&str, Layout, String)> = vec![
            ("copy_rows.wgsl", copy_rows::params_layout(), include_str!("../../shaders/copy_rows.wgsl").into()),
            ("embed.wgsl", embed::params_layout(), weights(include_str!("../../shaders/embed.wgsl"))),
            ("gqa_attn.wgsl", gqa_attn::params_layout(), gqa_attn::base()),
            ("matmul.wgsl", mm, weights(include_str!("../../shaders/matmul.wgsl"))),
            ("matvec.wgsl", fast, format!("{words}\n{}", include_str!("../../shaders/matvec.wgsl"))),
            ("mla_absorb.wgsl", mla_absorb::params_layout(), weights(include_str!("../../shaders/mla_absorb.wgsl"))),
            ("mla_attn.wgsl", mla_attn::params_layout(), mla_attn::base()),
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
        assert_eq!(checked, 15);
    }

    fn validate(label: &str, src: &str) {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
    }

    /// Every variant the host-side template expansion (`repeat_lines`) can produce parses and
    /// validates: gemm for every stream count and tile width `Tune` allows, with and without
    /// subgroups, the flash-decoding MLA attention for 1..=8 query tokens per workgroup, and
    /// the GQA one for every (heads, tokens) tile `gqa_attn::run` can choose.
    #[test]
    fn every_expanded_shader_variant_validates() {
        let mut n = 0;
        for subgroups in [false, true] {
            for streams in (2..=16).step_by(2) {
                for nt in 1..=if subgroups { 32 } else { 8 } {
                    let tune = matmul::Tune { lanes: 8, subgroups, xreg: true, nsg: 1, nt, streams, attn_tt: 2 };
                    let [matvec, gemm] = matmul::sources(&tune);
                    validate(&format!("gemm streams {streams} nt {nt} subgroups {subgroups}"), &gemm);
                    if streams == 2 && nt == 1 {
                        validate(&format!("matvec subgroups {subgroups}"), &matvec);
                    }
                    n += 1;
                }
            }
        }
        for tt in 1..=8 {
            validate(&format!("mla_attn split tt {tt}"), &mla_attn::split_source(tt));
        }
        for hg in 1..=8 {
            for tt in 1..=16 / hg {
                validate(&format!("gqa_attn split hg {hg} tt {tt}"), &gqa_attn::split_source(hg, tt));
            }
        }
        assert_eq!(n, 8 * (8 + 32));
    }
}
