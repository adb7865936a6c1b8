//! `serve`: the OpenAI-compatible HTTP server (`deepseek_wgpu::server`) over `--parallel`
//! sessions of one loaded model.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use deepseek_wgpu::chat::{ChatTokenizer, GenerationConfig};
use deepseek_wgpu::server::{self, Config, Engine};
use deepseek_wgpu::session::Session;

use super::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    m: ModelArgs,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// requests generated at once, each in its own slot with its own KV cache of --ctx tokens
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// requests that may wait for a free slot; beyond them the server answers 503
    #[arg(long, default_value_t = 16)]
    queue: usize,
    /// require `Authorization: Bearer KEY` on every endpoint but /health
    #[arg(long)]
    api_key: Option<String>,
    /// the model id /v1/models lists (default: the model folder's or file's name)
    #[arg(long)]
    model_id: Option<String>,
    /// a Jinja chat template to use instead of the checkpoint's (e.g. one with tool sections)
    #[arg(long)]
    chat_template: Option<PathBuf>,
    /// largest request body in KiB
    #[arg(long, default_value_t = 4096)]
    max_body_kib: usize,
}

pub fn run(a: Args) -> Result<()> {
    if a.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let dir = super::model_dir(a.m.model.as_deref())?;
    let model = super::load(&a.m)?;
    let mut tok = ChatTokenizer::load(&dir, model.cfg.vocab).with_context(|| format!("loading the tokenizer of {}", dir.display()))?;
    if let Some(p) = &a.chat_template {
        tok.chat_template = Some(std::fs::read_to_string(p).with_context(|| format!("reading the chat template {}", p.display()))?);
    }
    if tok.chat_template.is_none() {
        bail!("{} has no chat template; pass --chat-template FILE", dir.display());
    }
    let tok = Arc::new(tok);
    let gen = GenerationConfig::load(&dir)?;
    let ctx = a.m.ctx.min(model.max_ctx);
    let sessions = (0..a.parallel).map(|_| Session::new(model.clone(), tok.clone(), gen.clone(), ctx)).collect::<Result<Vec<_>, _>>()?;
    let model_id = a.model_id.clone().unwrap_or_else(|| match &a.m.model {
        None => "tiny-r1".to_string(),
        Some(p) => p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()),
    });
    let cfg = Config { model_id: model_id.clone(), api_key: a.api_key.clone(), max_queue: a.queue, max_body_bytes: a.max_body_kib << 10 };
    let engine = Engine::new(sessions, cfg).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port)).await.with_context(|| format!("binding {}:{}", a.host, a.port))?;
        let addr = listener.local_addr()?;
        eprintln!("serving {model_id} on http://{addr}/v1 ({} slots of {ctx} tokens, queue {})", a.parallel, a.queue);
        server::serve(listener, engine).await.context("serving")
    })
}
