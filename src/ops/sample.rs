//! `shaders/sample.wgsl`: next-token choice on the GPU (a grammar's token mask, penalty,
//! temperature, top-k, top-p, min-p, inverse-CDF draw with a host-provided uniform).

use crate::gpu::Recorder;
use crate::ops::{Key, Kernels, Rows};

/// The sampler's arguments: a validated [`crate::sampling::SampleParams`] (the only way to
/// build one besides [`Filter::greedy`], so the kernel never sees an invalid setting).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Filter {
    /// 0 = greedy
    pub(crate) temperature: f32,
    /// 0 = off
    pub(crate) top_k: usize,
    /// 1 = off
    pub(crate) top_p: f32,
    /// 0 = off
    pub(crate) min_p: f32,
    /// 1 = off
    pub(crate) repeat_penalty: f32,
}

impl Filter {
    pub fn greedy() -> Self {
        Filter { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0 }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    vocab: u32,
    n_pen: u32,
    top_k: u32,
    out_off: u32,
    temperature: f32,
    top_p: f32,
    min_p: f32,
    penalty: f32,
    u: f32,
    l_off: u32,
    masked: u32,
    _pad: u32,
}

pub(super) const KEY: Key = Key::plain("sample");

/// The next token from one row of `logits` (`width` = vocab): the token mask (when
/// `mask.width` > 0: bit `i % 32` of u32 `mask[i / 32]` set = token `i` allowed; the others
/// become -inf), repetition penalty on the `penalty.width` unique ids of `penalty` (u32),
/// temperature, top-k/top-p/min-p and a draw with the uniform `u`. Writes (id, threshold
/// key, survivors, 0) at `out.off` (u32).
#[allow(clippy::too_many_arguments)]
pub fn run(rec: &mut Recorder, k: &Kernels, s: &Filter, u: f32, logits: Rows, penalty: Rows, mask: Rows, out: Rows) {
    debug_assert!(logits.rows == 1 && out.width >= 4);
    debug_assert!(mask.width == 0 || (mask.off == 0 && mask.width >= logits.width.div_ceil(32)));
    let p = Params {
        vocab: logits.width as u32,
        n_pen: penalty.width as u32,
        top_k: s.top_k.min(u32::MAX as usize) as u32,
        out_off: out.off as u32,
        temperature: s.temperature,
        top_p: s.top_p,
        min_p: s.min_p,
        penalty: s.repeat_penalty,
        u,
        l_off: logits.off as u32,
        masked: (mask.width > 0) as u32,
        _pad: 0,
    };
    rec.dispatch(k.plain(rec.gpu(), KEY), &p, &[logits.buf, penalty.buf, out.buf, mask.buf], [1, 1, 1]);
}

/// The order-preserving u32 key of an f32 (as the shader computes it).
pub fn key(v: f32) -> u32 {
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b ^ 0x8000_0000
    }
}

/// CPU reference with transformers' semantics (sorting, cumulative sums): the processed
/// logits and which tokens survive top-k, top-p and min-p.
pub fn reference(logits: &[f32], s: &Filter, pen: &[u32]) -> (Vec<f32>, Vec<bool>) {
    let mut l = logits.to_vec();
    for &id in pen {
        let v = l[id as usize];
        l[id as usize] = if v > 0.0 { v / s.repeat_penalty } else { v * s.repeat_penalty };
    }
    let v: Vec<f32> = l.iter().map(|x| x / s.temperature).collect();
    let mut keep = vec![true; v.len()];
    if s.top_k > 0 && s.top_k < v.len() {
        let mut sorted = v.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[s.top_k - 1];
        for (i, x) in v.iter().enumerate() {
            keep[i] &= *x >= kth;
        }
    }
    if s.top_p < 1.0 {
        let m = v.iter().cloned().fold(f32::MIN, f32::max);
        let mut idx: Vec<usize> = (0..v.len()).filter(|&i| keep[i]).collect();
        idx.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
        let z: f64 = idx.iter().map(|&i| ((v[i] - m) as f64).exp()).sum();
        let mut cum = 0.0;
        for &i in &idx {
            cum += ((v[i] - m) as f64).exp() / z;
            if cum <= 1.0 - s.top_p as f64 && i != *idx.last().expect("non-empty") {
                keep[i] = false;
            }
        }
    }
    if s.min_p > 0.0 {
        let m = v.iter().cloned().fold(f32::MIN, f32::max);
        for (i, x) in v.iter().enumerate() {
            keep[i] &= ((x - m) as f64).exp() >= s.min_p as f64;
        }
    }
    (v, keep)
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { vocab: u32, n_pen: u32, top_k: u32, out_off: u32, temperature: f32, top_p: f32, min_p: f32, penalty: f32, u: f32, l_off: u32, masked: u32, _pad: u32 })
}
