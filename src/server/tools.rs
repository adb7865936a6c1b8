//! Tool calls in generated text, as OpenAI `tool_calls`. Two formats:
//!
//! - DeepSeek R1 / R1-0528 / V3 (what their chat templates write for an assistant turn
//!   with tool calls, and so what the models produce):
//!   `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>`
//!   then `\n<｜tool▁call▁begin｜>…<｜tool▁call▁end｜>` per further call, then
//!   `<｜tool▁calls▁end｜>`. V3.1's `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>`
//!   is read too.
//! - Qwen3 (and the R1-0528-Qwen3-8B distill when driven by Qwen3's template):
//!   `<tool_call>\n{"name": NAME, "arguments": {…}}\n</tool_call>`, one block per call.
//!
//! [`ToolStream`] works on streamed text: ordinary text comes out as soon as it cannot be
//! the start of a marker, and each call as soon as its end marker has arrived. [`parse`]
//! runs it over a whole text. [`forced`] is the grammar of a reply that must call a tool
//! (`tool_choice` "required" or a named function), in one of these formats.

pub const CALLS_BEGIN: &str = "<｜tool▁calls▁begin｜>";
pub const CALLS_END: &str = "<｜tool▁calls▁end｜>";
pub const CALL_BEGIN: &str = "<｜tool▁call▁begin｜>";
pub const CALL_END: &str = "<｜tool▁call▁end｜>";
pub const SEP: &str = "<｜tool▁sep｜>";
pub const QWEN_BEGIN: &str = "<tool_call>";
pub const QWEN_END: &str = "</tool_call>";

/// The call format a model writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Syntax {
    /// `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>`
    R1,
    /// `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>`
    V31,
    /// `<tool_call>\n{"name": NAME, "arguments": ARGS}\n</tool_call>`
    Qwen,
}

impl Syntax {
    /// The format of a chat template's assistant tool calls; for a template without them,
    /// R1's (what the tools system prompt describes). Qwen3's plain-text form whenever the
    /// vocabulary cannot write DeepSeek's markers at all (the tiny model's characters).
    pub fn of(template: &str, deepseek_writable: bool) -> Syntax {
        if !deepseek_writable || (template.contains(QWEN_BEGIN) && !template.contains(CALL_BEGIN)) {
            Syntax::Qwen
        } else if !template.contains(CALL_BEGIN) || template.contains("tool['type']") || template.contains(&format!("function{SEP}")) {
            Syntax::R1
        } else {
            Syntax::V31
        }
    }
}

/// The grammar (llguidance's Lark syntax) of an answer that is tool calls and nothing else:
/// one call of `name` when given, else one or more calls of any of `tools` (OpenAI's
/// `{"type": "function", "function": {"name", "parameters"}}`), each call's arguments valid
/// under its function's `parameters` schema (compact JSON, see [`crate::grammar::compact`]).
pub fn forced(tools: &[serde_json::Value], name: Option<&str>, syntax: Syntax) -> String {
    let lit = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let (mut rules, mut names) = (Vec::new(), Vec::new());
    for (i, f) in tools.iter().filter_map(|t| t.get("function")).enumerate() {
        let Some(n) = f.get("name").and_then(|n| n.as_str()).filter(|n| name.is_none_or(|want| want == *n)) else { continue };
        let params = f.get("parameters").cloned().unwrap_or_else(|| serde_json::json!({ "type": "object" }));
        let args = format!("%json {}", crate::grammar::compact(params));
        let body = match syntax {
            Syntax::R1 => format!("{} {args} {}", lit(&format!("{n}\n```json\n")), lit("\n```")),
            Syntax::V31 => format!("{} {args}", lit(&format!("{n}{SEP}"))),
            Syntax::Qwen => format!("{} {args} \"}}\"", lit(&format!("{{\"name\": {}, \"arguments\": ", lit(n)))),
        };
        rules.push(format!("f{i}: {body}"));
        names.push(format!("f{i}"));
    }
    let call = match syntax {
        Syntax::R1 => format!("call: {} ({}) {}", lit(&format!("{CALL_BEGIN}function{SEP}")), names.join(" | "), lit(CALL_END)),
        Syntax::V31 => format!("call: {} ({}) {}", lit(CALL_BEGIN), names.join(" | "), lit(CALL_END)),
        Syntax::Qwen => format!("call: {} ({}) {}", lit(&format!("{QWEN_BEGIN}\n")), names.join(" | "), lit(&format!("\n{QWEN_END}"))),
    };
    let calls = if name.is_some() { "call" } else { "call (\"\\n\" call)*" };
    let start = match syntax {
        Syntax::R1 | Syntax::V31 => format!("start: {} {calls} {}", lit(CALLS_BEGIN), lit(CALLS_END)),
        Syntax::Qwen => format!("start: {calls}"),
    };
    format!("{start}\n{call}\n{}\n", rules.join("\n"))
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// the arguments as JSON text (OpenAI's `function.arguments`)
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Call(ToolCall),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Text,
    /// inside `<｜tool▁calls▁begin｜>` … `<｜tool▁calls▁end｜>`
    DeepSeek,
    /// inside `<tool_call>` … `</tool_call>`
    Qwen,
}

pub struct ToolStream {
    mode: Mode,
    pending: String,
    /// a call was just emitted: whitespace before the next text or call is dropped
    after_call: bool,
    /// the marker that opened the current call block, until its first call is parsed (given
    /// back as text if the block never completes)
    opened: &'static str,
}

impl Default for ToolStream {
    fn default() -> Self {
        ToolStream { mode: Mode::Text, pending: String::new(), after_call: false, opened: "" }
    }
}

/// Split a whole generated answer into its text and its tool calls.
pub fn parse(text: &str) -> (String, Vec<ToolCall>) {
    let mut s = ToolStream::default();
    let mut pieces = s.push(text);
    pieces.extend(s.finish());
    let (mut out, mut calls) = (String::new(), Vec::new());
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(&t),
            Piece::Call(c) => calls.push(c),
        }
    }
    (out, calls)
}

impl ToolStream {
    pub fn push(&mut self, delta: &str) -> Vec<Piece> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        loop {
            match self.mode {
                Mode::Text => {
                    let found = [(CALLS_BEGIN, Mode::DeepSeek), (CALL_BEGIN, Mode::DeepSeek), (QWEN_BEGIN, Mode::Qwen)]
                        .into_iter()
                        .filter_map(|(m, mode)| self.pending.find(m).map(|i| (i, m, mode)))
                        .min_by_key(|x| x.0);
                    if let Some((i, marker, mode)) = found {
                        let before = self.pending[..i].to_string();
                        self.text(&before, &mut out);
                        // a bare call (no calls_begin) keeps its begin marker for the call parser
                        let skip = if marker == CALL_BEGIN { 0 } else { marker.len() };
                        self.pending.drain(..i + skip);
                        self.mode = mode;
                        self.opened = if skip == 0 { "" } else { marker };
                        continue;
                    }
                    let keep = [CALLS_BEGIN, CALL_BEGIN, QWEN_BEGIN].iter().map(|m| partial_suffix(&self.pending, m)).max().unwrap_or(0);
                    let cut = self.pending.len() - keep;
                    let ready = self.pending[..cut].to_string();
                    self.pending.drain(..cut);
                    self.text(&ready, &mut out);
                    return out;
                }
                Mode::DeepSeek => {
                    let rest = self.pending.trim_start();
                    if let Some(after) = rest.strip_prefix(CALLS_END) {
                        self.pending = after.to_string();
                        self.mode = Mode::Text;
                        continue;
                    }
                    let Some(end) = self.pending.find(CALL_END) else { return out };
                    let body = self.pending[..end].to_string();
                    self.pending.drain(..end + CALL_END.len());
                    self.opened = "";
                    match deepseek_call(&body) {
                        Some(c) => out.push(Piece::Call(c)),
                        // not a call after all: keep the text rather than lose it
                        None => out.push(Piece::Text(format!("{body}{CALL_END}"))),
                    }
                    self.after_call = true;
                }
                Mode::Qwen => {
                    let Some(end) = self.pending.find(QWEN_END) else { return out };
                    let body = self.pending[..end].to_string();
                    self.pending.drain(..end + QWEN_END.len());
                    self.mode = Mode::Text;
                    match qwen_call(&body) {
                        Some(c) => out.push(Piece::Call(c)),
                        None => out.push(Piece::Text(format!("{QWEN_BEGIN}{body}{QWEN_END}"))),
                    }
                    self.after_call = true;
                }
            }
        }
    }

    /// End of the text: what is held back is text (an unfinished call included, verbatim).
    pub fn finish(&mut self) -> Vec<Piece> {
        let rest = std::mem::take(&mut self.pending);
        let rest = if self.mode == Mode::Text { rest } else { format!("{}{rest}", self.opened) };
        self.opened = "";
        self.mode = Mode::Text;
        let mut out = Vec::new();
        self.text(&rest, &mut out);
        out
    }

    fn text(&mut self, t: &str, out: &mut Vec<Piece>) {
        let t = if self.after_call { t.trim_start() } else { t };
        if t.is_empty() {
            return;
        }
        self.after_call = false;
        out.push(Piece::Text(t.to_string()));
    }
}

/// The length of the longest suffix of `s` that is a proper prefix of `marker`.
fn partial_suffix(s: &str, marker: &str) -> usize {
    (1..marker.len()).rev().find(|&n| marker.is_char_boundary(n) && s.ends_with(&marker[..n])).unwrap_or(0)
}

/// `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n``` ` (R1) or
/// `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS` (V3.1), without the end marker.
fn deepseek_call(body: &str) -> Option<ToolCall> {
    let body = body.trim_start().strip_prefix(CALL_BEGIN)?;
    let (head, rest) = body.split_once(SEP)?;
    let head = head.trim();
    let (name, args) = match rest.split_once('\n') {
        Some((name, args)) if head == "function" => (name.trim(), args),
        _ => (head, rest),
    };
    let args = args.trim();
    let args = args.strip_prefix("```json").or_else(|| args.strip_prefix("```")).unwrap_or(args);
    let args = args.strip_suffix("```").unwrap_or(args).trim();
    if name.is_empty() {
        return None;
    }
    Some(ToolCall { name: name.to_string(), arguments: normalise(args)? })
}

/// `{"name": NAME, "arguments": {…}}` between `<tool_call>` and `</tool_call>`.
fn qwen_call(body: &str) -> Option<ToolCall> {
    let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments") {
        None | Some(serde_json::Value::Null) => "{}".to_string(),
        Some(serde_json::Value::String(s)) => normalise(s)?,
        Some(a) => a.to_string(),
    };
    Some(ToolCall { name, arguments })
}

/// Arguments must be JSON; they are passed on as the model wrote them (an empty text is `{}`).
fn normalise(args: &str) -> Option<String> {
    if args.is_empty() {
        return Some("{}".into());
    }
    serde_json::from_str::<serde_json::Value>(args).ok().map(|_| args.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What R1-0528's chat template writes for an assistant turn with two tool calls (the
    /// template's own concatenation, copied from tests/fixtures/chat_templates), which is
    /// what the model is trained to produce.
    const R1_0528_TWO_CALLS: &str = "Let me check.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\", \"unit\": \"celsius\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"tz\": \"Europe/Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";

    #[test]
    fn r1_0528_calls() {
        let (text, calls) = parse(R1_0528_TWO_CALLS);
        assert_eq!(text, "Let me check.");
        assert_eq!(
            calls,
            [
                ToolCall { name: "get_weather".into(), arguments: "{\"city\": \"Paris\", \"unit\": \"celsius\"}".into() },
                ToolCall { name: "get_time".into(), arguments: "{\"tz\": \"Europe/Paris\"}".into() },
            ]
        );
    }

    /// Streamed one character at a time (markers cut anywhere), the same calls come out, and
    /// the text before them comes out before the first call completes.
    #[test]
    fn r1_0528_calls_streamed() {
        let mut s = ToolStream::default();
        let mut pieces = Vec::new();
        let mut first_call_at = None;
        let mut text_done_at = None;
        for (i, ch) in R1_0528_TWO_CALLS.chars().enumerate() {
            for p in s.push(&ch.to_string()) {
                match &p {
                    Piece::Call(_) if first_call_at.is_none() => first_call_at = Some(i),
                    Piece::Text(_) => text_done_at = Some(i),
                    _ => {}
                }
                pieces.push(p);
            }
        }
        pieces.extend(s.finish());
        let text: String = pieces.iter().filter_map(|p| if let Piece::Text(t) = p { Some(t.as_str()) } else { None }).collect();
        let calls: Vec<&ToolCall> = pieces.iter().filter_map(|p| if let Piece::Call(c) = p { Some(c) } else { None }).collect();
        assert_eq!(text, "Let me check.");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].name, "get_time");
        assert!(text_done_at.unwrap() < first_call_at.unwrap());
        // the first call is out before the second one starts
        assert!(first_call_at.unwrap() < R1_0528_TWO_CALLS.find("get_time").unwrap());
    }

    #[test]
    fn qwen3_calls() {
        let text = "<think>\nweather needed\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        let (rest, calls) = parse(text);
        assert_eq!(rest, "<think>\nweather needed\n</think>\n\n");
        assert_eq!(calls, [ToolCall { name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() }, ToolCall { name: "get_time".into(), arguments: "{}".into() }]);
    }

    #[test]
    fn v3_1_call_and_plain_text() {
        let (t, calls) = parse("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Oslo\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
        assert_eq!((t.as_str(), calls), ("", vec![ToolCall { name: "get_weather".into(), arguments: "{\"city\": \"Oslo\"}".into() }]));
        assert_eq!(parse("3 < 4 and <tool is not a call"), ("3 < 4 and <tool is not a call".to_string(), vec![]));
        assert_eq!(parse("no calls <｜tool"), ("no calls <｜tool".to_string(), vec![]));
    }

    /// Broken calls are not invented into calls and their text is not lost.
    #[test]
    fn malformed_calls_stay_text() {
        let bad = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{not json\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        let (t, calls) = parse(bad);
        assert!(calls.is_empty());
        assert!(t.contains("{not json"), "{t}");
        let unfinished = "<tool_call>\n{\"name\": \"f\", \"argu";
        assert_eq!(parse(unfinished), (unfinished.to_string(), vec![]));
        let (t, calls) = parse("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{\"a\"");
        assert!(calls.is_empty() && t.ends_with("{\"a\""), "{t}");
    }
}
