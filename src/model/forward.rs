//! The forward pass: token ids in at positions `pos0..`, logits and routing out. Each
//! internal chunk is recorded into one command buffer, submitted once, and read back once
//! (logits + routing ids of every MoE layer); nothing inside a layer waits on the CPU.

use super::{Ffn, KvCache, LoadError, Mlp, Model, QProj};
use crate::gpu::Recorder;
use crate::ops::matmul::Args;
use crate::ops::mla_absorb::Heads;
use crate::ops::sample::Filter;
use crate::ops::{copy_rows, embed, matmul, mla_absorb, mla_attn, moe_combine, moe_gate, moe_group, rmsnorm, rope, sample};

/// Choose the next token on the GPU after the last position (only its id is read back).
pub struct Sample<'a> {
    pub filter: Filter,
    /// uniform draw in [0, 1) from the host's seeded generator
    pub u: f32,
    /// unique ids the repetition penalty applies to
    pub penalty_ids: &'a [u32],
}

/// transformers builds `q_a_layernorm` and `kv_a_layernorm` without passing `rms_norm_eps`,
/// so they always use the RMSNorm default.
const LORA_NORM_EPS: f32 = 1e-6;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogitsMode {
    /// logits at every position fed
    All,
    /// only after the last position (generation)
    Last,
    /// none (prefill of a prompt whose continuation comes later)
    None,
}

pub struct ForwardOut {
    /// `[positions][vocab]` per the mode (`Last`: one row)
    pub logits: Vec<f32>,
    /// per MoE layer (in `Model::moe_layers` order), `[positions][top_k]` expert ids in choice order
    pub routing: Vec<Vec<u32>>,
    /// per MoE layer, `[positions][top_k]` gate weights
    pub gate_weights: Vec<Vec<f32>>,
    /// the sampled next token, when a [`Sample`] was given
    pub token: Option<u32>,
}

impl Model {
    /// Feed `ids` at cache positions `cache.len ..`, appending to the cache.
    pub fn forward(&self, cache: &mut KvCache, ids: &[u32], mode: LogitsMode) -> Result<ForwardOut, LoadError> {
        self.forward_sampled(cache, ids, mode, None)
    }

    /// [`Model::forward`], then (with `sample`) pick the next token on the GPU from the last
    /// position's logits; `mode` only says which logits to read back besides.
    pub fn forward_sampled(&self, cache: &mut KvCache, ids: &[u32], mode: LogitsMode, sample: Option<&Sample>) -> Result<ForwardOut, LoadError> {
        if ids.is_empty() {
            return Err(LoadError::NoIds);
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab) {
            return Err(LoadError::IdOutOfVocab { id: *bad, vocab: self.cfg.vocab });
        }
        if cache.len + ids.len() > cache.ctx {
            return Err(LoadError::ContextFull { cached: cache.len, new: ids.len(), ctx: cache.ctx });
        }
        let n_moe = self.act.route_ids.len();
        if let Some(s) = sample {
            if s.penalty_ids.len() > self.max_ctx {
                return Err(LoadError::PenaltyIds { n: s.penalty_ids.len(), max: self.max_ctx });
            }
        }
        let mut out = ForwardOut { logits: Vec::new(), routing: vec![Vec::new(); n_moe], gate_weights: vec![Vec::new(); n_moe], token: None };
        let chunks: Vec<&[u32]> = ids.chunks(self.max_chunk).collect();
        let last = chunks.len() - 1;
        for (ci, chunk) in chunks.into_iter().enumerate() {
            let m = match mode {
                LogitsMode::Last if ci != last => LogitsMode::None,
                m => m,
            };
            self.forward_chunk(cache, chunk, m, if ci == last { sample } else { None }, &mut out)?;
        }
        Ok(out)
    }

    fn forward_chunk(&self, cache: &mut KvCache, ids: &[u32], mode: LogitsMode, sample: Option<&Sample>, out: &mut ForwardOut) -> Result<(), LoadError> {
        let gpu = &*self.gpu;
        let (k, a, c) = (&self.kernels, &self.act, &self.cfg);
        let t = ids.len();
        let pos0 = cache.len;
        let h = c.hidden;
        let cd = c.cache_dim();
        let heads = Heads { heads: c.n_heads, nope: c.nope_dim, rope: c.rope_dim, v: c.v_dim, kvl: c.kv_lora };
        let qk = c.qk_head_dim();
        gpu.queue.write_buffer(&a.ids, 0, bytemuck::cast_slice(ids));

        let mut rec = Recorder::new(gpu);
        embed::dispatch(&mut rec, k, &self.embed, &a.ids, &a.x, t);
        let norm_rows = rmsnorm::Params::rows(h, t, c.rms_norm_eps);
        let mut moe_i = 0;
        for (li, layer) in self.layers.iter().enumerate() {
            let at = &layer.attn;
            // Attention block.
            rmsnorm::dispatch(&mut rec, k, &norm_rows, &layer.input_layernorm, &a.x, &a.xb);
            match &at.q {
                QProj::Direct(w) => matmul::dispatch(&mut rec, k, w, &Args::dense(&a.xb, &a.q, w, t)),
                QProj::LowRank { a: qa, norm, b } => {
                    matmul::dispatch(&mut rec, k, qa, &Args::dense(&a.xb, &a.qa, qa, t));
                    rmsnorm::dispatch(&mut rec, k, &rmsnorm::Params::rows(qa.rows, t, LORA_NORM_EPS), norm, &a.qa, &a.qa_n);
                    matmul::dispatch(&mut rec, k, b, &Args::dense(&a.qa_n, &a.q, b, t));
                }
            }
            matmul::dispatch(&mut rec, k, &at.kv_a, &Args::dense(&a.xb, &a.kv, &at.kv_a, t));
            let cache_l = &cache.layers[li];
            // c_kv = RMSNorm(kv[..kvl]) straight into the cache rows pos0.., then k_pe.
            let kv_norm = rmsnorm::Params {
                n: c.kv_lora as u32,
                rows: t as u32,
                x_off: 0,
                x_stride: cd as u32,
                o_off: (pos0 * cd) as u32,
                o_stride: cd as u32,
                eps: LORA_NORM_EPS,
                _pad: 0,
            };
            rmsnorm::dispatch(&mut rec, k, &kv_norm, &at.kv_a_norm, &a.kv, cache_l);
            let kpe = copy_rows::Params {
                n: c.rope_dim as u32,
                rows: t as u32,
                s_off: c.kv_lora as u32,
                s_stride: cd as u32,
                d_off: (pos0 * cd + c.kv_lora) as u32,
                d_stride: cd as u32,
                _pad: [0; 2],
            };
            copy_rows::dispatch(&mut rec, k, &kpe, &a.kv, cache_l);
            let half = (c.rope_dim / 2) as u32;
            let rope_k = rope::Params { n_tok: t as u32, heads: 1, half_dim: half, row_stride: cd as u32, head_stride: 0, off: (pos0 * cd + c.kv_lora) as u32, pos0: pos0 as u32, _pad: 0 };
            rope::dispatch(&mut rec, k, &rope_k, &self.rope_table, cache_l);
            let rope_q = rope::Params {
                n_tok: t as u32,
                heads: c.n_heads as u32,
                half_dim: half,
                row_stride: (c.n_heads * qk) as u32,
                head_stride: qk as u32,
                off: c.nope_dim as u32,
                pos0: pos0 as u32,
                _pad: 0,
            };
            rope::dispatch(&mut rec, k, &rope_q, &self.rope_table, &a.q);
            mla_absorb::q_absorb(&mut rec, k, &at.kv_b, heads, &a.q, &a.q_lat, t);
            mla_attn::dispatch(&mut rec, k, heads, c.softmax_scale(), pos0, t, &a.q_lat, &a.q, cache_l, &a.o_lat);
            mla_absorb::v_up(&mut rec, k, &at.kv_b, heads, &a.o_lat, &a.o, t);
            matmul::dispatch(&mut rec, k, &at.o, &Args { accum: true, ..Args::dense(&a.o, &a.x, &at.o, t) });

            // Feed-forward block.
            rmsnorm::dispatch(&mut rec, k, &norm_rows, &layer.post_attention_layernorm, &a.x, &a.xb);
            match &layer.ffn {
                Ffn::Dense(mlp) => self.mlp(&mut rec, mlp, t),
                Ffn::Moe(moe) => {
                    let (ids_l, wts_l) = (&a.route_ids[moe_i], &a.route_wts[moe_i]);
                    moe_i += 1;
                    let top = moe.gate.k;
                    matmul::dispatch(&mut rec, k, &moe.router, &Args::dense(&a.xb, &a.router, &moe.router, t));
                    moe_gate::dispatch(&mut rec, k, &moe.gate, t, &a.router, &moe.bias, ids_l, wts_l);
                    // Every (token, slot) item runs its own expert, chosen on the GPU.
                    let w = moe.experts.gate.rows;
                    let routed = |x, x_stride, x_slot_stride, y, y_stride| Args {
                        x,
                        x_off: 0,
                        x_stride,
                        x_slot_stride,
                        y,
                        y_off: 0,
                        y_stride,
                        n_tok: t,
                        slots: top,
                        ids: Some(ids_l),
                        accum: false,
                    };
                    // Few items: each runs its expert alone (matvec). Many: the items are listed
                    // per expert on the GPU and each expert's batch runs as one gemm.
                    let n_exp = moe.experts.gate.n_mats;
                    let groups = (t * top > matmul::MATVEC_MAX_ROUTED && n_exp <= moe_group::MAX_EXPERTS).then(|| {
                        let buf = k.groups_buffer(gpu, (moe_group::out_len(self.max_chunk * top, n_exp) * 4) as u64);
                        moe_group::dispatch(&mut rec, k, t * top, n_exp, ids_l, &buf);
                        buf
                    });
                    matmul::glu(&mut rec, k, &moe.experts.gate, &moe.experts.up, &routed(&a.xb, h, 0, &a.hb, w), &a.hb2, groups.as_ref());
                    let down = routed(&a.hb, top * w, w, &a.eo, h);
                    match &groups {
                        Some(g) => matmul::dispatch_grouped(&mut rec, k, &moe.experts.down, &down, g),
                        None => matmul::dispatch(&mut rec, k, &moe.experts.down, &down),
                    }
                    moe_combine::dispatch(&mut rec, k, h, t, top, wts_l, &a.eo, &a.x);
                    if let Some(sh) = &moe.shared {
                        self.mlp(&mut rec, sh, t);
                    }
                }
            }
        }

        // Final norm and head, only over the rows whose logits are wanted.
        let (first, rows) = match mode {
            LogitsMode::All => (0, t),
            LogitsMode::Last => (t - 1, 1),
            LogitsMode::None if sample.is_some() => (t - 1, 1),
            LogitsMode::None => (0, 0),
        };
        if rows > 0 {
            let fin = rmsnorm::Params { x_off: (first * h) as u32, ..rmsnorm::Params::rows(h, rows, c.rms_norm_eps) };
            rmsnorm::dispatch(&mut rec, k, &fin, &self.norm, &a.x, &a.xb);
            matmul::dispatch(&mut rec, k, &self.lm_head, &Args::dense(&a.xb, &a.logits, &self.lm_head, rows));
        }
        if let Some(s) = sample {
            if !s.penalty_ids.is_empty() {
                gpu.queue.write_buffer(&a.penalty, 0, bytemuck::cast_slice(s.penalty_ids));
            }
            // The last row of the logits buffer is the last position.
            let io = sample::Io { logits: &a.logits, l_off: (rows - 1) * c.vocab, pen: &a.penalty, n_pen: s.penalty_ids.len(), out: &a.sample_out, out_off: 0 };
            sample::dispatch(&mut rec, k, c.vocab, &s.filter, s.u, &io);
        }
        rec.submit("forward")?;

        let top = self.top_k();
        let logit_rows = if mode == LogitsMode::None { 0 } else { rows };
        let mut ranges: Vec<(&wgpu::Buffer, u64, u64)> = vec![(&a.sample_out, 0, if sample.is_some() { 4 } else { 0 }), (&a.logits, 0, (logit_rows * c.vocab * 4) as u64)];
        for b in &a.route_ids {
            ranges.push((b, 0, (t * top * 4) as u64));
        }
        for b in &a.route_wts {
            ranges.push((b, 0, (t * top * 4) as u64));
        }
        let n_moe = a.route_ids.len();
        gpu.read_many(&ranges, |i, bytes| match i {
            0 => out.token = bytemuck::pod_read_unaligned::<u32>(bytes.get(..4).unwrap_or(&[0; 4])).into(),
            1 => out.logits.extend_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(bytes)),
            i if i < 2 + n_moe => out.routing[i - 2].extend_from_slice(&bytemuck::pod_collect_to_vec::<u8, u32>(bytes)),
            i => out.gate_weights[i - 2 - n_moe].extend_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(bytes)),
        })?;
        if sample.is_none() {
            out.token = None;
        }
        cache.len += t;
        Ok(())
    }

    /// Dense SwiGLU MLP on `xb`, added into the residual `x`.
    fn mlp(&self, rec: &mut Recorder, mlp: &Mlp, t: usize) {
        let (k, a) = (&self.kernels, &self.act);
        matmul::glu(rec, k, &mlp.gate, &mlp.up, &Args::dense(&a.xb, &a.hb, &mlp.gate, t), &a.hb2, None);
        matmul::dispatch(rec, k, &mlp.down, &Args { accum: true, ..Args::dense(&a.hb, &a.x, &mlp.down, t) });
    }
}
