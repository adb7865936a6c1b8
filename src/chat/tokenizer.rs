//! The model's tokenizer (`tokenizer.json` through the `tokenizers` crate) with what
//! `tokenizer_config.json` and `generation_config.json` add: special tokens, the chat
//! template, end-of-sequence ids and sampling defaults. For a GGUF file all of it comes from
//! the file's metadata instead (see `gguf_vocab`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::gguf::{Gguf, GgufError};
use crate::sampling::SampleParams;

/// DeepSeek-V3/R1's tokenizer, used when a model folder has none and the model's vocabulary
/// is DeepSeek-V3's (up to [`FALLBACK_MODEL_VOCAB`]).
const FALLBACK_TOKENIZER: &[u8] = include_bytes!("../../assets/deepseek-v3-tokenizer/tokenizer.json");
const FALLBACK_CONFIG: &str = include_str!("../../assets/deepseek-v3-tokenizer/tokenizer_config.json");
/// DeepSeek-V3/R1's `vocab_size` (128,815 tokens padded). A larger vocabulary is another
/// family's (Qwen3's 151,936) whose ids the embedded tokenizer would silently get wrong.
const FALLBACK_MODEL_VOCAB: usize = 129_280;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: cannot load the tokenizer: {msg}")]
    Load { path: PathBuf, msg: String },
    #[error("{path}: invalid JSON: {msg}")]
    Json { path: PathBuf, msg: String },
    #[error("tokenizer has {tok} tokens but the model's vocabulary is {model}; {hint}")]
    Vocab { tok: usize, model: usize, hint: String },
    #[error("tokenizer: {0}")]
    Encode(String),
    #[error("{} has no tokenizer.json, and its vocabulary of {vocab} is not DeepSeek-V3's ({FALLBACK_MODEL_VOCAB}), so the embedded DeepSeek-V3 tokenizer cannot stand in; copy the model's tokenizer files (tokenizer.json, tokenizer_config.json) into it", dir.display())]
    NoTokenizer { dir: PathBuf, vocab: usize },
    #[error("{path} has no chat_template; use a raw prompt (without --chat) or add the model's template")]
    NoTemplate { path: PathBuf },
    /// A GGUF file's tokenizer metadata is missing, of another kind, or inconsistent.
    #[error("{path}: metadata key {key}: {msg}")]
    GgufKey { path: PathBuf, key: String, msg: String },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

pub struct ChatTokenizer {
    tok: Tokenizer,
    pub source: PathBuf,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub add_bos_token: bool,
    pub chat_template: Option<String>,
}

/// `generation_config.json`: end-of-sequence ids and sampling defaults.
#[derive(Clone, Debug, Default)]
pub struct GenerationConfig {
    pub eos_token_ids: Vec<u32>,
    pub bos_token_id: Option<u32>,
    pub sample: Option<SampleParams>,
}

fn token_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        _ => vec![],
    }
}

impl GenerationConfig {
    /// The folder's `generation_config.json` (defaults without one), or for a GGUF file what
    /// its metadata holds (see [`GenerationConfig::from_gguf`]).
    pub fn load(dir: &Path) -> Result<Self, TokenizerError> {
        if crate::model::is_gguf(dir) {
            return Self::from_gguf(&Gguf::open(dir)?);
        }
        let path = dir.join("generation_config.json");
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(Self::default()) };
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, TokenizerError> {
        let v: Value = serde_json::from_str(text).map_err(|e| TokenizerError::Json { path: path.into(), msg: e.to_string() })?;
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let sample = (v.get("temperature").is_some() || v.get("top_p").is_some() || v.get("top_k").is_some()).then(|| {
            let do_sample = v.get("do_sample").and_then(|x| x.as_bool()).unwrap_or(true);
            SampleParams {
                temperature: if do_sample { f("temperature").unwrap_or(1.0) as f32 } else { 0.0 },
                top_k: f("top_k").unwrap_or(0.0) as usize,
                top_p: f("top_p").unwrap_or(1.0) as f32,
                min_p: f("min_p").unwrap_or(0.0) as f32,
                repeat_penalty: f("repetition_penalty").unwrap_or(1.0) as f32,
            }
        });
        Ok(GenerationConfig { eos_token_ids: ids(v.get("eos_token_id")), bos_token_id: v.get("bos_token_id").and_then(|x| x.as_u64()).map(|x| x as u32), sample })
    }

    /// A GGUF file's counterpart of generation_config.json: the end-of-generation ids
    /// (`tokenizer.ggml.eos_token_id`, and the EOT/EOM ids llama.cpp also stops on) and
    /// `tokenizer.ggml.bos_token_id`; sampling defaults from the `general.sampling.*` keys that
    /// llama.cpp's converter copies from generation_config.json (absent in older files).
    pub fn from_gguf(g: &Gguf) -> Result<Self, TokenizerError> {
        let id = |k: &str| -> Result<Option<u32>, TokenizerError> {
            if g.get(k).is_some() {
                Ok(Some(g.get_u32(k)?))
            } else {
                Ok(None)
            }
        };
        let f = |k: &str| -> Result<Option<f64>, TokenizerError> {
            match g.get(k) {
                None => Ok(None),
                Some(v) => Ok(Some(v.as_f64().or_else(|| v.as_i64().map(|x| x as f64)).ok_or_else(|| GgufError::KeyType {
                    path: g.paths().first().map(|p| p.to_path_buf()).unwrap_or_default(),
                    key: k.into(),
                    expected: "a number",
                    found: v.describe(),
                })?)),
            }
        };
        let mut eos_token_ids = Vec::new();
        for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(i) = id(k)? {
                if !eos_token_ids.contains(&i) {
                    eos_token_ids.push(i);
                }
            }
        }
        let (temp, top_p, top_k) = (f("general.sampling.temp")?, f("general.sampling.top_p")?, f("general.sampling.top_k")?);
        let sample = if temp.is_some() || top_p.is_some() || top_k.is_some() {
            Some(SampleParams {
                temperature: temp.unwrap_or(1.0) as f32,
                top_k: top_k.unwrap_or(0.0).max(0.0) as usize,
                top_p: top_p.unwrap_or(1.0) as f32,
                min_p: f("general.sampling.min_p")?.unwrap_or(0.0) as f32,
                repeat_penalty: f("general.sampling.penalty_repeat")?.unwrap_or(1.0) as f32,
            })
        } else {
            None
        };
        Ok(GenerationConfig { eos_token_ids, bos_token_id: id("tokenizer.ggml.bos_token_id")?, sample })
    }
}

impl ChatTokenizer {
    /// The folder's `tokenizer.json`, else DeepSeek-V3's when `vocab` is DeepSeek-V3's (it must
    /// hold every id, and a larger one belongs to another tokenizer). `dir` may
    /// also be a GGUF file (or one split of a set): its embedded tokenizer, [`Self::from_gguf`].
    pub fn load(dir: &Path, vocab: usize) -> Result<Self, TokenizerError> {
        if crate::model::is_gguf(dir) {
            return Self::from_gguf(&Gguf::open(dir)?, vocab);
        }
        let tj = dir.join("tokenizer.json");
        let (tok, cfg_text, source) = if tj.exists() {
            let tok = Tokenizer::from_file(&tj).map_err(|e| TokenizerError::Load { path: tj.clone(), msg: e.to_string() })?;
            let cp = dir.join("tokenizer_config.json");
            (tok, std::fs::read_to_string(&cp).ok(), tj.clone())
        } else if vocab > FALLBACK_MODEL_VOCAB {
            return Err(TokenizerError::NoTokenizer { dir: dir.into(), vocab });
        } else {
            let tok = Tokenizer::from_bytes(FALLBACK_TOKENIZER).map_err(|e| TokenizerError::Load { path: "embedded DeepSeek-V3 tokenizer".into(), msg: e.to_string() })?;
            (tok, Some(FALLBACK_CONFIG.to_string()), PathBuf::from("embedded DeepSeek-V3 tokenizer"))
        };
        let n = tok.get_vocab_size(true);
        if n > vocab {
            return Err(TokenizerError::Vocab {
                tok: n,
                model: vocab,
                hint: if tj.exists() {
                    format!("{} does not belong to this model", tj.display())
                } else {
                    format!("{} has no tokenizer.json; copy the model's tokenizer files into it", dir.display())
                },
            });
        }
        let cfg: Value = match &cfg_text {
            Some(t) => serde_json::from_str(t).map_err(|e| TokenizerError::Json { path: dir.join("tokenizer_config.json"), msg: e.to_string() })?,
            None => Value::Null,
        };
        Ok(ChatTokenizer {
            tok,
            source,
            bos_token: cfg.get("bos_token").and_then(token_text),
            eos_token: cfg.get("eos_token").and_then(token_text),
            add_bos_token: cfg.get("add_bos_token").and_then(|v| v.as_bool()).unwrap_or(false),
            chat_template: cfg.get("chat_template").and_then(|v| v.as_str()).map(String::from),
        })
    }

    /// The tokenizer, special tokens and chat template a GGUF file carries (what llama.cpp's
    /// converter writes for a byte-level BPE model, `tokenizer.ggml.model` = "gpt2"), giving
    /// the ids of the model's Hugging Face tokenizer.json. `vocab` is the model's vocabulary
    /// size, which must cover every token id.
    pub fn from_gguf(g: &Gguf, vocab: usize) -> Result<Self, TokenizerError> {
        let source = g.paths().first().map(|p| p.to_path_buf()).unwrap_or_default();
        let t = super::gguf_vocab::build(g)?;
        if t.n_ids > vocab {
            return Err(TokenizerError::Vocab { tok: t.n_ids, model: vocab, hint: format!("the tokenizer in {} does not belong to this model", source.display()) });
        }
        Ok(ChatTokenizer { tok: t.tok, source, bos_token: t.bos_token, eos_token: t.eos_token, add_bos_token: t.add_bos_token, chat_template: t.chat_template })
    }

    /// Ids exactly as Hugging Face's tokenizer gives them (`add_special_tokens` as there).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        Ok(self.tok.encode(text, add_special_tokens).map_err(|e| TokenizerError::Encode(e.to_string()))?.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.tok.decode(ids, false).map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.tok.token_to_id(text)
    }

    pub fn vocab_size(&self) -> usize {
        self.tok.get_vocab_size(true)
    }

    /// Every id's bytes as the model writes them (for the grammar engine, which matches
    /// grammars byte by byte): byte-level BPE's stand-in characters mapped back to bytes,
    /// sentencepiece's `▁` and `<0xNN>` pieces decoded, any other vocabulary (the tiny
    /// model's characters) through its decoder; an added token as its text (what
    /// [`Self::decode`] shows). Indexed by id, [`Self::vocab_size`] entries.
    pub fn token_bytes(&self) -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new(); self.vocab_size()];
        let decoder = serde_json::to_value(self.tok.get_decoder()).unwrap_or(Value::Null);
        let kinds: Vec<&str> = std::iter::once(&decoder).chain(decoder.get("decoders").and_then(|d| d.as_array()).into_iter().flatten()).filter_map(|d| d.get("type").and_then(|t| t.as_str())).collect();
        let unicode_bytes = byte_level_chars();
        for (text, id) in self.tok.get_vocab(false) {
            let bytes = if kinds.contains(&"ByteLevel") {
                text.chars().map(|c| unicode_bytes.get(&c).copied()).collect::<Option<Vec<u8>>>()
            } else if kinds.contains(&"ByteFallback") {
                match text.strip_prefix("<0x").and_then(|h| h.strip_suffix('>')).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) if text.len() == 6 => Some(vec![b]),
                    _ => Some(text.replace('▁', " ").into_bytes()),
                }
            } else {
                None
            };
            let bytes = bytes.or_else(|| self.tok.decode(&[id], false).ok().map(String::into_bytes));
            if let (Some(slot), Some(b)) = (out.get_mut(id as usize), bytes) {
                *slot = b;
            }
        }
        for (id, t) in self.tok.get_added_tokens_decoder() {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = t.content.into_bytes();
            }
        }
        out
    }

    /// A raw prompt as the model expects it: BOS first when the tokenizer config asks for it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = self.encode(text, false)?;
        if self.add_bos_token {
            if let Some(b) = self.bos_token.as_deref().and_then(|t| self.token_id(t)) {
                if ids.first() != Some(&b) {
                    ids.insert(0, b);
                }
            }
        }
        Ok(ids)
    }

    pub fn render_chat(&self, messages: &[super::Message], add_generation_prompt: bool) -> Result<String, super::TemplateError> {
        self.render_chat_with(messages, add_generation_prompt, &serde_json::Map::new())
    }

    /// [`Self::render_chat`] with extra template variables (e.g. `enable_thinking`).
    pub fn render_chat_with(&self, messages: &[super::Message], add_generation_prompt: bool, vars: &serde_json::Map<String, Value>) -> Result<String, super::TemplateError> {
        self.render_chat_tools(messages, add_generation_prompt, None, vars)
    }

    /// [`Self::render_chat_with`] with the `tools` variable (OpenAI's tool list) as
    /// transformers' `apply_chat_template(tools=…)` passes it.
    pub fn render_chat_tools(&self, messages: &[super::Message], add_generation_prompt: bool, tools: Option<&Value>, vars: &serde_json::Map<String, Value>) -> Result<String, super::TemplateError> {
        let t = self.chat_template.as_deref().ok_or_else(|| super::TemplateError(format!("{} has no chat_template", self.source.display())))?;
        super::render(t, messages, add_generation_prompt, self.bos_token.as_deref().unwrap_or(""), self.eos_token.as_deref().unwrap_or(""), tools, vars)
    }
}

/// GPT-2's byte-level alphabet, reversed: the printable character that stands for each
/// byte in a byte-level BPE vocabulary → the byte.
fn byte_level_chars() -> std::collections::HashMap<char, u8> {
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
            let c = if printable {
                b as char
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap_or('\0')
            };
            (c, b)
        })
        .collect()
}

/// Incremental detokenisation that only emits complete UTF-8: a character split across
/// byte-level tokens appears once all its bytes have arrived.
#[derive(Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl StreamDecoder {
    pub fn push(&mut self, tok: &ChatTokenizer, id: u32) -> Result<Option<String>, TokenizerError> {
        self.ids.push(id);
        let before = tok.decode(&self.ids[self.prefix..self.read])?;
        let now = tok.decode(&self.ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.is_char_boundary(before.len()) {
            let delta = now[before.len()..].to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(Some(delta))
        } else {
            Ok(None)
        }
    }

    /// Whatever is left at the end (possibly with replacement characters).
    pub fn finish(&mut self, tok: &ChatTokenizer) -> Result<Option<String>, TokenizerError> {
        let before = tok.decode(&self.ids[self.prefix..self.read])?;
        let now = tok.decode(&self.ids[self.prefix..])?;
        self.prefix = self.ids.len();
        self.read = self.ids.len();
        Ok(now.get(before.len()..).filter(|s| !s.is_empty()).map(String::from))
    }
}
