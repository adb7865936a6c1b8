//! What a forward pass costs: the weight bytes one decode token reads and the FLOPs of a
//! prefill (bench reports them against the measured roofline).

use super::{Attn, Ffn, Mlp, Model};
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
            b += f32s(2 * c.hidden);
            let (mats, norm) = l.attn.matrices();
            b += mats.iter().map(|w| w.bytes()).sum::<u64>() + f32s(norm);
            b += match &l.attn {
                Attn::Mla(a) => f32s(c.kv_lora) + a.kv_b.bytes(),
                Attn::Gqa(_) => f32s(2 * c.qk_head_dim()),
            };
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
            per_tok += l.attn.matrices().0.into_iter().map(params).sum::<f64>();
            if let Attn::Mla(a) = &l.attn {
                per_tok += a.kv_b.params() as f64;
            }
            let mlp = |x: &Mlp| params(&x.gate) + params(&x.up) + params(&x.down);
            per_tok += match &l.ffn {
                Ffn::Dense(x) => mlp(x),
                Ffn::Moe(moe) => params(&moe.router) + mlp(&moe.experts) * moe.gate.k as f64 / moe.gate.n_exp as f64 + moe.shared.as_ref().map_or(0.0, mlp),
            };
        }
        // Query t attends to t + 1 rows, per head: MLA scores over kvl + rope and sums values
        // over kvl; GQA scores and sums over head_dim each.
        let pairs = (n * (n + 1) / 2) as f64;
        let per_pair = match c.attention {
            crate::config::Attention::Mla => 2 * c.cache_dim() + 2 * c.kv_lora,
            crate::config::Attention::Gqa { head_dim, .. } => 4 * head_dim,
        };
        let attn = pairs * (c.n_heads * per_pair * c.n_layers) as f64;
        2.0 * per_tok * n as f64 + 2.0 * params(&m.lm_head) + attn
    }
}
