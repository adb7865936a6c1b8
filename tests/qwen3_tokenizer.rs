//! Qwen3's tokenizer (DeepSeek-R1-0528-Qwen3-8B's vocabulary) and the chat templates of the
//! Qwen3 family against Hugging Face: goldens from tools/make_qwen3_tok_fixtures.py, which runs
//! the `tokenizers` library and transformers' AutoTokenizer / apply_chat_template on the same
//! files (tests/fixtures/qwen3_tokenizer, tests/fixtures/chat_templates; SOURCE.md there).
//! The two reasoning styles go end to end through what a chat turn does without the GPU:
//! template, prompt ids, whether the prompt opened `<think>`, streamed detokenisation of the
//! reply's ids, the reasoning split, and the assistant message the next turn renders.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use deepseek_wgpu::chat::{assistant_content, prompt_opens_reasoning, render, ChatTokenizer, Message, ReasoningSplitter, StreamDecoder, TextKind};
use serde_json::Value;

/// Qwen3-8B's and DeepSeek-R1-0528-Qwen3-8B's `vocab_size` (151,669 tokens padded).
const QWEN3_VOCAB: usize = 151_936;

fn goldens() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("qwen3_goldens.json")).unwrap()).unwrap()
}

/// Loaded once: an 11 MB tokenizer.json takes a while to parse.
fn qwen3() -> &'static ChatTokenizer {
    static TOK: OnceLock<ChatTokenizer> = OnceLock::new();
    TOK.get_or_init(|| ChatTokenizer::load(&common::fixture("qwen3_tokenizer"), QWEN3_VOCAB).unwrap())
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn template(name: &str) -> String {
    std::fs::read_to_string(common::fixture("chat_templates").join(format!("{name}.jinja"))).unwrap()
}

#[test]
fn qwen3_special_tokens_and_no_bos() {
    let tok = qwen3();
    assert_eq!(tok.vocab_size(), 151_669);
    assert_eq!(tok.bos_token, None, "Qwen3's tokenizer_config has bos_token null");
    assert!(!tok.add_bos_token);
    assert_eq!(tok.eos_token.as_deref(), Some("<|im_end|>"));
    for (text, id) in [("<|endoftext|>", 151_643), ("<|im_start|>", 151_644), ("<|im_end|>", 151_645), ("<think>", 151_667), ("</think>", 151_668)] {
        assert_eq!(tok.token_id(text), Some(id), "{text}");
    }
    // A raw prompt gets no BOS: Qwen3 has none.
    assert_eq!(tok.encode_prompt("Hello").unwrap(), vec![9707]);
}

#[test]
fn qwen3_ids_match_hugging_face() {
    let g = goldens();
    let tok = qwen3();
    let cases = g["tokenizer"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        assert_eq!(tok.encode(text, false).unwrap(), want, "ids of {text:?}");
        assert_eq!(tok.encode(text, true).unwrap(), ids(&case["ids_hf_with_special"]), "ids with special tokens of {text:?}");
        assert_eq!(tok.encode_prompt(text).unwrap(), want, "raw prompt ids of {text:?} (no BOS)");
        assert_eq!(tok.decode(&want).unwrap(), case["decoded"].as_str().unwrap(), "decode of {text:?}");
    }
}

/// Token by token, as the session streams a reply: whole characters only (emoji and CJK span
/// several byte-level tokens), and together the same text as decoding all at once.
#[test]
fn qwen3_streaming_decode_is_whole_characters() {
    let g = goldens();
    let tok = qwen3();
    for case in g["tokenizer"].as_array().unwrap() {
        let want = ids(&case["ids"]);
        let mut dec = StreamDecoder::default();
        let mut out = String::new();
        for &id in &want {
            if let Some(piece) = dec.push(&tok, id).unwrap() {
                assert!(!piece.contains('\u{FFFD}'), "{piece:?} of {:?}", case["text"]);
                out.push_str(&piece);
            }
        }
        out.push_str(&dec.finish(&tok).unwrap().unwrap_or_default());
        assert_eq!(out, case["decoded"].as_str().unwrap());
    }
}

fn render_golden(name: &str, t: &Value, msgs: &[Message], gen: bool) -> String {
    if name == "qwen3" {
        // Qwen3's own template, from the tokenizer_config.json next to its tokenizer.json
        qwen3().render_chat(msgs, gen).unwrap()
    } else {
        render(&template(name), msgs, gen, t["bos_token"].as_str().unwrap(), t["eos_token"].as_str().unwrap(), None, &Default::default()).unwrap()
    }
}

#[test]
fn real_templates_match_transformers() {
    let g = goldens();
    let templates = g["templates"].as_object().unwrap();
    assert_eq!(templates.len(), 3);
    for (name, t) in templates {
        for (conv, c) in t["conversations"].as_object().unwrap() {
            let msgs: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
            for (gen, key) in [(true, "with_generation_prompt"), (false, "without_generation_prompt")] {
                assert_eq!(render_golden(name, t, &msgs, gen), c[key].as_str().unwrap(), "{name}/{conv} ({key})");
            }
        }
    }
}

/// Qwen3: the prompt's ids as transformers' apply_chat_template(tokenize=True) gives them, and
/// `enable_thinking=False` passed as a template variable.
#[test]
fn qwen3_template_ids_and_thinking_off() {
    let g = goldens();
    let tok = qwen3();
    let mut off = serde_json::Map::new();
    off.insert("enable_thinking".into(), Value::Bool(false));
    for (conv, c) in g["templates"]["qwen3"]["conversations"].as_object().unwrap() {
        let msgs: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
        let text = tok.render_chat(&msgs, true).unwrap();
        assert_eq!(tok.encode(&text, false).unwrap(), ids(&c["ids_with_generation_prompt"]), "qwen3/{conv}");
        let closed = tok.render_chat_with(&msgs, true, &off).unwrap();
        assert_eq!(closed, c["with_generation_prompt_thinking_off"].as_str().unwrap(), "qwen3/{conv} thinking off");
        assert!(!prompt_opens_reasoning(&closed), "an empty closed block is not an open one");
    }
}

/// A reply streamed as the session does (StreamDecoder, then ReasoningSplitter started inside
/// the reasoning when the prompt opened it): (reasoning, answer).
fn stream_reply(tok: &ChatTokenizer, reply_ids: &[u32], opened: bool) -> (String, String) {
    let mut dec = StreamDecoder::default();
    let mut split = ReasoningSplitter::new(opened);
    let mut pieces = Vec::new();
    for &id in reply_ids {
        if let Some(d) = dec.push(tok, id).unwrap() {
            pieces.extend(split.push(&d));
        }
    }
    if let Some(d) = dec.finish(tok).unwrap() {
        pieces.extend(split.push(&d));
    }
    pieces.extend(split.finish());
    let (mut r, mut a) = (String::new(), String::new());
    for (k, t) in pieces {
        match k {
            TextKind::Reasoning => r.push_str(&t),
            TextKind::Answer => a.push_str(&t),
        }
    }
    (r, a)
}

/// Both reasoning styles with the real templates: Qwen3's and R1-0528-Qwen3-8B's leave
/// `<think>` to the model (the prompt ends at the assistant header), R1-Distill's ends the
/// prompt with `<think>\n` so the reply holds only `</think>`. Either way the reader gets the
/// same reasoning and answer, and the stored assistant turn renders as transformers renders it.
#[test]
fn reasoning_styles_end_to_end() {
    let g = goldens();
    let tok = qwen3();
    for (name, opens) in [("qwen3", false), ("deepseek-r1-0528-qwen3-8b", false), ("deepseek-r1-distill-qwen", true)] {
        let t = &g["templates"][name];
        let single: Vec<Message> = serde_json::from_value(t["conversations"]["single"]["messages"].clone()).unwrap();
        let prompt = render_golden(name, t, &single, true);
        assert_eq!(prompt_opens_reasoning(&prompt), opens, "{name}: {prompt:?}");

        let r = &g["replies"][name];
        let reply_ids = ids(&r["ids"]);
        assert_eq!(tok.encode(r["text"].as_str().unwrap(), false).unwrap(), reply_ids);
        assert_eq!(reply_ids.contains(&tok.token_id("<think>").unwrap()), !opens, "{name}: who writes <think>");
        let (reasoning, answer) = stream_reply(&tok, &reply_ids, opens);
        assert_eq!((reasoning.as_str(), answer.as_str()), (r["reasoning"].as_str().unwrap(), r["answer"].as_str().unwrap()), "{name}");

        // The stored turn is what the goldens' history holds, and renders as transformers does
        // (R1's templates drop the reasoning, Qwen3's keeps it after the last user turn).
        let last = &t["conversations"]["assistant_last_with_reasoning"];
        let msgs: Vec<Message> = serde_json::from_value(last["messages"].clone()).unwrap();
        assert_eq!(msgs[1].content, assistant_content("2+5=7\n", "7"));
        assert_eq!(render_golden(name, t, &msgs, false), last["without_generation_prompt"].as_str().unwrap(), "{name}");
        let mut next = single.clone();
        next.push(Message::new("assistant", &assistant_content(&reasoning, &answer)));
        next.push(Message::new("user", "Thanks"));
        let follow = render_golden(name, t, &next, true);
        assert!(!follow.contains(reasoning.trim_end()), "{name}: an earlier turn's reasoning is not fed again: {follow:?}");
        assert!(follow.contains(&answer), "{name}");
    }
}

/// A folder without tokenizer.json whose vocabulary is not DeepSeek-V3's (a Qwen3 checkpoint)
/// must not silently get the embedded DeepSeek-V3 tokenizer; DeepSeek-V3's still does.
#[test]
fn no_deepseek_fallback_for_a_qwen3_vocabulary() {
    let e = ChatTokenizer::load(Path::new("/nonexistent-model-dir"), QWEN3_VOCAB).err().expect("Qwen3's vocabulary must not take the DeepSeek-V3 tokenizer").to_string();
    assert!(e.contains("tokenizer.json") && e.contains("151936"), "{e}");
    let v3 = ChatTokenizer::load(Path::new("/nonexistent-model-dir"), 129_280).unwrap();
    assert_eq!(v3.bos_token.as_deref(), Some("<｜begin▁of▁sentence｜>"));
}
