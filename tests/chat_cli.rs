//! `generate --prompt` and `chat` through the real binary on the chat fixture (a tiny random
//! DeepSeek-V3 model with a byte-level tokenizer and an R1-style template).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn gen(args: &[&str]) -> (bool, Value, String) {
    let ctx = if args.contains(&"--ctx") { &[][..] } else { &["--ctx", "256"][..] };
    let o = Command::new(bin()).args(["generate", "--quiet"]).args(ctx).arg("--model").arg(fixture("chat_tiny")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.success(), v, stderr)
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v["ids"].clone()).unwrap()
}

#[test]
fn json_reply_has_every_field_and_routing_per_position() {
    let (ok, v, err) = gen(&["--prompt", "What is 347 + 589?", "--chat", "--json", "--max-tokens", "12", "--seed", "3"]);
    assert!(ok, "{err}");
    for k in ["prompt_ids", "ids", "text", "reasoning", "answer", "routing", "stats", "stop"] {
        assert!(!v[k].is_null(), "missing {k} in {v}");
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(fixture("chat_goldens.json")).unwrap()).unwrap();
    let text = golden["templates"]["chat_tiny"]["single"]["with_generation_prompt"].as_str().unwrap();
    let tok = deepseek_wgpu::chat::ChatTokenizer::load(&fixture("chat_tiny"), 320).unwrap();
    let prompt: Vec<u32> = serde_json::from_value(v["prompt_ids"].clone()).unwrap();
    assert_eq!(prompt, tok.encode(text, false).unwrap(), "prompt ids are the rendered template's");
    let n = ids(&v).len();
    assert_eq!(n, 12);
    for (layer, per_pos) in v["routing"].as_object().unwrap() {
        assert_eq!(per_pos.as_array().unwrap().len(), prompt.len() + n - 1, "layer {layer}");
    }
    assert_eq!(v["stop"], "max_tokens");
    assert_eq!(v["stats"]["generated_tokens"], 12);
    // The template opened <think>, so text before any </think> is reasoning.
    let text = v["text"].as_str().unwrap();
    if !text.contains("</think>") {
        assert_eq!(v["answer"], "", "{v}");
    }
}

#[test]
fn same_seed_same_text_and_greedy_is_deterministic() {
    let run = |seed: &str, t: &str| ids(&gen(&["--prompt", "Hello", "--json", "--max-tokens", "16", "--seed", seed, "--temperature", t]).1);
    assert_eq!(run("7", "0.9"), run("7", "0.9"));
    assert_ne!(run("7", "1.5"), run("8", "1.5"), "different seeds should differ on a random model");
    assert_eq!(run("1", "0"), run("2", "0"), "greedy ignores the seed");
}

#[test]
fn greedy_through_the_session_matches_transformers() {
    // chat_tiny holds v3_moonlight's weights plus a tokenizer, so `--ids` goes through the
    // Session and the GPU sampler's argmax; its golden is v3_moonlight's.
    let g = golden("v3_moonlight");
    let ids_s: Vec<String> = g.prompt_ids.iter().map(|i| i.to_string()).collect();
    let (ok, v, err) = gen(&["--ids", &ids_s.join(","), "--temperature", "0", "--json", "--max-tokens", &g.generated_ids.len().to_string()]);
    assert!(ok, "{err}");
    assert!(v["text"].is_string(), "the session path reports text: {v}");
    assert_eq!(ids(&v), g.generated_ids);
    for (layer, per_pos) in v["routing"].as_object().unwrap() {
        let per: Vec<Vec<u32>> = serde_json::from_value(per_pos.clone()).unwrap();
        assert_eq!(per.len(), g.input_ids.len() - 1);
        assert_eq!(per[..], g.routing[layer][..per.len()], "layer {layer}");
    }
}

#[test]
fn max_tokens_zero_only_renders_and_tokenises() {
    let (ok, v, err) = gen(&["--prompt", "Hi", "--chat", "--system", "Be brief.", "--json", "--max-tokens", "0"]);
    assert!(ok, "{err}");
    assert!(ids(&v).is_empty());
    assert!(v["prompt_ids"].as_array().unwrap().len() > 5);
    let o = Command::new(bin()).args(["generate", "--quiet", "--max-tokens", "0", "--prompt", "Hi", "--chat", "--model"]).arg(fixture("chat_tiny")).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("<｜User｜>Hi<｜Assistant｜><think>"), "{out}");
}

#[test]
fn stop_string_and_eos_end_the_reply() {
    let (_, v, _) = gen(&["--prompt", "abc", "--json", "--max-tokens", "24", "--temperature", "0"]);
    let text = v["text"].as_str().unwrap().to_string();
    let chars: Vec<char> = text.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let (ok, v2, err) = gen(&["--prompt", "abc", "--json", "--max-tokens", "24", "--temperature", "0", "--stop", &stop]);
    assert!(ok, "{err}");
    assert_eq!(v2["stop"]["stop_string"], stop.as_str(), "{v2}");
    let t2 = v2["text"].as_str().unwrap();
    assert!(text.starts_with(t2) && !t2.contains(&stop) && t2.len() < text.len(), "{t2:?} vs {text:?}");

    // A model folder whose generation_config names the third greedy token as EOS stops there.
    let dir = std::env::temp_dir().join(format!("dsw-eos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("chat_tiny").join(f), dir.join(f)).unwrap();
    }
    let greedy = ids(&v);
    let eos = greedy[2];
    let first = greedy.iter().position(|&t| t == eos).unwrap();
    std::fs::write(dir.join("generation_config.json"), format!("{{\"eos_token_id\": {eos}}}")).unwrap();
    let o = Command::new(bin())
        .args(["generate", "--quiet", "--json", "--temperature", "0", "--max-tokens", "24", "--prompt", "abc", "--model"])
        .arg(&dir)
        .output()
        .unwrap();
    let v3: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v3["stop"], "eos");
    assert_eq!(ids(&v3), greedy[..first].to_vec());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn context_limits_and_bad_input_are_clear() {
    let (ok, v, err) = gen(&["--prompt", "abc", "--json", "--max-tokens", "500", "--temperature", "0", "--ctx", "12"]);
    assert!(ok, "{err}");
    assert_eq!(v["stop"], "context_full");
    assert_eq!(v["stats"]["context_used"], 12);
    let (ok, _, err) = gen(&["--prompt", &"long prompt ".repeat(40), "--ctx", "64"]);
    assert!(!ok && err.contains("context"), "{err}");
    for (flag, val, word) in [("--temperature", "-1", "temperature"), ("--top-p", "0", "top-p"), ("--top-p", "1.5", "top-p"), ("--min-p", "1", "min-p"), ("--repeat-penalty", "0", "penalty")] {
        let (ok, _, err) = gen(&["--prompt", "x", flag, val]);
        assert!(!ok && err.contains(word), "{flag} {val}: {err}");
    }
    let (ok, _, err) = gen(&["--ids", "5,99999", "--max-tokens", "2"]);
    assert!(!ok && err.contains("99999") && err.contains("vocabulary"), "{err}");
    let (ok, _, err) = gen(&["--prompt", "", "--max-tokens", "2"]);
    assert!(!ok && err.contains("empty"), "{err}");
}

#[test]
fn streaming_shows_reasoning_apart_and_can_hide_it() {
    let o = Command::new(bin())
        .args(["generate", "--quiet", "--chat", "--prompt", "hi", "--max-tokens", "8", "--seed", "1", "--model"])
        .arg(fixture("chat_tiny"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("<think>\n"), "reasoning is marked: {out:?}");
    let o = Command::new(bin())
        .args(["generate", "--quiet", "--chat", "--prompt", "hi", "--max-tokens", "8", "--seed", "1", "--hide-reasoning", "--model"])
        .arg(fixture("chat_tiny"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("<think>"), "{out:?}");
}

fn chat(input: &str, extra: &[&str]) -> (String, String) {
    let mut child = Command::new(bin())
        .args(["chat", "--quiet", "--ctx", "512", "--temperature", "0", "--max-tokens", "6", "--model"])
        .arg(fixture("chat_tiny"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    (String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn chat_commands_save_load_and_reuse_the_cache() {
    let file = std::env::temp_dir().join(format!("dsw-chat-{}.json", std::process::id()));
    let f = file.to_str().unwrap();
    let script = format!("/system Be brief.\nhello\nmore\n/save {f}\n/reset\n/load {f}\nagain\n/bogus\n/exit\n");
    let (_, err) = chat(&script, &[]);
    assert!(err.contains("system prompt set") && err.contains(&format!("saved 5 messages to {f}")) && err.contains("loaded 5 messages"), "{err}");
    assert!(err.contains("unknown command /bogus"), "{err}");
    let stats: Vec<&str> = err.lines().filter(|l| l.contains("tok/s")).collect();
    assert_eq!(stats.len(), 3, "{err}");
    // Follow-up turns re-feed only what changed: the cached prefix is reused.
    for s in &stats[1..] {
        let reused: usize = s.split('(').nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(reused > 5, "{s}");
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let roles: Vec<&str> = saved["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user", "assistant"]);
    std::fs::remove_file(&file).ok();
}

#[test]
fn ctrl_c_cancels_the_answer_not_the_program() {
    // An end-of-sequence id the model can never sample keeps the answer going until Ctrl-C.
    let dir = std::env::temp_dir().join(format!("dsw-noeos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("chat_tiny").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("generation_config.json"), "{\"eos_token_id\": 100000}").unwrap();
    let mut child = Command::new(bin())
        .args(["chat", "--quiet", "--ctx", "4096", "--max-tokens", "100000", "--model"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"tell me a long story\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"/exit\n").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the program survives Ctrl-C: {err}");
    assert!(err.contains("stopped: cancelled"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
