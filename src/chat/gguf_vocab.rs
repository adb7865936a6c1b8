//! The chat tokenizer of a GGUF file, rebuilt from the `tokenizer.ggml.*` metadata that
//! llama.cpp's converter writes, so that ids equal Hugging Face's `tokenizer.json` for the
//! same model.
//!
//! What the converter writes for a byte-level BPE model (convert_hf_to_gguf.py
//! `_set_vocab_gpt2` / `get_vocab_base`, gguf-py `SpecialVocab`):
//! - `tokenizer.ggml.model` = "gpt2"; `tokenizer.ggml.pre` names the pre-tokenizer, found by
//!   hashing the ids of a probe text (DeepSeek-V3/R1: "deepseek-v3", or "joyai-llm" when the
//!   probe is encoded without BOS, as transformers 5 does: same tokenizer, same regexes).
//! - `tokenizer.ggml.tokens`: id → byte-level token text, the added tokens included, ids the
//!   model has no token for filled with `[PAD{id}]` up to `vocab_size`.
//! - `tokenizer.ggml.token_type`: 1 normal, 3 control (added tokens marked special, or that
//!   look special: `<｜…｜>`, `<|…|>`), 4 user-defined (other added tokens), 5 unused (the fill).
//! - `tokenizer.ggml.merges`: "a b" strings in rank order (tokenizer.json's merges).
//! - `tokenizer.ggml.{bos,eos,padding}_token_id`, `tokenizer.ggml.add_{bos,eos}_token`,
//!   `tokenizer.chat_template` (tokenizer_config.json's).
//!
//! Rebuilt as tokenizer.json has it: a BPE model over the tokens (unused fill left out, so ids
//! with no token decode to nothing, as in Hugging Face), the pre-tokenizer's `Split` regexes
//! (llama.cpp's for `tokenizer.ggml.pre`, the same strings as the model's tokenizer.json) then
//! byte-level, byte-level decoder and post-processor, and the control / user-defined tokens as
//! added tokens (special / not) so `<｜begin▁of▁sentence｜>` or `<think>` is one token.

use std::path::PathBuf;

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::{AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::tokenizer::TokenizerError;
use crate::gguf::Gguf;

/// llama.cpp's token types (`llama_token_type`, gguf-py `TokenType`).
const NORMAL: i64 = 1;
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;
const UNUSED: i64 = 5;

/// `deepseek-v3` (and `joyai-llm`, `hunyuan-dense`, `hy_v4`, which llama.cpp maps to the same
/// regexes): DeepSeek-V3/V3.1/R1. llama-vocab.cpp `LLAMA_VOCAB_PRE_TYPE_DEEPSEEK3_LLM`; the same
/// strings as the `Split` pre-tokenizers of DeepSeek-V3's tokenizer.json.
const DEEPSEEK_V3: &[&str] = &[
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];

/// `deepseek-llm`: DeepSeek LLM 7B/67B and DeepSeek-V2/V2-Lite (same tokenizer). llama-vocab.cpp
/// `LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM`. Code points that Unicode normalization would change
/// (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) are escaped so no editor can turn a range
/// endpoint into its canonical twin.
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
];

/// `deepseek-coder`: DeepSeek-Coder 1.3B–33B. llama-vocab.cpp `LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_CODER`.
const DEEPSEEK_CODER: &[&str] = &["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"];

/// `qwen2`: Qwen2/2.5/3 and their DeepSeek distills (R1-0528-Qwen3-8B). llama-vocab.cpp
/// `LLAMA_VOCAB_PRE_TYPE_QWEN2`; the string of Qwen3's tokenizer.json `Split` (llama.cpp spells
/// the contractions `'[sS]|…`, the same match). Hugging Face NFC-normalizes first ([`nfc`]).
const QWEN2: &[&str] = &[r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"];

/// The `Split` regexes for a `tokenizer.ggml.pre` value, as llama-vocab.cpp maps them (the
/// DeepSeek families and Qwen2/3; other values are refused by the caller).
pub fn pre_tokenizer_regexes(pre: &str) -> Option<&'static [&'static str]> {
    Some(match pre {
        "deepseek-v3" | "joyai-llm" | "hunyuan-dense" | "hy_v4" => DEEPSEEK_V3,
        "deepseek-llm" => DEEPSEEK_LLM,
        "deepseek-coder" => DEEPSEEK_CODER,
        "qwen2" => QWEN2,
        _ => return None,
    })
}

/// Whether the tokenizer.json of this pre-tokenizer's family normalizes its input to NFC
/// (Qwen's does; DeepSeek's have no normalizer).
pub fn nfc(pre: &str) -> bool {
    pre == "qwen2"
}

/// The `tokenizer.ggml.pre` values [`pre_tokenizer_regexes`] knows, for error messages.
pub const KNOWN_PRE: &[&str] = &["deepseek-v3", "joyai-llm", "deepseek-llm", "deepseek-coder", "hunyuan-dense", "hy_v4", "qwen2"];

/// What a GGUF file's metadata gives the chat tokenizer.
pub(crate) struct GgufTokenizer {
    pub tok: Tokenizer,
    /// One past the largest id that has a token (what the model's vocabulary must cover).
    pub n_ids: usize,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub add_bos_token: bool,
    pub chat_template: Option<String>,
}

fn path_of(g: &Gguf) -> PathBuf {
    g.paths().first().map(|p| p.to_path_buf()).unwrap_or_default()
}

fn key_err(g: &Gguf, key: &str, msg: impl Into<String>) -> TokenizerError {
    TokenizerError::GgufKey { path: path_of(g), key: key.into(), msg: msg.into() }
}

/// An optional metadata value that must have the right type when present.
fn opt<'a, T>(g: &'a Gguf, key: &str, get: impl FnOnce(&'a Gguf, &str) -> Result<T, crate::gguf::GgufError>) -> Result<Option<T>, TokenizerError> {
    if g.get(key).is_none() {
        return Ok(None);
    }
    Ok(Some(get(g, key)?))
}

/// The token text of a special token id key (`tokenizer.ggml.bos_token_id`, ...).
fn special(g: &Gguf, key: &str, tokens: &[String]) -> Result<Option<String>, TokenizerError> {
    match opt(g, key, Gguf::get_u64)? {
        None => Ok(None),
        Some(id) => match usize::try_from(id).ok().and_then(|i| tokens.get(i)) {
            Some(t) => Ok(Some(t.clone())),
            None => Err(key_err(g, key, format!("id {id} is outside tokenizer.ggml.tokens ({} tokens)", tokens.len()))),
        },
    }
}

/// Build the tokenizer from `g`'s metadata.
pub(crate) fn build(g: &Gguf) -> Result<GgufTokenizer, TokenizerError> {
    let model = match g.get("tokenizer.ggml.model") {
        None => {
            return Err(key_err(
                g,
                "tokenizer.ggml.model",
                "missing: the file carries no tokenizer; convert the model with llama.cpp's convert_hf_to_gguf.py (which embeds it), or load the Hugging Face folder instead",
            ))
        }
        Some(_) => g.get_str("tokenizer.ggml.model")?,
    };
    match model {
        "gpt2" => {}
        "llama" => return Err(key_err(g, "tokenizer.ggml.model", "is \"llama\" (SentencePiece); only \"gpt2\" (byte-level BPE, what every DeepSeek GGUF uses) is supported")),
        "none" | "no_vocab" => return Err(key_err(g, "tokenizer.ggml.model", format!("is {model:?}: the file carries no tokenizer"))),
        other => return Err(key_err(g, "tokenizer.ggml.model", format!("is {other:?}; only \"gpt2\" (byte-level BPE, what every DeepSeek GGUF uses) is supported"))),
    }
    let pre = match g.get("tokenizer.ggml.pre") {
        None => return Err(key_err(g, "tokenizer.ggml.pre", format!("missing, so the pre-tokenizer is unknown; supported: {}", KNOWN_PRE.join(", ")))),
        Some(_) => g.get_str("tokenizer.ggml.pre")?,
    };
    let regexes = pre_tokenizer_regexes(pre)
        .ok_or_else(|| key_err(g, "tokenizer.ggml.pre", format!("is {pre:?}, a pre-tokenizer this engine does not implement; supported: {}", KNOWN_PRE.join(", "))))?;

    let tokens = g.get_str_array("tokenizer.ggml.tokens")?;
    if tokens.is_empty() {
        return Err(key_err(g, "tokenizer.ggml.tokens", "is empty"));
    }
    if u32::try_from(tokens.len()).is_err() {
        return Err(key_err(g, "tokenizer.ggml.tokens", format!("has {} tokens, more than ids can number", tokens.len())));
    }
    let types: Vec<i64> = match g.get("tokenizer.ggml.token_type") {
        // Without types llama.cpp takes every token as normal; the special ids are still
        // known, and must stay whole.
        None => {
            let mut types = vec![NORMAL; tokens.len()];
            for key in ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"] {
                if let Some(id) = opt(g, key, Gguf::get_u64)?.and_then(|i| usize::try_from(i).ok()).filter(|&i| i < tokens.len()) {
                    types[id] = CONTROL;
                }
            }
            types
        }
        Some(_) => {
            let a = g.get_array("tokenizer.ggml.token_type")?;
            a.to_i64s().ok_or_else(|| key_err(g, "tokenizer.ggml.token_type", format!("holds {}, expected integers", a.elem_type_name())))?
        }
    };
    if types.len() != tokens.len() {
        return Err(key_err(g, "tokenizer.ggml.token_type", format!("has {} entries for {} tokens", types.len(), tokens.len())));
    }

    let mut vocab = Vocab::default();
    let mut added = Vec::new();
    let mut n_ids = 0;
    for (id, (text, &ty)) in tokens.iter().zip(&types).enumerate() {
        // The converter's fill for ids without a token: Hugging Face has no token there.
        // (Older converters marked the fill user-defined; its text still gives it away.)
        if ty == UNUSED || (ty == USER_DEFINED && *text == format!("[PAD{id}]")) {
            continue;
        }
        // The first id of a text wins (a tokenizer.json vocabulary cannot hold a text twice).
        if vocab.contains_key(text) {
            continue;
        }
        vocab.insert(text.clone(), id as u32);
        n_ids = id + 1;
        // Added tokens sit in the BPE vocabulary too, so that they keep their GGUF ids. Byte-
        // level BPE never produces them from text: its symbols are single byte characters.
        match ty {
            CONTROL => added.push(AddedToken::from(text.clone(), true)),
            USER_DEFINED => added.push(AddedToken::from(text.clone(), false)),
            _ => {}
        }
    }

    let merges_key = "tokenizer.ggml.merges";
    if g.get(merges_key).is_none() {
        return Err(key_err(g, merges_key, "missing; a byte-level BPE tokenizer needs its merges"));
    }
    let merges = g
        .get_str_array(merges_key)?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            // As llama.cpp splits them: at the first space after the first byte.
            let at = m.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1).ok_or_else(|| key_err(g, merges_key, format!("entry {i} ({m:?}) is not \"a b\"")))?;
            Ok((m[..at].to_string(), m[at + 1..].to_string()))
        })
        .collect::<Result<Vec<_>, TokenizerError>>()?;
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| key_err(g, merges_key, e.to_string()))?;

    let mut pre_tokenizers = Vec::with_capacity(regexes.len() + 1);
    for r in regexes {
        let split = Split::new(SplitPattern::Regex(r.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| key_err(g, "tokenizer.ggml.pre", format!("{pre:?}: regex {r:?} does not compile: {e}")))?;
        pre_tokenizers.push(PreTokenizerWrapper::Split(split));
    }
    pre_tokenizers.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)));

    let mut tok = Tokenizer::new(bpe);
    if nfc(pre) {
        tok.with_normalizer(Some(NormalizerWrapper::NFC(NFC)));
    }
    tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(pre_tokenizers))));
    tok.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    tok.with_post_processor(Some(PostProcessorWrapper::ByteLevel(ByteLevel::new(true, false, true))));
    tok.add_tokens(&added);

    Ok(GgufTokenizer {
        tok,
        n_ids,
        bos_token: special(g, "tokenizer.ggml.bos_token_id", tokens)?,
        eos_token: special(g, "tokenizer.ggml.eos_token_id", tokens)?,
        // llama.cpp's default for these pre-tokenizers when the key is absent.
        add_bos_token: opt(g, "tokenizer.ggml.add_bos_token", Gguf::get_bool)?.unwrap_or(false),
        chat_template: opt(g, "tokenizer.chat_template", Gguf::get_str)?.map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's DeepSeek-V3 regexes are the `Split` patterns of DeepSeek-V3's tokenizer.json,
    /// in order, followed there by byte-level without its own regex.
    #[test]
    fn deepseek_v3_regexes_are_the_tokenizer_json_splits() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/deepseek-v3-tokenizer/tokenizer.json");
        let tj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let steps = tj["pre_tokenizer"]["pretokenizers"].as_array().unwrap();
        let splits: Vec<&str> = steps.iter().filter(|p| p["type"] == "Split").map(|p| p["pattern"]["Regex"].as_str().unwrap()).collect();
        assert_eq!(splits, DEEPSEEK_V3);
        assert!(steps.iter().filter(|p| p["type"] == "Split").all(|p| p["behavior"] == "Isolated" && p["invert"] == false));
        let last = steps.last().unwrap();
        assert_eq!((last["type"].as_str(), last["add_prefix_space"].as_bool(), last["use_regex"].as_bool()), (Some("ByteLevel"), Some(false), Some(false)));
    }

    /// The `qwen2` regex is the `Split` of Qwen3's tokenizer.json, after its NFC normalizer.
    #[test]
    fn qwen2_regex_is_the_qwen3_tokenizer_json_split() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qwen3_tokenizer/tokenizer.json");
        let tj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let steps = tj["pre_tokenizer"]["pretokenizers"].as_array().unwrap();
        let splits: Vec<&str> = steps.iter().filter(|p| p["type"] == "Split").map(|p| p["pattern"]["Regex"].as_str().unwrap()).collect();
        assert_eq!(splits, QWEN2);
        assert_eq!(tj["normalizer"]["type"], "NFC");
        assert!(nfc("qwen2") && !nfc("deepseek-v3"));
    }

    #[test]
    fn every_known_pre_compiles() {
        for pre in KNOWN_PRE {
            for r in pre_tokenizer_regexes(pre).unwrap() {
                Split::new(SplitPattern::Regex(r.to_string()), SplitDelimiterBehavior::Isolated, false).unwrap_or_else(|e| panic!("{pre}: {r:?}: {e}"));
            }
        }
        assert!(pre_tokenizer_regexes("llama-bpe").is_none());
    }
}
