//! `shaders/gqa_attn.wgsl`: causal grouped-query attention over a layer's K/V cache (Qwen3,
//! Llama). With subgroups, the flash-decoding kernel (`split`, then `combine` when a query's
//! keys are cut into several splits), which also tiles a prefill's query tokens; otherwise the
//! portable one-workgroup-per-(head, token) kernel (`main`).

use crate::gpu::{Gpu, Recorder};
use crate::ops::mla_attn::{splits, SPLIT_MAX_TOKENS};
use crate::ops::{repeat_lines, Key, Kernels, Rows};

/// Query/KV head shape of grouped-query attention: `heads` query heads share `kv_heads` K/V heads
/// (heads % kv_heads == 0; query head h uses K/V head h / (heads / kv_heads)).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    group: u32,
    ctx: u32,
    pos0: u32,
    n_tok: u32,
    scale: f32,
    split_len: u32,
    n_splits: u32,
    q_off: u32,
    q_stride: u32,
    o_off: u32,
    o_stride: u32,
    _pad: [u32; 2],
}

/// The largest head the portable kernel takes (its workgroup holds one q row).
pub const MAX_HEAD_DIM: usize = 256;
/// Most cache-row words per lane the split kernel holds (`WMAX`).
const WMAX: usize = 16;
/// Most (token, head) states per split workgroup, and most heads among them.
const MAX_STATES: usize = 16;
const MAX_HG: usize = 8;

pub(super) const KEY: Key = Key::plain("gqa_attn");

/// shaders/gqa_attn.wgsl with the shared attention helpers: the portable and combine kernels.
pub(super) fn base() -> String {
    super::with_attn(include_str!("../../shaders/gqa_attn.wgsl"))
}

/// gqa_attn_split.wgsl expanded for `hg` heads × `tt` query tokens per workgroup (see the
/// comment there): each state gets its own named variables.
pub(super) fn split_source(hg: u32, tt: u32) -> String {
    let states = repeat_lines(include_str!("../../shaders/gqa_attn_split.wgsl"), "$g", hg * tt, |l, g| {
        l.replace("$g", &g.to_string()).replace("$t", &(g / hg).to_string()).replace("$h", &(g % hg).to_string())
    });
    format!("{}\nconst HG: u32 = {hg}u;\nconst TT: u32 = {tt}u;\n{states}", base())
}

/// The split pipeline for `wpl` words per lane, `hg` heads and `tt` tokens per workgroup, and
/// the combine pipeline; `None` when either does not build on this adapter (the caller then
/// uses the portable kernel).
fn split_pipelines(k: &Kernels, gpu: &Gpu, wpl: u32, hg: u32, tt: u32) -> Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)> {
    let lanes = k.tune.lanes;
    let split = k.pipeline(gpu, Key { entry: "split", variant: wpl | hg << 8 | tt << 16, ..KEY }, || {
        (split_source(hg, tt), vec![("LANES", lanes as f64), ("WPL", wpl as f64)])
    });
    let combine = k.pipeline(gpu, Key { entry: "combine", ..KEY }, || (base(), vec![]));
    Some((split.ok()?, combine.ok()?))
}

/// One layer's cache buffer is `[2][ctx][kv_heads][head_dim]` f32: the K plane (rows 0..ctx) then the V plane.
/// Queries `q` `[n_tok][heads·head_dim]` (contiguous Rows, already normed and roped) for positions
/// `pos0 .. pos0+n_tok` attend to cache positions `0 ..= their own`; `out` `[n_tok][heads·head_dim]`.
/// `scale` multiplies q·k (1/sqrt(head_dim) for Qwen3).
///
/// `q` and `out` may also be strided (e.g. the q columns of a fused qkv row); the fast kernel
/// wants `q`'s offset and stride in whole 16-byte words. `head_dim` ≤ [`MAX_HEAD_DIM`].
#[allow(clippy::too_many_arguments)]
pub fn run(rec: &mut Recorder, k: &Kernels, s: Shape, scale: f32, pos0: usize, ctx: usize, q: Rows, cache: &wgpu::Buffer, out: Rows) {
    let n_tok = q.rows;
    let (hd, group) = (s.head_dim, s.heads / s.kv_heads);
    debug_assert!(s.heads.is_multiple_of(s.kv_heads) && hd <= MAX_HEAD_DIM && pos0 + n_tok <= ctx);
    debug_assert!(q.width == s.heads * hd && out.width == q.width && out.rows == n_tok);
    let mut p = Params {
        heads: s.heads as u32,
        kv_heads: s.kv_heads as u32,
        head_dim: hd as u32,
        group: group as u32,
        ctx: ctx as u32,
        pos0: pos0 as u32,
        n_tok: n_tok as u32,
        scale,
        split_len: 0,
        n_splits: 1,
        q_off: q.off as u32,
        q_stride: q.stride as u32,
        o_off: out.off as u32,
        o_stride: out.stride as u32,
        _pad: [0; 2],
    };
    let wpl = (hd / 4).div_ceil(k.tune.lanes as usize);
    let aligned = hd.is_multiple_of(4) && q.off.is_multiple_of(4) && q.stride.is_multiple_of(4) && wpl <= WMAX;
    // A workgroup serves up to MAX_HG heads of one K/V group; a prefill also gives it several
    // query tokens (tune.attn_tt), which share every K/V row it loads.
    let hg = group.min(MAX_HG);
    let tt = if n_tok >= SPLIT_MAX_TOKENS { (k.tune.attn_tt as usize).min(MAX_STATES / hg).max(1) } else { 1 };
    let pipes = if k.tune.subgroups && aligned { split_pipelines(k, rec.gpu(), wpl as u32, hg as u32, tt as u32) } else { None };
    let Some((split, combine)) = pipes else {
        rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[q.buf, cache, out.buf], [s.heads as u32, n_tok as u32, 1]);
        return;
    };
    let (split_len, n_splits) = splits(pos0, n_tok);
    p.split_len = split_len as u32;
    p.n_splits = n_splits as u32;
    let part = if n_splits > 1 { k.scratch(rec.gpu(), "attention partials", (n_tok * n_splits * s.heads * (hd + 2) * 4) as u64) } else { k.dummy.clone() };
    let groups = [n_splits as u32, (s.kv_heads * group.div_ceil(hg)) as u32, n_tok.div_ceil(tt) as u32];
    rec.dispatch_bound(Ok(split), &p, &[(3, out.buf), (4, &part), (5, q.buf), (6, cache)], groups);
    if n_splits > 1 {
        rec.dispatch_bound(Ok(combine), &p, &[(3, out.buf), (4, &part)], [s.heads as u32, n_tok as u32, 1]);
    }
}

/// CPU reference (f64 accumulation), same layouts; `cache` is the whole `[2][ctx][kv_heads][head_dim]` buffer.
pub fn reference(s: Shape, scale: f32, pos0: usize, n_tok: usize, ctx: usize, q: &[f32], cache: &[f32]) -> Vec<f32> {
    let hd = s.head_dim;
    let group = s.heads / s.kv_heads;
    let row = |plane: usize, pos: usize, kvh: usize| &cache[((plane * ctx + pos) * s.kv_heads + kvh) * hd..][..hd];
    let mut out = vec![0.0; n_tok * s.heads * hd];
    for t in 0..n_tok {
        for h in 0..s.heads {
            let kvh = h / group;
            let qh = &q[(t * s.heads + h) * hd..][..hd];
            let n = pos0 + t + 1;
            let scores: Vec<f64> = (0..n).map(|pos| qh.iter().zip(row(0, pos, kvh)).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() * scale as f64).collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|v| (v - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            let o = &mut out[(t * s.heads + h) * hd..][..hd];
            for (c, o) in o.iter_mut().enumerate() {
                *o = ((0..n).map(|pos| e[pos] * row(1, pos, kvh)[c] as f64).sum::<f64>() / sum) as f32;
            }
        }
    }
    out
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { heads: u32, kv_heads: u32, head_dim: u32, group: u32, ctx: u32, pos0: u32, n_tok: u32, scale: f32, split_len: u32, n_splits: u32, q_off: u32, q_stride: u32, o_off: u32, o_stride: u32, _pad: [u32; 2] })
}
