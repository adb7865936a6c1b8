//! What a forward pass costs: the weight bytes one decode token reads and the FLOPs of a
//! prefill (bench reports them against the measured roofline).

use super::{Ffn, Mlp, Model, QProj};
use crate::tensor::Matrix;

fn params(w: &Matrix) -> f64 {
    (w.n_mats * w.rows * w.cols) as f64
}

impl Model {
    /// Weight bytes one decode token reads: every dense matrix and norm, one embedding row, the
    /// head, and `top_k` of each layer's routed experts.
    pub fn decode_weight_bytes(&self) -> u64 {
        let (m, c) = (self, &self.cfg);
        let f32s = |n: usize| (n * 4) as u64;
        let mlp = |x: &Mlp| x.gate.bytes() + x.up.bytes() + x.down.bytes();
        let mut b = m.embed.bytes() / c.vocab as u64 + f32s(c.hidden) + m.lm_head.bytes();
        for l in &m.layers {
            b += f32s(2 * c.hidden + c.kv_lora);
            b += match &l.attn.q {
                QProj::Direct(w) => w.bytes(),
                QProj::LowRank { a, b, .. } => a.bytes() + b.bytes() + f32s(a.rows),
            };
            b += l.attn.kv_a.bytes() + l.attn.kv_b.bytes() + l.attn.o.bytes();
            b += match &l.ffn {
                Ffn::Dense(x) => mlp(x),
                Ffn::Moe(moe) => {
                    let per_expert = mlp(&moe.experts) / moe.experts.gate.n_mats as u64;
                    moe.router.bytes() + f32s(moe.gate.n_exp) + per_expert * moe.gate.k as u64 + moe.shared.as_ref().map_or(0, mlp)
                }
            };
        }
        b
    }

    /// Floating-point operations of a prefill of `n` tokens: 2 per multiply-add of every active
    /// weight (head once, for the last token), plus causal attention over the latent cache.
    pub fn prefill_flop(&self, n: usize) -> f64 {
        let (m, c) = (self, &self.cfg);
        let mut per_tok = 0.0;
        for l in &m.layers {
            per_tok += match &l.attn.q {
                QProj::Direct(w) => params(w),
                QProj::LowRank { a, b, .. } => params(a) + params(b),
            };
            per_tok += params(&l.attn.kv_a) + l.attn.kv_b.params() as f64 + params(&l.attn.o);
            let mlp = |x: &Mlp| params(&x.gate) + params(&x.up) + params(&x.down);
            per_tok += match &l.ffn {
                Ffn::Dense(x) => mlp(x),
                Ffn::Moe(moe) => params(&moe.router) + mlp(&moe.experts) * moe.gate.k as f64 / moe.gate.n_exp as f64 + moe.shared.as_ref().map_or(0.0, mlp),
            };
        }
        // Query t attends to t + 1 rows: scores over kvl + rope, values over kvl, per head.
        let pairs = (n * (n + 1) / 2) as f64;
        let attn = pairs * (c.n_heads * (2 * c.cache_dim() + 2 * c.kv_lora) * c.n_layers) as f64;
        2.0 * per_tok * n as f64 + 2.0 * params(&m.lm_head) + attn
    }
}
