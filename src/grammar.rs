//! Constrained decoding: a [`Constraint`] (JSON object, JSON Schema, Lark grammar, regex)
//! compiled by llguidance against the model's vocabulary into a [`Guide`] that gives, before
//! each sampled token, the bitset of tokens the grammar allows (the sampler kernel sets the
//! others to -inf: one mask upload per step, no logits readback) and consumes each sampled
//! token. A reasoning model's `<think>…</think>` comes first, unconstrained text that must
//! close, so the constraint applies to the answer after it.

use std::sync::Arc;

use llguidance::api::{GrammarWithLexer, TopLevelGrammar};
use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chat::{ChatTokenizer, THINK_CLOSE, THINK_OPEN};

/// What the answer must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum Constraint {
    /// any JSON object (OpenAI's `response_format: json_object`)
    JsonObject,
    /// a JSON value valid under this JSON Schema
    JsonSchema(Value),
    /// a grammar in llguidance's Lark syntax (`%json {…}` embeds a JSON Schema)
    Lark(String),
    /// text matching this regular expression (Rust regex syntax)
    Regex(String),
}

impl Constraint {
    fn answer(&self) -> GrammarWithLexer {
        let mut g = match self {
            Constraint::JsonObject => GrammarWithLexer::from_json_schema(compact(serde_json::json!({ "type": "object" }))),
            Constraint::JsonSchema(s) => GrammarWithLexer::from_json_schema(compact(s.clone())),
            Constraint::Lark(g) => GrammarWithLexer::from_lark(g.clone()),
            Constraint::Regex(r) => GrammarWithLexer::from_regex(r),
        };
        g.name = Some("answer".into());
        g
    }
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`, no other whitespace) unless
/// the schema sets llguidance's own layout (`x-guidance`): free whitespace would let a model
/// pad the answer with newlines until it runs out of tokens.
pub fn compact(mut schema: Value) -> Value {
    if let Some(o) = schema.as_object_mut() {
        o.entry("x-guidance").or_insert_with(|| serde_json::json!({ "whitespace_flexible": false, "item_separator": ", ", "key_separator": ": " }));
    }
    schema
}

#[derive(Debug, thiserror::Error)]
pub enum GrammarError {
    #[error("constrained decoding needs an end-of-sequence token, and this model has none")]
    NoEos,
    #[error("the tokenizer has {tok} tokens but the model's vocabulary is {vocab}")]
    Vocab { tok: usize, vocab: usize },
    #[error("the grammar engine cannot take this vocabulary: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Compile(String),
    #[error("the grammar refused token {token}: {msg}")]
    Step { token: u32, msg: String },
    #[error("the grammar cannot go on: {0}")]
    Mask(String),
}

/// llguidance over one model's vocabulary: built once per tokenizer (a table of every
/// token's bytes), shared by the sessions on it.
pub struct Grammar {
    factory: ParserFactory,
    /// u32 words of a mask: ceil(vocab / 32)
    words: usize,
}

impl Grammar {
    /// `vocab`: the model's (logit rows; ids past the tokenizer's are never allowed);
    /// `eos`: the ids that end a reply (the first one ends a completed grammar).
    pub fn new(tok: &ChatTokenizer, vocab: usize, eos: &[u32]) -> Result<Self, GrammarError> {
        let table = tok.token_bytes();
        if table.len() > vocab {
            return Err(GrammarError::Vocab { tok: table.len(), vocab });
        }
        let &tok_eos = eos.first().ok_or(GrammarError::NoEos)?;
        let mut words = vec![Vec::new(); vocab];
        for (id, bytes) in table.into_iter().enumerate() {
            // Every token is text as the reply's decode shows it (special tokens too: the
            // reasoning tags and tool-call markers, which the reply's parsers read as text, are
            // special in some tokenizers), except the end of sequence, which ends the reply:
            // llguidance's marker byte keeps it out of every text match.
            words[id] = if eos.contains(&(id as u32)) { [&[TokTrie::SPECIAL_TOKEN_MARKER], &bytes[..]].concat() } else { bytes };
        }
        let info = TokRxInfo { vocab_size: vocab as u32, tok_eos, tok_bos: None, tok_pad: None, tok_unk: None, tok_end_of_turn: None };
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)));
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| GrammarError::Tokenizer(e.to_string()))?;
        // the library never prints: errors come back as values
        factory.quiet();
        Ok(Grammar { factory, words: vocab.div_ceil(32) })
    }

    /// A guide for one reply. `opened`: the prompt opened `<think>`, so the reply starts with
    /// reasoning that must close before the answer; otherwise a reasoning block may come
    /// first. Errors carry llguidance's message (a bad schema or grammar).
    pub fn guide(&self, c: &Constraint, opened: bool) -> Result<Guide, GrammarError> {
        let think = format!("think[lazy]: /(.|\\n)*{}/", regex_escape(THINK_CLOSE));
        let start = if opened { "start: think WS? @answer".to_string() } else { format!("start: ({} think WS?)? @answer", serde_json::to_string(THINK_OPEN).unwrap_or_default()) };
        let top = format!("{start}\n{think}\nWS: /[ \\t\\r\\n]{{1,8}}/\n");
        let g = TopLevelGrammar { grammars: vec![GrammarWithLexer::from_lark(top), c.answer()], max_tokens: None };
        let parser = self.factory.create_parser(g).map_err(|e| GrammarError::Compile(e.to_string()))?;
        Ok(Guide { m: Matcher::new(Ok(parser)), mask: vec![0; self.words] })
    }
}

/// `s` as a Lark regex literal's body (regex metacharacters and the `/` delimiter escaped).
fn regex_escape(s: &str) -> String {
    s.chars().map(|c| if "\\.+*?()|[]{}^$/".contains(c) { format!("\\{c}") } else { c.to_string() }).collect()
}

/// One reply's grammar state.
pub struct Guide {
    m: Matcher,
    /// `[ceil(vocab / 32)]` bits of the tokens allowed next
    mask: Vec<u32>,
}

impl Guide {
    /// The tokens the grammar allows next (bit `i % 32` of word `i / 32`); only the
    /// end-of-sequence token once the grammar is complete. PERF: computed on the CPU between
    /// forwards (about a millisecond for a 129k vocabulary); it could overlap the next
    /// forward's layers, since only the sampler at its end needs it.
    pub fn mask(&mut self) -> Result<&[u32], GrammarError> {
        let v = self.m.compute_mask_or_eos().map_err(|e| GrammarError::Mask(e.to_string()))?;
        let bits = v.as_slice();
        let n = bits.len().min(self.mask.len());
        self.mask[..n].copy_from_slice(&bits[..n]);
        self.mask[n..].fill(0);
        Ok(&self.mask)
    }

    /// Advance past a sampled token.
    pub fn commit(&mut self, token: u32) -> Result<(), GrammarError> {
        self.m.consume_token(token).map_err(|e| GrammarError::Step { token, msg: e.to_string() })
    }

    /// The grammar is complete and allows nothing more: the reply ends here.
    pub fn done(&self) -> bool {
        self.m.is_stopped()
    }
}
