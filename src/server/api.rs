//! The request bodies of `/v1/chat/completions` and `/v1/completions` as OpenAI defines
//! them (fields this engine does not implement are refused, not ignored, unless they are
//! at their no-op value), and their validation into what a slot runs.

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::chat::Message;
use crate::grammar::Constraint;
use crate::sampling::SampleParams;
use crate::session::Settings;

/// `"stop"`: one string or a list of them.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug, Default)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// What both endpoints share (read from the same body as the endpoint's own fields: serde's
/// `flatten` would lose the names of mistyped fields).
#[derive(Deserialize, Debug, Default)]
pub struct Common {
    pub model: Option<String>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// extensions llama.cpp and vLLM accept too
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    pub n: Option<u64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// extension (vLLM, llama.cpp): keep generating past end-of-sequence up to max_tokens
    #[serde(default)]
    pub ignore_eos: bool,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize, Debug)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct FunctionCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Deserialize, Debug)]
pub struct InToolCall {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub function: FunctionCall,
}

#[derive(Deserialize, Debug)]
pub struct InMessage {
    pub role: String,
    pub content: Option<Content>,
    pub tool_calls: Option<Vec<InToolCall>>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
    /// an earlier turn's reasoning: accepted and dropped (DeepSeek's API rule: reasoning is
    /// not fed back into the prompt)
    #[allow(dead_code)]
    pub reasoning_content: Option<String>,
}

#[derive(Deserialize, Debug)]
pub struct ChatRequest {
    pub messages: Vec<InMessage>,
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<u64>,
    /// OpenAI's tool list, passed to the chat template as `tools`
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
    /// extension (vLLM): extra chat template variables, e.g. `{"enable_thinking": false}`
    pub chat_template_kwargs: Option<serde_json::Map<String, Value>>,
    /// deepseek-wgpu extension (streaming only): each position's MoE routing as
    /// `delta.routing`, each generated token as `delta.token`
    #[serde(default)]
    pub routing: bool,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum Prompt {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    /// the legacy form: the number of top tokens to return per position
    pub logprobs: Option<u64>,
    #[serde(default)]
    pub echo: bool,
    pub suffix: Option<String>,
}

/// Most top_logprobs OpenAI returns.
pub const MAX_TOP_LOGPROBS: u64 = 20;

impl Common {
    /// Sampling settings over the checkpoint's defaults; `max_tokens` as given (None: the
    /// rest of the context).
    pub fn settings(&self, base: &Settings, max_tokens: Option<u64>, max_param: &str) -> Result<Settings, ApiError> {
        if let Some(n) = self.n.filter(|&n| n != 1) {
            return Err(ApiError::invalid(Some("n".into()), format!("n = {n}: only one choice per request is supported")));
        }
        for (name, v) in [("presence_penalty", self.presence_penalty), ("frequency_penalty", self.frequency_penalty)] {
            if v.is_some_and(|v| v != 0.0) {
                return Err(ApiError::invalid(Some(name.into()), format!("{name} is not supported; use repetition_penalty")));
            }
        }
        let mut s = base.clone();
        let sp: &mut SampleParams = &mut s.sample;
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(ApiError::invalid(Some("temperature".into()), format!("temperature {t} must be between 0 and 2")));
            }
            sp.temperature = t;
        }
        if let Some(k) = self.top_k {
            // -1 is "off" in vLLM's and llama.cpp's APIs
            sp.top_k = match k {
                -1 | 0 => 0,
                k if k > 0 => k as usize,
                k => return Err(ApiError::invalid(Some("top_k".into()), format!("top_k {k} must be ≥ 0 (0 or -1: off)"))),
            };
        }
        sp.top_p = self.top_p.unwrap_or(sp.top_p);
        sp.min_p = self.min_p.unwrap_or(sp.min_p);
        sp.repeat_penalty = self.repetition_penalty.unwrap_or(sp.repeat_penalty);
        if let Err(e) = sp.validate() {
            let param = ["top_p", "min_p", "repetition_penalty"].into_iter().find(|p| e.starts_with(&p.replace('_', "-")) || e.starts_with(&p.replace('_', " ")));
            return Err(ApiError::invalid(param.map(String::from), e));
        }
        s.seed = self.seed.map(|x| x as u64);
        s.stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(x)) => vec![x.clone()],
            Some(Stop::Many(v)) if v.len() > 4 => return Err(ApiError::invalid(Some("stop".into()), format!("{} stop sequences given; at most 4", v.len()))),
            Some(Stop::Many(v)) => v.clone(),
        };
        s.stop.retain(|x| !x.is_empty());
        match max_tokens {
            Some(0) => return Err(ApiError::invalid(Some(max_param.into()), format!("{max_param} must be at least 1"))),
            Some(n) => s.max_tokens = n.min(usize::MAX as u64) as usize,
            None => s.max_tokens = usize::MAX,
        }
        Ok(s)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }
}

impl ChatRequest {
    pub fn max_tokens(&self, common: &Common) -> (Option<u64>, &'static str) {
        match self.max_completion_tokens {
            Some(n) => (Some(n), "max_completion_tokens"),
            None => (common.max_tokens, "max_tokens"),
        }
    }

    pub fn top_logprobs(&self) -> Result<Option<usize>, ApiError> {
        match (self.logprobs, self.top_logprobs) {
            (_, Some(n)) if n > MAX_TOP_LOGPROBS => Err(ApiError::invalid(Some("top_logprobs".into()), format!("top_logprobs {n} must be between 0 and {MAX_TOP_LOGPROBS}"))),
            (false, Some(_)) => Err(ApiError::invalid(Some("top_logprobs".into()), "top_logprobs needs logprobs: true")),
            (false, None) => Ok(None),
            (true, n) => Ok(Some(n.unwrap_or(0) as usize)),
        }
    }
}

/// The messages as the chat template takes them. An assistant turn's `reasoning_content`
/// is dropped; its tool calls keep OpenAI's shape (`type`, `function.name`,
/// `function.arguments` as JSON text), which is what the templates read.
pub fn messages(input: &[InMessage]) -> Result<Vec<Message>, ApiError> {
    if input.is_empty() {
        return Err(ApiError::invalid(Some("messages".into()), "messages must not be empty"));
    }
    let mut out = Vec::with_capacity(input.len());
    for (i, m) in input.iter().enumerate() {
        let at = |f: &str| Some(format!("messages[{i}].{f}"));
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant" | "tool") => r,
            r => return Err(ApiError::invalid(at("role"), format!("unknown role '{r}' (system, developer, user, assistant or tool)"))),
        };
        let content = match &m.content {
            None if role == "assistant" && m.tool_calls.is_some() => String::new(),
            None => return Err(ApiError::invalid(at("content"), format!("a {role} message needs content"))),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut t = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(x)) => t.push_str(x),
                        (k, _) => return Err(ApiError::invalid(Some(format!("messages[{i}].content[{j}]")), format!("content part of type '{k}' is not supported (text only)"))),
                    }
                }
                t
            }
        };
        if role == "tool" && m.tool_call_id.is_none() && m.name.is_none() {
            return Err(ApiError::invalid(at("tool_call_id"), "a tool message needs tool_call_id"));
        }
        let tool_calls = match &m.tool_calls {
            Some(calls) if role != "assistant" => {
                let _ = calls;
                return Err(ApiError::invalid(at("tool_calls"), "only assistant messages carry tool_calls"));
            }
            Some(calls) if !calls.is_empty() => {
                let mut v = Vec::new();
                for (j, c) in calls.iter().enumerate() {
                    if serde_json::from_str::<Value>(&c.function.arguments).is_err() {
                        return Err(ApiError::invalid(Some(format!("messages[{i}].tool_calls[{j}].function.arguments")), "arguments must be a JSON text"));
                    }
                    v.push(serde_json::json!({
                        "id": c.id, "type": c.kind.as_deref().unwrap_or("function"),
                        "function": { "name": c.function.name, "arguments": c.function.arguments },
                    }));
                }
                Some(Value::Array(v))
            }
            _ => None,
        };
        out.push(Message { role: role.into(), content, tool_calls });
    }
    Ok(out)
}

/// `response_format` as a constraint on the answer: `text` (none), `json_object` (any JSON
/// object) or `json_schema` (`{"json_schema": {"name", "schema", "strict"}}`; the schema is
/// always enforced, `strict` or not; without one, any JSON value).
pub fn response_format(rf: Option<&Value>) -> Result<Option<Constraint>, ApiError> {
    let Some(rf) = rf else { return Ok(None) };
    match rf.get("type").and_then(|t| t.as_str()) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Constraint::JsonObject)),
        Some("json_schema") => {
            let Some(js) = rf.get("json_schema").filter(|j| j.is_object()) else {
                return Err(ApiError::invalid(Some("response_format.json_schema".into()), "response_format json_schema needs a json_schema object: {\"name\": …, \"schema\": {…}}"));
            };
            match js.get("schema") {
                None => Ok(Some(Constraint::JsonSchema(serde_json::json!({})))),
                Some(s) if s.is_object() || s.is_boolean() => Ok(Some(Constraint::JsonSchema(s.clone()))),
                Some(_) => Err(ApiError::invalid(Some("response_format.json_schema.schema".into()), "the schema must be a JSON Schema object")),
            }
        }
        _ => Err(ApiError::invalid(Some("response_format.type".into()), "response_format.type must be text, json_object or json_schema")),
    }
}
