//! Text in and out: the tokenizer (`tokenizers` crate, the model's own `tokenizer.json`),
//! the model's chat template (minijinja with Hugging Face semantics), streaming
//! detokenisation, and the `<think>` reasoning split. No GPU work here.

mod reasoning;
mod template;
mod tokenizer;

pub use reasoning::{ReasoningSplitter, TextKind};
pub use template::{render, Message, TemplateError};
pub use tokenizer::{ChatTokenizer, GenerationConfig, StreamDecoder, TokenizerError};
