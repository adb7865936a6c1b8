//! Splits a stream of generated text into reasoning (inside `<think>…</think>`) and answer,
//! holding back any suffix that might be the start of a tag so that a tag split across
//! tokens is still recognised.

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextKind {
    Reasoning,
    Answer,
}

/// The reasoning tags (text: the splitter and the grammar engine read them as text whether
/// the tokenizer has them as single tokens or not).
pub const OPEN: &str = "<think>";
pub const CLOSE: &str = "</think>";

/// Whether a rendered chat prompt leaves the model inside a reasoning block: templates that
/// end the generation prompt with `<think>` (R1, R1-Distill, V3.1 thinking) make the reply
/// start inside the reasoning so only `</think>` appears in it; those that leave `<think>` to
/// the model (Qwen3, R1-0528 and its Qwen3 distill) or close it (`enable_thinking=false`'s
/// `<think>\n\n</think>\n\n`) do not.
pub fn prompt_opens_reasoning(prompt: &str) -> bool {
    prompt.trim_end().ends_with(OPEN)
}

/// The assistant message a reply becomes in the conversation: its reasoning inside
/// `<think>…</think>` ahead of the answer, the shape the chat templates expect of an earlier
/// turn (R1's strip it to the answer, Qwen3's keep it after the last user turn).
pub fn assistant_content(reasoning: &str, answer: &str) -> String {
    if reasoning.is_empty() {
        answer.to_string()
    } else {
        format!("{OPEN}\n{}\n{CLOSE}\n\n{answer}", reasoning.trim_end())
    }
}

/// The kind of a generated token, from the splitter's kind before and after its text: a token
/// belongs to the reasoning when it is inside it, opens it (the `<think>` a model writes itself:
/// Qwen3, R1-0528) or closes it.
pub fn token_kind(before: TextKind, after: TextKind) -> TextKind {
    if before == TextKind::Reasoning || after == TextKind::Reasoning {
        TextKind::Reasoning
    } else {
        TextKind::Answer
    }
}

pub struct ReasoningSplitter {
    kind: TextKind,
    pending: String,
    /// strip whitespace at the start of the current section
    at_start: bool,
}

impl ReasoningSplitter {
    /// `in_reasoning`: the prompt already opened `<think>` for the model.
    pub fn new(in_reasoning: bool) -> Self {
        ReasoningSplitter { kind: if in_reasoning { TextKind::Reasoning } else { TextKind::Answer }, pending: String::new(), at_start: true }
    }

    pub fn kind(&self) -> TextKind {
        self.kind
    }

    /// Feed a delta; returns the pieces that are certain, in order.
    pub fn push(&mut self, delta: &str) -> Vec<(TextKind, String)> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        loop {
            let tag = if self.kind == TextKind::Reasoning { CLOSE } else { OPEN };
            if let Some(i) = self.pending.find(tag) {
                let before: String = self.pending[..i].to_string();
                self.emit(&before, &mut out);
                self.pending.drain(..i + tag.len());
                self.kind = if self.kind == TextKind::Reasoning { TextKind::Answer } else { TextKind::Reasoning };
                self.at_start = true;
                continue;
            }
            // Keep back the longest suffix that is a prefix of the tag.
            let keep = (1..tag.len()).rev().find(|&n| self.pending.is_char_boundary(self.pending.len().saturating_sub(n)) && self.pending.ends_with(&tag[..n])).unwrap_or(0);
            let cut = self.pending.len() - keep;
            let ready: String = self.pending[..cut].to_string();
            self.pending.drain(..cut);
            self.emit(&ready, &mut out);
            return out;
        }
    }

    /// End of stream: whatever is held back is text.
    pub fn finish(&mut self) -> Vec<(TextKind, String)> {
        let rest = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        self.emit(&rest, &mut out);
        out
    }

    fn emit(&mut self, text: &str, out: &mut Vec<(TextKind, String)>) {
        let text = if self.at_start { text.trim_start() } else { text };
        if text.is_empty() {
            return;
        }
        self.at_start = false;
        match out.last_mut() {
            Some((k, s)) if *k == self.kind => s.push_str(text),
            _ => out.push((self.kind, text.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(prompt_opened: bool, pieces: &[&str]) -> (String, String) {
        let mut s = ReasoningSplitter::new(prompt_opened);
        let mut r = (String::new(), String::new());
        let mut all: Vec<(TextKind, String)> = pieces.iter().flat_map(|p| s.push(p)).collect();
        all.extend(s.finish());
        for (k, t) in all {
            match k {
                TextKind::Reasoning => r.0.push_str(&t),
                TextKind::Answer => r.1.push_str(&t),
            }
        }
        r
    }

    #[test]
    fn splits_tags_across_pieces() {
        assert_eq!(run(false, &["<th", "ink>\nadd 3", " and 4</", "think>\n\n7"]), ("add 3 and 4".into(), "7".into()));
        assert_eq!(run(true, &["3+4", "=7\n</think>", "\n\n", "7"]), ("3+4=7\n".into(), "7".into()));
        assert_eq!(run(false, &["no reasoning < here"]), (String::new(), "no reasoning < here".into()));
        assert_eq!(run(true, &["unfinished <"]), ("unfinished <".into(), String::new()));
    }

    #[test]
    fn tags_belong_to_the_reasoning() {
        let mut sp = ReasoningSplitter::new(false);
        let mut kinds = Vec::new();
        for t in ["<think>", "\n2+2", "</think>", "\n\n", "4"] {
            let before = sp.kind();
            sp.push(t);
            kinds.push(token_kind(before, sp.kind()));
        }
        use TextKind::*;
        assert_eq!(kinds, [Reasoning, Reasoning, Reasoning, Answer, Answer]);
    }
}
