//! Tokenizer and chat template against Hugging Face (goldens from
//! tools/make_chat_fixtures.py), and streaming detokenisation.

mod common;

use std::path::Path;

use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig, Message, StreamDecoder};
use serde_json::Value;

fn goldens() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture("chat_goldens.json")).unwrap()).unwrap()
}

fn tokenizer(which: &str) -> ChatTokenizer {
    match which {
        // A folder without tokenizer.json falls back to the embedded DeepSeek-V3 tokenizer.
        "deepseek-v3" => ChatTokenizer::load(Path::new("/nonexistent-model-dir"), 129_280).unwrap(),
        other => ChatTokenizer::load(&common::fixture(other), 320).unwrap(),
    }
}

#[test]
fn encode_decode_match_hugging_face() {
    let g = goldens();
    for (which, cases) in g["tokenizer"].as_object().unwrap() {
        let tok = tokenizer(which);
        for case in cases.as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            assert_eq!(tok.encode(text, false).unwrap(), want, "{which}: ids of {text:?}");
            let want_sp: Vec<u32> = serde_json::from_value(case["ids_hf_with_special"].clone()).unwrap();
            assert_eq!(tok.encode(text, true).unwrap(), want_sp, "{which}: ids with special tokens of {text:?}");
            assert_eq!(tok.decode(&want).unwrap(), case["decoded"].as_str().unwrap(), "{which}: decode of {text:?}");
        }
    }
}

#[test]
fn chat_templates_match_transformers() {
    let g = goldens();
    for (which, convs) in g["templates"].as_object().unwrap() {
        let tok = tokenizer(which);
        for (name, c) in convs.as_object().unwrap() {
            let msgs: Vec<Message> = serde_json::from_value(c["messages"].clone()).unwrap();
            for (gen, key) in [(true, "with_generation_prompt"), (false, "without_generation_prompt")] {
                let ours = tok.render_chat(&msgs, gen).unwrap_or_else(|e| panic!("{which}/{name}: {e}"));
                assert_eq!(ours, c[key].as_str().unwrap(), "{which}/{name} ({key})");
            }
        }
    }
}

#[test]
fn r1_style_history_drops_reasoning_and_prompt_opens_think() {
    let tok = tokenizer("chat_tiny");
    let msgs = vec![Message::new("user", "a"), Message::new("assistant", "<think>\nsecret\n</think>\n\nb"), Message::new("user", "c")];
    let text = tok.render_chat(&msgs, true).unwrap();
    assert!(!text.contains("secret"), "{text}");
    assert!(text.ends_with("<｜Assistant｜><think>\n"), "{text}");
}

#[test]
fn streaming_detokenisation_emits_whole_characters() {
    let tok = tokenizer("deepseek-v3");
    for text in ["Emoji: 😀🎉👍🏽 family: 👨‍👩‍👧‍👦", "深度求索是一家人工智能公司", "mixed ascii и кириллица ✓"] {
        // Byte-level ids of single bytes split every multi-byte character across tokens.
        let ids = tok.encode(text, false).unwrap();
        let mut d = StreamDecoder::default();
        let mut out = String::new();
        for id in ids {
            if let Some(piece) = d.push(&tok, id).unwrap() {
                assert!(!piece.contains('\u{FFFD}'), "partial character emitted for {text:?}: {piece:?}");
                out.push_str(&piece);
            }
        }
        if let Some(rest) = d.finish(&tok).unwrap() {
            out.push_str(&rest);
        }
        assert_eq!(out, text);
    }
    // The tiny byte-level tokenizer has one token per byte: every multi-byte character spans tokens.
    let tiny = tokenizer("chat_tiny");
    let ids = tiny.encode("é😀", false).unwrap();
    assert_eq!(ids.len(), 6);
    let mut d = StreamDecoder::default();
    let pieces: Vec<String> = ids.iter().filter_map(|&i| d.push(&tiny, i).unwrap()).collect();
    assert_eq!(pieces, vec!["é".to_string(), "😀".to_string()]);
}

#[test]
fn generation_config_defaults() {
    let g = GenerationConfig::load(&common::fixture("chat_tiny")).unwrap();
    let s = g.sample.unwrap();
    assert_eq!((s.temperature, s.top_p), (0.6, 0.95));
    assert_eq!(g.eos_token_ids, vec![tokenizer("chat_tiny").token_id("<｜end▁of▁sentence｜>").unwrap()]);
}

#[test]
fn tokenizer_larger_than_the_model_vocab_is_refused() {
    let e = ChatTokenizer::load(Path::new("/nonexistent-model-dir"), 320).err().unwrap().to_string();
    assert!(e.contains("129280") || e.contains("vocabulary"), "{e}");
}
