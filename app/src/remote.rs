//! The app as a client: chat with a remote OpenAI-compatible server (`deepseek-wgpu serve`,
//! llama-server, vLLM, SGLang) over blocking HTTP with SSE streaming. The worker uses it in
//! place of a local `Session` when the model field holds an `http(s)://` URL, and turns the
//! stream into the same [`WorkerEvent`]s: reasoning from `reasoning_content` (or `<think>`
//! in the content of servers that do not split it), the answer, the stop reason, usage.
//!
//! `deepseek-wgpu serve` also streams, when a request sets its `routing` extension, each
//! generated token (`delta.token`: id, position, kind) and each position fed with its
//! experts and gate weights per MoE layer (`delta.routing`), and its `/v1/models` entry
//! gives the MoE shape; with it the routing panel works as it does locally.
//!
//! The API key is sent as `Authorization: Bearer KEY` and appears in no message or log.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use deepseek_wgpu::chat::{Message, TextKind};
use deepseek_wgpu::sampling::SampleParams;
use deepseek_wgpu::session::{LayerRoute, Settings, Stats, StopReason};
use serde_json::{json, Value};

use crate::routing::{PositionRoute, RoutingShape};
use crate::worker::{ModelInfo, RemoteInfo, WorkerEvent};

/// The token id of chips from servers that do not report ids.
pub const UNKNOWN_ID: u32 = u32::MAX;

/// How often a stream that has nothing to read checks the Stop flag.
const POLL: Duration = Duration::from_millis(25);

/// Whether the model field names a server rather than a folder or file.
pub fn is_url(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("http://") || s.starts_with("https://")
}

/// `http://host:port[/path][#model]` → (API base, model asked for). The base is the URL
/// without a trailing `/`; a URL with no path gets `/v1`, where every server named above
/// serves the API.
pub fn parse_url(url: &str) -> (String, Option<String>) {
    let url = url.trim();
    let (base, model) = match url.split_once('#') {
        Some((b, m)) if !m.trim().is_empty() => (b, Some(m.trim().to_string())),
        Some((b, _)) => (b, None),
        None => (url, None),
    };
    let base = base.trim_end_matches('/');
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    let base = if after_scheme.contains('/') { base.to_string() } else { format!("{base}/v1") };
    (base, model)
}

/// The server's message from an error body: OpenAI's `{"error": {"message"}}`, vLLM's and
/// SGLang's `{"message"}`, FastAPI's `{"detail"}`, else the text itself (shortened).
fn server_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let msg = [v.pointer("/error/message"), v.get("message"), v.get("detail"), v.get("error")].into_iter().flatten().find_map(|m| m.as_str().map(str::to_string));
    let msg = msg.unwrap_or_else(|| body.trim().chars().take(300).collect());
    if msg.is_empty() {
        "(no message)".into()
    } else {
        msg
    }
}

/// An HTTP error status as a sentence naming the URL.
fn status_error(url: &str, status: u16, body: &str, key_given: bool, model: &str) -> String {
    let msg = server_message(body);
    match status {
        401 | 403 if key_given => format!("{url} refused the API key ({status}): {msg}"),
        401 | 403 => format!("{url} needs an API key ({status}): type it in the API key field. The server said: {msg}"),
        404 if url.ends_with("/models") => format!("{url} was not found (404): is this an OpenAI-compatible server? Its API usually lives under /v1. The server said: {msg}"),
        404 => format!("{url} does not serve the model \"{model}\" (404): {msg}"),
        _ => format!("{url} answered {status}: {msg}"),
    }
}

/// A failure below HTTP (connect, DNS, TLS, a dropped connection) as a sentence naming the URL.
fn transport_error(url: &str, e: ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!("cannot connect to {url}: connection refused (is the server running, on that host and port?)"),
        ureq::Error::Io(io) => format!("cannot reach {url}: {io}"),
        ureq::Error::HostNotFound => format!("cannot reach {url}: host not found"),
        ureq::Error::Timeout(t) => format!("cannot reach {url}: timed out ({t})"),
        e => format!("request to {url} failed: {e}"),
    }
}

/// One remote server and the model chosen on it.
pub struct Remote {
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
    model: String,
    /// the MoE shape, from a `deepseek-wgpu serve` that reports it
    shape: Option<RoutingShape>,
    /// the server is `deepseek-wgpu serve` (it takes the `routing` extension)
    ours: bool,
    /// positions for the chips of servers that report none (unique over the connection)
    next_position: usize,
    /// the context the server reports (0: unknown)
    ctx: usize,
}

impl Remote {
    /// Ask `url` for its models and pick the one named after `#` (else the first).
    pub fn connect(url: &str, key: Option<String>) -> Result<(Remote, ModelInfo), String> {
        let (base, wanted) = parse_url(url);
        let key = key.filter(|k| !k.trim().is_empty()).map(|k| k.trim().to_string());
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_connect(Some(Duration::from_secs(10))).build().into();
        let models_url = format!("{base}/models");
        let mut req = agent.get(&models_url);
        if let Some(k) = &key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let mut resp = req.call().map_err(|e| transport_error(&models_url, e))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().map_err(|e| transport_error(&models_url, e))?;
        if status != 200 {
            return Err(status_error(&models_url, status, &body, key.is_some(), ""));
        }
        let list: Value = serde_json::from_str(&body).map_err(|e| format!("{models_url} did not answer with JSON ({e}): is this an OpenAI-compatible server?"))?;
        let data = list["data"].as_array().cloned().unwrap_or_default();
        let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
        let entry = match &wanted {
            Some(w) => data.iter().find(|m| m["id"].as_str() == Some(w.as_str())).ok_or_else(|| format!("{base} does not serve the model \"{w}\" (404): it serves {}", ids.join(", ")))?,
            None => data.first().ok_or_else(|| format!("{models_url} lists no models"))?,
        };
        let model = entry["id"].as_str().unwrap_or_default().to_string();
        let owned_by = entry["owned_by"].as_str().unwrap_or("").to_string();
        let ours = owned_by == "deepseek-wgpu";
        let r = &entry["routing"];
        let shape = r.get("moe_layers").map(|layers| RoutingShape {
            layers: layers.as_array().map(|a| a.iter().filter_map(|l| l.as_u64().map(|l| l as usize)).collect()).unwrap_or_default(),
            n_experts: r["n_experts"].as_u64().unwrap_or(0) as usize,
            n_group: r["n_group"].as_u64().unwrap_or(1).max(1) as usize,
            topk_group: r["topk_group"].as_u64().unwrap_or(1) as usize,
            top_k: r["top_k"].as_u64().unwrap_or(0) as usize,
        });
        // the context: ours and llama-server's `context_length`/`meta.n_ctx_train`, vLLM's `max_model_len`
        let ctx = [entry.get("context_length"), entry.get("max_model_len"), entry.pointer("/meta/n_ctx_train")].into_iter().flatten().find_map(Value::as_u64).unwrap_or(0) as usize;
        let server = if ours { "deepseek-wgpu serve".to_string() } else if owned_by.is_empty() { "an OpenAI-compatible server".to_string() } else { format!("{owned_by}'s server") };
        let info = ModelInfo {
            dir: std::path::PathBuf::from(&base),
            shape: shape.clone().unwrap_or_else(|| RoutingShape { layers: Vec::new(), n_experts: 0, n_group: 1, topk_group: 1, top_k: 0 }),
            n_layers: r["n_layers"].as_u64().unwrap_or(0) as usize,
            vocab: 0,
            hidden: 0,
            ctx,
            weight_bytes: 0,
            cache_bytes_per_token: 0,
            cache_bytes_allocated: 0,
            attention: String::new(),
            cache_kind: "cache",
            adapter: String::new(),
            shared_device: false,
            defaults: remote_defaults(),
            remote: Some(RemoteInfo { base: base.clone(), model: model.clone(), server, ours, routing: ours && shape.is_some() }),
        };
        Ok((Remote { agent, base, key, model, shape, ours, next_position: 0, ctx }, info))
    }

    /// Stream the reply to `system` + `history` + `user`; `emit` gets the worker's events and
    /// the turn ends with `Done` (or `TurnFailed`). Stop (`cancel`) drops the connection.
    pub fn chat(&mut self, system: &str, history: Vec<Message>, user: &str, s: &Settings, cancel: &AtomicBool, emit: &mut dyn FnMut(WorkerEvent)) {
        let url = format!("{}/chat/completions", self.base);
        let body = self.request_body(system, history, user, s);
        let mut req = self.agent.post(&url).header("Content-Type", "application/json");
        if let Some(k) = &self.key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let t0 = Instant::now();
        let mut resp = match req.send(body.to_string().as_bytes()) {
            Ok(r) => r,
            Err(e) => return emit(WorkerEvent::TurnFailed(transport_error(&url, e))),
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            return emit(WorkerEvent::TurnFailed(status_error(&url, status, &body, self.key.is_some(), &self.model)));
        }
        // The body is read on its own thread, so Stop acts at once even while the server is
        // silent (a long prefill); dropping the receiver ends that thread at its next line,
        // which closes the connection (our server then cancels within a token).
        let (tx, rx) = mpsc::sync_channel::<Result<Option<String>, String>>(256);
        let reader = BufReader::new(resp.into_body().into_reader());
        let spawned = std::thread::Builder::new().name("remote stream".into()).spawn(move || read_sse(reader, &tx));
        if let Err(e) = spawned {
            return emit(WorkerEvent::TurnFailed(format!("cannot start the stream reader: {e}")));
        }
        let mut turn = Turn::new(self, t0);
        let stop = loop {
            if cancel.load(Ordering::Relaxed) {
                break Ok(StopReason::Cancelled);
            }
            match rx.recv_timeout(POLL) {
                Ok(Ok(Some(data))) if data.trim() == "[DONE]" => break Ok(turn.stop.clone().unwrap_or(StopReason::Eos)),
                Ok(Ok(Some(data))) => match serde_json::from_str::<Value>(&data) {
                    Ok(v) => {
                        if let Err(e) = turn.chunk(self, &v, emit) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(format!("{url} sent a stream event that is not JSON ({e}): {}", data.chars().take(200).collect::<String>())),
                },
                // a server that ends the stream without [DONE]
                Ok(Ok(None)) | Err(RecvTimeoutError::Disconnected) => match turn.stop.clone() {
                    Some(s) => break Ok(s),
                    None => break Err(format!("{url} closed the stream before the reply finished")),
                },
                Ok(Err(e)) => break Err(format!("the stream from {url} broke off: {e}")),
                Err(RecvTimeoutError::Timeout) => {}
            }
        };
        drop(rx);
        match stop {
            Ok(stop) => {
                turn.finish(self, emit);
                emit(WorkerEvent::Stats(turn.stats()));
                emit(WorkerEvent::Done { stop, assistant: Some(Message::new("assistant", &turn.answer)) });
            }
            Err(e) => emit(WorkerEvent::TurnFailed(e)),
        }
    }

    fn request_body(&self, system: &str, history: Vec<Message>, user: &str, s: &Settings) -> Value {
        let mut messages = Vec::new();
        if !system.trim().is_empty() {
            messages.push(json!({ "role": "system", "content": system }));
        }
        for m in history {
            messages.push(json!({ "role": m.role, "content": m.content }));
        }
        messages.push(json!({ "role": "user", "content": user }));
        let sp = &s.sample;
        let mut body = json!({
            "model": self.model, "messages": messages, "stream": true, "stream_options": { "include_usage": true },
            "max_tokens": s.max_tokens, "temperature": sp.temperature, "top_p": sp.top_p,
        });
        // extensions llama-server, vLLM and SGLang accept too; sent only when not at "off"
        if sp.top_k > 0 {
            body["top_k"] = json!(sp.top_k);
        }
        if sp.min_p > 0.0 {
            body["min_p"] = json!(sp.min_p);
        }
        if sp.repeat_penalty != 1.0 {
            body["repetition_penalty"] = json!(sp.repeat_penalty);
        }
        if let Some(seed) = s.seed {
            body["seed"] = json!(seed);
        }
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        if self.ours {
            body["routing"] = json!(true);
        }
        body
    }
}

/// Sampling defaults for a remote model (DeepSeek's recommendation for R1: temperature 0.6,
/// top-p 0.95); the server's own defaults are not visible through the API.
pub fn remote_defaults() -> Settings {
    Settings { sample: SampleParams { temperature: 0.6, top_p: 0.95, ..SampleParams::default() }, max_tokens: 1024, ..Settings::default() }
}

/// The `data:` payloads of an SSE body, one message each; `None` at the end of the body.
fn read_sse(reader: impl BufRead, tx: &mpsc::SyncSender<Result<Option<String>, String>>) {
    let mut data = String::new();
    for line in reader.lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        if line.is_empty() {
            if !data.is_empty() && tx.send(Ok(Some(std::mem::take(&mut data)))).is_err() {
                return; // the turn is over (Stop): dropping the reader closes the connection
            }
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
        // comments (`: ping`) and `event:`/`id:` lines carry nothing for chat
    }
    if !data.is_empty() && tx.send(Ok(Some(data))).is_err() {
        return;
    }
    let _ = tx.send(Ok(None));
}

/// One reply as its chunks arrive.
struct Turn {
    t0: Instant,
    first: Option<Instant>,
    last: Option<Instant>,
    tokens: usize,
    answer: String,
    split: ThinkSplit,
    /// the server split the reasoning out itself (`reasoning_content`)
    split_by_server: bool,
    stop: Option<StopReason>,
    usage: Option<Value>,
    ctx: usize,
    shape_layers: Vec<usize>,
}

impl Turn {
    fn new(r: &Remote, t0: Instant) -> Turn {
        let shape_layers = r.shape.as_ref().map(|s| s.layers.clone()).unwrap_or_default();
        Turn { t0, first: None, last: None, tokens: 0, answer: String::new(), split: ThinkSplit::default(), split_by_server: false, stop: None, usage: None, ctx: r.ctx, shape_layers }
    }

    fn chunk(&mut self, r: &mut Remote, v: &Value, emit: &mut dyn FnMut(WorkerEvent)) -> Result<(), String> {
        if let Some(e) = v.get("error") {
            return Err(format!("{} reported an error mid-stream: {}", r.base, server_message(&json!({ "error": e }).to_string())));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = v["choices"].get(0) else { return Ok(()) };
        let d = &choice["delta"];
        if let Some(routes) = d["routing"].as_array() {
            for p in routes {
                emit(WorkerEvent::Routing(self.route(p)));
            }
        }
        if let Some(t) = d.get("token").filter(|t| t.is_object()) {
            let kind = if t["kind"] == "reasoning" { TextKind::Reasoning } else { TextKind::Answer };
            let (id, position) = (t["id"].as_u64().unwrap_or(UNKNOWN_ID as u64) as u32, t["position"].as_u64().unwrap_or(0) as usize);
            self.token_seen();
            emit(WorkerEvent::Token { id, position, text: t["text"].as_str().unwrap_or("").to_string(), kind });
        }
        // vLLM's newer releases call it `reasoning`
        let reasoning = [d.get("reasoning_content"), d.get("reasoning")].into_iter().flatten().find_map(Value::as_str);
        if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
            self.split_by_server = true;
            self.text(r, TextKind::Reasoning, text.to_string(), emit);
        }
        if let Some(text) = d["content"].as_str().filter(|t| !t.is_empty()) {
            if self.split_by_server || r.ours {
                self.text(r, TextKind::Answer, text.to_string(), emit);
            } else {
                for piece in self.split.push(text) {
                    self.piece(r, piece, emit);
                }
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.stop = Some(match f {
                "length" => StopReason::MaxTokens,
                _ => StopReason::Eos,
            });
        }
        Ok(())
    }

    fn token_seen(&mut self) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.tokens += 1;
    }

    /// A text delta: for our server the token came in its own delta; for others each delta
    /// is shown as one chip (servers stream about a token per delta).
    fn text(&mut self, r: &mut Remote, kind: TextKind, text: String, emit: &mut dyn FnMut(WorkerEvent)) {
        if kind == TextKind::Answer {
            self.answer.push_str(&text);
        }
        if !r.ours {
            self.token_seen();
            emit(WorkerEvent::Token { id: UNKNOWN_ID, position: r.next_position, text: text.clone(), kind });
            r.next_position += 1;
        }
        emit(WorkerEvent::Text { kind, text });
    }

    fn piece(&mut self, r: &mut Remote, p: Piece, emit: &mut dyn FnMut(WorkerEvent)) {
        match p {
            Piece::Text(kind, text) => self.text(r, kind, text, emit),
            Piece::AnswerWasReasoning => {
                self.answer.clear();
                emit(WorkerEvent::AnswerWasReasoning);
            }
        }
    }

    /// End of stream: text the splitter held back (a partial tag) is text after all.
    fn finish(&mut self, r: &mut Remote, emit: &mut dyn FnMut(WorkerEvent)) {
        for p in self.split.finish() {
            self.piece(r, p, emit);
        }
    }

    fn route(&self, p: &Value) -> PositionRoute {
        let rows = |k: &str| p[k].as_array().cloned().unwrap_or_default();
        let (experts, weights) = (rows("experts"), rows("weights"));
        let layers = experts
            .iter()
            .zip(&weights)
            .enumerate()
            .map(|(i, (e, w))| LayerRoute {
                layer: self.shape_layers.get(i).copied().unwrap_or(i),
                experts: e.as_array().map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as u32)).collect()).unwrap_or_default(),
                weights: w.as_array().map(|a| a.iter().filter_map(|x| x.as_f64().map(|x| x as f32)).collect()).unwrap_or_default(),
            })
            .collect();
        PositionRoute { position: p["position"].as_u64().unwrap_or(0) as usize, token: p["token"].as_u64().unwrap_or(0) as u32, text: p["text"].as_str().unwrap_or("").to_string(), layers }
    }

    /// Usage as the server reported it; rates measured here (network included).
    fn stats(&self) -> Stats {
        let n = |k: &str| self.usage.as_ref().and_then(|u| u.pointer(k)).and_then(Value::as_u64).unwrap_or(0) as usize;
        let prompt = n("/prompt_tokens");
        let generated = match n("/completion_tokens") {
            0 => self.tokens,
            c => c,
        };
        let secs = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64().max(1e-9);
        let prefill = self.first.map_or(0.0, |f| prompt as f64 / secs(self.t0, f));
        let decode = match (self.first, self.last) {
            (Some(a), Some(b)) if self.tokens > 1 => (self.tokens - 1) as f64 / secs(a, b),
            _ => 0.0,
        };
        Stats { prompt_tokens: prompt, reused_tokens: n("/prompt_tokens_details/cached_tokens"), prefill_tokens_per_s: prefill, generated_tokens: generated, decode_tokens_per_s: decode, context_used: prompt + generated, context_max: self.ctx, cache_bytes_used: 0, cache_bytes_allocated: 0, expert_cache: None }
    }
}

/// What [`ThinkSplit`] makes of content.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(TextKind, String),
    /// a `</think>` came with no `<think>` before it: the prompt had opened the block (R1's
    /// template does), so everything so far was reasoning, not answer
    AnswerWasReasoning,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum Mode {
    /// no tag seen yet: answer, unless a `</think>` turns up
    #[default]
    Undecided,
    Reasoning,
    Answer,
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// `<think>` … `</think>` in the content of servers that do not split the reasoning out
/// (tags may be cut across deltas; whitespace at the start of a section is dropped).
#[derive(Default)]
pub struct ThinkSplit {
    mode: Mode,
    pending: String,
    /// text of the current section has been emitted (leading whitespace is dropped until then)
    started: bool,
}

impl ThinkSplit {
    pub fn push(&mut self, delta: &str) -> Vec<Piece> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        loop {
            let tags: &[&str] = match self.mode {
                Mode::Undecided => &[OPEN, CLOSE],
                Mode::Reasoning => &[CLOSE],
                Mode::Answer => &[],
            };
            let pending = &self.pending;
            let hit = tags.iter().filter_map(|&t| pending.find(t).map(|i| (i, t))).min();
            let Some((i, tag)) = hit else {
                // hold back the longest suffix that could start a tag
                let keep = tags.iter().flat_map(|&t| (1..t.len()).filter(move |&n| pending.ends_with(&t[..n]))).max().unwrap_or(0);
                let cut = pending.len() - keep;
                let ready: String = self.pending.drain(..cut).collect();
                self.emit(ready, &mut out);
                return out;
            };
            let before = self.pending[..i].to_string();
            self.pending.drain(..i + tag.len());
            if tag == CLOSE && self.mode == Mode::Undecided {
                out.push(Piece::AnswerWasReasoning);
                self.mode = Mode::Reasoning;
            }
            self.emit(before, &mut out);
            self.mode = if tag == OPEN { Mode::Reasoning } else { Mode::Answer };
            self.started = false;
        }
    }

    /// End of stream: what was held back is text.
    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        self.emit(rest, &mut out);
        out
    }

    fn emit(&mut self, text: String, out: &mut Vec<Piece>) {
        let text = if self.started { text } else { text.trim_start().to_string() };
        if text.is_empty() {
            return;
        }
        self.started = true;
        let kind = if self.mode == Mode::Reasoning { TextKind::Reasoning } else { TextKind::Answer };
        out.push(Piece::Text(kind, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(deltas: &[&str]) -> Vec<Piece> {
        let mut s = ThinkSplit::default();
        let mut out: Vec<Piece> = deltas.iter().flat_map(|d| s.push(d)).collect();
        out.extend(s.finish());
        // merge neighbouring text of one kind, as the transcript shows it
        let mut merged: Vec<Piece> = Vec::new();
        for p in out {
            match (merged.last_mut(), p) {
                (Some(Piece::Text(k, t)), Piece::Text(k2, t2)) if *k == k2 => t.push_str(&t2),
                (_, p) => merged.push(p),
            }
        }
        merged
    }

    #[test]
    fn think_tags_split_content_even_when_cut() {
        use TextKind::*;
        let r = |t: &str| Piece::Text(Reasoning, t.into());
        let a = |t: &str| Piece::Text(Answer, t.into());
        assert_eq!(run(&["<think>\nadd", " them</th", "ink>\n\n", "936"]), vec![r("add them"), a("936")]);
        assert_eq!(run(&["<", "thi", "nk>x</think>y"]), vec![r("x"), a("y")]);
        // the prompt opened the block: a lone </think> makes what came before reasoning
        assert_eq!(run(&["add ", "them\n</", "think>\n\n936"]), vec![a("add them\n"), Piece::AnswerWasReasoning, a("936")]);
        assert_eq!(run(&["add them</think>936"]), vec![Piece::AnswerWasReasoning, r("add them"), a("936")]);
        // no tags: all answer, nothing held back at the end; a "<" that starts no tag is text
        assert_eq!(run(&["1 <", " 2"]), vec![a("1 < 2")]);
        assert_eq!(run(&["a <thi"]), vec![a("a <thi")]);
        // after the answer started, tags are text
        assert_eq!(run(&["<think>r</think>a <think>"]), vec![r("r"), a("a <think>")]);
    }

    #[test]
    fn urls_and_error_messages() {
        assert_eq!(parse_url("http://127.0.0.1:8080"), ("http://127.0.0.1:8080/v1".into(), None));
        assert_eq!(parse_url(" http://h:8000/v1/ "), ("http://h:8000/v1".into(), None));
        assert_eq!(parse_url("https://x.org/api/v1#deepseek-ai/DeepSeek-R1-0528"), ("https://x.org/api/v1".into(), Some("deepseek-ai/DeepSeek-R1-0528".into())));
        assert!(is_url("https://a") && !is_url("/models/r1") && !is_url("tests/fixtures/chat_tiny"));
        let u = "http://h/v1/chat/completions";
        assert_eq!(status_error(u, 401, r#"{"error": {"message": "incorrect API key"}}"#, true, "m"), format!("{u} refused the API key (401): incorrect API key"));
        assert!(status_error(u, 401, "", false, "m").contains("needs an API key"));
        assert_eq!(status_error(u, 404, r#"{"object": "error", "message": "The model `x` does not exist."}"#, false, "x"), format!("{u} does not serve the model \"x\" (404): The model `x` does not exist."));
        assert!(status_error("http://h/v1/models", 404, "Not Found", false, "").contains("usually lives under /v1"));
        assert_eq!(server_message(r#"{"detail": "Not authenticated"}"#), "Not authenticated");
    }
}
