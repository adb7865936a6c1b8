//! `shaders/mla_attn.wgsl`: causal attention over the latent cache (absorbed MLA). With
//! subgroups, the flash-decoding kernel (`split`, then `combine` when a query's keys are cut
//! into several splits); otherwise the portable one-workgroup-per-head kernel (`main`).

use crate::gpu::{Gpu, Recorder};
use crate::ops::mla_absorb::Heads;
use crate::ops::{repeat_lines, Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    heads: u32,
    kvl: u32,
    rope: u32,
    q_stride: u32,
    qk: u32,
    nope: u32,
    pos0: u32,
    scale: f32,
    n_tok: u32,
    split_len: u32,
    n_splits: u32,
    rope_q: u32,
}

/// Heads per workgroup of `split`, and the most cache-row words per lane it holds (`WMAX`).
const HG: usize = 4;
const WMAX: usize = 24;
/// Query tokens from which every query gets a single split (enough workgroups already).
pub(super) const SPLIT_MAX_TOKENS: usize = 4;

/// How flash-decoding cuts the keys of `n_tok` queries at positions `pos0..`: (split_len,
/// n_splits). A short decode cuts them into splits so that several workgroups share them.
pub(super) fn splits(pos0: usize, n_tok: usize) -> (usize, usize) {
    let keys = pos0 + n_tok;
    let split_len = if n_tok >= SPLIT_MAX_TOKENS { keys } else { keys.div_ceil(16).max(64) };
    (split_len, keys.div_ceil(split_len))
}

/// Query tokens per `split` workgroup in a prefill (a decode step has one).
pub const PREFILL_TT: u32 = 2;

pub(super) const KEY: Key = Key::plain("mla_attn");

/// The split pipeline for (cache words, c_kv words) per lane and `tt` tokens per workgroup,
/// and the combine pipeline; `None` when either does not build on this adapter (the caller
/// then uses the portable kernel).
fn split_pipelines(k: &Kernels, gpu: &Gpu, wpl: u32, vpl: u32, tt: u32) -> Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)> {
    let lanes = k.tune.lanes;
    let split = k.pipeline(gpu, Key { family: "mla_attn", entry: "split", format: None, variant: wpl | vpl << 8 | tt << 16 }, || {
        (split_source(tt), vec![("LANES", lanes as f64), ("WPL", wpl as f64), ("VPL", vpl as f64)])
    });
    let combine = k.pipeline(gpu, Key { entry: "combine", ..KEY }, || (base(), vec![]));
    Some((split.ok()?, combine.ok()?))
}

/// shaders/mla_attn.wgsl with the shared attention helpers: the portable and combine kernels.
pub(super) fn base() -> String {
    super::with_attn(include_str!("../../shaders/mla_attn.wgsl"))
}

/// mla_attn_split.wgsl expanded for `tt` query tokens per workgroup (see the comment there):
/// each of the 4·tt (token, head) states gets its own named variables.
pub(super) fn split_source(tt: u32) -> String {
    let states = repeat_lines(include_str!("../../shaders/mla_attn_split.wgsl"), "$g", 4 * tt, |l, g| {
        l.replace("$g", &g.to_string()).replace("$t", &(g / 4).to_string()).replace("$h", &(g % 4).to_string())
    });
    format!("{}\nconst TT: u32 = {tt}u;\n{states}", base())
}

/// Queries for positions `pos0 .. pos0 + n_tok` attend to cache rows `0 ..= their position`.
/// With `rope_q` (the table of [`rope::table`](crate::ops::rope::table)), q_pe in `q` is
/// unrotated and the kernels rotate it as they read it (DeepSeek's interleaved pairs): the
/// same as [`rope::run`](crate::ops::rope::run) on q first, one dispatch fewer.
#[allow(clippy::too_many_arguments)]
pub fn run(rec: &mut Recorder, k: &Kernels, h: Heads, scale: f32, pos0: usize, q_lat: Rows, q: Rows, cache: &wgpu::Buffer, o_lat: Rows, rope_q: Option<&wgpu::Buffer>) {
    let n_tok = q.rows;
    debug_assert!(q.off == 0 && q.contiguous() && q_lat.off == 0 && q_lat.contiguous() && o_lat.off == 0 && o_lat.contiguous() && q_lat.rows == n_tok * h.heads);
    let (q_lat, q, o_lat) = (q_lat.buf, q.buf, o_lat.buf);
    let mut p = Params {
        heads: h.heads as u32,
        kvl: h.kvl as u32,
        rope: h.rope as u32,
        q_stride: (h.heads * (h.nope + h.rope)) as u32,
        qk: (h.nope + h.rope) as u32,
        nope: h.nope as u32,
        pos0: pos0 as u32,
        scale,
        n_tok: n_tok as u32,
        split_len: 0,
        n_splits: 1,
        rope_q: rope_q.is_some() as u32,
    };
    // without RoPE the table binding is never read: q stands in (the dummy buffer may be
    // bound writable as `part`, and one dispatch cannot use a buffer both ways)
    let table = rope_q.unwrap_or(q);
    let lanes = k.tune.lanes as usize;
    let cw = (h.kvl + h.rope) / 4;
    let (wpl, vpl) = (cw.div_ceil(lanes), h.kvl / 4 / lanes);
    let aligned = h.kvl % (4 * lanes) == 0 && h.rope % 4 == 0 && h.nope % 4 == 0 && wpl <= WMAX && vpl >= 1;
    // A decode step cuts its keys into splits (one token per workgroup); a prefill gives each
    // workgroup PREFILL_TT tokens, which share every key row it loads.
    let tt = if n_tok >= SPLIT_MAX_TOKENS { k.tune.attn_tt } else { 1 };
    let pipes = if k.tune.subgroups && aligned { split_pipelines(k, rec.gpu(), wpl as u32, vpl as u32, tt) } else { None };
    let Some((split, combine)) = pipes else {
        rec.dispatch_bound(k.plain(rec.gpu(), KEY), &p, &[(1, q_lat), (2, q), (3, cache), (4, o_lat), (9, table)], [h.heads as u32, n_tok as u32, 1]);
        return;
    };
    let (split_len, n_splits) = splits(pos0, n_tok);
    p.split_len = split_len as u32;
    p.n_splits = n_splits as u32;
    let part = if n_splits > 1 { k.scratch(rec.gpu(), "attention partials", (n_tok * n_splits * h.heads * (h.kvl + 2) * 4) as u64) } else { k.dummy.clone() };
    let groups = [n_splits as u32, h.heads.div_ceil(HG) as u32, (n_tok as u32).div_ceil(tt)];
    rec.dispatch_bound(Ok(split), &p, &[(4, o_lat), (5, &part), (6, q_lat), (7, q), (8, cache), (9, table)], groups);
    if n_splits > 1 {
        rec.dispatch_bound(Ok(combine), &p, &[(4, o_lat), (5, &part)], [h.heads as u32, n_tok as u32, 1]);
    }
}

pub fn reference(h: Heads, scale: f32, pos0: usize, n_tok: usize, q_lat: &[f32], q: &[f32], cache: &[f32]) -> Vec<f32> {
    let cd = h.kvl + h.rope;
    let qk = h.nope + h.rope;
    let mut out = vec![0.0; n_tok * h.heads * h.kvl];
    for t in 0..n_tok {
        for hh in 0..h.heads {
            let ql = &q_lat[(t * h.heads + hh) * h.kvl..][..h.kvl];
            let qp = &q[t * h.heads * qk + hh * qk + h.nope..][..h.rope];
            let n = pos0 + t + 1;
            let scores: Vec<f64> = (0..n)
                .map(|s| {
                    let row = &cache[s * cd..][..cd];
                    let d: f64 = ql.iter().zip(row).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()
                        + qp.iter().zip(&row[h.kvl..]).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
                    d * scale as f64
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..h.kvl {
                out[(t * h.heads + hh) * h.kvl + c] = (0..n).map(|s| e[s] / sum * cache[s * cd + c] as f64).sum::<f64>() as f32;
            }
        }
    }
    out
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { heads: u32, kvl: u32, rope: u32, q_stride: u32, qk: u32, nope: u32, pos0: u32, scale: f32, n_tok: u32, split_len: u32, n_splits: u32, rope_q: u32 })
}
