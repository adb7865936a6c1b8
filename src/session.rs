//! A conversation with the model: messages, the latent cache and the ids it holds, and a
//! token loop that streams [`Event`]s (text split into reasoning and answer, the routing of
//! every position fed, stats, why it stopped). A follow-up turn re-feeds only what differs
//! from the ids already in the cache.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::chat::{assistant_content, prompt_opens_reasoning, token_kind, ChatTokenizer, GenerationConfig, Message, ReasoningSplitter, StreamDecoder, TemplateError, TextKind, TokenizerError};
use crate::grammar::{Constraint, Grammar, GrammarError, Guide};
use crate::model::{KvCache, LayerStats, LoadError, LogitsMode, Model, Sample};
use crate::ops::sample::Filter;
use crate::sampling::SampleParams;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Model(#[from] LoadError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Grammar(#[from] GrammarError),
    #[error("{0}")]
    Input(String),
}

/// How to generate one reply.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Settings {
    pub sample: SampleParams,
    /// same seed, same text; `None` continues the session's generator
    pub seed: Option<u64>,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// feed the prompt in forwards of this many tokens (0: the engine's own chunking); the
    /// goldens check that results do not depend on it
    #[serde(default)]
    pub prefill_step: usize,
    /// the answer (after any reasoning) must match this; the reply ends when it is complete
    #[serde(default)]
    pub constraint: Option<Constraint>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { sample: SampleParams::default(), seed: None, max_tokens: 512, stop: Vec::new(), prefill_step: 0, constraint: None }
    }
}

/// The experts one MoE layer chose for one position, in the gate's choice order.
#[derive(Clone, Debug, Serialize)]
pub struct LayerRoute {
    pub layer: usize,
    pub experts: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Deserialize: the app saves a reply's stats with its chat; fields added later read as their default.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Stats {
    pub prompt_tokens: usize,
    /// prompt tokens whose latent cache rows were reused from the previous turn
    pub reused_tokens: usize,
    pub prefill_tokens_per_s: f64,
    pub generated_tokens: usize,
    pub decode_tokens_per_s: f64,
    pub context_used: usize,
    pub context_max: usize,
    /// latent cache bytes holding the context used / allocated
    pub cache_bytes_used: u64,
    pub cache_bytes_allocated: u64,
    /// with routed experts beyond GPU memory: the expert cache over this reply
    pub expert_cache: Option<ExpertCacheStats>,
}

/// What the expert cache (`model::offload`) did during one reply, and what it holds after it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExpertCacheStats {
    /// picks whose expert was on the GPU, over all picks
    pub hit_rate: f64,
    /// per MoE layer (`Model::moe_layers` order)
    pub hit_rate_per_layer: Vec<f64>,
    /// bytes uploaded to the GPU for misses
    pub uploaded_bytes: u64,
    /// per MoE layer, the experts on the GPU after the reply
    pub resident: Vec<Vec<u32>>,
}

impl ExpertCacheStats {
    /// The counters between two snapshots of `Model::expert_stats`.
    fn between(before: &[LayerStats], after: &[LayerStats], resident: Vec<Vec<u32>>) -> Self {
        let d: Vec<(u64, u64, u64)> = after.iter().zip(before).map(|(a, b)| (a.picks - b.picks.min(a.picks), a.hits - b.hits.min(a.hits), a.bytes - b.bytes.min(a.bytes))).collect();
        let rate = |p: u64, h: u64| if p == 0 { 1.0 } else { h as f64 / p as f64 };
        let (p, h, b) = d.iter().fold((0, 0, 0), |s, x| (s.0 + x.0, s.1 + x.1, s.2 + x.2));
        ExpertCacheStats { hit_rate: rate(p, h), hit_rate_per_layer: d.iter().map(|x| rate(x.0, x.1)).collect(), uploaded_bytes: b, resident }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    MaxTokens,
    StopString(String),
    ContextFull,
    Cancelled,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            StopReason::Eos => write!(f, "end of sequence"),
            StopReason::MaxTokens => write!(f, "max tokens reached"),
            StopReason::StopString(s) => write!(f, "stop string {s:?}"),
            StopReason::ContextFull => write!(f, "context full: start a new chat or use a larger context"),
            StopReason::Cancelled => write!(f, "cancelled"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Event {
    /// a piece of generated text, reasoning or answer
    Text { kind: TextKind, text: String },
    /// a sampled token (before it is fed back): its decoded text (empty while it ends inside a
    /// UTF-8 character, whose bytes then come with the next token) and whether it was generated
    /// inside the reasoning block. The text events carry the same text, split and with tags
    /// and stop strings removed; this one is per token, for views that show each token.
    Token { id: u32, position: usize, text: String, kind: TextKind },
    /// the experts chosen for the token at `position` as it went through the model
    Routing { position: usize, token: u32, layers: Vec<LayerRoute> },
    Stats(Stats),
    /// the log-probabilities at a generated token (only when [`Session::logprobs`] asks for
    /// them), sent just before that token's [`Event::Token`]
    Logprob(TokenLogprob),
    Done(StopReason),
}

/// A generated token's log-probability under the model (the log-softmax of the raw logits,
/// before temperature and filters), and the `top` most likely tokens at its position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub id: u32,
    pub logprob: f32,
    /// (id, logprob), most likely first
    pub top: Vec<(u32, f32)>,
}

/// What one reply produced.
#[derive(Clone, Debug, Serialize)]
pub struct Reply {
    pub prompt_ids: Vec<u32>,
    pub ids: Vec<u32>,
    pub text: String,
    pub reasoning: String,
    pub answer: String,
    pub stop: StopReason,
    pub stats: Stats,
    /// per position fed this turn: (position, token, routes)
    #[serde(skip)]
    pub routing: Vec<(usize, u32, Vec<LayerRoute>)>,
}

pub struct Session {
    pub model: Arc<Model>,
    /// `None`: a checkpoint without a tokenizer, driven by token ids alone (no text events)
    pub tokenizer: Option<Arc<ChatTokenizer>>,
    pub generation: GenerationConfig,
    cache: KvCache,
    /// ids whose latent rows are in the cache, in order
    cached: Vec<u32>,
    pub messages: Vec<Message>,
    /// extra chat template variables for every turn, as transformers' apply_chat_template
    /// keyword arguments (Qwen3's `enable_thinking`: false renders the prompt with an empty,
    /// closed reasoning block)
    pub template_vars: serde_json::Map<String, serde_json::Value>,
    /// `Some(n)`: read back the last position's logits at every generated token and send an
    /// [`Event::Logprob`] with its log-probability and the `n` likeliest tokens (costs a
    /// vocabulary-sized readback per token; `None` reads back only the sampled id)
    pub logprobs: Option<usize>,
    /// keep generating past end-of-sequence ids, up to `max_tokens` (benchmarks, tests)
    pub ignore_eos: bool,
    /// the grammar engine over this vocabulary, built on the first constrained reply (or
    /// given: the server's slots share one)
    pub grammar: Option<Arc<Grammar>>,
    rng: ChaCha8Rng,
    eos: Vec<u32>,
    /// log-probabilities of the token the last forward sampled, until it is emitted
    pending_logprob: Option<TokenLogprob>,
    /// the model's expert cache counters when the current reply began
    expert_counters: Option<Vec<LayerStats>>,
}

impl Session {
    pub fn new(model: Arc<Model>, tokenizer: Arc<ChatTokenizer>, generation: GenerationConfig, ctx: usize) -> Result<Self, SessionError> {
        Self::with_tokenizer(model, Some(tokenizer), generation, ctx)
    }

    /// A session over token ids alone (a checkpoint without a tokenizer): [`Session::generate`]
    /// works, with ids, routing and stats but no text; chat needs a tokenizer.
    pub fn ids_only(model: Arc<Model>, generation: GenerationConfig, ctx: usize) -> Result<Self, SessionError> {
        Self::with_tokenizer(model, None, generation, ctx)
    }

    fn with_tokenizer(model: Arc<Model>, tokenizer: Option<Arc<ChatTokenizer>>, generation: GenerationConfig, ctx: usize) -> Result<Self, SessionError> {
        let cache = model.new_cache(ctx)?;
        // As transformers' generate: generation_config.json, else config.json, and only
        // without either the tokenizer's eos token.
        let mut eos = generation.eos_token_ids.clone();
        if eos.is_empty() {
            eos = model.cfg.eos_token_ids.clone();
        }
        if eos.is_empty() {
            if let Some(t) = &tokenizer {
                eos.extend(t.eos_token.as_deref().and_then(|e| t.token_id(e)));
            }
        }
        Ok(Session { model, tokenizer, generation, cache, cached: Vec::new(), messages: Vec::new(), template_vars: serde_json::Map::new(), logprobs: None, ignore_eos: false, grammar: None, rng: ChaCha8Rng::seed_from_u64(0x5eed), eos, pending_logprob: None, expert_counters: None })
    }

    /// The ids that end a reply.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The grammar engine over this session's vocabulary (built once, on first use).
    pub fn grammar(&mut self) -> Result<Arc<Grammar>, SessionError> {
        if let Some(g) = &self.grammar {
            return Ok(g.clone());
        }
        let tok = self.tokenizer.clone().ok_or_else(|| SessionError::Input("constrained decoding needs the model's tokenizer (each token's bytes), and this checkpoint has none".into()))?;
        let g = Arc::new(Grammar::new(&tok, self.model.cfg.vocab, &self.eos)?);
        self.grammar = Some(g.clone());
        Ok(g)
    }

    /// Defaults from `generation_config.json` when the checkpoint has one.
    pub fn default_settings(&self) -> Settings {
        Settings { sample: self.generation.sample.unwrap_or_default(), ..Settings::default() }
    }

    pub fn context(&self) -> usize {
        self.cache.ctx
    }

    pub fn context_used(&self) -> usize {
        self.cached.len()
    }

    /// The ids whose cache rows this session holds (a prompt that starts with them reuses them).
    pub fn cached_ids(&self) -> &[u32] {
        &self.cached
    }

    pub fn reset(&mut self) {
        let system: Vec<Message> = self.messages.iter().filter(|m| m.role == "system").cloned().collect();
        self.messages = system;
    }

    pub fn set_system(&mut self, text: &str) {
        self.messages.retain(|m| m.role != "system");
        if !text.is_empty() {
            self.messages.insert(0, Message::new("system", text));
        }
    }

    /// Add a user turn and generate the assistant's reply through the chat template.
    pub fn chat(&mut self, user: &str, s: &Settings, cancel: &AtomicBool, on: &mut dyn FnMut(&Event)) -> Result<Reply, SessionError> {
        if user.trim().is_empty() {
            return Err(SessionError::Input("empty prompt: type a message".into()));
        }
        self.messages.push(Message::new("user", user));
        let r = self.reply(s, cancel, on);
        if r.is_err() {
            self.messages.pop();
        }
        r
    }

    /// The tokenizer, or the error chat gives without one.
    pub fn text_tokenizer(&self) -> Result<Arc<ChatTokenizer>, SessionError> {
        self.tokenizer.clone().ok_or_else(|| SessionError::Input("this checkpoint has no tokenizer: give token ids (--ids) instead of text".into()))
    }

    /// The prompt of the assistant's next turn: the conversation through the chat template
    /// with the generation prompt, its ids (no special tokens added: the template writes any
    /// BOS itself, as with transformers' apply_chat_template), and whether the template opened
    /// the reasoning block (R1-Distill's `<think>\n`), so that the reply starts inside it.
    pub fn chat_prompt(&self) -> Result<(Vec<u32>, bool), SessionError> {
        let tok = self.text_tokenizer()?;
        let text = tok.render_chat_with(&self.messages, true, &self.template_vars)?;
        Ok((tok.encode(&text, false)?, prompt_opens_reasoning(&text)))
    }

    /// Generate the assistant's reply to the conversation as it stands.
    pub fn reply(&mut self, s: &Settings, cancel: &AtomicBool, on: &mut dyn FnMut(&Event)) -> Result<Reply, SessionError> {
        let (ids, opened) = self.chat_prompt()?;
        let reply = self.generate(&ids, opened, s, cancel, on)?;
        if s.max_tokens > 0 {
            self.messages.push(Message::new("assistant", &assistant_content(&reply.reasoning, &reply.answer)));
        }
        Ok(reply)
    }

    /// Continue raw ids (no template). `opened`: the prompt already opened `<think>`.
    pub fn generate(&mut self, prompt: &[u32], opened: bool, s: &Settings, cancel: &AtomicBool, on: &mut dyn FnMut(&Event)) -> Result<Reply, SessionError> {
        // the one place sampling settings are validated
        let filter = s.sample.filter().map_err(SessionError::Input)?;
        // (ids themselves are checked where they enter the model: `Model::forward_sampled`)
        if prompt.is_empty() {
            return Err(SessionError::Input("empty prompt: nothing to feed the model".into()));
        }
        let ctx = self.cache.ctx;
        if prompt.len() >= ctx {
            return Err(SessionError::Input(format!(
                "the prompt is {} tokens but the context holds {ctx} (and needs room for the reply); shorten it, start a new chat, or use a larger context",
                prompt.len()
            )));
        }
        let mut guide = match &s.constraint {
            Some(c) => Some(self.grammar()?.guide(c, opened)?),
            None => None,
        };
        if let Some(seed) = s.seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.pending_logprob = None;
        let mut reuse = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        if reuse == prompt.len() {
            reuse -= 1; // at least one token must go through to produce logits
        }
        self.cache.len = reuse;
        self.cached.truncate(reuse);
        let mut stats = Stats { prompt_tokens: prompt.len(), reused_tokens: reuse, context_max: ctx, ..Stats::default() };
        self.expert_counters = self.model.expert_stats();
        let mut reply = Reply {
            prompt_ids: prompt.to_vec(),
            ids: Vec::new(),
            text: String::new(),
            reasoning: String::new(),
            answer: String::new(),
            stop: StopReason::MaxTokens,
            stats: Stats::default(),
            routing: Vec::new(),
        };
        if s.max_tokens == 0 {
            reply.stats = self.finish_stats(stats);
            on(&Event::Stats(reply.stats.clone()));
            on(&Event::Done(StopReason::MaxTokens));
            return Ok(reply);
        }
        let mut penalty: BTreeSet<u32> = prompt.iter().copied().collect();
        let t0 = Instant::now();
        let step = if s.prefill_step == 0 { prompt.len() } else { s.prefill_step };
        let mut chunks = prompt[reuse..].chunks(step).peekable();
        let mut token = None;
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let mask = if last { guide.as_mut().map(Guide::mask).transpose()? } else { None };
            token = self.feed(chunk, last.then_some(Step { penalty: &penalty, filter: &filter, mask }), &mut reply, on)?;
        }
        let mut token = sampled(token)?;
        stats.prefill_tokens_per_s = (prompt.len() - reuse) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let t1 = Instant::now();
        let mut dec = StreamDecoder::default();
        let mut split = ReasoningSplitter::new(opened);
        let mut stop = StopMatcher::new(&s.stop);
        let tok = self.tokenizer.clone();
        let reason = loop {
            if self.eos.contains(&token) && !self.ignore_eos {
                break StopReason::Eos;
            }
            reply.ids.push(token);
            penalty.insert(token);
            let before = split.kind();
            let delta = match &tok {
                Some(tok) => dec.push(tok, token)?,
                None => None,
            };
            let split_text = delta.as_ref().map(|d| {
                let (text, hit) = stop.push(d);
                reply.text.push_str(&text);
                (split.push(&text), hit)
            });
            let kind = token_kind(before, split.kind());
            if let Some(lp) = self.pending_logprob.take() {
                on(&Event::Logprob(lp));
            }
            on(&Event::Token { id: token, position: self.cached.len(), text: delta.unwrap_or_default(), kind });
            if let Some((pieces, hit)) = split_text {
                emit(pieces, &mut reply, on);
                if let Some(hit) = hit {
                    break StopReason::StopString(hit);
                }
            }
            if let Some(g) = guide.as_mut() {
                g.commit(token)?;
                if g.done() {
                    // the grammar is complete: the end of sequence is all it allows
                    break StopReason::Eos;
                }
            }
            if reply.ids.len() >= s.max_tokens {
                break StopReason::MaxTokens;
            }
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if self.cached.len() + 1 > ctx {
                break StopReason::ContextFull;
            }
            let mask = guide.as_mut().map(Guide::mask).transpose()?;
            token = sampled(self.feed(&[token], Some(Step { penalty: &penalty, filter: &filter, mask }), &mut reply, on)?)?;
        };
        if !matches!(reason, StopReason::StopString(_)) {
            if let Some(rest) = tok.as_ref().map(|t| dec.finish(t)).transpose()?.flatten() {
                let (text, _) = stop.push(&rest);
                reply.text.push_str(&text);
                let pieces = split.push(&text);
                emit(pieces, &mut reply, on);
            }
            let rest = stop.finish();
            reply.text.push_str(&rest);
            let pieces = split.push(&rest);
            emit(pieces, &mut reply, on);
        }
        let pieces = split.finish();
        emit(pieces, &mut reply, on);
        stats.generated_tokens = reply.ids.len();
        stats.decode_tokens_per_s = reply.ids.len().saturating_sub(1) as f64 / t1.elapsed().as_secs_f64().max(1e-9);
        reply.stats = self.finish_stats(stats);
        reply.stop = reason.clone();
        on(&Event::Stats(reply.stats.clone()));
        on(&Event::Done(reason));
        Ok(reply)
    }

    fn finish_stats(&self, mut stats: Stats) -> Stats {
        stats.context_used = self.cached.len();
        stats.cache_bytes_used = self.model.cfg.cache_bytes_per_token() * self.cached.len() as u64;
        stats.cache_bytes_allocated = self.cache.bytes(&self.model.cfg);
        if let (Some(before), Some(after), Some(resident)) = (&self.expert_counters, self.model.expert_stats(), self.model.resident_experts()) {
            stats.expert_cache = Some(ExpertCacheStats::between(before, &after, resident));
        }
        stats
    }

    /// Feed ids through the model and, with `sample`, sample the next token; record routing
    /// per position.
    fn feed(&mut self, ids: &[u32], sample: Option<Step>, reply: &mut Reply, on: &mut dyn FnMut(&Event)) -> Result<Option<u32>, SessionError> {
        let pen: Vec<u32> = match &sample {
            Some(st) if st.filter.repeat_penalty != 1.0 => st.penalty.iter().copied().collect(),
            _ => Vec::new(),
        };
        let sample = sample.map(|st| Sample { filter: *st.filter, u: self.rng.random::<f32>(), penalty_ids: &pen, mask: st.mask });
        let pos0 = self.cached.len();
        let mode = if sample.is_some() && self.logprobs.is_some() { LogitsMode::Last } else { LogitsMode::None };
        let out = self.model.forward_sampled(&mut self.cache, ids, mode, sample.as_ref())?;
        self.pending_logprob = match (self.logprobs, out.token) {
            (Some(n), Some(id)) if mode == LogitsMode::Last => Some(token_logprob(&out.logits, id, n)),
            _ => None,
        };
        self.cached.extend_from_slice(ids);
        let k = self.model.top_k();
        let layers = self.model.moe_layers();
        for (i, &id) in ids.iter().enumerate() {
            let routes: Vec<LayerRoute> = layers
                .iter()
                .enumerate()
                .map(|(l, &layer)| LayerRoute { layer, experts: out.routing[l][i * k..(i + 1) * k].to_vec(), weights: out.gate_weights[l][i * k..(i + 1) * k].to_vec() })
                .collect();
            on(&Event::Routing { position: pos0 + i, token: id, layers: routes.clone() });
            reply.routing.push((pos0 + i, id, routes));
        }
        Ok(out.token)
    }
}

/// How to sample after a forward: the ids the repetition penalty applies to, the filter, and
/// the grammar's mask of allowed tokens.
struct Step<'a> {
    penalty: &'a BTreeSet<u32>,
    filter: &'a Filter,
    mask: Option<&'a [u32]>,
}

/// Log-softmax of one row of logits at `id`, and the `n` largest.
pub fn token_logprob(logits: &[f32], id: u32, n: usize) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|&x| ((x - max) as f64).exp()).sum::<f64>().ln() as f32;
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    let n = n.min(order.len());
    if n > 0 {
        order.select_nth_unstable_by(n - 1, |&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    }
    order.truncate(n);
    order.sort_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
    TokenLogprob { id, logprob: logits.get(id as usize).map_or(f32::NEG_INFINITY, |x| x - lse), top: order.into_iter().map(|i| (i, logits[i as usize] - lse)).collect() }
}

fn sampled(token: Option<u32>) -> Result<u32, SessionError> {
    token.ok_or_else(|| SessionError::Input("the sampler returned no token".into()))
}

fn emit(pieces: Vec<(TextKind, String)>, reply: &mut Reply, on: &mut dyn FnMut(&Event)) {
    for (kind, text) in pieces {
        match kind {
            TextKind::Reasoning => reply.reasoning.push_str(&text),
            TextKind::Answer => reply.answer.push_str(&text),
        }
        on(&Event::Text { kind, text });
    }
}

/// Finds stop strings in streamed text, holding back a tail that could start one.
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

impl StopMatcher {
    pub(crate) fn new(stops: &[String]) -> Self {
        StopMatcher { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), pending: String::new() }
    }

    /// Returns the text that is certain, and the stop string if one completed (text before it only).
    pub(crate) fn push(&mut self, delta: &str) -> (String, Option<String>) {
        self.pending.push_str(delta);
        let hit = self.stops.iter().filter_map(|s| self.pending.find(s.as_str()).map(|i| (i, s.clone()))).min_by_key(|(i, _)| *i);
        if let Some((i, s)) = hit {
            let text = self.pending[..i].to_string();
            self.pending.clear();
            return (text, Some(s));
        }
        let keep = self
            .stops
            .iter()
            .flat_map(|s| (1..s.len()).filter(move |&n| s.is_char_boundary(n)).map(move |n| &s[..n]))
            .filter(|p| self.pending.ends_with(p))
            .map(|p| p.len())
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - keep;
        let text = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        (text, None)
    }

    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::{token_logprob, StopMatcher};

    #[test]
    fn logprobs_are_a_log_softmax() {
        let lp = token_logprob(&[1.0, 3.0, 2.0, 0.0], 2, 2);
        let z: f32 = [1.0f32, 3.0, 2.0, 0.0].iter().map(|x| x.exp()).sum();
        assert!((lp.logprob - (2.0 - z.ln())).abs() < 1e-5);
        assert_eq!(lp.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2]);
        assert!((lp.top[0].1 - (3.0 - z.ln())).abs() < 1e-5);
        assert!(token_logprob(&[0.0; 3], 0, 10).top.len() == 3);
    }

    #[test]
    fn stop_strings_across_pieces() {
        let mut m = StopMatcher::new(&["\n\nUser".to_string()]);
        let (a, h) = m.push("hello\n");
        assert_eq!((a.as_str(), h), ("hello", None));
        let (b, h) = m.push("\nUs");
        assert_eq!((b.as_str(), h), ("", None));
        let (c, h) = m.push("er: hi");
        assert_eq!((c.as_str(), h.as_deref()), ("", Some("\n\nUser")));
        let mut m = StopMatcher::new(&["END".to_string()]);
        assert_eq!(m.push("the E").0, "the ");
        assert_eq!(m.push("nd").0, "End");
    }
}
