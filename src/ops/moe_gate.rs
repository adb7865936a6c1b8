//! `shaders/moe_gate.wgsl`: the fused router (scores, bias, groups, top-k, normalise, scale).

use crate::config::{Moe, Scoring, TopK};
use crate::gpu::Recorder;
use crate::ops::{Key, Kernels, Rows};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_tok: u32,
    n_exp: u32,
    k: u32,
    n_group: u32,
    topk_group: u32,
    softmax: u32,
    method: u32,
    norm: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Gate settings as the kernel applies them (transformers' V2 and V3 semantics folded in).
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    pub n_exp: usize,
    pub k: usize,
    pub n_group: usize,
    pub topk_group: usize,
    pub scoring: Scoring,
    pub topk: TopK,
    pub norm: bool,
    pub scale: f32,
}

impl Gate {
    pub fn from_config(m: &Moe, family: crate::config::Family) -> Self {
        let (norm, scale) = match family {
            // V3: normalise when asked, then always scale.
            crate::config::Family::V3 => (m.norm_topk_prob, m.routed_scaling_factor),
            // V2 in transformers ignores norm_topk_prob (every released V2 sets it false) and
            // always scales.
            // (Qwen3 is dense: the config refuses MoE keys for it)
            crate::config::Family::V2 | crate::config::Family::Qwen3 => (false, m.routed_scaling_factor),
        };
        Gate { n_exp: m.n_routed, k: m.top_k, n_group: m.n_group, topk_group: m.topk_group, scoring: m.scoring, topk: m.topk, norm, scale }
    }
}

pub(super) const KEY: Key = Key::plain("moe_gate");

/// The router's `logits` `[n_tok][n_exp]` (+ correction `bias` `[n_exp]`; the logits are
/// overwritten with scores) → each token's experts `ids` and gate weights `wts`, both
/// `[n_tok][k]`, contiguous.
pub fn run(rec: &mut Recorder, k: &Kernels, g: &Gate, bias: &wgpu::Buffer, logits: Rows, ids: Rows, wts: Rows) {
    let n_tok = logits.rows;
    debug_assert!(logits.contiguous() && logits.off == 0 && logits.width == g.n_exp && ids.off == 0 && wts.off == 0 && ids.width == g.k && wts.width == g.k);
    let p = Params {
        n_tok: n_tok as u32,
        n_exp: g.n_exp as u32,
        k: g.k as u32,
        n_group: g.n_group as u32,
        topk_group: g.topk_group as u32,
        softmax: (g.scoring == Scoring::Softmax) as u32,
        method: match g.topk {
            TopK::NoAuxTc => 0,
            TopK::Greedy => 1,
            TopK::GroupLimitedGreedy => 2,
        },
        norm: g.norm as u32,
        scale: g.scale,
        _pad: [0; 3],
    };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[logits.buf, bias, ids.buf, wts.buf], [(n_tok as u32).div_ceil(64), 1, 1]);
}

/// CPU reference for one token: (ids in choice order, weights).
pub fn reference(g: &Gate, logits: &[f32], bias: &[f32]) -> (Vec<u32>, Vec<f32>) {
    let s: Vec<f32> = match g.scoring {
        Scoring::Sigmoid => logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect(),
        Scoring::Softmax => {
            let m = logits.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = logits.iter().map(|l| (l - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            e.iter().map(|v| v / sum).collect()
        }
    };
    let biased = g.topk == TopK::NoAuxTc;
    let c: Vec<f32> = (0..g.n_exp).map(|e| s[e] + if biased { bias[e] } else { 0.0 }).collect();
    let per = g.n_exp / g.n_group;
    let mut keep = vec![true; g.n_group];
    if g.topk != TopK::Greedy && g.n_group > 1 {
        let gs: Vec<f32> = (0..g.n_group)
            .map(|gi| {
                let mut v: Vec<f32> = c[gi * per..(gi + 1) * per].to_vec();
                v.sort_by(|a, b| b.total_cmp(a));
                if biased {
                    v[0] + v[1]
                } else {
                    v[0]
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..g.n_group).collect();
        order.sort_by(|a, b| gs[*b].total_cmp(&gs[*a]));
        keep = vec![false; g.n_group];
        for &gi in &order[..g.topk_group] {
            keep[gi] = true;
        }
    }
    let dropped = if biased { f32::NEG_INFINITY } else { 0.0 };
    let masked: Vec<f32> = (0..g.n_exp).map(|e| if keep[e / per] { c[e] } else { dropped }).collect();
    let mut order: Vec<usize> = (0..g.n_exp).collect();
    order.sort_by(|a, b| masked[*b].total_cmp(&masked[*a]));
    let ids: Vec<u32> = order[..g.k].iter().map(|&e| e as u32).collect();
    let sum: f32 = ids.iter().map(|&e| s[e as usize]).sum();
    let w = ids.iter().map(|&e| if g.norm { s[e as usize] / (sum + 1e-20) } else { s[e as usize] } * g.scale).collect();
    (ids, w)
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n_tok: u32, n_exp: u32, k: u32, n_group: u32, topk_group: u32, softmax: u32, method: u32, norm: u32, scale: f32, _pad: [u32; 3] })
}
