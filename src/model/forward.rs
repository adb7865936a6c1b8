//! The forward pass: token ids in at positions `pos0..`, logits and routing out. Each
//! internal chunk is recorded into one command buffer, submitted once, and read back once
//! (logits + routing ids of every MoE layer); nothing inside a layer waits on the CPU.

use super::{Ffn, KvCache, LoadError, Mlp, Model, Moe};
use crate::gpu::Recorder;
use crate::ops::matmul::{Norm, Out};
use crate::ops::Kernels;
use crate::tensor::Matrix;
use crate::ops::sample::Filter;
use crate::ops::{embed, matmul, moe_combine, moe_gate, rmsnorm, sample, Routed, Rows};

/// Choose the next token on the GPU after the last position (only its id is read back).
pub struct Sample<'a> {
    pub filter: Filter,
    /// uniform draw in [0, 1) from the host's seeded generator
    pub u: f32,
    /// unique ids the repetition penalty applies to
    pub penalty_ids: &'a [u32],
    /// the tokens a grammar allows (constrained decoding): bit `i % 32` of word `i / 32` set
    /// = token `i` allowed, `ceil(vocab / 32)` words; the others are never sampled
    pub mask: Option<&'a [u32]>,
}

/// transformers builds `q_a_layernorm` and `kv_a_layernorm` without passing `rms_norm_eps`,
/// so they always use the RMSNorm default.
pub(super) const LORA_NORM_EPS: f32 = 1e-6;

/// The x of a block's projections: already normalized (`xb`), or the residual with the
/// block's RMSNorm folded into each projection's matvec (a decode step: one dispatch of the
/// norm fewer per block).
#[derive(Clone, Copy)]
pub(super) enum In<'a> {
    Normed(Rows<'a>),
    Fold(Rows<'a>, Norm<'a>),
}

impl<'a> In<'a> {
    /// `x` normalized by `weight` for the projections `ws` (of `slots` routed items per token
    /// where given): folded when every one of them folds it (and `fold` allows), else
    /// normalized into `xb` once now.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(rec: &mut Recorder, k: &Kernels, fold: bool, ws: &[(&Matrix, Option<usize>)], weight: &'a wgpu::Buffer, eps: f32, x: Rows<'a>, xb: Rows<'a>) -> Self {
        if fold && ws.iter().all(|(m, slots)| matmul::folds_norm(k, m, x.rows, *slots)) {
            In::Fold(x, Norm { weight, eps })
        } else {
            rmsnorm::run(rec, k, weight, x, xb, eps);
            In::Normed(xb)
        }
    }

    /// The rows the projections read.
    pub fn rows(&self) -> Rows<'a> {
        match self {
            In::Normed(r) | In::Fold(r, _) => *r,
        }
    }

    pub fn norm(&self) -> Option<Norm<'a>> {
        match self {
            In::Normed(_) => None,
            In::Fold(_, n) => Some(*n),
        }
    }

    /// `y (+)= W · x`.
    pub fn run(&self, rec: &mut Recorder, k: &Kernels, w: &Matrix, y: Rows, out: Out) {
        match self {
            In::Normed(x) => matmul::run(rec, k, w, *x, y, out),
            In::Fold(x, n) => matmul::run_normed(rec, k, w, *x, *n, y, out),
        }
    }

    /// `y = silu(gate · x) ⊙ (up · x)`.
    #[allow(clippy::too_many_arguments)]
    pub fn glu(&self, rec: &mut Recorder, k: &Kernels, gate: &Matrix, up: &Matrix, y: Rows, scratch: &wgpu::Buffer) {
        match self {
            In::Normed(x) => matmul::glu(rec, k, gate, up, *x, y, scratch),
            In::Fold(x, n) => matmul::glu_normed(rec, k, gate, up, *x, *n, y, scratch),
        }
    }
}

/// One internal chunk: `t` tokens at cache positions `pos0 ..`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunk {
    pub t: usize,
    pub pos0: usize,
    /// the cache's capacity in positions
    pub ctx: usize,
}

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
            if let Some(m) = s.mask.filter(|m| m.len() != self.cfg.vocab.div_ceil(32)) {
                return Err(LoadError::MaskWords { n: m.len(), vocab: self.cfg.vocab });
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

    /// One chunk, as DeepSeek's `Transformer.forward` (and Qwen3's): embed; per layer `x += attn(norm(x))`,
    /// `x += ffn(norm(x))`; final norm and head; sample. One command buffer, one readback.
    fn forward_chunk(&self, cache: &mut KvCache, ids: &[u32], mode: LogitsMode, sample: Option<&Sample>, out: &mut ForwardOut) -> Result<(), LoadError> {
        let ch = Chunk { t: ids.len(), pos0: cache.len, ctx: cache.ctx };
        let (k, a, h) = (&self.kernels, &self.act, self.cfg.hidden);
        // the activations are shared by every session on this model: held from the ids'
        // upload to the end of the readback
        let _turn = self.turns.take();
        self.gpu.queue.write_buffer(&a.ids, 0, bytemuck::cast_slice(ids));
        let mut rec = Recorder::new(&self.gpu);
        embed::run(&mut rec, k, &self.embed, &a.ids, Rows::new(&a.x, h, ch.t));
        let mut moe_i = 0;
        for (li, layer) in self.layers.iter().enumerate() {
            self.attention(&mut rec, layer, &cache.layers[li], ch);
            // the FFN's projections fold its norm on a decode step, except with experts
            // beyond GPU memory, whose waves add into x before the next wave reads it
            let fold = self.fold(ch.t) && (self.offload.is_none() || matches!(layer.ffn, Ffn::Dense(_)));
            let ws: Vec<(&Matrix, Option<usize>)> = match &layer.ffn {
                Ffn::Dense(mlp) => vec![(&mlp.gate, None)],
                Ffn::Moe(moe) => [(&moe.router, None), (&moe.experts.gate, Some(moe.gate.k))].into_iter().chain(moe.shared.as_ref().map(|sh| (&sh.gate, None))).collect(),
            };
            let (x, xb) = (Rows::new(&a.x, h, ch.t), Rows::new(&a.xb, h, ch.t));
            let input = In::prepare(&mut rec, k, fold, &ws, &layer.post_attention_layernorm, self.cfg.rms_norm_eps, x, xb);
            match &layer.ffn {
                Ffn::Dense(mlp) => self.mlp(&mut rec, mlp, input, ch.t),
                Ffn::Moe(moe) => {
                    self.moe(&mut rec, moe, input, moe_i, ch.t)?;
                    moe_i += 1;
                }
            }
        }
        let rows = head_rows(mode, sample.is_some(), ch.t);
        self.head(&mut rec, rows);
        if let Some(s) = sample {
            self.sample(&mut rec, s, rows);
        }
        rec.submit("forward")?;
        self.read_back(out, if mode == LogitsMode::None { 0 } else { rows.1 }, sample.is_some(), ch.t)?;
        cache.len += ch.t;
        Ok(())
    }

    /// Whether a chunk of `t` tokens folds the blocks' norms into their projections (the
    /// matvec sizes; `DSW_UNFUSED` turns it off for the A/B).
    pub(super) fn fold(&self, t: usize) -> bool {
        !self.gpu.tuning.unfused && t <= matmul::MATVEC_MAX_TOKENS
    }

    /// Dense SwiGLU MLP on `input`, added into the residual `x`.
    fn mlp(&self, rec: &mut Recorder, mlp: &Mlp, input: In, t: usize) {
        self.mlp_up(rec, mlp, input, t);
        self.mlp_down(rec, mlp, t);
    }

    /// The MLP's `silu(gate x) ⊙ up x` into `hb`.
    fn mlp_up(&self, rec: &mut Recorder, mlp: &Mlp, input: In, t: usize) {
        let (k, a, w) = (&self.kernels, &self.act, mlp.gate.rows);
        input.glu(rec, k, &mlp.gate, &mlp.up, Rows::new(&a.hb, w, t), &a.hb2);
    }

    /// `x += down · hb`.
    fn mlp_down(&self, rec: &mut Recorder, mlp: &Mlp, t: usize) {
        let (k, a, h, w) = (&self.kernels, &self.act, self.cfg.hidden, mlp.gate.rows);
        matmul::run(rec, k, &mlp.down, Rows::new(&a.hb, w, t), Rows::new(&a.x, h, t), Out::Add);
    }

    /// DeepSeek's `MoE.forward` on `xb`, added into `x`: router scores, the gate's top-k on the
    /// GPU, each token's experts, their gate-weighted sum, and the shared experts. With the
    /// experts beyond GPU memory ([`super::offload`]) the work so far is submitted at the gate,
    /// the chosen ids read back, and the experts run from the GPU's expert cache, in waves.
    fn moe<'g>(&'g self, rec: &mut Recorder<'g>, moe: &Moe, input: In, moe_i: usize, t: usize) -> Result<(), LoadError> {
        let (k, a, h) = (&self.kernels, &self.act, self.cfg.hidden);
        let (top, n_exp, e) = (moe.gate.k, moe.gate.n_exp, &moe.experts);
        let (ids, wts) = (Rows::new(&a.route_ids[moe_i], top, t), Rows::new(&a.route_wts[moe_i], top, t));
        let (xb, router, eo) = (input.rows(), Rows::new(&a.router, n_exp, t), Rows::new(&a.eo, h, t * top));
        input.run(rec, k, &moe.router, router, Out::Set);
        moe_gate::run(rec, k, &moe.gate, &moe.bias, router, ids, wts);
        let pools = [&e.gate, &e.up, &e.down];
        match &self.offload {
            None => {
                let items = Routed { x: xb, slots: top, slot_stride: 0, ids: ids.buf };
                matmul::routed_swiglu(rec, k, pools, items, input.norm(), &a.hb, &a.hb2, eo, self.max_chunk * top);
                // the shared expert reads x before the routed sum lands in it (a folded norm
                // reads the residual itself)
                if let Some(sh) = &moe.shared {
                    self.mlp_up(rec, sh, input, t);
                }
                moe_combine::run(rec, k, wts, eo, Rows::new(&a.x, h, t));
                if let Some(sh) = &moe.shared {
                    self.mlp_down(rec, sh, t);
                }
                return Ok(());
            }
            Some(off) => {
                std::mem::replace(rec, Recorder::new(&self.gpu)).submit("forward (to the gate)")?;
                let n = (t * top * 4) as u64;
                let (mut chosen, mut weights) = (Vec::new(), Vec::new());
                self.gpu.read_many(&[(ids.buf, 0, n), (wts.buf, 0, n)], |i, b| match i {
                    0 => chosen = bytemuck::pod_collect_to_vec::<u8, u32>(b),
                    _ => weights = bytemuck::pod_collect_to_vec::<u8, f32>(b),
                })?;
                let waves = off.res.plan(moe_i, &chosen, &weights);
                let last = waves.len() - 1;
                for (wi, wave) in waves.into_iter().enumerate() {
                    for (slot, expert) in wave.uploads {
                        off.upload(&self.gpu, moe_i, pools, slot, expert);
                    }
                    self.gpu.queue.write_buffer(&off.slot_ids, 0, bytemuck::cast_slice(&wave.slot_ids));
                    self.gpu.queue.write_buffer(&off.weights, 0, bytemuck::cast_slice(&wave.weights));
                    let items = Routed { x: xb, slots: top, slot_stride: 0, ids: &off.slot_ids };
                    matmul::routed_swiglu(rec, k, pools, items, input.norm(), &a.hb, &a.hb2, eo, self.max_chunk * top);
                    moe_combine::run(rec, k, Rows::new(&off.weights, top, t), eo, Rows::new(&a.x, h, t));
                    if wi != last {
                        // the next wave's writes to the slot ids, weights and pools follow this
                        std::mem::replace(rec, Recorder::new(&self.gpu)).submit("forward (expert wave)")?;
                    }
                }
            }
        }
        if let Some(sh) = &moe.shared {
            self.mlp(rec, sh, input, t);
        }
        Ok(())
    }

    /// Final norm and `lm_head` over the rows `(first, n)` whose logits are wanted.
    fn head(&self, rec: &mut Recorder, (first, n): (usize, usize)) {
        if n == 0 {
            return;
        }
        let (k, a, h) = (&self.kernels, &self.act, self.cfg.hidden);
        let (x, xb) = (Rows::new(&a.x, h, first + n).range(first, n), Rows::new(&a.xb, h, n));
        let input = In::prepare(rec, k, self.fold(n), &[(&self.lm_head, None)], &self.norm, self.cfg.rms_norm_eps, x, xb);
        input.run(rec, k, &self.lm_head, Rows::new(&a.logits, self.cfg.vocab, n), Out::Set);
    }

    /// The next token from the last logits row (of `rows`), chosen on the GPU. The penalty ids
    /// and the mask go into buffers every session shares: the caller holds the turn.
    fn sample(&self, rec: &mut Recorder, s: &Sample, (_, n): (usize, usize)) {
        let (a, vocab) = (&self.act, self.cfg.vocab);
        if !s.penalty_ids.is_empty() {
            self.gpu.queue.write_buffer(&a.penalty, 0, bytemuck::cast_slice(s.penalty_ids));
        }
        if let Some(m) = s.mask {
            self.gpu.queue.write_buffer(&a.mask, 0, bytemuck::cast_slice(m));
        }
        let logits = Rows::new(&a.logits, vocab, n).range(n - 1, 1);
        let mask = Rows::new(&a.mask, s.mask.map_or(0, |m| m.len()), 1);
        sample::run(rec, &self.kernels, &s.filter, s.u, logits, Rows::new(&a.penalty, s.penalty_ids.len(), 1), mask, Rows::new(&a.sample_out, 4, 1));
    }

    /// One readback of everything the chunk produced: the sampled id, `logit_rows` rows of
    /// logits, and every MoE layer's expert ids and gate weights for the chunk's `t` tokens.
    fn read_back(&self, out: &mut ForwardOut, logit_rows: usize, sampled: bool, t: usize) -> Result<(), LoadError> {
        let (a, vocab, per_layer) = (&self.act, self.cfg.vocab, (t * self.top_k() * 4) as u64);
        let n_moe = a.route_ids.len();
        let mut ranges: Vec<(&wgpu::Buffer, u64, u64)> = vec![(&a.sample_out, 0, if sampled { 4 } else { 0 }), (&a.logits, 0, (logit_rows * vocab * 4) as u64)];
        ranges.extend(a.route_ids.iter().map(|b| (b, 0, per_layer)));
        ranges.extend(a.route_wts.iter().map(|b| (b, 0, per_layer)));
        // ranges: [token, logits, ids of each MoE layer.., weights of each MoE layer..]
        self.gpu.read_many(&ranges, |i, bytes| match Readback::of(i, n_moe) {
            Readback::Token => out.token = sampled.then(|| bytemuck::pod_read_unaligned::<u32>(bytes.get(..4).unwrap_or(&[0; 4]))),
            Readback::Logits => out.logits.extend_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(bytes)),
            Readback::Ids(l) => out.routing[l].extend_from_slice(&bytemuck::pod_collect_to_vec::<u8, u32>(bytes)),
            Readback::Weights(l) => out.gate_weights[l].extend_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(bytes)),
        })?;
        Ok(())
    }
}

/// The rows `(first, n)` of the chunk that go through the head: all, the last, or none
/// (the last when sampling needs it).
fn head_rows(mode: LogitsMode, sampling: bool, t: usize) -> (usize, usize) {
    match mode {
        LogitsMode::All => (0, t),
        LogitsMode::Last => (t - 1, 1),
        LogitsMode::None if sampling => (t - 1, 1),
        LogitsMode::None => (0, 0),
    }
}

/// What range `i` of [`Model::read_back`]'s readback holds.
enum Readback {
    Token,
    Logits,
    Ids(usize),
    Weights(usize),
}

impl Readback {
    fn of(i: usize, n_moe: usize) -> Self {
        match i {
            0 => Readback::Token,
            1 => Readback::Logits,
            i if i < 2 + n_moe => Readback::Ids(i - 2),
            i => Readback::Weights(i - 2 - n_moe),
        }
    }
}
