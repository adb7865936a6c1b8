//! Projections and routed-expert matmuls over chunked weights, in three kernel families:
//! `shaders/matmul.wgsl` (generic: any dtype, shape and stride), `shaders/matvec.wgsl` (few
//! items: decode) and `shaders/gemm.wgsl` (many items: prefill, routed experts batched per
//! expert from `moe_group`'s lists). [`dispatch`], [`dispatch_grouped`] and [`glu`] pick the
//! kernel per call from the item count and the shape; the fast kernels need 16-byte aligned
//! rows and x, and fall back to the generic one otherwise. GGUF's block formats have fast
//! kernels of their own (`shaders/matvec_blocks.wgsl`, `shaders/gemm_blocks.wgsl`, the decode
//! in `shaders/common/blocks_words.wgsl`): a lane owns whole 256-value steps of a row, which
//! may start at any even byte, so they need only x aligned.
//!
//! The graph calls [`run`] (dense rows), [`glu`] (dense SwiGLU) and [`routed_swiglu`]
//! (routed experts); which kernel runs is this module's business.

use crate::format::Format;
use crate::gpu::{Gpu, GpuError, Recorder};
use crate::ops::{repeat_lines, swiglu, Key, Kernels, Routed, Rows};
use crate::tensor::Matrix;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    r0: u32,
    e0: u32,
    e1: u32,
    n_items: u32,
    slots: u32,
    use_ids: u32,
    x_off: u32,
    x_stride: u32,
    x_slot_stride: u32,
    y_off: u32,
    y_stride: u32,
    accum: u32,
    s_rows: u32,
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    _pad: [u32; 2],
}

/// Params of matvec and gemm (`shaders/common/mm_words.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FastParams {
    rows: u32,
    words: u32,
    r0: u32,
    e0: u32,
    e1: u32,
    n_items: u32,
    slots: u32,
    use_ids: u32,
    x_off: u32,
    x_stride: u32,
    x_slot_stride: u32,
    y_off: u32,
    y_stride: u32,
    accum: u32,
    s_rows: u32,
    s_cols: u32,
    blk_r: u32,
    blk_c: u32,
    rpw: u32,
    grouped: u32,
    list_off: u32,
    e_rows: u32,
    row_base: u32,
    norm_eps: f32,
}

/// Whether a product overwrites its output or adds into it (residual connections).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Out {
    Set,
    Add,
}

/// The kernels' view of a product's items, in f32 elements.
#[derive(Clone, Copy)]
pub(super) struct Args<'a> {
    x: &'a wgpu::Buffer,
    x_off: usize,
    /// stride between tokens
    x_stride: usize,
    /// stride between slots of one token (0: all slots read the token's row)
    x_slot_stride: usize,
    y: &'a wgpu::Buffer,
    y_off: usize,
    /// stride between work items (token · slots + slot)
    y_stride: usize,
    n_tok: usize,
    slots: usize,
    /// expert of each item, `[n_tok][slots]`; `None` for a single matrix
    ids: Option<&'a wgpu::Buffer>,
    accum: bool,
    /// x is RMSNorm's input: the product is `W · RMSNorm(x)` (matvec folds the norm in;
    /// the other kernels get x normalized by a dispatch of its own first)
    norm: Option<Norm<'a>>,
}

/// An RMSNorm applied to a product's x on the way in (see [`run_normed`]).
#[derive(Clone, Copy)]
pub struct Norm<'a> {
    /// the norm's weight, one f32 per column of x
    pub weight: &'a wgpu::Buffer,
    pub eps: f32,
}

impl<'a> Args<'a> {
    /// One item per row of `x`.
    fn dense(x: Rows<'a>, y: Rows<'a>, out: Out) -> Self {
        debug_assert_eq!(x.rows, y.rows);
        Args { x: x.buf, x_off: x.off, x_stride: x.stride, x_slot_stride: 0, y: y.buf, y_off: y.off, y_stride: y.stride, n_tok: x.rows, slots: 1, ids: None, accum: out == Out::Add, norm: None }
    }

    /// Routed items, y row per item.
    fn routed(x: Routed<'a>, y: Rows<'a>) -> Self {
        debug_assert_eq!(x.items(), y.rows);
        let r = x.x;
        Args { x: r.buf, x_off: r.off, x_stride: r.stride, x_slot_stride: x.slot_stride, y: y.buf, y_off: y.off, y_stride: y.stride, n_tok: r.rows, slots: x.slots, ids: Some(x.ids), accum: false, norm: None }
    }

    /// Every item as one of `heads` per-head blocks (see [`HeadBlocks`]): item t·heads + h.
    pub(super) fn heads(x: Rows<'a>, heads: usize, y: Rows<'a>) -> Self {
        Args { x: x.buf, x_off: x.off, x_stride: x.stride * heads, x_slot_stride: x.stride, y: y.buf, y_off: y.off, y_stride: y.stride, n_tok: x.rows / heads, slots: heads, ids: None, accum: false, norm: None }
    }
}

/// Workgroups a block-format matvec shares its rows × items out to on a CPU adapter: 4 per
/// core (lavapipe runs one thread per core). Each loads x once, and x (4 bytes a value)
/// outweighs the weights (0.5–1 byte), so fewer and larger workgroups than the float kernels'
/// 128 (measured on 2 cores: 4–8 workgroups run a 384-row Q4_K matvec 2.5× faster than 128).
fn block_workgroups() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| 4 * std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Items up to which a dense projection uses matvec (each item re-reads the weights).
pub const MATVEC_MAX_TOKENS: usize = 2;
/// Routed items up to which experts run per item with matvec instead of grouped gemm.
pub const MATVEC_MAX_ROUTED: usize = 16;

/// How the fast kernels are shaped for this adapter (pipeline overrides).
#[derive(Clone, Copy, Debug)]
pub struct Tune {
    /// threads sharing a row (matvec) / owning a row (gemm)
    pub lanes: u32,
    /// lane exchange through subgroup operations (else workgroup memory)
    pub subgroups: bool,
    /// keep x in registers per segment (CPU adapters: every load costs per lane)
    pub xreg: bool,
    /// row groups per matvec workgroup
    pub nsg: u32,
    /// gemm items per tile
    pub nt: u32,
    /// gemm weight streams per lane (rows; gate and up rows in pairs for gemm_glu), even
    pub streams: u32,
    /// prefill attention query tokens per workgroup
    pub attn_tt: u32,
}

impl Tune {
    pub fn for_gpu(gpu: &Gpu) -> Self {
        let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
        let (lo, hi) = (gpu.info.subgroup_min_size, gpu.info.subgroup_max_size);
        // A fixed subgroup size makes a group of lanes exactly one subgroup.
        let subgroups = gpu.subgroups() && lo == hi && lo.is_power_of_two() && (4..=64).contains(&lo);
        let lanes = if subgroups {
            lo
        } else if cpu {
            8
        } else {
            16
        };
        // gemm shape: on a CPU adapter every weight and x load costs a loop over the lanes, so
        // a lane streams 8 rows (each x word then serves 64 rows) over tiles of 8 items; measured
        // best on lavapipe (BENCHMARKS.md). GPUs keep 2 rows per lane (not measured: no GPU
        // here). `Tuning` (DSW_GEMM_S / DSW_GEMM_NT in the CLI) overrides both, for tuning.
        let t = gpu.tuning;
        let nt = t.gemm_nt.unwrap_or(8);
        let nt = if subgroups { nt.clamp(1, 32) } else { nt.clamp(1, 8) };
        let streams = (t.gemm_streams.unwrap_or(if cpu { 8 } else { 2 }).clamp(2, 16) / 2) * 2;
        let attn_tt = t.attn_tt.unwrap_or(super::mla_attn::PREFILL_TT).clamp(1, 8);
        // Groups of lanes per matvec workgroup: 128 invocations on a GPU, never more than the
        // adapter allows (a small GPU may offer as few as WebGPU's 256, or fewer).
        let max_wg = gpu.limits.max_compute_invocations_per_workgroup.min(gpu.limits.max_compute_workgroup_size_x);
        let nsg = if cpu { 1 } else { (128 / lanes).max(1) }.min((max_wg / lanes).max(1));
        Tune { lanes, subgroups, xreg: cpu, nsg, nt, streams, attn_tt }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Matvec,
    MatvecGlu,
    Gemm,
    GemmGlu,
}

impl Kind {
    fn entry(self) -> &'static str {
        match self {
            Kind::Matvec => "matvec",
            Kind::MatvecGlu => "matvec_glu",
            Kind::Gemm => "gemm",
            Kind::GemmGlu => "gemm_glu",
        }
    }

    fn glu(self) -> bool {
        matches!(self, Kind::MatvecGlu | Kind::GemmGlu)
    }
}

/// The assembled matvec and gemm sources for a tune (the pipelines' override constants set
/// the rest).
pub(super) fn sources(tune: &Tune) -> [String; 2] {
    let lanes = if tune.subgroups { include_str!("../../shaders/common/lanes_subgroup.wgsl") } else { include_str!("../../shaders/common/lanes_workgroup.wgsl") };
    // The subgroup exchange holds one word per item of a tile (the workgroup one, 8 at most:
    // `for_gpu` clamps nt to 8 without subgroups).
    let lanes = format!("const NT_MAX: u32 = {}u;\n{lanes}", tune.nt.max(8));
    let words = format!("{}\n{}", super::FORMATS_WGSL, include_str!("../../shaders/common/mm_words.wgsl"));
    [
        format!("{words}\n{lanes}\n{}", include_str!("../../shaders/matvec.wgsl")),
        format!(
            "{words}\n{lanes}\nconst NT: u32 = {}u;\nconst S: u32 = {}u;\n{}",
            tune.nt,
            tune.streams,
            expand(include_str!("../../shaders/gemm.wgsl"), tune.streams, tune.nt)
        ),
    ]
}

/// The assembled sources of the block-format kernels (GGUF's, `dt.is_block()`) for a tune:
/// matvec with `j` steps per lane per segment, and gemm. The host expands them per format
/// (the words a step covers), per `j` and per gemm shape (see shaders/common/blocks_words.wgsl).
pub(super) fn block_sources(tune: &Tune, dt: Format, j: u32) -> [String; 2] {
    let lanes = if tune.subgroups { include_str!("../../shaders/common/lanes_subgroup.wgsl") } else { include_str!("../../shaders/common/lanes_workgroup.wgsl") };
    let lanes = format!("const NT_MAX: u32 = {}u;\n{lanes}", tune.nt.max(8));
    let nwr = block_step_bytes(dt).div_ceil(16) as u32;
    let blocks = repeat_lines(include_str!("../../shaders/common/blocks_words.wgsl"), "$w", nwr + 1, |l, w| l.replace("$w", &w.to_string()));
    let blocks = repeat_lines(&blocks, "$y", nwr, |l, y| l.replace("$y", &y.to_string()).replace("$z", &(y + 1).to_string()));
    let blocks = blocks.replace("$f", &dt.name().to_lowercase()).replace("$g", &(256 / dt.block_elems()).to_string()).replace("$bb", &dt.block_bytes().to_string());
    let words = format!("{}\n{}\n{}\n{lanes}\n{blocks}", super::FORMATS_WGSL, super::IQ_TABLES_WGSL, include_str!("../../shaders/common/mm_words.wgsl"));
    let per_v = |src: &str| repeat_lines(src, "$v", 64, |l, v| l.replace("$v", &v.to_string()));
    let matvec = repeat_lines(include_str!("../../shaders/matvec_blocks.wgsl"), "$j", j, |l, i| l.replace("$j", &i.to_string()));
    let gemm = repeat_lines(include_str!("../../shaders/gemm_blocks.wgsl"), "$m", (64 / tune.lanes).max(1), |l, m| l.replace("$m", &m.to_string()));
    [
        format!("{words}\nconst J: u32 = {j}u;\n{}", per_v(&matvec)),
        format!("{words}\nconst NT: u32 = {}u;\nconst S: u32 = {}u;\n{}", tune.nt, tune.streams, expand(&per_v(&gemm), tune.streams, tune.nt)),
    ]
}

/// Bytes of a block-format step (256 values: 8 blocks of the 32-value formats, one K-quant).
fn block_step_bytes(dt: Format) -> usize {
    dt.block_bytes() * 256 / dt.block_elems()
}

/// How a block-format kernel covers a row (see shaders/matvec_blocks.wgsl): `spl` lanes share
/// a row (a power of two), each taking `j` of its 256-value steps per segment; `aligned`:
/// every step starts on a 16-byte word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct BlockShape {
    spl: u32,
    j: u32,
    aligned: bool,
}

impl BlockShape {
    /// The matvec shape for `m` (rows of `steps` steps): the fewest lane slots per row, with at
    /// most 4 steps per lane in registers (CPU adapters) or 8; ties go to more lanes per row
    /// (fewer x registers per lane). Rows too long for that run in segments.
    fn matvec(k: &Kernels, m: &Matrix) -> Self {
        let (steps, lanes) = (Self::steps(m), k.tune.lanes);
        let jmax = if k.tune.xreg { 4 } else { 8 };
        let mut best: Option<(u32, u32)> = None;
        for spl in (0..=lanes.trailing_zeros()).rev().map(|s| 1 << s) {
            let j = steps.div_ceil(spl);
            if j <= jmax && best.is_none_or(|(bs, bj)| spl * j < bs * bj) {
                best = Some((spl, j));
            }
        }
        let (spl, j) = best.unwrap_or((lanes, jmax));
        BlockShape { spl, j, aligned: Self::gemm(m).aligned }
    }

    fn gemm(m: &Matrix) -> Self {
        let row_bytes = m.dtype.bytes_for(m.cols).unwrap_or(1);
        BlockShape { spl: 1, j: 0, aligned: row_bytes.is_multiple_of(16) && block_step_bytes(m.dtype).is_multiple_of(16) }
    }

    /// Steps per row.
    fn steps(m: &Matrix) -> u32 {
        m.cols.div_ceil(256) as u32
    }

    fn variant(self) -> u32 {
        self.j | self.spl.trailing_zeros() << 8 | (self.aligned as u32) << 12
    }
}

/// The fast pipeline of `kind` for weights in `dt` (float formats: `j` words per lane per
/// segment; block formats: `b`), or `None` when it does not build on this adapter (the caller
/// then uses the generic kernel).
fn fast_pipeline(k: &Kernels, gpu: &Gpu, kind: Kind, dt: Format, j: u32, b: Option<BlockShape>) -> Option<wgpu::ComputePipeline> {
    // The i-quants have no gemm yet: prefill runs them through the generic kernel. (The
    // gemm_blocks expansion with their table loads compiled far too slowly on lavapipe: the
    // block-kernel tests over all nine took over half an hour, most of it gemm/gemm_glu.)
    if dt.iquant().is_some() && matches!(kind, Kind::Gemm | Kind::GemmGlu) {
        return None;
    }
    let t = k.tune;
    let family = match kind {
        Kind::Matvec | Kind::MatvecGlu => "matvec",
        Kind::Gemm | Kind::GemmGlu => "gemm",
    };
    let variant = b.map_or(j, BlockShape::variant);
    let key = Key { family, entry: kind.entry(), format: Some(dt), variant };
    k.pipeline(gpu, key, || {
        let [matvec, gemm] = match b {
            Some(b) => block_sources(&t, dt, b.j),
            None => sources(&t),
        };
        let flag = |on: bool| if on { 1.0 } else { 0.0 };
        let mut consts = vec![("LANES", t.lanes as f64)];
        if let Some(b) = b {
            consts.push(("ALIGNED", flag(b.aligned)));
        }
        match kind {
            Kind::Matvec | Kind::MatvecGlu => {
                consts.extend([("NSG", t.nsg as f64), ("XREG", flag(t.xreg))]);
                match b {
                    Some(b) => consts.push(("SPL", b.spl as f64)),
                    None => consts.push(("J", j as f64)),
                }
                (matvec, consts)
            }
            Kind::Gemm | Kind::GemmGlu => (gemm, consts),
        }
    })
    .ok()
}

/// The generic kernel's pipeline for weights in `f`.
pub(super) fn generic_pipeline(k: &Kernels, gpu: &Gpu, f: Format) -> Result<wgpu::ComputePipeline, GpuError> {
    k.pipeline(gpu, Key { format: Some(f), ..Key::plain("matmul") }, || (super::with_weights(include_str!("../../shaders/matmul.wgsl")), vec![]))
}

/// Expand gemm.wgsl's per-stream and per-item lines (see the comment there): a line with
/// `$r` is repeated for r in 0..streams (`$p` = max(r, 1) - 1), then a line with `$q` for q
/// in 0..items.
fn expand(src: &str, streams: u32, items: u32) -> String {
    let by_stream = repeat_lines(src, "$r", streams, |l, r| l.replace("$r", &r.to_string()).replace("$p", &(r.max(1) - 1).to_string()));
    repeat_lines(&by_stream, "$q", items, |l, q| l.replace("$q", &q.to_string()))
}

/// Elements per 16-byte word.
fn epw(dt: Format) -> usize {
    dt.word_elems()
}

/// Whether `m` with `a` meets the fast kernels' alignment (see `shaders/common/mm_words.wgsl`).
/// Block formats need only x's: their kernels read rows of whole blocks from any even byte
/// (`shaders/common/blocks_words.wgsl`), addressed in u32 bytes.
fn fast_ok(k: &Kernels, m: &Matrix, a: &Args) -> bool {
    let x_ok = a.x_off.is_multiple_of(4) && a.x_stride.is_multiple_of(4) && a.x_slot_stride.is_multiple_of(4) && a.x.size().is_multiple_of(16);
    if m.dtype.is_block() {
        return x_ok && m.scale.is_none() && m.chunks.iter().all(|c| c.buf.size() < 1 << 32);
    }
    let e = epw(m.dtype);
    let lanes = k.tune.lanes as usize;
    let scale_ok = m.scale.as_ref().is_none_or(|s| s.block[1] % e == 0);
    m.cols.is_multiple_of(e) && (m.cols / e).is_multiple_of(lanes) && x_ok && scale_ok
}

/// Words per lane per segment for matvec with x in registers: the largest divisor of the
/// words each lane reads that fits the register budget (float formats).
fn matvec_j(k: &Kernels, m: &Matrix) -> u32 {
    if !k.tune.xreg {
        return 1;
    }
    let per_lane = (m.cols / epw(m.dtype)) as u32 / k.tune.lanes;
    let max = if m.dtype == Format::F8E4M3 { 8 } else { 16 };
    (1..=max.min(per_lane)).rev().find(|j| per_lane.is_multiple_of(*j)).unwrap_or(1)
}

/// Few enough items for matvec (each item re-reads the weights).
fn few_items(a: &Args) -> bool {
    if a.ids.is_some() {
        a.n_tok * a.slots <= MATVEC_MAX_ROUTED
    } else {
        a.n_tok <= MATVEC_MAX_TOKENS
    }
}

/// `y[t] (+)= W x[t]` for every row of `x` (`W` one matrix: `x.width` = cols, `y.width` = rows).
pub fn run(rec: &mut Recorder, k: &Kernels, w: &Matrix, x: Rows, y: Rows, out: Out) {
    debug_assert!(w.n_mats == 1 && x.width == w.cols && y.width == w.rows);
    dispatch(rec, k, w, &Args::dense(x, y, out));
}

/// `y[t] (+)= W · RMSNorm(x[t])`: [`run`] with the norm folded into the matvec (one dispatch
/// for both); where matvec does not apply, the norm runs first into scratch.
pub fn run_normed(rec: &mut Recorder, k: &Kernels, w: &Matrix, x: Rows, norm: Norm, y: Rows, out: Out) {
    debug_assert!(w.n_mats == 1 && x.width == w.cols && y.width == w.rows);
    dispatch(rec, k, w, &Args { norm: Some(norm), ..Args::dense(x, y, out) });
}

/// Whether a product of `m` over `a`'s items would fold its x's RMSNorm into the kernel
/// (matvec); the model normalizes x once for all consumers otherwise.
pub fn folds_norm(k: &Kernels, m: &Matrix, n_tok: usize, routed_slots: Option<usize>) -> bool {
    let items_ok = match routed_slots {
        Some(s) => n_tok * s <= MATVEC_MAX_ROUTED,
        None => n_tok <= MATVEC_MAX_TOKENS,
    };
    let e = epw(m.dtype);
    let float_ok = m.cols.is_multiple_of(e) && (m.cols / e).is_multiple_of(k.tune.lanes as usize) && m.scale.as_ref().is_none_or(|s| s.block[1] % e == 0);
    items_ok && folding_kernel(m) && float_ok && m.cols.is_multiple_of(4)
}

/// Whether `m`'s matvec kernel can fold a norm: the float formats'. The block formats' does
/// not: a multiply of the norm weight in its unrolled step decode made its pipelines about
/// 3× slower to compile on lavapipe (52 s → 143–215 s cold for two formats'
/// `matvec_long_block_rows_in_segments`), so their x is normalized first.
fn folding_kernel(m: &Matrix) -> bool {
    !m.dtype.is_block()
}

/// For the kernels that do not fold the norm: x of `a` normalized into scratch by a
/// dispatch of its own (`None` when `a` has no norm); [`normed_args`] then reads it.
fn prenorm(rec: &mut Recorder, k: &Kernels, a: &Args, cols: usize) -> Option<wgpu::Buffer> {
    let n = a.norm?;
    debug_assert!(a.x_slot_stride == 0, "a normalized x is one row per token");
    let buf = k.scratch(rec.gpu(), "normalized x", (a.n_tok * cols * 4).next_multiple_of(16) as u64);
    let src = Rows::strided(a.x, a.x_off, a.x_stride, cols, a.n_tok);
    super::rmsnorm::run(rec, k, n.weight, src, Rows::new(&buf, cols, a.n_tok), n.eps);
    Some(buf)
}

/// `a` reading the x [`prenorm`] wrote, if it wrote one.
fn normed_args<'a>(a: &Args<'a>, normed: Option<&'a wgpu::Buffer>, cols: usize) -> Args<'a> {
    match normed {
        Some(b) => Args { x: b, x_off: 0, x_stride: cols, norm: None, ..*a },
        None => *a,
    }
}

/// `y (+)= W x` for every item: matvec for few items, gemm for many dense ones, the generic
/// kernel otherwise (routed items without groups beyond [`MATVEC_MAX_ROUTED`], odd shapes).
fn dispatch(rec: &mut Recorder, k: &Kernels, m: &Matrix, a: &Args) {
    let items = a.n_tok * a.slots;
    if items == 0 {
        return;
    }
    if a.norm.is_some() && folding_kernel(m) && fast_ok(k, m, a) && few_items(a) && fast(rec, k, Kind::Matvec, m, None, a, None) {
        return;
    }
    // the other kernels read x normalized by a dispatch of its own
    let normed = prenorm(rec, k, a, m.cols);
    let a = &normed_args(a, normed.as_ref(), m.cols);
    if fast_ok(k, m, a) {
        if few_items(a) && fast(rec, k, Kind::Matvec, m, None, a, None) {
            return;
        }
        if a.ids.is_none() && fast(rec, k, Kind::Gemm, m, None, a, None) {
            return;
        }
    }
    generic(rec, k, m, a);
}

/// Routed experts with the items of each expert listed by `moe_group` in `groups`
/// (`a.ids` must be the ids the lists were built from).
fn dispatch_grouped(rec: &mut Recorder, k: &Kernels, m: &Matrix, a: &Args, groups: &wgpu::Buffer) {
    if !(fast_ok(k, m, a) && fast(rec, k, Kind::Gemm, m, None, a, Some(groups))) {
        generic(rec, k, m, a);
    }
}

/// `y[t] = silu(gate x[t]) · (up x[t])` for every row of `x` (a dense SwiGLU), with
/// `scratch` of y's size for the unfused fallback; y contiguous.
pub fn glu(rec: &mut Recorder, k: &Kernels, gate: &Matrix, up: &Matrix, x: Rows, y: Rows, scratch: &wgpu::Buffer) {
    glu_items(rec, k, gate, up, &Args::dense(x, y, Out::Set), scratch, None)
}

/// [`glu`] of `RMSNorm(x)`, the norm folded into the matvecs where they run.
#[allow(clippy::too_many_arguments)]
pub fn glu_normed(rec: &mut Recorder, k: &Kernels, gate: &Matrix, up: &Matrix, x: Rows, norm: Norm, y: Rows, scratch: &wgpu::Buffer) {
    glu_items(rec, k, gate, up, &Args { norm: Some(norm), ..Args::dense(x, y, Out::Set) }, scratch, None)
}

/// SwiGLU over the items of `a`, fused into one kernel where the shapes allow; otherwise two
/// matmuls (up into `scratch`, laid out like y) and `swiglu`. y must be contiguous
/// (`y_off` 0, `y_stride` = rows) for the fallback.
fn glu_items(rec: &mut Recorder, k: &Kernels, gate: &Matrix, up: &Matrix, a: &Args, scratch: &wgpu::Buffer, groups: Option<&wgpu::Buffer>) {
    let same = gate.dtype == up.dtype
        && gate.rows == up.rows
        && gate.cols == up.cols
        && gate.chunks.len() == up.chunks.len()
        && gate.chunks.iter().zip(&up.chunks).all(|(g, u)| (g.r0, g.rows, g.e0, g.e1) == (u.r0, u.rows, u.e0, u.e1));
    let one_segment = if gate.dtype.is_block() {
        let b = BlockShape::matvec(k, gate);
        BlockShape::steps(gate) <= b.spl * b.j
    } else {
        !k.tune.xreg || (gate.cols / epw(gate.dtype)) as u32 / k.tune.lanes == matvec_j(k, gate)
    };
    let fused_matvec = |a: &Args| same && !a.accum && fast_ok(k, gate, a) && groups.is_none() && few_items(a) && one_segment;
    if a.norm.is_some() && folding_kernel(gate) && groups.is_none() && few_items(a) {
        // matvec folds the norm: fused, or gate and up each folding it
        if !(fused_matvec(a) && fast(rec, k, Kind::MatvecGlu, gate, Some(up), a, None)) {
            glu_unfused(rec, k, gate, up, a, scratch, groups);
        }
        return;
    }
    // the other kernels read x normalized by a dispatch of its own
    let normed = prenorm(rec, k, a, gate.cols);
    let a = &normed_args(a, normed.as_ref(), gate.cols);
    if fused_matvec(a) && fast(rec, k, Kind::MatvecGlu, gate, Some(up), a, None) {
        return;
    }
    if same && !a.accum && fast_ok(k, gate, a) && (a.ids.is_none() || groups.is_some()) && fast(rec, k, Kind::GemmGlu, gate, Some(up), a, groups) {
        return;
    }
    glu_unfused(rec, k, gate, up, a, scratch, groups);
}

/// SwiGLU as two products (up into `scratch`) and `swiglu`.
fn glu_unfused(rec: &mut Recorder, k: &Kernels, gate: &Matrix, up: &Matrix, a: &Args, scratch: &wgpu::Buffer, groups: Option<&wgpu::Buffer>) {
    let items = a.n_tok * a.slots;
    let up_args = Args { y: scratch, accum: false, ..*a };
    let gate_args = Args { accum: false, ..*a };
    match groups {
        Some(g) => {
            dispatch_grouped(rec, k, gate, &gate_args, g);
            dispatch_grouped(rec, k, up, &up_args, g);
        }
        None => {
            dispatch(rec, k, gate, &gate_args);
            dispatch(rec, k, up, &up_args);
        }
    }
    swiglu::run(rec, k, Rows::new(scratch, gate.rows, items), Rows::new(a.y, gate.rows, items));
}

/// `y[t·heads + h] = W_h x[t·heads + h]` with per-head blocks of one matrix (see [`HeadBlocks`]);
/// `a.slots` must be `heads`. False, with nothing recorded, when the fast kernels do not
/// apply (the caller then uses its own kernel).
pub(super) fn per_head(rec: &mut Recorder, k: &Kernels, m: &Matrix, h: HeadBlocks, a: &Args) -> bool {
    let one_chunk = m.chunks.len() == 1 && m.chunks[0].r0 == 0 && m.chunks[0].e1 - m.chunks[0].e0 == m.n_mats;
    if !(one_chunk && a.slots == h.heads && fast_ok(k, m, a)) {
        return false;
    }
    let kind = if a.n_tok <= MATVEC_MAX_TOKENS { Kind::Matvec } else { Kind::Gemm };
    fast_view(rec, k, kind, m, None, a, None, Some(h))
}

/// `y[t·heads + h] = W_h x[t·heads + h]` for a pool of `heads` whole matrices (`h.rows` =
/// `h.e_rows`, `row_base` 0), any format: the fast per-head kernels where they apply, else
/// the generic kernel with each item's "expert" its head.
pub(super) fn per_head_any(rec: &mut Recorder, k: &Kernels, m: &Matrix, h: HeadBlocks, x: Rows, y: Rows) {
    debug_assert!(m.n_mats == h.heads && m.rows == h.rows && h.e_rows == h.rows && h.row_base == 0);
    let a = Args::heads(x, h.heads, y);
    if !per_head(rec, k, m, h, &a) {
        let ids = k.head_ids(rec.gpu(), h.heads, a.n_tok * h.heads);
        generic(rec, k, m, &Args { ids: Some(&ids), ..a });
    }
}

/// Per-head blocks of one matrix: head h uses rows `row_base .. row_base + rows` of the
/// block of `e_rows` rows starting at `h · e_rows` (kv_b's W_UV), item t · heads + h.
#[derive(Clone, Copy)]
pub struct HeadBlocks {
    pub heads: usize,
    pub rows: usize,
    pub e_rows: usize,
    pub row_base: usize,
}

/// Record a fast kernel over every chunk; false (nothing recorded) when its pipeline is
/// unavailable.
fn fast(rec: &mut Recorder, k: &Kernels, kind: Kind, m: &Matrix, m2: Option<&Matrix>, a: &Args, groups: Option<&wgpu::Buffer>) -> bool {
    fast_view(rec, k, kind, m, m2, a, groups, None)
}

#[allow(clippy::too_many_arguments)]
fn fast_view(
    rec: &mut Recorder,
    k: &Kernels,
    kind: Kind,
    m: &Matrix,
    m2: Option<&Matrix>,
    a: &Args,
    groups: Option<&wgpu::Buffer>,
    heads: Option<HeadBlocks>,
) -> bool {
    let gpu = rec.gpu();
    let matvec = matches!(kind, Kind::Matvec | Kind::MatvecGlu);
    debug_assert!(a.norm.is_none() || matvec && !m.dtype.is_block(), "only the float formats' matvec folds a norm");
    let block = m.dtype.is_block().then(|| if matvec { BlockShape::matvec(k, m) } else { BlockShape::gemm(m) });
    let j = if matvec && block.is_none() { matvec_j(k, m) } else { 0 };
    let Some(pipeline) = fast_pipeline(k, gpu, kind, m.dtype, j, block) else {
        return false;
    };
    let t = k.tune;
    let items = a.n_tok * a.slots;
    let (s_rows, s_cols, blk) = m.scale.as_ref().map_or((1, 1, [1, 1]), |s| (s.s_rows, s.s_cols, s.block));
    fn scale<'b>(x: &'b Matrix, dummy: &'b wgpu::Buffer) -> &'b wgpu::Buffer {
        x.scale.as_ref().map_or(dummy, |s| &s.buf)
    }
    let n_exp = m.n_mats;
    // 16-byte words per row; bytes per row for the block formats
    let words = match block {
        Some(_) => m.dtype.bytes_for(m.cols).unwrap_or(0) as u32,
        None => (m.cols / epw(m.dtype)) as u32,
    };
    for (ci, c) in m.chunks.iter().enumerate() {
        // (rows, rows between experts, first row, experts [e0, e1), expert of an item, gemm items)
        let (rows, e_rows, row_base, e0, e1, use_ids, grouped) = match heads {
            Some(h) => (h.rows, h.e_rows, h.row_base, 0, h.heads, 2, 2),
            None => (c.rows, c.rows, 0, c.e0, c.e1, a.ids.is_some() as u32, groups.is_some() as u32),
        };
        // Enough workgroups to share out, each with enough rows to reuse its x registers.
        // Block formats: x (4 bytes a value) outweighs the weights (0.5–1 byte), so fewer,
        // larger workgroups; a group of lanes runs LANES / spl rows at once.
        let rpw = match block {
            Some(_) if t.xreg => (rows * items).div_ceil(block_workgroups()).clamp(1, 512).min(rows),
            Some(b) => t.nsg as usize * (t.lanes / b.spl) as usize,
            None if t.xreg => (rows * items).div_ceil(128).clamp(1, 64).min(rows),
            None => t.nsg as usize,
        };
        let p = FastParams {
            rows: rows as u32,
            words,
            r0: c.r0 as u32,
            e0: e0 as u32,
            e1: e1 as u32,
            n_items: items as u32,
            slots: a.slots as u32,
            use_ids,
            x_off: (a.x_off / 4) as u32,
            x_stride: (a.x_stride / 4) as u32,
            x_slot_stride: (a.x_slot_stride / 4) as u32,
            y_off: a.y_off as u32,
            y_stride: a.y_stride as u32,
            accum: a.accum as u32,
            s_rows: s_rows as u32,
            s_cols: s_cols as u32,
            blk_r: blk[0] as u32,
            blk_c: blk[1] as u32,
            rpw: rpw as u32,
            grouped,
            list_off: crate::ops::moe_group::list_off(n_exp) as u32,
            e_rows: e_rows as u32,
            row_base: row_base as u32,
            norm_eps: a.norm.map_or(0.0, |n| n.eps),
        };
        // The entry points share one body, so the plain ones declare the GLU's second
        // matrix too; they never read it.
        let (w2, s2) = m2.map_or((&k.dummy, &k.dummy), |m2| (&m2.chunks[ci].buf, scale(m2, &k.dummy)));
        let mut b: Vec<(u32, &wgpu::Buffer)> = vec![(1, &c.buf), (3, a.x), (5, a.y), (6, w2)];
        match block {
            // the same weights as u32s, for a chunk's last partial 16-byte word
            Some(_) => b.extend([(9, &c.buf), (10, w2)]),
            None => b.extend([(2, scale(m, &k.dummy)), (7, s2)]),
        }
        // only the i-quants' step decodes reach the tables (the layouts of the others lack them)
        if m.dtype.iquant().is_some() {
            b.push((super::IQ_TABLES_BINDING, &k.iq_tables));
        }
        let grid = match kind {
            Kind::Matvec | Kind::MatvecGlu => {
                b.push((4, a.ids.unwrap_or(&k.dummy)));
                if block.is_none() {
                    // the float formats' matvec declares the folded norm's weight
                    b.push((12, a.norm.map_or(&k.dummy, |n| n.weight)));
                }
                [(rows as u32).div_ceil(rpw as u32), items as u32, 1]
            }
            Kind::Gemm | Kind::GemmGlu => {
                b.push((8, groups.unwrap_or(&k.dummy)));
                let rows_per_wg = if kind.glu() { t.streams / 2 * t.lanes } else { t.streams * t.lanes };
                let y = if grouped != 0 { (e1 - e0) as u32 } else { (items as u32).div_ceil(t.nt) };
                [(rows as u32).div_ceil(rows_per_wg), y, 1]
            }
        };
        rec.dispatch_bound(Ok(pipeline.clone()), &p, &b, grid);
    }
    true
}

/// The generic kernel (`shaders/matmul.wgsl`): one dispatch per chunk, 4 rows per workgroup.
fn generic(rec: &mut Recorder, k: &Kernels, m: &Matrix, a: &Args) {
    let n_items = (a.n_tok * a.slots) as u32;
    let (scale_buf, s_rows, s_cols, blk) = match &m.scale {
        Some(s) => (&s.buf, s.s_rows, s.s_cols, s.block),
        None => (&k.dummy, 1, 1, [1, 1]),
    };
    for c in &m.chunks {
        let p = Params {
            rows: c.rows as u32,
            cols: m.cols as u32,
            r0: c.r0 as u32,
            e0: c.e0 as u32,
            e1: c.e1 as u32,
            n_items,
            slots: a.slots as u32,
            use_ids: a.ids.is_some() as u32,
            x_off: a.x_off as u32,
            x_stride: a.x_stride as u32,
            x_slot_stride: a.x_slot_stride as u32,
            y_off: a.y_off as u32,
            y_stride: a.y_stride as u32,
            accum: a.accum as u32,
            s_rows: s_rows as u32,
            s_cols: s_cols as u32,
            blk_r: blk[0] as u32,
            blk_c: blk[1] as u32,
            _pad: [0; 2],
        };
        let ids = a.ids.unwrap_or(&k.dummy);
        rec.dispatch_bound(generic_pipeline(k, rec.gpu(), m.dtype), &p, &k.weights_bound(&[&c.buf, scale_buf, a.x, ids, a.y]), [(c.rows as u32).div_ceil(4), n_items, 1]);
    }
}

/// CPU reference: `w` is the dequantised stack `[n_mats][rows][cols]`; returns
/// `y[item][rows]` for items `t · slots + s` reading `x[t · x_stride + s · x_slot_stride ..]`.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    w: &[f32],
    rows: usize,
    cols: usize,
    x: &[f32],
    x_stride: usize,
    x_slot_stride: usize,
    n_tok: usize,
    slots: usize,
    ids: Option<&[u32]>,
) -> Vec<f32> {
    let mut y = vec![0.0; n_tok * slots * rows];
    for t in 0..n_tok {
        for s in 0..slots {
            let item = t * slots + s;
            let e = ids.map_or(0, |i| i[item] as usize);
            for r in 0..rows {
                let wr = &w[(e * rows + r) * cols..][..cols];
                let xr = &x[t * x_stride + s * x_slot_stride..][..cols];
                y[item * rows + r] = wr.iter().zip(xr).map(|(a, b)| (*a as f64) * (*b as f64)).sum::<f64>() as f32;
            }
        }
    }
    y
}

/// `out[i] = down_e(silu(gate_e x_i) ⊙ up_e x_i)` for every routed item i, with `e` chosen
/// on the GPU (`hb`, `hb2`: scratch `[items][width]`; `max_items`: the most items any call
/// makes, which sizes the group lists). Few items run each expert alone (matvec); many are
/// listed per expert on the GPU (`moe_group`) so that each expert's batch runs as one gemm.
#[allow(clippy::too_many_arguments)]
/// With `norm`, x is RMSNorm's input (folded into the matvecs, or normalized first).
#[allow(clippy::too_many_arguments)]
pub fn routed_swiglu(rec: &mut Recorder, k: &Kernels, [gate, up, down]: [&Matrix; 3], x: Routed, norm: Option<Norm>, hb: &wgpu::Buffer, hb2: &wgpu::Buffer, out: Rows, max_items: usize) {
    let (w, items, n_exp) = (gate.rows, x.items(), gate.n_mats);
    let groups = (items > MATVEC_MAX_ROUTED && n_exp <= super::moe_group::MAX_EXPERTS).then(|| {
        let buf = k.scratch(rec.gpu(), "moe groups", (super::moe_group::out_len(max_items, n_exp) * 4) as u64);
        super::moe_group::run(rec, k, n_exp, x.ids, items, &buf);
        buf
    });
    let h = Rows::new(hb, w, items);
    glu_items(rec, k, gate, up, &Args { norm, ..Args::routed(x, h) }, hb2, groups.as_ref());
    // item (t, s) of the down projection reads row t·slots + s of hb
    let a = Args::routed(Routed { x: Rows::strided(hb, 0, x.slots * w, w, x.x.rows), slots: x.slots, slot_stride: w, ids: x.ids }, out);
    match &groups {
        Some(g) => dispatch_grouped(rec, k, down, &a, g),
        None => dispatch(rec, k, down, &a),
    }
}

/// `y[i] = W_{ids[i]} x_i` for every routed item (tests; the graph runs whole experts with
/// [`routed_swiglu`]).
pub fn run_routed(rec: &mut Recorder, k: &Kernels, w: &Matrix, x: Routed, y: Rows) {
    dispatch(rec, k, w, &Args::routed(x, y));
}

/// The params layouts of the generic kernel and of matvec/gemm, for the layout test.
#[cfg(test)]
pub(super) fn params_layouts() -> [super::Layout; 2] {
    [
        super::layout!(Params {
            rows: u32, cols: u32, r0: u32, e0: u32, e1: u32, n_items: u32, slots: u32, use_ids: u32, x_off: u32, x_stride: u32,
            x_slot_stride: u32, y_off: u32, y_stride: u32, accum: u32, s_rows: u32, s_cols: u32, blk_r: u32, blk_c: u32, _pad: [u32; 2]
        }),
        super::layout!(FastParams {
            rows: u32, words: u32, r0: u32, e0: u32, e1: u32, n_items: u32, slots: u32, use_ids: u32, x_off: u32, x_stride: u32,
            x_slot_stride: u32, y_off: u32, y_stride: u32, accum: u32, s_rows: u32, s_cols: u32, blk_r: u32, blk_c: u32, rpw: u32,
            grouped: u32, list_off: u32, e_rows: u32, row_base: u32, norm_eps: f32
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(label: &str, src: &str) {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(src)));
    }

    /// The block kernels the host can expand parse and validate: every block format, steps per
    /// lane 1..=8, lanes of 4..64 with and without subgroups, the gemm shapes `Tune` allows.
    #[test]
    fn every_block_kernel_variant_validates() {
        for f in Format::ALL.into_iter().filter(|f| f.is_block()) {
            for (lanes, subgroups, streams, nt) in [(8, true, 8, 8), (8, false, 2, 8), (16, false, 4, 3), (32, true, 2, 32), (4, true, 16, 1), (64, true, 6, 8)] {
                let tune = Tune { lanes, subgroups, xreg: lanes == 8, nsg: 1, nt, streams, attn_tt: 2 };
                for j in [1, 3, 8] {
                    let [matvec, gemm] = block_sources(&tune, f, j);
                    validate(&format!("{f:?} matvec lanes {lanes} j {j}"), &matvec);
                    if j == 1 {
                        validate(&format!("{f:?} gemm lanes {lanes} streams {streams} nt {nt}"), &gemm);
                    }
                }
            }
        }
    }

    #[test]
    fn block_steps_are_256_values() {
        for f in Format::ALL.into_iter().filter(|f| f.is_block()) {
            let sb = block_step_bytes(f);
            assert_eq!(f.bytes_for(256), Some(sb), "{f:?}");
            assert!(sb.div_ceil(16) <= 17, "{f:?}: a step must fit BW (18 words, one spare)");
        }
    }
}
