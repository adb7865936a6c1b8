//! `deepseek-wgpu serve` driven from outside, as users drive it: the release binary on a
//! loopback port, plain HTTP/1.1 from this file, the official `openai` Python package
//! (tests/openai_client.py) and `curl`. The embedded tiny-r1 model answers arithmetic, so
//! answers are checked for real (greedy). Run with `--test-threads=1` (each test starts its
//! own server; lavapipe shares two cores).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_deepseek-wgpu");

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--quiet"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start deepseek-wgpu serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                }
                eprintln!("[server] {line}");
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(120)).expect("the server did not report its address");
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Server { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).unwrap().parse().unwrap()
    }

    fn health(&self) -> Value {
        let (s, b) = http(self.port, "GET", "/health", &[], "");
        assert_eq!(s, 200, "{b}");
        serde_json::from_str(&b).unwrap()
    }

    /// Wait until every slot is idle again (generations finished or cancelled).
    fn wait_idle(&self, within: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let h = self.health();
            if h["slots_idle"] == h["slots"] {
                return h;
            }
            assert!(t0.elapsed() < within, "slots still busy after {within:?}: {h}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    s
}

/// One request over HTTP/1.1: (status, body with any chunked encoding undone).
fn http(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut s = request(port, method, path, headers, body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(rest) } else { rest.to_string() })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn post(port: u16, path: &str, body: &Value) -> (u16, Value) {
    let (s, b) = http(port, "POST", path, &[], &body.to_string());
    (s, serde_json::from_str(&b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}")))
}

/// The `data:` payloads of an SSE body.
fn events(body: &str) -> Vec<String> {
    body.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).map(String::from).collect()
}

fn assert_error(status: u16, body: &Value, want_status: u16, param: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    let e = &body["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{body}");
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{body}");
    }
}

fn question(q: &str, max_tokens: u64) -> Value {
    json!({ "model": "tiny-r1", "messages": [{ "role": "user", "content": q }], "temperature": 0, "max_tokens": max_tokens })
}

fn need_python_openai() {
    let ok = Command::new("python3").args(["-c", "import openai, jsonschema"]).status();
    match ok {
        Ok(s) if s.success() => {}
        Ok(_) => panic!("the Python packages `openai` and `jsonschema` are needed: `pip install openai jsonschema`"),
        Err(e) => panic!("python3 is needed to run the openai client test: {e}"),
    }
}

/// The official `openai` package against two servers: the embedded model with its own
/// template (chat, streaming, reasoning_content, logprobs, usage, prefix reuse, completions,
/// errors, json_schema / json_object replies checked with `jsonschema`, forced tool calls),
/// and the same model with DeepSeek-R1-0528's template (tool definitions, tool calls and tool
/// results rendered into the prompt, a round trip, a forced call).
#[test]
fn openai_python_client() {
    need_python_openai();
    let plain = Server::start(&["--parallel", "2"]);
    let r1_0528 = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chat_templates/deepseek-r1-0528-qwen3-8b.jinja");
    let tools = Server::start(&["--chat-template", r1_0528]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_client.py");
    let out = Command::new("python3").args([script, &plain.url(), &tools.url()]).output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tests/openai_client.py failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("all openai client checks passed"));
}

/// The README's curl examples, as written there.
#[test]
fn curl_examples() {
    let curl = Command::new("curl").arg("--version").output();
    assert!(curl.is_ok_and(|o| o.status.success()), "curl is needed for this test (.ci/run installs it)");
    let s = Server::start(&["--api-key", "sk-local"]);
    let body = r#"{"model": "tiny-r1", "messages": [{"role": "user", "content": "What is 4821 + 379?"}], "temperature": 0}"#;
    let out = Command::new("curl")
        .args(["-s", &format!("{}/chat/completions", s.url()), "-H", "Authorization: Bearer sk-local", "-H", "Content-Type: application/json", "-d", body])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["choices"][0]["message"];
    assert!(m["content"].as_str().unwrap().contains("5200"), "{v}");
    assert!(!m["reasoning_content"].as_str().unwrap().is_empty(), "{v}");
    let stream_body = r#"{"model": "tiny-r1", "messages": [{"role": "user", "content": "What is 4821 + 379?"}], "temperature": 0, "stream": true}"#;
    let out = Command::new("curl")
        .args(["-sN", &format!("{}/chat/completions", s.url()), "-H", "Authorization: Bearer sk-local", "-H", "Content-Type: application/json", "-d", stream_body])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let ev = events(&text);
    assert_eq!(ev.last().map(String::as_str), Some("[DONE]"), "{text}");
    let (mut reasoning, mut content) = (String::new(), String::new());
    for e in &ev[..ev.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        let d = &v["choices"][0]["delta"];
        reasoning.push_str(d["reasoning_content"].as_str().unwrap_or(""));
        content.push_str(d["content"].as_str().unwrap_or(""));
    }
    assert_eq!(content, m["content"].as_str().unwrap());
    assert_eq!(reasoning, m["reasoning_content"].as_str().unwrap());
    let out = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}/models", s.url())]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
}

/// Every refusal is OpenAI's error object with the right status, and the server keeps
/// serving afterwards.
#[test]
fn errors_the_openai_way() {
    let s = Server::start(&["--api-key", "k", "--ctx", "256", "--max-body-kib", "64", "--parallel", "1", "--queue", "0"]);
    let p = s.port;
    let auth = ["Authorization: Bearer k"];
    let call = |path: &str, body: &str| -> (u16, Value) {
        let (st, b) = http(p, "POST", path, &auth, body);
        (st, serde_json::from_str(&b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}")))
    };
    let ok = question("What is 12 + 30?", 64).to_string();
    // 401: no key, wrong key; /health needs none
    let (st, b) = http(p, "POST", "/v1/chat/completions", &[], &ok);
    assert_error(st, &serde_json::from_str(&b).unwrap(), 401, None);
    let (st, b) = http(p, "GET", "/v1/models", &["Authorization: Bearer nope"], "");
    assert_error(st, &serde_json::from_str(&b).unwrap(), 401, None);
    assert_eq!(s.health()["status"], "ok");
    // 400: malformed JSON, wrong types, bad values
    let (st, v) = call("/v1/chat/completions", "{\"messages\": [");
    assert_error(st, &v, 400, None);
    assert_eq!(v["error"]["code"], "invalid_json");
    let (st, v) = call("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#);
    assert_error(st, &v, 400, Some("temperature"));
    let (st, v) = call("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": 5}]}"#);
    assert_error(st, &v, 400, Some("messages[0].content"));
    let (st, v) = call("/v1/chat/completions", r#"{"messages": "hi"}"#);
    assert_error(st, &v, 400, Some("messages"));
    let (st, v) = call("/v1/chat/completions", r#"{"messages": [{"role": "robot", "content": "hi"}]}"#);
    assert_error(st, &v, 400, Some("messages[0].role"));
    for (field, value) in [("temperature", json!(5)), ("top_p", json!(0)), ("min_p", json!(1.5)), ("top_k", json!(-3)), ("max_tokens", json!(0)), ("stop", json!(["a", "b", "c", "d", "e"])), ("n", json!(2))] {
        let mut q = question("What is 1 + 1?", 8);
        q[field] = value;
        let (st, v) = call("/v1/chat/completions", &q.to_string());
        assert_error(st, &v, 400, Some(field));
    }
    let (st, v) = call("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 21}"#);
    assert_error(st, &v, 400, Some("top_logprobs"));
    // a schema llguidance cannot compile: its message, before any slot is taken
    let (st, v) = call("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}}"#);
    assert_error(st, &v, 400, Some("response_format"));
    assert!(v["error"]["message"].as_str().unwrap().contains("nonsense"), "{v}");
    let (st, v) = call("/v1/chat/completions", r#"{"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}}"#);
    assert_error(st, &v, 400, Some("response_format.json_schema"));
    // the prompt over the context, with the numbers (the tokenizer is one token per character)
    let long = "1".repeat(300);
    let (st, v) = call("/v1/chat/completions", &question(&long, 8).to_string());
    assert_error(st, &v, 400, Some("messages"));
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("256") && msg.contains("30"), "{msg}");
    let (st, v) = call("/v1/completions", &json!({ "prompt": long, "max_tokens": 4 }).to_string());
    assert_error(st, &v, 400, Some("prompt"));
    // tool results the embedded template cannot show the model are refused, not dropped
    let tool_turn = json!({ "messages": [
        { "role": "user", "content": "weather?" },
        { "role": "assistant", "content": null, "tool_calls": [{ "id": "c1", "type": "function", "function": { "name": "w", "arguments": "{}" } }] },
        { "role": "tool", "tool_call_id": "c1", "content": "sunny" } ] });
    let (st, v) = call("/v1/chat/completions", &tool_turn.to_string());
    assert_error(st, &v, 400, Some("messages"));
    // 404: unknown model, unknown endpoint
    let mut q = question("What is 1 + 1?", 8);
    q["model"] = json!("gpt-4o");
    let (st, v) = call("/v1/chat/completions", &q.to_string());
    assert_error(st, &v, 404, Some("model"));
    assert_eq!(v["error"]["code"], "model_not_found");
    let (st, v) = call("/v1/nothing", "{}");
    assert_error(st, &v, 404, None);
    // 413: a body over --max-body-kib
    let big = json!({ "prompt": "x".repeat(70 << 10) }).to_string();
    let (st, v) = call("/v1/completions", &big);
    assert_error(st, &v, 413, None);
    // 503: the one slot busy and no queue
    let busy = json!({ "prompt": "What is 5 + 6?", "max_tokens": 200, "ignore_eos": true, "stream": true, "temperature": 0 }).to_string();
    let mut holder = request(p, "POST", "/v1/completions", &auth, &busy);
    let mut first = [0u8; 64];
    let _ = holder.read(&mut first).unwrap();
    let (st, v) = call("/v1/chat/completions", &ok);
    assert_error(st, &v, 503, None);
    drop(holder);
    let h = s.wait_idle(Duration::from_secs(30));
    assert_eq!(h["rejected_busy"], 1, "{h}");
    // and it still answers, correctly
    let (st, v) = call("/v1/chat/completions", &ok);
    assert_eq!(st, 200, "{v}");
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().contains("42"), "{v}");
}

/// A client that leaves mid-stream stops its generation at once: the slot comes free long
/// before max_tokens, and at most one token is produced after the server saw it leave.
#[test]
fn disconnect_cancels_within_a_token() {
    let s = Server::start(&[]);
    let body = json!({ "prompt": "What is 5 + 6?", "max_tokens": 3000, "ignore_eos": true, "stream": true }).to_string();
    let before = s.health()["generated_tokens"].as_u64().unwrap();
    let mut c = request(s.port, "POST", "/v1/completions", &[], &body);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.windows(6).filter(|w| w == b"data: ").count() < 5 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    drop(c);
    let h = s.wait_idle(Duration::from_secs(20));
    let generated = h["generated_tokens"].as_u64().unwrap() - before;
    assert_eq!(h["cancelled"], 1, "{h}");
    assert!(h["tokens_after_cancel"].as_u64().unwrap() <= 1, "{h}");
    assert!(generated < 1000, "{generated} tokens generated for a client that left after 5 events");
}

/// Two streams on two slots run side by side (the second does not wait for the first), a
/// follow-up turn goes to the slot holding its conversation and reuses its cache, and the
/// concurrent results equal the same requests run alone (greedy).
#[test]
fn parallel_slots_and_prefix_reuse() {
    let s = Server::start(&["--parallel", "2"]);
    let p = s.port;
    let q = |a: u32, b: u32| question(&format!("What is {a} + {b}?"), 128);
    let (_, alone) = post(p, "/v1/chat/completions", &q(2345, 678));
    let spans: Vec<(Instant, Instant, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = [(2345, 678), (901, 99)]
            .into_iter()
            .map(|(a, b)| {
                sc.spawn(move || {
                    let t0 = Instant::now();
                    let mut body = q(a, b);
                    body["max_tokens"] = json!(300);
                    body["ignore_eos"] = json!(true);
                    let (st, v) = post(p, "/v1/chat/completions", &body);
                    assert_eq!(st, 200, "{v}");
                    (t0, Instant::now(), v)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // side by side: each finished after the other had started
    assert!(spans[0].1 > spans[1].0 && spans[1].1 > spans[0].0);
    for (_, _, v) in &spans {
        assert_eq!(v["usage"]["completion_tokens"], 300, "{v}");
    }
    let a = alone["choices"][0]["message"].clone();
    assert!(a["content"].as_str().unwrap().contains("3023"), "{alone}");
    // the ignore_eos run continued past the answer; its start is the same text
    let together = spans[0].2["choices"][0]["message"]["reasoning_content"].as_str().unwrap();
    assert!(together.starts_with(a["reasoning_content"].as_str().unwrap().trim_end()), "{together:?} vs {a}");
    // a follow-up turn: the earlier answer is fed back (its reasoning dropped), the prefix reused
    let first = q(4821, 379);
    let (_, r1) = post(p, "/v1/chat/completions", &first);
    let m = &r1["choices"][0]["message"];
    let follow = json!({ "model": "tiny-r1", "temperature": 0, "max_tokens": 128, "messages": [
        { "role": "user", "content": "What is 4821 + 379?" },
        { "role": "assistant", "content": m["content"], "reasoning_content": m["reasoning_content"] },
        { "role": "user", "content": "What is 17 + 25?" } ] });
    let (st, r2) = post(p, "/v1/chat/completions", &follow);
    assert_eq!(st, 200, "{r2}");
    let cached = r2["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    let first_prompt = r1["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(cached + 8 >= first_prompt, "reused {cached} of the first turn's {first_prompt} prompt tokens");
    // the earlier reasoning is not in the prompt
    let (_, rendered) = post(p, "/apply-template", &follow);
    let prompt = rendered["prompt"].as_str().unwrap();
    assert!(!prompt.contains(m["reasoning_content"].as_str().unwrap().trim()), "{prompt}");
    assert!(prompt.contains(m["content"].as_str().unwrap()), "{prompt}");
}

/// 200 requests, 8 at a time: answers, malformed bodies and clients that leave mid-stream,
/// mixed. Every well-formed request is answered, every malformed one refused, nothing is
/// left running, and the server's memory does not grow.
#[test]
fn load_test_bounded() {
    let s = Server::start(&["--parallel", "2", "--queue", "16"]);
    let p = s.port;
    let run = |i: usize| -> &'static str {
        match i % 10 {
            0 => {
                let (st, v) = http(p, "POST", "/v1/chat/completions", &[], "{\"messages\": [{\"role\": ");
                assert_eq!(st, 400, "{v}");
                "malformed"
            }
            1 => {
                let (st, v) = post(p, "/v1/chat/completions", &json!({ "messages": [{ "role": "user", "content": "hi" }], "top_p": "x" }));
                assert_eq!(st, 400, "{v}");
                "malformed"
            }
            2 | 3 => {
                let body = json!({ "messages": [{ "role": "user", "content": "What is 5 + 6?" }], "max_tokens": 500, "ignore_eos": true, "stream": true }).to_string();
                let mut c = request(p, "POST", "/v1/chat/completions", &[], &body);
                let mut buf = [0u8; 512];
                let _ = c.read(&mut buf).unwrap();
                "cancelled"
            }
            4 | 5 => {
                let body = json!({ "messages": [{ "role": "user", "content": format!("What is {i} + 7?") }], "max_tokens": 12, "stream": true, "stream_options": { "include_usage": true } });
                let (st, b) = http(p, "POST", "/v1/chat/completions", &[], &body.to_string());
                assert_eq!(st, 200, "{b}");
                let ev = events(&b);
                assert_eq!(ev.last().map(String::as_str), Some("[DONE]"), "{b}");
                let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
                assert_eq!(usage["usage"]["completion_tokens"], 12, "{usage}");
                "answered"
            }
            6 | 7 => {
                let (st, v) = post(p, "/v1/completions", &json!({ "prompt": format!("<｜User｜>What is {i} + 1?<｜Assistant｜><think>\n"), "max_tokens": 10 }));
                assert_eq!(st, 200, "{v}");
                assert!(v["choices"][0]["text"].is_string());
                "answered"
            }
            _ => {
                let (st, v) = post(p, "/v1/chat/completions", &question(&format!("What is {i} + 100?"), 12));
                assert_eq!(st, 200, "{v}");
                assert!(v["usage"]["completion_tokens"].as_u64().unwrap() >= 1);
                "answered"
            }
        }
    };
    // warm up (allocator pools, bind groups, kernel caches), then measure
    for i in 0..20 {
        run(i);
    }
    s.wait_idle(Duration::from_secs(30));
    let rss0 = s.rss_kib();
    let t0 = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let counts: Vec<(usize, usize, usize)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    let mut c = (0, 0, 0);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= 200 {
                            return c;
                        }
                        match run(i) {
                            "answered" => c.0 += 1,
                            "malformed" => c.1 += 1,
                            _ => c.2 += 1,
                        }
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let h = s.wait_idle(Duration::from_secs(60));
    let rss1 = s.rss_kib();
    let total = counts.iter().fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
    eprintln!("200 requests in {:.1} s: {total:?} (answered, malformed, cancelled); RSS {rss0} → {rss1} KiB; {h}", t0.elapsed().as_secs_f64());
    assert_eq!(total, (120, 40, 40));
    assert!(h["tokens_after_cancel"].as_u64().unwrap() <= h["cancelled"].as_u64().unwrap(), "{h}");
    assert_eq!(h["rejected_busy"], 0, "{h}");
    assert!(rss1 < rss0 + 16 * 1024, "RSS grew from {rss0} to {rss1} KiB over 200 requests");
    // still serving, correctly
    let (st, v) = post(p, "/v1/chat/completions", &question("What is 250 + 250?", 128));
    assert_eq!(st, 200);
    assert!(v["choices"][0]["message"]["content"].as_str().unwrap().contains("500"), "{v}");
}

/// The routing extension: `/v1/models` reports the MoE shape, and a greedy streamed chat with
/// `"routing": true` carries every position fed (prompt, then each generated token as it is
/// fed back) with its experts and gate weights per MoE layer, and every generated token with
/// its id and position, equal to what `deepseek-wgpu generate --chat --json` reports for the
/// same prompt. Without the field the stream carries none of it.
#[test]
fn routing_extension_matches_generate() {
    let q = "What is 347 + 589?";
    let out = Command::new(BIN).args(["generate", "--quiet", "--chat", "--prompt", q, "--temperature", "0", "--max-tokens", "100", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = Server::start(&[]);
    let (st, b) = http(s.port, "GET", "/v1/models", &[], "");
    assert_eq!(st, 200, "{b}");
    let models: Value = serde_json::from_str(&b).unwrap();
    let shape = &models["data"][0]["routing"];
    // tiny-r1: 5 layers, the first dense; 16 experts in 4 groups, 2 groups and 4 experts per token
    assert_eq!(shape, &json!({ "n_layers": 5, "moe_layers": [1, 2, 3, 4], "n_experts": 16, "n_group": 4, "topk_group": 2, "top_k": 4 }), "{models}");
    let layers: Vec<String> = shape["moe_layers"].as_array().unwrap().iter().map(|l| l.to_string()).collect();

    let mut body = question(q, 100);
    body["stream"] = json!(true);
    body["routing"] = json!(true);
    let (st, b) = http(s.port, "POST", "/v1/chat/completions", &[], &body.to_string());
    assert_eq!(st, 200, "{b}");
    let (mut routes, mut tokens, mut reasoning, mut content) = (Vec::new(), Vec::new(), String::new(), String::new());
    for e in events(&b).iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).unwrap();
        let d = &v["choices"][0]["delta"];
        routes.extend(d["routing"].as_array().cloned().unwrap_or_default());
        tokens.extend(d.get("token").cloned());
        reasoning.push_str(d["reasoning_content"].as_str().unwrap_or(""));
        content.push_str(d["content"].as_str().unwrap_or(""));
    }
    let prompt_ids: Vec<u64> = cli["prompt_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    let ids: Vec<u64> = cli["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert!(ids.len() > 4, "{cli}");
    // every generated token, at the position after the prompt and the tokens before it
    assert_eq!(tokens.iter().map(|t| t["id"].as_u64().unwrap()).collect::<Vec<_>>(), ids);
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t["position"].as_u64(), Some((prompt_ids.len() + i) as u64), "{t}");
        assert!(t["kind"] == "reasoning" || t["kind"] == "answer", "{t}");
    }
    assert_eq!(content, cli["answer"].as_str().unwrap());
    assert_eq!(reasoning, cli["reasoning"].as_str().unwrap());
    // every position fed, in order: the prompt's ids, then the generated ones fed back
    let fed: Vec<u64> = prompt_ids.iter().chain(&ids).copied().take(routes.len()).collect();
    assert_eq!(routes.iter().map(|r| r["token"].as_u64().unwrap()).collect::<Vec<_>>(), fed);
    assert_eq!(routes.len(), cli["routing"][&layers[0]].as_array().unwrap().len());
    for (p, r) in routes.iter().enumerate() {
        assert_eq!(r["position"].as_u64(), Some(p as u64), "{r}");
        assert!(r["text"].is_string(), "{r}");
        let (experts, weights) = (r["experts"].as_array().unwrap(), r["weights"].as_array().unwrap());
        assert_eq!((experts.len(), weights.len()), (layers.len(), layers.len()), "{r}");
        for (l, layer) in layers.iter().enumerate() {
            let mut got: Vec<u64> = experts[l].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            got.sort_unstable();
            assert_eq!(json!(got), cli["routing"][layer][p], "position {p}, layer {layer}");
            let w: Vec<f64> = weights[l].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert!(w.len() == 4 && w.iter().all(|x| x.is_finite() && *x > 0.0), "{r}");
        }
    }
    // not asked for: no extension fields; asked for without streaming: refused
    let (_, plain) = http(s.port, "POST", "/v1/chat/completions", &[], &json!({ "messages": body["messages"], "temperature": 0, "max_tokens": 4, "stream": true }).to_string());
    assert!(!plain.contains("\"routing\"") && !plain.contains("\"token\""), "{plain}");
    let mut whole = question(q, 4);
    whole["routing"] = json!(true);
    let (st, v) = post(s.port, "/v1/chat/completions", &whole);
    assert_error(st, &v, 400, Some("routing"));
}
