//! Constrained decoding: llguidance's masks over our vocabularies (the tiny model's
//! characters, a byte-level BPE), token by token on the CPU; and `generate --json-schema` /
//! `--grammar` through the real binary on the embedded tiny-r1, whose answers are checked
//! with Python's `jsonschema`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bin, fixture};
use deepseek_wgpu::chat::ChatTokenizer;
use deepseek_wgpu::grammar::{Constraint, Grammar, Guide};
use serde_json::{json, Value};

fn allowed(mask: &[u32], id: u32) -> bool {
    mask[id as usize / 32] >> (id % 32) & 1 == 1
}

/// Feed `text`'s ids, each checked against the mask first; returns the ids.
fn walk(g: &mut Guide, tok: &ChatTokenizer, text: &str) -> Vec<u32> {
    let ids = tok.encode(text, false).unwrap();
    for &id in &ids {
        assert!(!g.done(), "the grammar ended before {:?}", tok.decode(&[id]).unwrap());
        assert!(allowed(g.mask().unwrap(), id), "token {id} {:?} of {text:?} is masked", tok.decode(&[id]).unwrap());
        g.commit(id).unwrap();
    }
    ids
}

#[test]
fn the_tiny_vocabulary_follows_a_schema_after_the_reasoning() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-r1");
    let tok = ChatTokenizer::load(&dir, 128).unwrap();
    let (eos, vocab) = (1u32, 128usize);
    let g = Grammar::new(&tok, vocab, &[eos]).unwrap();
    let schema = json!({ "type": "object", "properties": { "answer": { "type": "integer" } }, "required": ["answer"], "additionalProperties": false });
    let mut guide = g.guide(&Constraint::JsonSchema(schema), true).unwrap();
    let id = |s: &str| tok.token_id(s).unwrap();
    // inside the reasoning: any text, but no end of sequence and no padding row
    let m = guide.mask().unwrap();
    assert_eq!(m.len(), vocab.div_ceil(32));
    assert!(allowed(m, id("x")) && allowed(m, id("{")) && allowed(m, id("</think>")));
    assert!(!allowed(m, eos), "the reply cannot end inside the reasoning");
    assert!((tok.vocab_size() as u32..vocab as u32).all(|i| !allowed(m, i)), "ids past the tokenizer's are never allowed");
    walk(&mut guide, &tok, "347+589\n</think>\n\n");
    // the answer: JSON only, as Python writes it
    let m = guide.mask().unwrap();
    assert!(allowed(m, id("{")) && !allowed(m, id("9")) && !allowed(m, id("x")) && !allowed(m, eos));
    walk(&mut guide, &tok, "{\"answer\": 93");
    let m = guide.mask().unwrap();
    assert!(allowed(m, id("6")) && allowed(m, id("}")) && !allowed(m, id("\"")) && !allowed(m, eos));
    walk(&mut guide, &tok, "6}");
    assert!(guide.done(), "a closed object completes the grammar");
    let m = guide.mask().unwrap();
    assert_eq!((0..vocab as u32).filter(|&i| allowed(m, i)).collect::<Vec<_>>(), [eos], "only the end of sequence after it");
}

#[test]
fn a_prompt_that_did_not_open_the_reasoning_may_answer_at_once() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-r1");
    let tok = ChatTokenizer::load(&dir, 128).unwrap();
    let g = Grammar::new(&tok, 128, &[1]).unwrap();
    let c = Constraint::Lark("start: \"yes\" | \"no\"".into());
    let mut guide = g.guide(&c, false).unwrap();
    walk(&mut guide, &tok, "no");
    assert!(guide.done());
    let mut guide = g.guide(&c, false).unwrap();
    walk(&mut guide, &tok, "<think>\nhm\n</think>\nyes");
    assert!(guide.done());
    let mut guide = g.guide(&Constraint::Regex("[0-9]{2}".into()), false).unwrap();
    let m = guide.mask().unwrap();
    let id = |s: &str| tok.token_id(s).unwrap();
    assert!(allowed(m, id("4")) && allowed(m, id("<think>")) && !allowed(m, id("a")));
    // a grammar llguidance cannot compile says why
    let err = g.guide(&Constraint::Lark("start: nowhere".into()), true).err().expect("an undefined rule is refused").to_string();
    assert!(err.contains("nowhere"), "{err}");
}

/// A byte-level BPE vocabulary (the chat fixture's): tokens are bytes under GPT-2's
/// character map, which the grammar engine must undo (a space is `Ġ`).
#[test]
fn a_byte_level_vocabulary_writes_json_with_spaces_and_markers() {
    let tok = ChatTokenizer::load(&fixture("chat_tiny"), 320).unwrap();
    let eos = tok.token_id("<｜end▁of▁sentence｜>").unwrap();
    let g = Grammar::new(&tok, 320, &[eos]).unwrap();
    let schema = json!({ "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] });
    let mut guide = g.guide(&Constraint::JsonSchema(schema), true).unwrap();
    walk(&mut guide, &tok, "weather </think>\n\n{\"city\": \"Le Mans\"}");
    assert!(guide.done());
    let tools = r#"start: "<｜tool▁calls▁begin｜>" /[a-z]+/ "<｜tool▁calls▁end｜>""#;
    let mut guide = g.guide(&Constraint::Lark(tools.into()), false).unwrap();
    let ids = walk(&mut guide, &tok, "<｜tool▁calls▁begin｜>abc<｜tool▁calls▁end｜>");
    assert_eq!(ids.len(), 5, "the markers are single tokens: {ids:?}");
    assert!(guide.done());
}

fn need_jsonschema() {
    let ok = Command::new("python3").args(["-c", "import jsonschema"]).status().is_ok_and(|s| s.success());
    assert!(ok, "python3 with the `jsonschema` package is needed: `pip install jsonschema`");
}

/// `jsonschema.validate` over each instance (a JSON text) under `schema`.
fn validate(schema: &Value, answers: &[String]) {
    let script = "import json, sys, jsonschema\nd = json.load(sys.stdin)\nfor a in d['answers']:\n    jsonschema.validate(json.loads(a), d['schema'])\nprint('valid')";
    let mut child = Command::new("python3").args(["-c", script]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(json!({ "schema": schema, "answers": answers }).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("valid"), "{answers:?} against {schema}: {}", String::from_utf8_lossy(&out.stderr));
}

fn generate(args: &[&str]) -> (bool, Value, String) {
    let o = Command::new(bin()).args(["generate", "--quiet", "--json", "--chat", "--ctx", "256"]).args(args).output().unwrap();
    (o.status.success(), serde_json::from_slice(&o.stdout).unwrap_or(Value::Null), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `generate --json-schema` on the embedded model, greedy and sampled: every answer (after
/// the reasoning) validates, and the reply ends where the object closes.
#[test]
fn cli_json_schema_answers_validate_for_every_seed() {
    need_jsonschema();
    let schema = json!({
        "type": "object",
        "properties": { "answer": { "type": "integer", "minimum": -99999, "maximum": 99999 }, "exact": { "type": "boolean" } },
        "required": ["answer", "exact"],
        "additionalProperties": false,
    });
    let dir = std::env::temp_dir().join(format!("dsw-constrained-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("schema.json");
    std::fs::write(&file, schema.to_string()).unwrap();
    let mut answers = Vec::new();
    for seed in [&["--temperature", "0"][..], &["--seed", "1"], &["--seed", "2"]] {
        let (ok, v, err) = generate(&[&["--prompt", "What is 347 + 589?", "--max-tokens", "120", "--json-schema", file.to_str().unwrap()][..], seed].concat());
        assert!(ok, "{err}");
        assert_eq!(v["stop"], "eos", "{v}");
        assert!(v["reasoning"].as_str().unwrap().contains("347+589"), "the reasoning comes first, unconstrained: {v}");
        answers.push(v["answer"].as_str().unwrap().trim().to_string());
    }
    validate(&schema, &answers);
    // a Lark grammar
    let lark = dir.join("yes_no.lark");
    std::fs::write(&lark, "start: \"The sum is \" NUMBER \".\"\nNUMBER: /[0-9]{1,4}/\n").unwrap();
    let (ok, v, err) = generate(&["--prompt", "What is 347 + 589?", "--temperature", "0", "--max-tokens", "80", "--grammar", lark.to_str().unwrap()]);
    assert!(ok, "{err}");
    let answer = v["answer"].as_str().unwrap().trim();
    assert!(answer.starts_with("The sum is ") && answer.ends_with('.'), "{v}");
    // broken files name themselves and what is wrong
    std::fs::write(&file, "{\"type\": \"object\",").unwrap();
    let (ok, _, err) = generate(&["--prompt", "hi", "--json-schema", file.to_str().unwrap()]);
    assert!(!ok && err.contains("schema.json") && err.contains("not JSON"), "{err}");
    std::fs::write(&file, "{\"type\": \"nonsense\"}").unwrap();
    let (ok, _, err) = generate(&["--prompt", "hi", "--json-schema", file.to_str().unwrap()]);
    assert!(!ok && err.contains("schema.json") && err.contains("nonsense"), "{err}");
    std::fs::write(&lark, "start: undefined_rule\n").unwrap();
    let (ok, _, err) = generate(&["--prompt", "hi", "--grammar", lark.to_str().unwrap()]);
    assert!(!ok && err.contains("yes_no.lark") && err.contains("undefined_rule"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A forced call in each format, over DeepSeek-V3's real vocabulary (whose tool markers are
/// single tokens): the grammar accepts exactly what the template would write, and the
/// server's tool-call parser reads the call back with its arguments.
#[test]
fn forced_tool_calls_in_every_format_parse_back() {
    use deepseek_wgpu::server::tools::{forced, parse, Syntax};
    let empty = std::env::temp_dir().join(format!("dsw-v3-tokenizer-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    // a folder without tokenizer.json and DeepSeek-V3's vocabulary: the embedded tokenizer
    let tok = ChatTokenizer::load(&empty, 129_280).unwrap();
    let eos = tok.token_id("<｜end▁of▁sentence｜>").unwrap();
    let t0 = std::time::Instant::now();
    let g = Grammar::new(&tok, 129_280, &[eos]).unwrap();
    eprintln!("grammar engine over 129k tokens built in {:?}", t0.elapsed());
    let tools = [
        json!({ "type": "function", "function": { "name": "get_weather", "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"], "additionalProperties": false } } }),
        json!({ "type": "function", "function": { "name": "get_time" } }),
    ];
    let cases = [
        (Syntax::R1, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
        (Syntax::V31, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
        (Syntax::Qwen, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
    ];
    for (syntax, text) in cases {
        let lark = forced(&tools, None, syntax);
        let mut guide = g.guide(&Constraint::Lark(lark.clone()), true).unwrap_or_else(|e| panic!("{syntax:?}: {e}\n{lark}"));
        walk(&mut guide, &tok, &format!("the user wants weather</think>\n\n{text}"));
        assert!(guide.done() || allowed(guide.mask().unwrap(), eos), "{syntax:?}: the calls complete the grammar");
        let (rest, calls) = parse(text);
        let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!((rest.as_str(), calls[0].name.as_str(), args), ("", "get_weather", json!({ "city": "Paris" })), "{syntax:?}");
        // a named choice allows that function only: the weather call is refused on its way
        let mut guide = g.guide(&Constraint::Lark(forced(&tools, Some("get_time"), syntax)), false).unwrap();
        let refused = tok.encode(text, false).unwrap().into_iter().any(|id| {
            if !allowed(guide.mask().unwrap(), id) {
                return true;
            }
            guide.commit(id).unwrap();
            false
        });
        assert!(refused, "{syntax:?}: a call of get_weather passed a grammar for get_time");
    }
    let _ = std::fs::remove_dir_all(&empty);
}
