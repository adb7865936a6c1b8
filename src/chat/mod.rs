//! Text in and out: the tokenizer (`tokenizers` crate, the model's own `tokenizer.json`),
//! the model's chat template (minijinja with Hugging Face semantics), streaming
//! detokenisation, and the `<think>` reasoning split. No GPU work here. A GGUF file's
//! embedded tokenizer is rebuilt from its metadata (`gguf_vocab`).

mod gguf_vocab;
mod reasoning;
mod template;
mod tokenizer;

pub use gguf_vocab::{pre_tokenizer_regexes, KNOWN_PRE};
pub use reasoning::{assistant_content, CLOSE as THINK_CLOSE, OPEN as THINK_OPEN, prompt_opens_reasoning, token_kind, ReasoningSplitter, TextKind};
pub use template::{render, Message, TemplateError};
pub use tokenizer::{ChatTokenizer, GenerationConfig, StreamDecoder, TokenizerError};
