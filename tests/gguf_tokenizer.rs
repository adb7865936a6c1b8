//! The chat tokenizer rebuilt from a GGUF file's metadata against Hugging Face's.
//!
//! DeepSeek-V3's real tokenizer (assets/deepseek-v3-tokenizer) is written into a GGUF file the
//! way llama.cpp's converter writes it (convert_hf_to_gguf.py `get_vocab_base` +
//! `_set_vocab_gpt2`, gguf-py `SpecialVocab`), by a small metadata-only GGUF writer here, read
//! back with `Gguf::from_memory` and `ChatTokenizer::from_gguf`, and must give the ids, decoded
//! text and chat template rendering of the tokenizer.json path; the ids also match the
//! `tokenizers` Python package's (tests/fixtures/gguf_tok/hf_ids.json, from
//! tools/make_gguf_tok_fixtures.py).
//!
//! Two checks need files too big for the repository and run when an environment variable
//! points at them (they pass silently otherwise):
//! - `DEEPSEEK_WGPU_V3_VOCAB_GGUF`: DeepSeek-V3's vocabulary converted by llama.cpp itself
//!   (`convert_hf_to_gguf.py --vocab-only` on a folder with assets/deepseek-v3-tokenizer and a
//!   DeepSeek-V3 config.json): the writer here must produce the same tokens, types and merges,
//!   and the tokenizer the same ids.
//! - `LLAMA_CPP_MODELS_DIR`: llama.cpp's `models/` folder (in its repository, or in the
//!   llama-cpp-python sdist under vendor/llama.cpp): `ggml-vocab-deepseek-{llm,coder}.gguf`
//!   with the Hugging Face ids of their `.inp` texts in `.out`.
//!
//! tools/gguf_tok_llama_cpp_checks.sh fetches llama.cpp (llama-cpp-python sdist), converts the
//! vocabulary and runs both.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig, Message};
use deepseek_wgpu::gguf::{Array, Gguf, Value};
use serde_json::Value as Json;

const V3_VOCAB: usize = 129_280;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/deepseek-v3-tokenizer")
}

/// The tokenizer.json path: DeepSeek-V3's files in a folder.
fn hf_tokenizer() -> ChatTokenizer {
    ChatTokenizer::load(&assets(), V3_VOCAB).unwrap()
}

// ---- a metadata-only GGUF v3 writer ---------------------------------------------------------

fn gstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn payload(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => gstr(out, s),
        Value::Array(a) => {
            out.extend(a.elem_type_id().to_le_bytes());
            out.extend((a.len() as u64).to_le_bytes());
            match a {
                Array::String(v) => v.iter().for_each(|s| gstr(out, s)),
                Array::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
                other => panic!("writer: array of {} not needed", other.elem_type_name()),
            }
        }
        other => panic!("writer: {} not needed", other.type_name()),
    }
}

/// A GGUF v3 file with `kv` as metadata and no tensors.
fn write_gguf(kv: &[(String, Value)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend((kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        gstr(&mut out, k);
        out.extend(v.type_id().to_le_bytes());
        payload(&mut out, v);
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    out
}

// ---- llama.cpp's converter, for a tokenizer.json folder -------------------------------------

fn looks_special(t: &str) -> bool {
    // convert_hf_to_gguf.py `does_token_look_special`
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(&t)
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// The tokenizer metadata convert_hf_to_gguf.py writes for a byte-level BPE model folder
/// (`_set_vocab_gpt2`): `get_vocab_base`'s tokens and types, then gguf-py `SpecialVocab`'s
/// merges, special ids, add_*_token and chat template. `pre` stands in for the probe-hash
/// lookup (`get_vocab_base_pre`), which needs transformers.
fn convert(dir: &Path, vocab_size: usize, pre: &str) -> Vec<(String, Value)> {
    let tj: Json = serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
    let tc: Json = serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap()).unwrap();
    let hf = ChatTokenizer::load(dir, vocab_size).unwrap();
    // tokenizer.vocab: the model's vocabulary with the added tokens over it.
    let mut reverse: BTreeMap<u32, String> = BTreeMap::new();
    for (t, id) in tj["model"]["vocab"].as_object().unwrap() {
        reverse.insert(id.as_u64().unwrap() as u32, t.clone());
    }
    let added = tj["added_tokens"].as_array().unwrap();
    for a in added {
        reverse.insert(a["id"].as_u64().unwrap() as u32, a["content"].as_str().unwrap().into());
    }
    let added_by_id: BTreeMap<u32, &Json> = added.iter().map(|a| (a["id"].as_u64().unwrap() as u32, a)).collect();
    let (mut tokens, mut types) = (Vec::new(), Vec::new());
    for i in 0..vocab_size as u32 {
        let Some(t) = reverse.get(&i) else {
            tokens.push(format!("[PAD{i}]"));
            types.push(5); // UNUSED
            continue;
        };
        let mut t = t.clone();
        match added_by_id.get(&i) {
            Some(a) => {
                if !a["normalized"].as_bool().unwrap() {
                    // tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
                    t = hf.decode(&hf.encode(&t, false).unwrap()).unwrap();
                }
                if a["special"].as_bool().unwrap() || looks_special(&t) {
                    types.push(3); // CONTROL
                } else {
                    t = t.replace('▁', " ");
                    types.push(4); // USER_DEFINED
                }
            }
            None => types.push(1), // NORMAL
        }
        tokens.push(t);
    }
    // "a b" strings (older tokenizers) or ["a", "b"] pairs (Qwen3's); GGUF stores "a b"
    let merges: Vec<String> = tj["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().map(String::from).unwrap_or_else(|| format!("{} {}", m[0].as_str().unwrap(), m[1].as_str().unwrap())))
        .collect();
    // SpecialVocab: the ids of tokenizer_config.json's special tokens among the added tokens.
    let special_id = |key: &str| -> Option<u32> {
        let content = match &tc[key] {
            Json::String(s) => s.clone(),
            Json::Object(o) => o["content"].as_str()?.to_string(),
            _ => return None,
        };
        added.iter().find(|a| a["content"] == content.as_str()).map(|a| a["id"].as_u64().unwrap() as u32)
    };
    // A ByteLevel post-processor makes SpecialVocab write add_bos/add_eos false, whatever
    // tokenizer_config.json says (it logs the mismatch and "opts for the latter").
    let post_bytelevel = tj["post_processor"]["type"] == "ByteLevel";
    let add = |key: &str| if post_bytelevel { false } else { tc[key].as_bool().unwrap_or(false) };
    let mut kv = vec![
        ("general.architecture".to_string(), Value::String("deepseek2".into())),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.token_type".into(), Value::Array(Array::I32(types))),
        ("tokenizer.ggml.merges".into(), Value::Array(Array::String(merges))),
    ];
    for (typ, key) in [("bos_token", "bos"), ("eos_token", "eos"), ("pad_token", "padding")] {
        if let Some(id) = special_id(typ) {
            kv.push((format!("tokenizer.ggml.{key}_token_id"), Value::U32(id)));
        }
    }
    kv.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(add("add_bos_token"))));
    kv.push(("tokenizer.ggml.add_eos_token".into(), Value::Bool(add("add_eos_token"))));
    if let Some(t) = tc["chat_template"].as_str() {
        kv.push(("tokenizer.chat_template".into(), Value::String(t.into())));
    }
    kv
}

fn set(kv: &mut Vec<(String, Value)>, key: &str, v: Option<Value>) {
    kv.retain(|(k, _)| k != key);
    if let Some(v) = v {
        kv.push((key.into(), v));
    }
}

fn v3_kv() -> Vec<(String, Value)> {
    convert(&assets(), V3_VOCAB, "deepseek-v3")
}

fn from_kv(kv: &[(String, Value)]) -> Result<ChatTokenizer, String> {
    from_kv_vocab(kv, V3_VOCAB)
}

/// [`from_kv`] for a model of `vocab` rows.
fn from_kv_vocab(kv: &[(String, Value)], vocab: usize) -> Result<ChatTokenizer, String> {
    let g = Gguf::from_memory("v3-tokenizer.gguf", write_gguf(kv)).map_err(|e| e.to_string())?;
    ChatTokenizer::from_gguf(&g, vocab).map_err(|e| e.to_string())
}

fn hf_cases() -> Vec<(String, Vec<u32>, String)> {
    let g: Json = serde_json::from_str(&std::fs::read_to_string(common::fixture("gguf_tok/hf_ids.json")).unwrap()).unwrap();
    g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["text"].as_str().unwrap().to_string(), serde_json::from_value(c["ids"].clone()).unwrap(), c["decoded"].as_str().unwrap().to_string()))
        .collect()
}

/// Encode, encode with special tokens, decode and per-token decode agree on every text.
fn assert_same_tokenizer(ours: &ChatTokenizer, hf: &ChatTokenizer, what: &str) {
    for (text, want, decoded) in hf_cases() {
        let ids = ours.encode(&text, false).unwrap();
        assert_eq!(ids, want, "{what}: ids of {text:?} differ from Hugging Face's");
        assert_eq!(ids, hf.encode(&text, false).unwrap(), "{what}: ids of {text:?}");
        assert_eq!(ours.encode(&text, true).unwrap(), hf.encode(&text, true).unwrap(), "{what}: ids with special tokens of {text:?}");
        assert_eq!(ours.decode(&ids).unwrap(), decoded, "{what}: decode of {text:?}");
        for &id in &ids {
            assert_eq!(ours.decode(&[id]).unwrap(), hf.decode(&[id]).unwrap(), "{what}: decode of id {id}");
        }
    }
}

// ---- DeepSeek-V3 ----------------------------------------------------------------------------

#[test]
fn v3_gguf_tokenizer_gives_hugging_face_ids() {
    let hf = hf_tokenizer();
    let ours = from_kv(&v3_kv()).unwrap();
    assert_eq!(ours.vocab_size(), hf.vocab_size(), "the [PAD] fill must not count as tokens");
    assert_same_tokenizer(&ours, &hf, "deepseek-v3");
    for special in ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜tool▁sep｜>", "<|EOT|>", "<｜place▁holder▁no▁798｜>"]
    {
        let id = hf.token_id(special).unwrap();
        assert_eq!(ours.token_id(special), Some(id), "{special}");
        assert_eq!(ours.encode(special, false).unwrap(), vec![id], "{special} is one token");
    }
    // DeepSeek-V3's tokenizer has no <think> token (R1's renames placeholders 798/799); both
    // paths must still split the text the same way.
    for t in ["<think>", "</think>", "<think>\n"] {
        assert_eq!(ours.encode(t, false).unwrap(), hf.encode(t, false).unwrap(), "{t}");
    }
    // Ids the model has but the tokenizer does not ([PADn] fill) decode to nothing, as in HF.
    assert_eq!(ours.decode(&[129_000, 19923]).unwrap(), hf.decode(&[129_000, 19923]).unwrap());
    assert_eq!(ours.token_id("[PAD129000]"), None);
    // A few whole-vocabulary spot checks: every 97th id decodes and maps back alike.
    for id in (0..128_815).step_by(97) {
        assert_eq!(ours.decode(&[id]).unwrap(), hf.decode(&[id]).unwrap(), "id {id}");
    }
}

#[test]
fn v3_gguf_chat_template_and_special_tokens_match() {
    let hf = hf_tokenizer();
    let ours = from_kv(&v3_kv()).unwrap();
    assert_eq!(ours.bos_token, hf.bos_token);
    assert_eq!(ours.eos_token, hf.eos_token);
    assert_eq!(ours.chat_template, hf.chat_template);
    assert_eq!(ours.source, PathBuf::from("v3-tokenizer.gguf"));
    let convs = [
        vec![Message::new("user", "Hi!")],
        vec![Message::new("system", "You are terse."), Message::new("user", "2+2?"), Message::new("assistant", "4"), Message::new("user", "and 3+3?")],
        vec![Message::new("user", "深度求索\n```py\nprint('x')\n```"), Message::new("assistant", "<think>\nhm\n</think>\n\n好的 😀")],
    ];
    for msgs in &convs {
        for gen in [true, false] {
            let a = ours.render_chat(msgs, gen).unwrap();
            assert_eq!(a, hf.render_chat(msgs, gen).unwrap());
            assert_eq!(ours.encode(&a, false).unwrap(), hf.encode(&a, false).unwrap(), "ids of the rendered chat {a:?}");
        }
    }
    // llama.cpp's converter writes add_bos_token false for this tokenizer.json (its ByteLevel
    // post-processor wins over tokenizer_config.json's true); the GGUF path follows the file.
    assert!(!ours.add_bos_token);
    let mut kv = v3_kv();
    set(&mut kv, "tokenizer.ggml.add_bos_token", Some(Value::Bool(true)));
    let with_bos = from_kv(&kv).unwrap();
    assert!(hf.add_bos_token && with_bos.add_bos_token);
    assert_eq!(with_bos.encode_prompt("Hello").unwrap(), hf.encode_prompt("Hello").unwrap());
    assert_eq!(with_bos.encode_prompt("Hello").unwrap()[0], 0);
}

#[test]
fn joyai_llm_pre_is_the_deepseek_v3_pre_tokenizer() {
    // transformers 5 encodes llama.cpp's probe text without BOS, and its hash is then
    // JoyAI-LLM-Flash's (same tokenizer): recent conversions of DeepSeek-V3 say "joyai-llm".
    let hf = hf_tokenizer();
    let ours = from_kv(&convert(&assets(), V3_VOCAB, "joyai-llm")).unwrap();
    assert_same_tokenizer(&ours, &hf, "joyai-llm");
}

#[test]
fn user_defined_tokens_stay_whole_and_control_tokens_without_types() {
    // Types absent: llama.cpp takes every token as normal; the special ids must still be whole.
    let hf = hf_tokenizer();
    let mut kv = v3_kv();
    set(&mut kv, "tokenizer.ggml.token_type", None);
    let ours = from_kv(&kv).unwrap();
    assert_eq!(ours.encode("<｜begin▁of▁sentence｜>Hi", false).unwrap(), hf.encode("<｜begin▁of▁sentence｜>Hi", false).unwrap());
    // A user-defined token (type 4) is an added, non-special token: matched whole in text.
    let mut kv = v3_kv();
    let Some((_, Value::Array(Array::I32(types)))) = kv.iter_mut().find(|(k, _)| k == "tokenizer.ggml.token_type") else { panic!() };
    types[128_803] = 4;
    let ours = from_kv(&kv).unwrap();
    assert_eq!(ours.encode("a<｜User｜>b", false).unwrap(), hf.encode("a<｜User｜>b", false).unwrap());
}

// ---- errors ---------------------------------------------------------------------------------

fn err(kv: &[(String, Value)]) -> String {
    from_kv(kv).err().expect("must fail")
}

#[test]
fn unsupported_or_missing_tokenizers_are_named() {
    let base = v3_kv();
    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.model", Some(Value::String("llama".into())));
    let e = err(&kv);
    assert!(e.contains("v3-tokenizer.gguf") && e.contains("tokenizer.ggml.model") && e.contains("\"llama\"") && e.contains("SentencePiece"), "{e}");

    let mut kv = base.clone();
    kv.retain(|(k, _)| !k.starts_with("tokenizer."));
    let e = err(&kv);
    assert!(e.contains("v3-tokenizer.gguf") && e.contains("tokenizer.ggml.model") && e.contains("no tokenizer"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.pre", Some(Value::String("llama-bpe".into())));
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.pre") && e.contains("\"llama-bpe\"") && e.contains("deepseek-v3"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.pre", None);
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.pre") && e.contains("missing"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.merges", None);
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.merges") && e.contains("missing"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.merges", Some(Value::Array(Array::String(vec!["Ġ t".into(), "nospace".into()]))));
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.merges") && e.contains("entry 1"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.merges", Some(Value::Array(Array::String(vec!["Ġ zzzunknown".into()]))));
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.merges"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.token_type", Some(Value::Array(Array::I32(vec![1; 10]))));
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.token_type") && e.contains("10 entries"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.pre", Some(Value::U32(3)));
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.pre") && e.contains("string"), "{e}");

    let mut kv = base.clone();
    set(&mut kv, "tokenizer.ggml.eos_token_id", Some(Value::U32(200_000)));
    let e = err(&kv);
    assert!(e.contains("tokenizer.ggml.eos_token_id") && e.contains("200000"), "{e}");

    // A model whose vocabulary cannot hold the tokenizer's ids.
    let g = Gguf::from_memory("v3-tokenizer.gguf", write_gguf(&base)).unwrap();
    let e = ChatTokenizer::from_gguf(&g, 320).err().unwrap().to_string();
    assert!(e.contains("128815") && e.contains("320") && e.contains("v3-tokenizer.gguf"), "{e}");
}

// ---- a .gguf path through ChatTokenizer::load and GenerationConfig::load --------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("deepseek-wgpu-gguf-tok-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_gguf_path_loads_its_own_tokenizer_and_generation_config() {
    let dir = TempDir::new("load");
    let mut kv = v3_kv();
    set(&mut kv, "general.sampling.temp", Some(Value::F32(0.6)));
    set(&mut kv, "general.sampling.top_p", Some(Value::F32(0.95)));
    set(&mut kv, "tokenizer.ggml.eot_token_id", Some(Value::U32(128_805)));
    let path = dir.0.join("DeepSeek-V3-tokenizer.gguf");
    std::fs::write(&path, write_gguf(&kv)).unwrap();

    let hf = hf_tokenizer();
    let tok = ChatTokenizer::load(&path, V3_VOCAB).unwrap();
    assert_eq!(tok.source, path);
    let text = "深度求索 DeepSeek-V3\n    code();  1234567";
    assert_eq!(tok.encode(text, false).unwrap(), hf.encode(text, false).unwrap());
    assert_eq!(tok.chat_template, hf.chat_template);

    let gen = GenerationConfig::load(&path).unwrap();
    assert_eq!(gen.eos_token_ids, vec![1, 128_805]);
    assert_eq!(gen.bos_token_id, Some(0));
    let s = gen.sample.unwrap();
    assert_eq!((s.temperature, s.top_p, s.top_k, s.min_p, s.repeat_penalty), (0.6, 0.95, 0, 0.0, 1.0));

    // Without sampling keys (files from older converters): no defaults, end ids still known.
    let bare = dir.0.join("bare.gguf");
    std::fs::write(&bare, write_gguf(&v3_kv())).unwrap();
    let gen = GenerationConfig::load(&bare).unwrap();
    assert_eq!((gen.eos_token_ids, gen.bos_token_id, gen.sample.is_none()), (vec![1], Some(0), true));

    // A GGUF without a tokenizer is an error naming the file, not a silent fallback.
    let none = dir.0.join("weights-only.gguf");
    std::fs::write(&none, write_gguf(&[("general.architecture".into(), Value::String("deepseek2".into()))])).unwrap();
    let e = ChatTokenizer::load(&none, V3_VOCAB).err().unwrap().to_string();
    assert!(e.contains("weights-only.gguf") && e.contains("tokenizer.ggml.model"), "{e}");
    assert_eq!(GenerationConfig::load(&none).unwrap().eos_token_ids, Vec::<u32>::new());
}

// ---- against llama.cpp's own files (when present) -------------------------------------------

#[test]
#[ignore = "needs llama.cpp's converter output: tools/gguf_tok_llama_cpp_checks.sh runs it"]
fn writer_matches_llama_cpp_converter_output() {
    let path = std::env::var_os("DEEPSEEK_WGPU_V3_VOCAB_GGUF").expect("DEEPSEEK_WGPU_V3_VOCAB_GGUF: run tools/gguf_tok_llama_cpp_checks.sh");
    let real = Gguf::open(Path::new(&path)).unwrap();
    let pre = real.get_str("tokenizer.ggml.pre").unwrap().to_string();
    let ours = Gguf::from_memory("ours.gguf", write_gguf(&convert(&assets(), V3_VOCAB, &pre))).unwrap();
    for key in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.ggml.add_eos_token",
        "tokenizer.chat_template",
    ] {
        let (a, b) = (real.get(key).unwrap(), ours.get(key).unwrap());
        assert!(a.as_u64().zip(b.as_u64()).is_some_and(|(x, y)| x == y) || a == b, "{key}: llama.cpp wrote {}, the test writer {}", a.describe(), b.describe());
    }
    let hf = hf_tokenizer();
    assert_same_tokenizer(&ChatTokenizer::from_gguf(&real, V3_VOCAB).unwrap(), &hf, &format!("llama.cpp's GGUF (pre {pre:?})"));
}

#[test]
#[ignore = "needs llama.cpp's vocab files: tools/gguf_tok_llama_cpp_checks.sh runs it"]
fn llama_cpp_deepseek_vocab_files_give_their_hugging_face_ids() {
    let dir = std::env::var_os("LLAMA_CPP_MODELS_DIR").expect("LLAMA_CPP_MODELS_DIR: run tools/gguf_tok_llama_cpp_checks.sh");
    let dir = PathBuf::from(dir);
    for name in ["deepseek-llm", "deepseek-coder"] {
        let gguf = dir.join(format!("ggml-vocab-{name}.gguf"));
        let g = Gguf::open(&gguf).unwrap();
        assert_eq!(g.get_str("tokenizer.ggml.pre").unwrap(), name);
        let tok = ChatTokenizer::from_gguf(&g, usize::MAX).unwrap();
        let inp = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.inp"))).unwrap();
        let out = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.out"))).unwrap();
        let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
        let want: Vec<Vec<u32>> = out.lines().map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect()).collect();
        assert_eq!(texts.len(), want.len() + 1, "{name}: .inp/.out disagree");
        let mut seen = HashSet::new();
        for (text, want) in texts.iter().zip(&want) {
            assert_eq!(&tok.encode(text, false).unwrap(), want, "{name}: ids of {text:?}");
            seen.insert(*text);
        }
        eprintln!("{name}: {} texts match Hugging Face's ids", seen.len());
    }
}

/// Qwen3's real tokenizer (tests/fixtures/qwen3_tokenizer, what R1-0528-Qwen3-8B's GGUF files
/// carry under `tokenizer.ggml.pre` = "qwen2") written into a GGUF and read back: the ids of
/// Hugging Face's `tokenizers` on the varied texts of tests/fixtures/qwen3_goldens.json
/// (Chinese, code, emoji, special tokens, text NFC changes), and decoding.
#[test]
fn qwen3_gguf_tokenizer_gives_hugging_face_ids() {
    let dir = common::fixture("qwen3_tokenizer");
    let hf = ChatTokenizer::load(&dir, 151_936).unwrap();
    let ours = from_kv_vocab(&convert(&dir, 151_936, "qwen2"), 151_936).unwrap();
    let goldens: Json = serde_json::from_str(&std::fs::read_to_string(common::fixture("qwen3_goldens.json")).unwrap()).unwrap();
    let cases = goldens["tokenizer"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(c["ids"].clone()).unwrap();
        assert_eq!(ours.encode(text, false).unwrap(), want, "{text:?}");
        assert_eq!(ours.decode(&want).unwrap(), hf.decode(&want).unwrap(), "decode of {text:?}");
    }
    for special in ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>"] {
        assert_eq!(ours.token_id(special), hf.token_id(special), "{special}");
    }
    assert!(!ours.add_bos_token, "Qwen adds no BOS");
}
