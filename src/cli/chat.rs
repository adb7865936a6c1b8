//! `chat`: an interactive loop. Answers stream as they are produced; Ctrl-C cancels the
//! current answer (not the program); /reset, /system, /save, /load; tokens/s after each answer.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use deepseek_wgpu::chat::Message;

use super::generate::{stats_line, Printer};
use super::{ModelArgs, SamplingArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    m: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// system prompt
    #[arg(long)]
    system: Option<String>,
    /// most tokens per answer
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
    /// print only answers, not reasoning
    #[arg(long)]
    hide_reasoning: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    messages: Vec<Message>,
}

const HELP: &str = "commands: /reset (new chat), /system TEXT, /save FILE, /load FILE, /exit; Ctrl-C cancels an answer, Ctrl-D quits";

pub fn run(a: Args) -> Result<()> {
    let mut sess = super::session(&a.m)?;
    let settings = a.sampling.settings(sess.default_settings(), a.max_tokens)?;
    if let Some(s) = &a.system {
        sess.set_system(s);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    ctrlc::set_handler(move || c.store(true, Ordering::Relaxed)).context("installing the Ctrl-C handler")?;
    eprintln!("deepseek-wgpu chat ({} layers, context {} tokens). {HELP}", sess.model.cfg.n_layers, sess.context());
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin")?;
        let line = line.trim();
        cancel.store(false, Ordering::Relaxed);
        if line.is_empty() {
            continue;
        }
        if let Some(cmd) = line.strip_prefix('/') {
            let (name, arg) = cmd.split_once(' ').map_or((cmd, ""), |(n, a)| (n, a.trim()));
            let r: Result<String> = match name {
                "exit" | "quit" => break,
                "help" => Ok(HELP.into()),
                "reset" => {
                    sess.reset();
                    Ok("new chat".into())
                }
                "system" => {
                    sess.set_system(arg);
                    Ok(if arg.is_empty() { "system prompt cleared".into() } else { "system prompt set".into() })
                }
                "save" if !arg.is_empty() => std::fs::write(arg, serde_json::to_string_pretty(&Saved { messages: sess.messages.clone() })?)
                    .map(|_| format!("saved {} messages to {arg}", sess.messages.len()))
                    .with_context(|| format!("writing {arg}")),
                "load" if !arg.is_empty() => std::fs::read_to_string(arg)
                    .with_context(|| format!("reading {arg}"))
                    .and_then(|t| serde_json::from_str::<Saved>(&t).with_context(|| format!("{arg} is not a saved conversation")))
                    .map(|s| {
                        sess.messages = s.messages;
                        format!("loaded {} messages from {arg}", sess.messages.len())
                    }),
                "save" | "load" => Ok(format!("usage: /{name} FILE")),
                _ => Ok(format!("unknown command /{name}; {HELP}")),
            };
            match r {
                Ok(msg) => eprintln!("[{msg}]"),
                Err(e) => eprintln!("[error: {e:#}]"),
            }
            continue;
        }
        let mut printer = Printer::new(a.hide_reasoning, false);
        match sess.chat(line, &settings, &cancel, &mut |e| printer.event(e)) {
            Ok(reply) => {
                printer.end();
                eprintln!("{}", stats_line(&reply));
            }
            Err(e) => {
                printer.end();
                eprintln!("[error: {e}]");
            }
        }
    }
    Ok(())
}
