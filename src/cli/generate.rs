//! `generate`: continue text (`--prompt`, optionally through the chat template) or ids
//! (`--ids`), streaming the reply; `--json` ends with one machine-readable object on stdout;
//! `--json-schema` / `--grammar` constrain the answer.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context, Result};
use deepseek_wgpu::chat::{Message, TextKind};
use deepseek_wgpu::grammar::Constraint;
use deepseek_wgpu::session::{Event, Reply};

use super::{ModelArgs, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    m: ModelArgs,
    /// prompt text
    #[arg(long, conflicts_with = "ids")]
    prompt: Option<String>,
    /// comma-separated prompt token ids
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<u32>>,
    /// render --prompt as a user turn through the model's chat template
    #[arg(long)]
    chat: bool,
    /// system prompt (with --chat)
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// most tokens to generate (0: only render and tokenise the prompt)
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// feed the prompt N tokens at a time (results do not depend on it; for tests)
    #[arg(long)]
    step: Option<usize>,
    /// print only the answer, not the reasoning
    #[arg(long)]
    hide_reasoning: bool,
    /// end with one JSON object on stdout (the streamed text goes to stderr)
    #[arg(long)]
    json: bool,
    /// the answer (after any reasoning) is JSON valid under the JSON Schema in FILE
    #[arg(long, value_name = "FILE", conflicts_with = "grammar")]
    json_schema: Option<PathBuf>,
    /// the answer (after any reasoning) follows the grammar in FILE (llguidance's Lark
    /// syntax; `%json {…}` embeds a JSON Schema)
    #[arg(long, value_name = "FILE")]
    grammar: Option<PathBuf>,
}

/// `--json-schema` / `--grammar` read (the model is not loaded yet, so a missing or broken
/// file fails fast); llguidance checks the grammar itself once the vocabulary is there.
fn constraint(a: &Args) -> Result<Option<(Constraint, &Path)>> {
    if let Some(p) = &a.json_schema {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read the JSON Schema", p.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?;
        return Ok(Some((Constraint::JsonSchema(v), p)));
    }
    if let Some(p) = &a.grammar {
        let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read the grammar", p.display()))?;
        return Ok(Some((Constraint::Lark(text), p)));
    }
    Ok(None)
}

/// Streams events as text: reasoning visibly apart (dim on a terminal, `<think>` markers
/// otherwise), answer plain.
pub struct Printer {
    pub hide_reasoning: bool,
    tty: bool,
    to_stderr: bool,
    in_reasoning: bool,
}

impl Printer {
    pub fn new(hide_reasoning: bool, to_stderr: bool) -> Self {
        let tty = if to_stderr { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
        Printer { hide_reasoning, tty, to_stderr, in_reasoning: false }
    }

    fn write(&self, s: &str) {
        if self.to_stderr {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(s.as_bytes());
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }

    pub fn event(&mut self, e: &Event) {
        if let Event::Text { kind, text } = e {
            match kind {
                TextKind::Reasoning if self.hide_reasoning => {}
                TextKind::Reasoning => {
                    if !self.in_reasoning {
                        self.in_reasoning = true;
                        self.write(if self.tty { "\x1b[2mThinking…\n" } else { "<think>\n" });
                    }
                    self.write(text);
                }
                TextKind::Answer => {
                    self.close_reasoning();
                    self.write(text);
                }
            }
        }
    }

    pub fn close_reasoning(&mut self) {
        if self.in_reasoning {
            self.in_reasoning = false;
            self.write(if self.tty { "\x1b[0m\n\n" } else { "\n</think>\n\n" });
        }
    }

    pub fn end(&mut self) {
        self.close_reasoning();
        self.write("\n");
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.prompt.is_none() && a.ids.is_none() {
        bail!("give a prompt: --prompt TEXT (with --chat for the chat template) or --ids 1,2,3");
    }
    if a.chat && a.prompt.is_none() {
        bail!("--chat needs --prompt TEXT");
    }
    if a.prompt.as_deref().is_some_and(|p| p.is_empty() || (a.chat && p.trim().is_empty())) {
        bail!("empty prompt: give some text with --prompt");
    }
    let constraint = constraint(&a)?;
    let model = super::load(&a.m)?;
    // Token ids need no tokenizer: a checkpoint without one runs the same session on ids alone.
    let mut sess = match (super::session_on(&a.m, model.clone()), &a.ids) {
        (Ok(s), _) => s,
        (Err(_), Some(_)) => super::ids_session(&a.m, model)?,
        (Err(e), None) => return Err(e),
    };
    let mut settings = a.sampling.settings(sess.default_settings(), a.max_tokens)?;
    settings.prefill_step = a.step.unwrap_or(0);

    let (prompt_ids, opened) = match (&a.prompt, &a.ids) {
        (Some(p), _) if a.chat => {
            if let Some(sys) = &a.system {
                sess.set_system(sys);
            }
            sess.messages.push(Message::new("user", p));
            sess.chat_prompt()?
        }
        (Some(p), _) => (sess.text_tokenizer()?.encode_prompt(p)?, false),
        (None, Some(ids)) => (ids.clone(), false),
        (None, None) => unreachable!("checked above"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt is empty after tokenisation; give some text");
    }
    if let Some((c, path)) = constraint {
        if let Err(e) = sess.grammar()?.guide(&c, opened) {
            bail!("{}: {e}", path.display());
        }
        settings.constraint = Some(c);
    }
    let mut printer = Printer::new(a.hide_reasoning, a.json);
    let cancel = AtomicBool::new(false);
    let reply = sess.generate(&prompt_ids, opened, &settings, &cancel, &mut |e| printer.event(e))?;
    if a.max_tokens > 0 {
        printer.end();
    }
    let joined = |ids: &[u32]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    if a.json {
        println!("{}", reply_json(&sess, &reply));
    } else {
        if a.max_tokens == 0 {
            if let Some(tok) = &sess.tokenizer {
                println!("{}", tok.decode(&reply.prompt_ids)?);
            }
            println!("{}", joined(&reply.prompt_ids));
        } else if sess.tokenizer.is_none() {
            // no text to stream: the ids are the output
            println!("{}", joined(&reply.ids));
        }
        eprintln!("{}", stats_line(&reply));
    }
    Ok(())
}

fn sorted(r: &[u32]) -> Vec<u32> {
    let mut r = r.to_vec();
    r.sort_unstable();
    r
}

pub fn stats_line(r: &Reply) -> String {
    let s = &r.stats;
    format!(
        "[{} prompt tokens ({} reused) at {:.1} tok/s, {} generated at {:.1} tok/s; context {}/{}; latent cache {:.1} KiB; stopped: {}]",
        s.prompt_tokens,
        s.reused_tokens,
        s.prefill_tokens_per_s,
        s.generated_tokens,
        s.decode_tokens_per_s,
        s.context_used,
        s.context_max,
        s.cache_bytes_used as f64 / 1024.0,
        r.stop
    )
}

/// `{prompt_ids, ids, text, reasoning, answer, routing, stats, stop}`; routing as in the
/// `--ids` form: per MoE layer, per position fed, the sorted expert ids.
fn reply_json(sess: &deepseek_wgpu::session::Session, r: &Reply) -> serde_json::Value {
    let mut routing: BTreeMap<String, Vec<Vec<u32>>> = sess.model.moe_layers().iter().map(|l| (l.to_string(), Vec::new())).collect();
    for (_, _, layers) in &r.routing {
        for lr in layers {
            if let Some(v) = routing.get_mut(&lr.layer.to_string()) {
                v.push(sorted(&lr.experts));
            }
        }
    }
    serde_json::json!({
        "expert_cache": r.stats.expert_cache,
        "prompt_ids": r.prompt_ids,
        "ids": r.ids,
        "text": r.text,
        "reasoning": r.reasoning,
        "answer": r.answer,
        "routing": routing,
        "stats": r.stats,
        "stop": r.stop,
    })
}
