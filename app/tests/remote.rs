//! The app as a client of remote OpenAI-compatible servers, driven through egui_kittest:
//! - the release `deepseek-wgpu serve` binary (built by `cargo test --workspace`, found next
//!   to this test's target folder) on a free port: streaming with the routing extension, the
//!   Thinking fold, regenerate, Stop cancelling on the server, a snapshot with routing;
//! - a small fake server in this file (std `TcpListener`, canned SSE as vLLM or llama-server
//!   send it, no routing): reasoning_content and `<think>` in content, history, Stop dropping
//!   the connection, the API key, and the errors (connection refused, 401, 404 model).
//!
//! Run with `cargo test --release -p deepseek-wgpu-app --test remote -- --test-threads=1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use deepseek_wgpu::chat::TextKind;
use deepseek_wgpu::session::StopReason;
use deepseek_wgpu_app::app::ModelState;
use deepseek_wgpu_app::{App, Startup};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use serde_json::{json, Value};

mod common;
use common::{clear_and_type, harness, reply_done, step_until as wait, stop_a_long_answer, type_and_send as send, MODEL_FIELD};

fn startup(url: &str, max_tokens: usize) -> Startup {
    Startup { model_dir: Some(url.into()), max_tokens: Some(max_tokens), temperature: Some(0.0), colour_row: Some(0), ..Startup::default() }
}

fn connected(h: &mut Harness<'static, App>) {
    wait(h, "the connection", 60, |a| !matches!(a.model, ModelState::Loading { .. } | ModelState::None));
    if let ModelState::Failed { error, .. } = &h.state().model {
        panic!("could not connect: {error}");
    }
}

/// The connection error shown in the top bar.
fn connect_error(h: &mut Harness<'static, App>) -> String {
    wait(h, "the connection error", 60, |a| !matches!(a.model, ModelState::Loading { .. } | ModelState::None));
    match &h.state().model {
        ModelState::Failed { error, .. } => {
            assert!(h.query_by_label_contains(error).is_some(), "the error is shown: {error}");
            error.clone()
        }
        _ => panic!("expected a connection error"),
    }
}

fn reconnect(h: &mut Harness<'static, App>, url: &str) {
    clear_and_type(h, MODEL_FIELD, url);
    h.get_by_label("Connect").click();
    h.run_ok();
}

// ---------------------------------------------------------------------------------------
// deepseek-wgpu serve

/// The release server binary: in the target folder this test runs from (`cargo test
/// --workspace` builds it).
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/release/deps/remote-HASH → target/release/deepseek-wgpu
    let bin = exe.parent().and_then(|d| d.parent()).expect("target folder").join(format!("deepseek-wgpu{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing: build it first (cargo build --release --bin deepseek-wgpu; cargo test --release --workspace builds it)", bin.display());
    bin
}

struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(server_binary()).args(["serve", "--port", "0", "--quiet"]).args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start deepseek-wgpu serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
                eprintln!("[server] {line}");
            }
        });
        let addr: String = rx.recv_timeout(Duration::from_secs(120)).expect("the server did not report its address");
        let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        Serve { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn health(&self) -> Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read");
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Cover what changes from run to run: timings, and the server's port in the model field and
/// the top bar.
fn mask_variable(h: &mut Harness<'static, App>) {
    common::mask_variable(h, &["Thinking ·", "tok/s", "at http://127.0.0.1:"]);
}

/// Our server with the embedded tiny-r1 (4 MoE layers × 16 experts): the reply streams with
/// its Thinking fold, every generated token has its id and position, every position fed has
/// its routing (so the panel and the chip colours work as locally), regenerate reuses the
/// server's cache and gives the same greedy reply.
#[test]
fn deepseek_serve_streams_routing_into_the_panel() {
    let s = Serve::start(&[]);
    let mut h = harness(startup(&s.url(), 60));
    connected(&mut h);
    let info = h.state().model_info().expect("connected").clone();
    let r = info.remote.clone().expect("a remote model");
    assert!(r.ours && r.routing, "{r:?}");
    assert_eq!((r.model.as_str(), info.shape.layers.clone(), info.shape.n_experts, info.shape.top_k), ("tiny-r1", vec![1, 2, 3, 4], 16, 4));
    assert!(h.query_by_label_contains("routing streamed: 4 MoE layers × 16 experts").is_some());

    send(&mut h, "What is 347 + 589?");
    reply_done(&mut h);
    let app = h.state();
    let reply = &app.turns[0].reply;
    assert_eq!(reply.stop, Some(StopReason::Eos));
    assert!(reply.answer.contains("936"), "{:?}", reply.answer);
    assert!(reply.reasoning_tokens() > 0 && !reply.reasoning.is_empty(), "the Thinking fold has the reasoning");
    let (start, end) = reply.prompt.expect("prompt positions routed");
    assert_eq!(start, 0);
    for (i, t) in reply.tokens.iter().enumerate() {
        assert_eq!(t.position, end + i, "token {i}");
        assert!(t.id < 128, "a real token id: {t:?}");
    }
    // every position fed: the prompt and each generated token fed back (all of them: EOS ended it)
    assert_eq!(app.trace.positions.len(), end + reply.tokens.len());
    for (p, route) in app.trace.positions.iter().enumerate() {
        assert_eq!(route.position, p);
        assert_eq!(route.layers.iter().map(|l| l.layer).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(route.layers.iter().all(|l| l.experts.len() == 4 && l.weights.len() == 4 && l.experts.iter().all(|&e| e < 16)));
    }
    let stats = reply.stats.clone().expect("stats from usage");
    assert_eq!((stats.prompt_tokens, stats.generated_tokens), (end, reply.tokens.len()));
    let first_answer = reply.answer.clone();
    let first = reply.tokens[0].position;

    // open the fold, pin the first token: the panel shows its routing
    h.get_by_label_contains("Thinking ·").click();
    h.run_ok();
    h.get_by_label_contains(&format!("token {first}:")).click();
    h.run_ok();
    assert!(h.query_by_label_contains(&format!("Pinned: position {first}")).is_some());
    h.remove_cursor();
    h.run_ok();
    mask_variable(&mut h);
    h.snapshot("remote_chat_routing");

    h.get_by_label("Regenerate").click();
    h.run_ok();
    reply_done(&mut h);
    let app = h.state();
    assert_eq!(app.turns.len(), 1);
    assert_eq!(app.turns[0].reply.answer, first_answer, "greedy: the same reply");
    let st = app.turns[0].reply.stats.clone().expect("stats");
    assert!(st.reused_tokens > 0, "the server's slot reused the prompt: {st:?}");
    assert_eq!(app.trace.positions.len(), st.context_used, "the trace follows the regenerated reply");
}

/// Stop drops the connection and our server cancels within a token: the slot comes free,
/// long before max tokens, with at most one token made after it saw the client leave.
#[test]
fn stop_cancels_on_deepseek_serve() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/chat_tiny");
    let s = Serve::start(&["--model", fixture]);
    let mut h = harness(startup(&s.url(), 400));
    connected(&mut h);
    stop_a_long_answer(&mut h);
    let n = h.state().turns[0].reply.tokens.len();
    let t0 = Instant::now();
    let health = loop {
        let v = s.health();
        if v["slots_idle"] == v["slots"] {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the server is still generating: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(health["cancelled"], 1, "{health}");
    assert!(health["tokens_after_cancel"].as_u64().unwrap_or(99) <= 1, "{health}");
    assert!(health["generated_tokens"].as_u64().unwrap_or(999) < 200, "{n} tokens shown; {health}");
}

// ---------------------------------------------------------------------------------------
// a fake OpenAI-compatible server without routing

/// What the fake server saw.
#[derive(Default)]
struct Seen {
    /// (path, Authorization header, body) per request
    requests: Mutex<Vec<(String, Option<String>, Value)>>,
    /// SSE chunks the slow reply wrote before its client went away
    slow_written: AtomicUsize,
    /// the slow reply noticed its client had gone
    slow_gone: AtomicUsize,
}

/// A server that answers like vLLM with `--reasoning-parser` (reasoning_content), or like a
/// server that does not split reasoning (`<think>` in the content), depending on the user's
/// last message: `think` (tags in the content), `lone` (only `</think>`: the prompt opened
/// the block), `slow` (a long reply, a chunk every 20 ms), `404` (model not found); else the
/// reasoning apart. It needs `Authorization: Bearer sk-fake`.
fn fake_server() -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let s = s.clone();
            std::thread::spawn(move || fake_answer(conn, &s));
        }
    });
    (format!("http://127.0.0.1:{port}/v1"), seen)
}

fn fake_answer(conn: TcpStream, seen: &Seen) {
    let mut r = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut len, mut auth) = (0, None);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap_or(0),
            "authorization" => auth = Some(v.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    let _ = r.read_exact(&mut body);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.requests.lock().expect("lock").push((path.clone(), auth.clone(), body.clone()));
    let mut w = conn;
    if auth.as_deref() != Some("Bearer sk-fake") {
        return respond(&mut w, 401, &json!({ "error": { "message": "invalid API key", "type": "invalid_request_error", "code": 401 } }));
    }
    if path == "/v1/models" {
        return respond(&mut w, 200, &json!({ "object": "list", "data": [{ "id": "fake-r1", "object": "model", "owned_by": "vllm", "max_model_len": 8192 }] }));
    }
    let user = body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("").to_string();
    if user == "404" || body["model"] != "fake-r1" {
        let model = body["model"].as_str().unwrap_or("");
        return respond(&mut w, 404, &json!({ "object": "error", "message": format!("The model `{model}` does not exist."), "type": "NotFoundError", "code": 404 }));
    }
    let reasoning = |t: &str| json!({ "reasoning_content": t });
    let content = |t: &str| json!({ "content": t });
    let deltas: Vec<Value> = match user.as_str() {
        "think" => ["<think>", "\nAdd", " the", " units", ".</", "think>", "\n\n", "It", " is", " 936", "."].map(content).to_vec(),
        "lone" => ["Add", " the", " units", ".\n", "</think>", "\n\n", "It", " is", " 936", "."].map(content).to_vec(),
        "slow" => (0..2000).map(|i| content(&format!(" w{i}"))).collect(),
        _ => ["Add", " the", " units", "."].map(reasoning).into_iter().chain(["It", " is", " 936", "."].map(content)).collect(),
    };
    let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    let chunk = |d: Value, finish: Value| json!({ "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake-r1", "choices": [{ "index": 0, "delta": d, "finish_reason": finish }] });
    let mut events = vec![chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
    events.extend(deltas.into_iter().map(|d| chunk(d, Value::Null)));
    events.push(chunk(json!({}), json!("stop")));
    events.push(json!({ "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "fake-r1", "choices": [], "usage": { "prompt_tokens": 12, "completion_tokens": events.len() - 2, "total_tokens": events.len() + 10 } }));
    let slow = user == "slow";
    for e in events {
        let data = format!("data: {e}\n\n");
        if w.write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes()).and_then(|_| w.flush()).is_err() {
            if slow {
                seen.slow_gone.store(1, Ordering::Relaxed);
            }
            return;
        }
        if slow {
            seen.slow_written.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let data = "data: [DONE]\n\n";
    let _ = w.write_all(format!("{:x}\r\n{data}\r\n0\r\n\r\n", data.len()).as_bytes());
}

fn respond(w: &mut TcpStream, status: u16, v: &Value) {
    let body = v.to_string();
    let _ = write!(w, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

fn last_chat(seen: &Seen) -> Value {
    seen.requests.lock().expect("lock").iter().rev().find(|r| r.0 == "/v1/chat/completions").map(|r| r.2.clone()).expect("a chat request")
}

/// Errors a user meets first, each naming the URL: nothing listening, a missing API key,
/// a model the server does not serve (at connect and at chat time).
#[test]
fn connection_errors_name_the_url() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://127.0.0.1:{}/v1", closed.local_addr().expect("addr").port());
    drop(closed);
    let mut h = harness(startup(&dead, 8));
    let e = connect_error(&mut h);
    assert!(e.contains(&format!("cannot connect to {dead}/models: connection refused")), "{e}");

    let (url, seen) = fake_server();
    reconnect(&mut h, &url);
    let e = connect_error(&mut h);
    assert!(e.contains(&format!("{url}/models needs an API key (401)")) && e.contains("invalid API key"), "{e}");
    clear_and_type(&mut h, "API key", "wrong");
    h.get_by_label("Connect").click();
    h.run_ok();
    let e = connect_error(&mut h);
    assert!(e.contains("refused the API key (401)") && !e.contains("wrong"), "the key is never shown: {e}");
    assert_eq!(seen.requests.lock().expect("lock").last().and_then(|r| r.1.clone()).as_deref(), Some("Bearer wrong"));

    clear_and_type(&mut h, "API key", "sk-fake");
    reconnect(&mut h, &format!("{url}#deepseek-r1"));
    let e = connect_error(&mut h);
    assert_eq!(e, format!("{url} does not serve the model \"deepseek-r1\" (404): it serves fake-r1"));

    reconnect(&mut h, &url);
    connected(&mut h);
    // (not `send`: the error may come back, and the message into the composer, at once)
    h.get_by_label("Message").click();
    h.get_by_label("Message").type_text("404");
    h.run_ok();
    h.get_by_label("Send").click();
    h.run_ok();
    wait(&mut h, "the chat error", 30, |a| !a.busy && a.turns.len() == 1);
    let err = h.state().turns[0].reply.error.clone().expect("an error");
    assert_eq!(err, format!("{url}/chat/completions does not serve the model \"fake-r1\" (404): The model `fake-r1` does not exist."));
    assert!(h.query_by_label_contains(&err).is_some());
}

/// A server without the routing extension: the reasoning from reasoning_content or from
/// `<think>` tags in the content lands in the Thinking fold, history goes back without the
/// reasoning, regenerate asks again, Stop drops the connection at once, and the routing panel
/// says why it is empty.
#[test]
fn openai_server_without_routing() {
    let (url, seen) = fake_server();
    let mut h = harness(Startup { api_key: Some("sk-fake".into()), ..startup(&url, 100) });
    connected(&mut h);
    let r = h.state().remote().cloned().expect("remote");
    assert!(!r.ours && !r.routing && r.model == "fake-r1", "{r:?}");
    assert_eq!(h.state().model_info().map(|m| m.ctx), Some(8192), "vLLM's max_model_len");
    assert!(h.query_by_label_contains("This server does not report routing (only deepseek-wgpu serve does).").is_some());

    let answer = |a: &App, i: usize| (a.turns[i].reply.reasoning.clone(), a.turns[i].reply.answer.clone(), a.turns[i].reply.reasoning_tokens());
    send(&mut h, "hello");
    reply_done(&mut h);
    assert_eq!(answer(h.state(), 0), ("Add the units.".into(), "It is 936.".into(), 4));
    let req = last_chat(&seen);
    assert_eq!((req["model"].clone(), req["stream"].clone(), req["temperature"].clone()), (json!("fake-r1"), json!(true), json!(0.0)));
    assert!(req.get("routing").is_none(), "the extension goes to deepseek-wgpu serve only: {req}");
    let st = h.state().turns[0].reply.stats.clone().expect("stats");
    assert_eq!((st.prompt_tokens, st.generated_tokens, h.state().turns[0].reply.stop.clone()), (12, 8, Some(StopReason::Eos)));
    assert!(h.state().trace.positions.is_empty());
    h.get_by_label_contains("Thinking ·").click();
    h.run_ok();
    h.remove_cursor();
    h.run_ok();
    mask_variable(&mut h);
    h.snapshot("remote_no_routing");

    // tags in the content, whole or only the closing one
    send(&mut h, "think");
    reply_done(&mut h);
    assert_eq!(answer(h.state(), 1), ("Add the units.".into(), "It is 936.".into(), 4));
    send(&mut h, "lone");
    reply_done(&mut h);
    let (reasoning, ans, n) = answer(h.state(), 2);
    assert_eq!((reasoning.trim_end(), ans.as_str(), n), ("Add the units.", "It is 936.", 4));
    assert!(h.state().turns[2].reply.tokens.iter().take(4).all(|t| t.kind == TextKind::Reasoning));
    // the history: answers only, no reasoning
    let msgs = last_chat(&seen)["messages"].clone();
    assert_eq!(msgs, json!([
        { "role": "user", "content": "hello" }, { "role": "assistant", "content": "It is 936." },
        { "role": "user", "content": "think" }, { "role": "assistant", "content": "It is 936." },
        { "role": "user", "content": "lone" } ]));

    h.get_by_label("Regenerate").click();
    h.run_ok();
    reply_done(&mut h);
    assert_eq!(h.state().turns.len(), 3);
    assert_eq!(last_chat(&seen)["messages"], msgs, "regenerate asks the same again");

    send(&mut h, "slow");
    wait(&mut h, "a few tokens", 30, |a| a.turns[3].reply.tokens.len() >= 5);
    h.get_by_label("Stop").click();
    h.run_ok();
    let t0 = Instant::now();
    wait(&mut h, "the stop", 5, |a| !a.busy);
    assert!(t0.elapsed() < Duration::from_secs(2), "Stop took {:?}", t0.elapsed());
    assert_eq!(h.state().turns[3].reply.stop, Some(StopReason::Cancelled));
    let t0 = Instant::now();
    while seen.slow_gone.load(Ordering::Relaxed) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "the server never saw the client go");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen.slow_written.load(Ordering::Relaxed) < 500, "the connection was dropped early");
}
