//! `deepseek-wgpu` command line: devices, inspect, logits, generate, chat, eval, bench, serve.

mod cli;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "deepseek-wgpu", version, about = "DeepSeek-V3/R1/V2 inference on any GPU (wgpu: Vulkan, Metal, DX12)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List GPU adapters with backend, type and key limits, and whether each can run a model
    Devices {
        /// the model to check on each adapter (default: the embedded model)
        #[arg(long)]
        model: Option<PathBuf>,
        /// context length the check allocates the cache for
        #[arg(long, default_value_t = 4096)]
        ctx: usize,
        /// check each adapter as a small GPU would offer it (see `generate --help`)
        #[arg(long)]
        small_gpu: bool,
    },
    /// Summarise a checkpoint: config, parameter counts, dtypes, GPU memory
    Inspect {
        /// checkpoint folder (default: the embedded model)
        #[arg(long)]
        model: Option<PathBuf>,
        /// context length for the KV cache estimate
        #[arg(long, default_value_t = 4096)]
        ctx: usize,
        #[arg(long)]
        json: bool,
        /// say what would be on the GPU with this much GPU memory (e.g. 24G) and what would
        /// stay in host memory
        #[arg(long, value_name = "SIZE", value_parser = cli::parse_size)]
        gpu_memory: Option<u64>,
    },
    /// Write the logits at every position of --ids to a float32 .npy [n_ids, vocab]
    Logits {
        #[command(flatten)]
        m: cli::ModelArgs,
        /// comma-separated token ids
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
        /// feed the ids N at a time through the cache (1 = pure decode); default all at once
        #[arg(long)]
        step: Option<usize>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Continue a prompt (text or ids), streaming the text as it is produced
    Generate(cli::generate::Args),
    /// Interactive chat: streaming answers, Ctrl-C cancels an answer, /help lists commands
    Chat(cli::chat::Args),
    /// Exact-answer accuracy of the arithmetic model on fresh problems (greedy)
    Eval(cli::eval::Args),
    /// Prefill and decode speed, GPU time per kernel, fraction of the memory roofline
    Bench(cli::bench::Args),
    /// OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /health
    Serve(cli::serve::Args),
}

/// The library reports through `log`; the CLI prints the engine's own warnings (not wgpu's
/// internal chatter) as `warning: …` on stderr.
struct EngineWarnings;

impl log::Log for EngineWarnings {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn && m.target().starts_with("deepseek_wgpu")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("{}: {}", if r.level() == log::Level::Error { "error" } else { "warning" }, r.args());
        }
    }
    fn flush(&self) {}
}

fn main() {
    headless_vulkan();
    if log::set_logger(&EngineWarnings).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` connects to Wayland and X11 to
/// find the GPU that drives the display; on a headless box that connection attempt prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice. The CLI draws no
/// window and picks its adapter itself, so it turns the layer off (its documented switch,
/// `NODEVICE_SELECT=1`) unless the user set that variable. Done first thing in `main`,
/// before any thread exists.
fn headless_vulkan() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Devices { model, ctx, small_gpu } => cli::info::devices(model.as_deref(), ctx, small_gpu),
        Cmd::Inspect { model, ctx, json, gpu_memory } => cli::info::inspect(&cli::model_dir(model.as_deref())?, ctx, json, gpu_memory),
        Cmd::Logits { m, ids, step, out } => cli::logits(&m, &ids, step, &out),
        Cmd::Generate(a) => cli::generate::run(a),
        Cmd::Chat(a) => cli::chat::run(a),
        Cmd::Eval(a) => cli::eval::run(a),
        Cmd::Bench(a) => cli::bench::run(a),
        Cmd::Serve(a) => cli::serve::run(a),
    }
}
