//! The endpoints: request parsing and checks, the prompt, a slot's generation on a blocking
//! thread, and its events turned into OpenAI's responses (one JSON, or SSE chunks).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::api::{self, ChatRequest, Common, CompletionRequest, Prompt};
use super::error::{from_json_error, ApiError};
use super::tools::{self, Piece, Syntax, ToolCall, ToolStream};
use super::{CancelOnDrop, Engine, Lease};
use crate::chat::{prompt_opens_reasoning, Message, TextKind};
use crate::grammar::{Constraint, Grammar};
use crate::session::{Event, LayerRoute, Reply, SessionError, Settings, StopMatcher, StopReason, TokenLogprob};

type Eng = State<Arc<Engine>>;

pub fn router(engine: Arc<Engine>) -> Router {
    let limit = engine.cfg.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/apply-template", post(apply_template))
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .layer(axum::middleware::from_fn_with_state(engine.clone(), auth))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(engine)
}

async fn auth(State(e): Eng, req: Request, next: Next) -> Response {
    if let Some(key) = &e.cfg.api_key {
        if req.uri().path() != "/health" {
            let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            match given {
                None => return ApiError::unauthorized("missing API key: send the header `Authorization: Bearer KEY`").into_response(),
                Some(k) if k != key => return ApiError::unauthorized("incorrect API key").into_response(),
                Some(_) => {}
            }
        }
    }
    next.run(req).await
}

async fn health(State(e): Eng) -> Json<Value> {
    let (idle, queued) = e.load();
    let c = &e.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Json(json!({
        "status": "ok", "model": e.cfg.model_id, "slots": e.slots, "slots_idle": idle, "queued": queued,
        "requests": n(&c.requests), "generated_tokens": n(&c.generated_tokens), "cancelled": n(&c.cancelled),
        "tokens_after_cancel": n(&c.tokens_after_cancel), "rejected_busy": n(&c.rejected_busy),
    }))
}

fn model_json(e: &Engine) -> Value {
    let mut v = json!({ "id": e.cfg.model_id, "object": "model", "created": e.created, "owned_by": "deepseek-wgpu", "context_length": e.ctx });
    if let Some(r) = &e.routing {
        // extension: the MoE shape a client needs to lay out streamed routing
        v["routing"] = r.clone();
    }
    v
}

async fn models(State(e): Eng) -> Json<Value> {
    Json(json!({ "object": "list", "data": [model_json(&e)] }))
}

async fn model(State(e): Eng, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if id != e.cfg.model_id {
        return Err(ApiError::model_not_found(&id, &e.cfg.model_id));
    }
    Ok(Json(model_json(&e)))
}

/// The body as JSON, then as `T` (400 naming a mistyped field; 413 past the size limit).
fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let param = (path != ".").then_some(path);
        match &param {
            Some(p) => ApiError::invalid(param.clone(), format!("invalid value for `{p}`: {msg}")),
            None => ApiError::invalid(None, format!("invalid request: {msg}")),
        }
        .with_code("invalid_type")
    })
}

fn body_json(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|r| ApiError { status: r.status(), message: r.body_text(), kind: "invalid_request_error", param: None, code: Some("request_too_large") })?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let v: Value = serde_path_to_error::deserialize(&mut de).map_err(from_json_error)?;
    if !v.is_object() {
        return Err(ApiError::invalid(None, "the request body must be a JSON object"));
    }
    Ok(v)
}

fn check_model(e: &Engine, c: &Common) -> Result<(), ApiError> {
    match &c.model {
        Some(m) if *m != e.cfg.model_id => Err(ApiError::model_not_found(m, &e.cfg.model_id)),
        _ => Ok(()),
    }
}

/// A chat request's prompt: its messages (tools added) through the chat template.
struct ChatPrompt {
    text: String,
    ids: Vec<u32>,
    /// the template opened `<think>` for the model
    opened: bool,
}

fn chat_prompt(e: &Engine, req: &ChatRequest) -> Result<ChatPrompt, ApiError> {
    let mut msgs = api::messages(&req.messages)?;
    let template = e.tokenizer.chat_template.as_deref().unwrap_or("");
    let has_calls = msgs.iter().any(|m| m.tool_calls.is_some());
    let has_results = msgs.iter().any(|m| m.role == "tool");
    if (has_calls && !template.contains("tool_calls")) || (has_results && !template.contains("'tool'") && !template.contains("\"tool\"")) {
        return Err(ApiError::invalid(
            Some("messages".into()),
            "this model's chat template does not render tool calls and tool results, so they would be dropped from the prompt; start the server with --chat-template FILE (a template with tool sections, e.g. DeepSeek-R1-0528's)",
        ));
    }
    let tools = tool_list(req)?;
    let mut tools_var = None;
    if let Some(tools) = tools {
        if template.contains("tools") {
            tools_var = Some(Value::Array(tools));
        } else {
            // The template has no place for tool definitions (R1-0528's official one has none):
            // describe them in the system prompt, in the call format the model was trained on.
            let text = tools_system_prompt(&tools, req.tool_choice.as_ref());
            match msgs.iter_mut().find(|m| m.role == "system") {
                Some(m) => m.content = format!("{}\n\n{text}", m.content),
                None => msgs.insert(0, Message::new("system", &text)),
            }
        }
    }
    let vars = req.chat_template_kwargs.clone().unwrap_or_default();
    let text = e.tokenizer.render_chat_tools(&msgs, true, tools_var.as_ref(), &vars).map_err(|err| ApiError::invalid(Some("messages".into()), err.to_string()))?;
    let ids = e.tokenizer.encode(&text, false).map_err(|err| ApiError::invalid(Some("messages".into()), err.to_string()))?;
    let opened = prompt_opens_reasoning(&text);
    Ok(ChatPrompt { text, ids, opened })
}

/// `tools` after `tool_choice`: none when the choice is `"none"`; each must be a function.
fn tool_list(req: &ChatRequest) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        if req.tool_choice.as_ref().is_some_and(|c| c != "none" && c != "auto") {
            return Err(ApiError::invalid(Some("tool_choice".into()), "tool_choice names a tool but no tools are given"));
        }
        return Ok(None);
    };
    for (i, t) in tools.iter().enumerate() {
        if t.get("type").and_then(|x| x.as_str()) != Some("function") || t.pointer("/function/name").and_then(|x| x.as_str()).is_none() {
            return Err(ApiError::invalid(Some(format!("tools[{i}]")), "a tool must be {\"type\": \"function\", \"function\": {\"name\": …, \"parameters\": …}}"));
        }
    }
    match req.tool_choice.as_ref() {
        None => Ok(Some(tools.clone())),
        Some(c) if c == "none" => Ok(None),
        Some(c) if c == "auto" || c == "required" => Ok(Some(tools.clone())),
        Some(c) => {
            let name = c.pointer("/function/name").and_then(|x| x.as_str());
            match name {
                Some(n) if tools.iter().any(|t| t.pointer("/function/name").and_then(|x| x.as_str()) == Some(n)) => Ok(Some(tools.clone())),
                Some(n) => Err(ApiError::invalid(Some("tool_choice".into()), format!("tool_choice names '{n}', which is not among the tools"))),
                None => Err(ApiError::invalid(Some("tool_choice".into()), "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}")),
            }
        }
    }
}

/// The grammar of the answer when `tool_choice` forces a call ("required", or a named
/// function), in the call format of the model's template.
fn forced_calls(e: &Engine, req: &ChatRequest) -> Option<Constraint> {
    let list = req.tools.as_ref().filter(|t| !t.is_empty())?;
    let name = match req.tool_choice.as_ref()? {
        c if c == "required" => None,
        c => Some(c.pointer("/function/name")?.as_str()?),
    };
    let template = e.tokenizer.chat_template.as_deref().unwrap_or("");
    let writable = |m: &str| e.tokenizer.encode(m, false).ok().and_then(|ids| e.tokenizer.decode(&ids).ok()).is_some_and(|t| t == m);
    let syntax = Syntax::of(template, [tools::CALLS_BEGIN, tools::CALL_BEGIN, tools::SEP].into_iter().all(writable));
    Some(Constraint::Lark(tools::forced(list, name, syntax)))
}

/// The request's constraint on the answer (a forced tool call over `response_format`),
/// compiled once here so a bad schema is the client's 400 before a slot is taken.
fn constraint(e: &Engine, req: &ChatRequest, opened: bool) -> Result<Option<(Constraint, Arc<Grammar>)>, ApiError> {
    let (c, param) = match (forced_calls(e, req), api::response_format(req.response_format.as_ref())?) {
        (Some(c), _) => (c, "tools"),
        (None, Some(c)) => (c, "response_format"),
        (None, None) => return Ok(None),
    };
    let g = e.grammar()?;
    if let Err(err) = g.guide(&c, opened) {
        return Err(ApiError::invalid(Some(param.into()), format!("{param}: {err}")).with_code("invalid_grammar"));
    }
    Ok(Some((c, g)))
}

fn tools_system_prompt(tools: &[Value], choice: Option<&Value>) -> String {
    use super::tools::{CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP};
    let mut s = format!(
        "You can call functions. To call one, reply with exactly:\n{CALLS_BEGIN}{CALL_BEGIN}function{SEP}FUNCTION_NAME\n```json\n{{\"argument\": \"value\"}}\n```{CALL_END}{CALLS_END}\nThe arguments must be valid JSON.\n\n## Functions\n"
    );
    for t in tools {
        if let Some(f) = t.get("function") {
            s.push_str(&format!("\n```json\n{f}\n```\n"));
        }
    }
    match choice {
        Some(c) if c == "required" => s.push_str("\nYou must call at least one function."),
        Some(c) => {
            if let Some(n) = c.pointer("/function/name").and_then(|x| x.as_str()) {
                s.push_str(&format!("\nYou must call the function {n}."));
            }
        }
        None => {}
    }
    s
}

fn context_error(e: &Engine, n: usize, param: &str) -> ApiError {
    ApiError::invalid(
        Some(param.into()),
        format!("This model's maximum context length is {} tokens, but the prompt is {n} tokens (and the reply needs at least one more). Shorten the prompt or restart the server with a larger --ctx.", e.ctx),
    )
    .with_code("context_length_exceeded")
}

/// Settings for a prompt of `n` ids: `max_tokens` within what the context has left.
fn fit(e: &Engine, mut s: Settings, n: usize, param: &str) -> Result<Settings, ApiError> {
    if n >= e.ctx {
        return Err(context_error(e, n, param));
    }
    s.max_tokens = s.max_tokens.min(e.ctx - n);
    Ok(s)
}

async fn apply_template(State(e): Eng, body: Result<Bytes, BytesRejection>) -> Result<Json<Value>, ApiError> {
    let v = body_json(body)?;
    let req: ChatRequest = parse(&v)?;
    let p = chat_prompt(&e, &req)?;
    Ok(Json(json!({ "prompt": p.text, "tokens": p.ids.len() })))
}

/// What a slot's thread sends back while it generates.
enum Out {
    Token { id: u32, position: usize, text: String, kind: TextKind, logprob: Option<TokenLogprob> },
    Text { kind: TextKind, text: String },
    /// a position fed through the model (only for requests that ask for routing)
    Routing { position: usize, token: u32, layers: Vec<LayerRoute> },
    Done(Result<Reply, SessionError>),
}

struct Job {
    ids: Vec<u32>,
    opened: bool,
    settings: Settings,
    logprobs: Option<usize>,
    ignore_eos: bool,
    routing: bool,
    /// the shared grammar engine, for a constrained request
    grammar: Option<Arc<Grammar>>,
}

/// Run `job` on the leased slot's thread; the receiver gets its events, then `Done`.
fn start(e: &Arc<Engine>, mut lease: Lease, job: Job) -> (mpsc::Receiver<Out>, CancelOnDrop) {
    let (tx, rx) = mpsc::channel(64);
    let cancel = Arc::new(AtomicBool::new(false));
    let guard = CancelOnDrop(cancel.clone());
    let e = e.clone();
    e.counters.requests.fetch_add(1, Ordering::Relaxed);
    tokio::task::spawn_blocking(move || {
        let s = lease.session();
        s.logprobs = job.logprobs;
        s.ignore_eos = job.ignore_eos;
        if job.grammar.is_some() {
            s.grammar = job.grammar;
        }
        let mut pending: Option<TokenLogprob> = None;
        let r = s.generate(&job.ids, job.opened, &job.settings, &cancel, &mut |ev| {
            let out = match ev {
                Event::Logprob(lp) => {
                    pending = Some(lp.clone());
                    return;
                }
                Event::Token { id, position, text, kind } => {
                    e.counters.generated_tokens.fetch_add(1, Ordering::Relaxed);
                    if cancel.load(Ordering::Relaxed) {
                        e.counters.tokens_after_cancel.fetch_add(1, Ordering::Relaxed);
                    }
                    Out::Token { id: *id, position: *position, text: text.clone(), kind: *kind, logprob: pending.take() }
                }
                Event::Text { kind, text } => Out::Text { kind: *kind, text: text.clone() },
                Event::Routing { position, token, layers } if job.routing => Out::Routing { position: *position, token: *token, layers: layers.clone() },
                _ => return,
            };
            if tx.blocking_send(out).is_err() {
                // the client is gone: stop at the next token
                cancel.store(true, Ordering::Relaxed);
            }
        });
        if matches!(&r, Ok(reply) if reply.stop == StopReason::Cancelled) {
            e.counters.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        drop(lease);
        let _ = tx.blocking_send(Out::Done(r));
    });
    (rx, guard)
}

fn session_error(err: SessionError) -> ApiError {
    match err {
        SessionError::Input(m) => ApiError::invalid(None, m),
        e => ApiError::internal(e.to_string()),
    }
}

fn finish_reason(stop: &StopReason, calls: bool) -> &'static str {
    match stop {
        _ if calls => "tool_calls",
        StopReason::MaxTokens | StopReason::ContextFull => "length",
        _ => "stop",
    }
}

fn usage(r: &Reply, reasoning_tokens: usize) -> Value {
    let (p, c) = (r.stats.prompt_tokens, r.ids.len());
    json!({
        "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
        "prompt_tokens_details": { "cached_tokens": r.stats.reused_tokens },
        "completion_tokens_details": { "reasoning_tokens": reasoning_tokens },
    })
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn request_id(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{prefix}-{:x}{:04x}", now(), N.fetch_add(1, Ordering::Relaxed) & 0xffff)
}

fn token_text(e: &Engine, id: u32) -> String {
    e.tokenizer.decode(&[id]).unwrap_or_default()
}

/// One entry of OpenAI's `logprobs.content`.
fn logprob_json(e: &Engine, lp: &TokenLogprob) -> Value {
    let entry = |id: u32, logprob: f32| {
        let t = token_text(e, id);
        json!({ "token": t, "logprob": logprob, "bytes": t.as_bytes() })
    };
    let mut v = entry(lp.id, lp.logprob);
    v["top_logprobs"] = lp.top.iter().map(|&(id, l)| entry(id, l)).collect();
    v
}

/// A chat reply as it forms: reasoning, answer (tool calls taken out), token counts.
struct ChatState {
    tools: ToolStream,
    calls: usize,
    reasoning_tokens: usize,
    logprobs: Vec<Value>,
}

enum Delta {
    Reasoning(String),
    Content(String),
    Call(usize, ToolCall),
}

impl ChatState {
    fn new() -> Self {
        ChatState { tools: ToolStream::default(), calls: 0, reasoning_tokens: 0, logprobs: Vec::new() }
    }

    fn answer(&mut self, pieces: Vec<Piece>, out: &mut Vec<Delta>) {
        for p in pieces {
            match p {
                Piece::Text(t) => out.push(Delta::Content(t)),
                Piece::Call(c) => {
                    out.push(Delta::Call(self.calls, c));
                    self.calls += 1;
                }
            }
        }
    }

    /// The deltas an event makes (logprobs are recorded by the caller, which has the tokenizer).
    fn step(&mut self, ev: &Out) -> Vec<Delta> {
        let mut out = Vec::new();
        match ev {
            Out::Token { kind, .. } => {
                if *kind == TextKind::Reasoning {
                    self.reasoning_tokens += 1;
                }
            }
            Out::Text { kind: TextKind::Reasoning, text } => out.push(Delta::Reasoning(text.clone())),
            Out::Text { kind: TextKind::Answer, text } => {
                let pieces = self.tools.push(text);
                self.answer(pieces, &mut out);
            }
            Out::Done(_) => {
                let pieces = self.tools.finish();
                self.answer(pieces, &mut out);
            }
            Out::Routing { .. } => {}
        }
        out
    }
}

fn call_json(id: &str, i: usize, c: &ToolCall) -> Value {
    json!({ "index": i, "id": format!("call_{id}_{i}"), "type": "function", "function": { "name": c.name, "arguments": c.arguments } })
}

async fn chat(State(e): Eng, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let v = body_json(body)?;
    let req: ChatRequest = parse(&v)?;
    let common: Common = parse(&v)?;
    check_model(&e, &common)?;
    let logprobs = req.top_logprobs()?;
    let (max, max_param) = req.max_tokens(&common);
    let settings = common.settings(&e.defaults, max, max_param)?;
    let prompt = chat_prompt(&e, &req)?;
    let mut settings = fit(&e, settings, prompt.ids.len(), "messages")?;
    if req.routing && !common.stream {
        return Err(ApiError::invalid(Some("routing".into()), "routing (a deepseek-wgpu extension) is streamed: set stream: true"));
    }
    let constraint = constraint(&e, &req, prompt.opened)?;
    let grammar = constraint.map(|(c, g)| {
        settings.constraint = Some(c);
        g
    });
    let lease = e.acquire(&prompt.ids).await?;
    let job = Job { ids: prompt.ids, opened: prompt.opened, settings, logprobs, ignore_eos: common.ignore_eos, routing: req.routing, grammar };
    let (rx, guard) = start(&e, lease, job);
    let (id, created) = (request_id("chatcmpl"), now());
    if common.stream {
        Ok(chat_stream(e, rx, guard, id, created, common.include_usage(), logprobs.is_some(), req.routing))
    } else {
        chat_whole(e, rx, guard, id, created, logprobs.is_some()).await
    }
}

async fn chat_whole(e: Arc<Engine>, mut rx: mpsc::Receiver<Out>, _guard: CancelOnDrop, id: String, created: u64, logprobs: bool) -> Result<Response, ApiError> {
    let mut st = ChatState::new();
    let (mut reasoning, mut content, mut calls) = (String::new(), String::new(), Vec::new());
    while let Some(ev) = rx.recv().await {
        if let Out::Token { logprob: Some(lp), .. } = &ev {
            st.logprobs.push(logprob_json(&e, lp));
        }
        for d in st.step(&ev) {
            match d {
                Delta::Reasoning(t) => reasoning.push_str(&t),
                Delta::Content(t) => content.push_str(&t),
                Delta::Call(i, c) => calls.push(call_json(&id, i, &c)),
            }
        }
        if let Out::Done(r) = ev {
            let reply = r.map_err(session_error)?;
            let mut message = json!({ "role": "assistant", "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(content) } });
            if !reasoning.is_empty() {
                message["reasoning_content"] = Value::String(reasoning);
            }
            if !calls.is_empty() {
                message["tool_calls"] = Value::Array(calls.clone());
            }
            let body = json!({
                "id": id, "object": "chat.completion", "created": created, "model": e.cfg.model_id,
                "choices": [{ "index": 0, "message": message, "logprobs": if logprobs { json!({ "content": st.logprobs }) } else { Value::Null }, "finish_reason": finish_reason(&reply.stop, !calls.is_empty()) }],
                "usage": usage(&reply, st.reasoning_tokens),
            });
            return Ok(Json(body).into_response());
        }
    }
    Err(ApiError::internal("the generation ended without a result"))
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn sse_response(stream: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal("response").into_response())
}

struct ChatStreamState {
    e: Arc<Engine>,
    rx: mpsc::Receiver<Out>,
    _guard: CancelOnDrop,
    st: ChatState,
    id: String,
    created: u64,
    include_usage: bool,
    logprobs: bool,
    /// stream `delta.token` and `delta.routing` (the extension)
    routing: bool,
    /// logprob entries not yet sent
    lp_sent: usize,
    started: bool,
    done: bool,
}

impl ChatStreamState {
    fn chunk(&mut self, delta: Value, finish: Option<&str>) -> Value {
        let lp = if self.logprobs && self.lp_sent < self.st.logprobs.len() {
            let c = self.st.logprobs[self.lp_sent..].to_vec();
            self.lp_sent = self.st.logprobs.len();
            json!({ "content": c })
        } else {
            Value::Null
        };
        let mut v = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.e.cfg.model_id,
            "choices": [{ "index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish }],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    /// The SSE bytes for the next event (`None`: the stream is over).
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            let c = self.chunk(json!({ "role": "assistant", "content": "" }), None);
            return Some(sse(&c));
        }
        let Some(ev) = self.rx.recv().await else {
            self.done = true;
            let err = ApiError::internal("the generation ended without a result");
            return Some(Bytes::from(format!("data: {}\n\ndata: [DONE]\n\n", err.body())));
        };
        if let Out::Token { logprob: Some(lp), .. } = &ev {
            self.st.logprobs.push(logprob_json(&self.e, lp));
        }
        if self.routing {
            if let Some(delta) = routing_delta(&self.e, &ev) {
                let c = self.chunk(delta, None);
                out.push_str(&format!("data: {c}\n\n"));
            }
        }
        for d in self.st.step(&ev) {
            let delta = match d {
                Delta::Reasoning(t) => json!({ "reasoning_content": t }),
                Delta::Content(t) => json!({ "content": t }),
                Delta::Call(i, c) => json!({ "tool_calls": [call_json(&self.id, i, &c)] }),
            };
            let c = self.chunk(delta, None);
            out.push_str(&format!("data: {c}\n\n"));
        }
        if let Out::Done(r) = ev {
            self.done = true;
            match r {
                Ok(reply) => {
                    let c = self.chunk(json!({}), Some(finish_reason(&reply.stop, self.st.calls > 0)));
                    out.push_str(&format!("data: {c}\n\n"));
                    if self.include_usage {
                        let u = json!({ "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.e.cfg.model_id, "choices": [], "usage": usage(&reply, self.st.reasoning_tokens) });
                        out.push_str(&format!("data: {u}\n\n"));
                    }
                }
                Err(err) => out.push_str(&format!("data: {}\n\n", session_error(err).body())),
            }
            out.push_str("data: [DONE]\n\n");
        }
        Some(Bytes::from(out))
    }
}

/// The extension's delta for a generated token (`token`) or a position fed (`routing`: a
/// list, one entry per position, experts and gate weights per MoE layer in `/v1/models`'
/// `routing.moe_layers` order).
fn routing_delta(e: &Engine, ev: &Out) -> Option<Value> {
    match ev {
        Out::Token { id, position, text, kind, .. } => {
            let kind = match kind {
                TextKind::Reasoning => "reasoning",
                TextKind::Answer => "answer",
            };
            Some(json!({ "token": { "id": id, "position": position, "text": text, "kind": kind } }))
        }
        Out::Routing { position, token, layers } => {
            let experts: Vec<&Vec<u32>> = layers.iter().map(|l| &l.experts).collect();
            // f32's shortest decimal form (serde would print the f64 it widens to: 17 digits)
            let short = |w: &f32| format!("{w}").parse::<f64>().unwrap_or(0.0);
            let weights: Vec<Vec<f64>> = layers.iter().map(|l| l.weights.iter().map(short).collect()).collect();
            Some(json!({ "routing": [{ "position": position, "token": token, "text": token_text(e, *token), "experts": experts, "weights": weights }] }))
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn chat_stream(e: Arc<Engine>, rx: mpsc::Receiver<Out>, guard: CancelOnDrop, id: String, created: u64, include_usage: bool, logprobs: bool, routing: bool) -> Response {
    let state = ChatStreamState { e, rx, _guard: guard, st: ChatState::new(), id, created, include_usage, logprobs, routing, lp_sent: 0, started: false, done: false };
    let stream = futures_util::stream::unfold(state, |mut s| async move { s.next().await.map(|b| (Ok::<_, Infallible>(b), s)) });
    sse_response(stream)
}

async fn completions(State(e): Eng, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let v = body_json(body)?;
    let req: CompletionRequest = parse(&v)?;
    let common: Common = parse(&v)?;
    check_model(&e, &common)?;
    let prompt = match &req.prompt {
        Prompt::One(p) => p.clone(),
        Prompt::Many(v) if v.len() == 1 => v[0].clone(),
        Prompt::Many(v) => return Err(ApiError::invalid(Some("prompt".into()), format!("{} prompts given; one per request is supported", v.len()))),
    };
    if req.echo || req.suffix.is_some() {
        return Err(ApiError::invalid(Some(if req.echo { "echo" } else { "suffix" }.into()), "echo and suffix are not supported"));
    }
    let logprobs = match req.logprobs {
        Some(n) if n > 5 => return Err(ApiError::invalid(Some("logprobs".into()), format!("logprobs {n} must be between 0 and 5"))),
        n => n.map(|n| n as usize),
    };
    let settings = common.settings(&e.defaults, common.max_tokens.or(Some(16)), "max_tokens")?;
    let ids = e.tokenizer.encode_prompt(&prompt).map_err(|err| ApiError::invalid(Some("prompt".into()), err.to_string()))?;
    if ids.is_empty() {
        return Err(ApiError::invalid(Some("prompt".into()), "the prompt is empty"));
    }
    let settings = fit(&e, settings, ids.len(), "prompt")?;
    let stops = settings.stop.clone();
    let lease = e.acquire(&ids).await?;
    let job = Job { ids, opened: false, settings, logprobs, ignore_eos: common.ignore_eos, routing: false, grammar: None };
    let (rx, guard) = start(&e, lease, job);
    let st = CompletionState { e, rx, _guard: guard, id: request_id("cmpl"), created: now(), stop: StopMatcher::new(&stops), include_usage: common.include_usage(), logprobs: logprobs.is_some(), lp: LegacyLogprobs::default(), text_len: 0, done: false };
    if common.stream {
        let stream = futures_util::stream::unfold(st, |mut s| async move { s.next().await.map(|b| (Ok::<_, Infallible>(b), s)) });
        Ok(sse_response(stream))
    } else {
        st.whole().await
    }
}

/// `/v1/completions`' legacy logprobs: parallel lists per token.
#[derive(Default)]
struct LegacyLogprobs {
    tokens: Vec<String>,
    token_logprobs: Vec<f32>,
    top: Vec<serde_json::Map<String, Value>>,
    offsets: Vec<usize>,
}

impl LegacyLogprobs {
    fn take(&mut self) -> Value {
        let l = std::mem::take(self);
        json!({ "tokens": l.tokens, "token_logprobs": l.token_logprobs, "top_logprobs": l.top, "text_offset": l.offsets })
    }
}

struct CompletionState {
    e: Arc<Engine>,
    rx: mpsc::Receiver<Out>,
    _guard: CancelOnDrop,
    id: String,
    created: u64,
    /// the session stops on these too; this cuts the streamed text the same way
    stop: StopMatcher,
    include_usage: bool,
    logprobs: bool,
    lp: LegacyLogprobs,
    text_len: usize,
    done: bool,
}

impl CompletionState {
    fn record(&mut self, id: u32, lp: &Option<TokenLogprob>) {
        if let (true, Some(lp)) = (self.logprobs, lp) {
            self.lp.tokens.push(token_text(&self.e, id));
            self.lp.token_logprobs.push(lp.logprob);
            self.lp.top.push(lp.top.iter().map(|&(i, l)| (token_text(&self.e, i), json!(l))).collect());
            self.lp.offsets.push(self.text_len);
        }
    }

    fn chunk(&mut self, text: &str, finish: Option<&str>) -> Value {
        let lp = if self.logprobs { self.lp.take() } else { Value::Null };
        json!({ "id": self.id, "object": "text_completion", "created": self.created, "model": self.e.cfg.model_id, "choices": [{ "index": 0, "text": text, "logprobs": lp, "finish_reason": finish }] })
    }

    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let Some(ev) = self.rx.recv().await else {
            self.done = true;
            return Some(Bytes::from(format!("data: {}\n\ndata: [DONE]\n\n", ApiError::internal("the generation ended without a result").body())));
        };
        match ev {
            Out::Token { id, text, logprob, .. } => {
                self.record(id, &logprob);
                let (t, _) = self.stop.push(&text);
                self.text_len += t.len();
                Some(if t.is_empty() && !self.logprobs { Bytes::new() } else { sse(&self.chunk(&t, None)) })
            }
            Out::Text { .. } | Out::Routing { .. } => Some(Bytes::new()),
            Out::Done(r) => {
                self.done = true;
                let mut out = String::new();
                match r {
                    Ok(reply) => {
                        let rest = if matches!(reply.stop, StopReason::StopString(_)) { String::new() } else { self.stop.finish() };
                        let c = self.chunk(&rest, Some(finish_reason(&reply.stop, false)));
                        out.push_str(&format!("data: {c}\n\n"));
                        if self.include_usage {
                            let u = json!({ "id": self.id, "object": "text_completion", "created": self.created, "model": self.e.cfg.model_id, "choices": [], "usage": usage(&reply, 0) });
                            out.push_str(&format!("data: {u}\n\n"));
                        }
                    }
                    Err(err) => out.push_str(&format!("data: {}\n\n", session_error(err).body())),
                }
                out.push_str("data: [DONE]\n\n");
                Some(Bytes::from(out))
            }
        }
    }

    async fn whole(mut self) -> Result<Response, ApiError> {
        while let Some(ev) = self.rx.recv().await {
            match ev {
                Out::Token { id, text, logprob, .. } => {
                    self.record(id, &logprob);
                    self.text_len += text.len();
                }
                Out::Text { .. } | Out::Routing { .. } => {}
                Out::Done(r) => {
                    let reply = r.map_err(session_error)?;
                    let lp = if self.logprobs { self.lp.take() } else { Value::Null };
                    return Ok(Json(json!({
                        "id": self.id, "object": "text_completion", "created": self.created, "model": self.e.cfg.model_id,
                        "choices": [{ "index": 0, "text": reply.text, "logprobs": lp, "finish_reason": finish_reason(&reply.stop, false) }],
                        "usage": usage(&reply, 0),
                    }))
                    .into_response());
                }
            }
        }
        Err(ApiError::internal("the generation ended without a result"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply whose answer holds R1-0528 tool calls, as the slot's text events deliver it
    /// (cut mid-marker): the content before them streams as content, each call comes out as a
    /// `tool_calls` delta with an id, `type: function` and JSON arguments, and the reply
    /// finishes with `tool_calls`.
    #[test]
    fn tool_calls_become_deltas() {
        let answer = "Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        let mut st = ChatState::new();
        let mut deltas = st.step(&Out::Text { kind: TextKind::Reasoning, text: "weather is a tool".into() });
        let cut: Vec<char> = answer.chars().collect();
        for piece in cut.chunks(7) {
            deltas.extend(st.step(&Out::Token { id: 0, position: 0, text: String::new(), kind: TextKind::Answer, logprob: None }));
            deltas.extend(st.step(&Out::Text { kind: TextKind::Answer, text: piece.iter().collect() }));
        }
        deltas.extend(st.step(&Out::Done(Err(SessionError::Input("end".into())))));
        let json: Vec<Value> = deltas
            .iter()
            .map(|d| match d {
                Delta::Reasoning(t) => json!({ "reasoning_content": t }),
                Delta::Content(t) => json!({ "content": t }),
                Delta::Call(i, c) => json!({ "tool_calls": [call_json("req", *i, c)] }),
            })
            .collect();
        let content: String = json.iter().filter_map(|d| d["content"].as_str()).collect();
        assert_eq!(content, "Checking.");
        let calls: Vec<&Value> = json.iter().filter_map(|d| d.get("tool_calls")).map(|c| &c[0]).collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], &json!({ "index": 0, "id": "call_req_0", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\": \"Paris\"}" } }));
        assert_eq!((calls[1]["index"].as_u64(), calls[1]["function"]["name"].as_str(), calls[1]["function"]["arguments"].as_str()), (Some(1), Some("get_time"), Some("{}")));
        assert_eq!(json[0], json!({ "reasoning_content": "weather is a tool" }));
        assert_eq!(st.reasoning_tokens, 0);
        assert_eq!(finish_reason(&StopReason::Eos, st.calls > 0), "tool_calls");
        assert_eq!(finish_reason(&StopReason::MaxTokens, false), "length");
    }
}
