//! Chat templates rendered as transformers renders them: jinja with `trim_blocks` and
//! `lstrip_blocks`, Python string methods (`split`, `strip`, …), `raise_exception`, and the
//! variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, `tools`.

use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

/// One chat message in Hugging Face's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message { role: role.into(), content: content.into(), tool_calls: None }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("chat template: {0}")]
pub struct TemplateError(pub String);

/// Render `template` for `messages`. `vars`: extra template variables, as the keyword
/// arguments transformers' `apply_chat_template` passes through (Qwen3's `enable_thinking`, for
/// one); the named ones win over `vars` of the same name.
pub fn render(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
    tools: Option<&serde_json::Value>,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, TemplateError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, Error> { Err(Error::new(ErrorKind::InvalidOperation, msg)) });
    env.add_function("strftime_now", |_fmt: String| -> String { String::new() });
    env.add_template("chat", template).map_err(|e| TemplateError(format!("does not parse: {e}")))?;
    let t = env.get_template("chat").map_err(|e| TemplateError(e.to_string()))?;
    let ctx = minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
        tools => tools,
        ..minijinja::Value::from_serialize(vars)
    };
    t.render(ctx).map_err(|e| TemplateError(format!("rendering failed: {e:#}")))
}
