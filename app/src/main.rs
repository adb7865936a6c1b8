//! `deepseek-wgpu-app [MODEL_DIR | SERVER_URL] [--prompt TEXT] [--ctx N] [--max-tokens N] [--seed N]
//! [--temperature T] [--colour-layer ROW] [--expand-thinking] [--adapter N|NAME]
//! [--gpu-memory SIZE] [--data-dir DIR]`

use std::path::PathBuf;

use deepseek_wgpu::gpu::AdapterChoice;
use deepseek_wgpu_app::{App, Startup};
use eframe::egui;

const USAGE: &str = "usage: deepseek-wgpu-app [MODEL_DIR | SERVER_URL] [--prompt TEXT] [--ctx N] [--max-tokens N] [--seed N] [--temperature T] [--colour-layer ROW] [--expand-thinking] [--adapter N|NAME] [--gpu-memory SIZE] [--data-dir DIR]

  MODEL_DIR        checkpoint folder (config.json, *.safetensors, tokenizer) or a .gguf file; default: the embedded model
  SERVER_URL       an OpenAI-compatible server instead (http://host:port/v1, #MODEL to pick a model);
                   its API key, if it needs one, from the environment variable DEEPSEEK_WGPU_API_KEY
  --prompt TEXT    send TEXT as soon as the model is loaded (demos, screenshots)
  --ctx N          latent cache size in tokens (default 4096, capped by the model)
  --max-tokens N   most tokens per answer
  --seed N         fixed sampling seed
  --temperature T  0 = greedy
  --colour-layer R colour the transcript by the top-1 expert of MoE row R (0 = first MoE layer)
  --expand-thinking show the reasoning of replies expanded
  --adapter N|NAME the GPU: an index from `deepseek-wgpu devices` or part of an adapter's name
                   (default: the one chosen in the window's Adapter menu, else the first)
  --gpu-memory SIZE GPU memory a model may use (e.g. 24G, 1500M); a MoE model larger than that
                   can load with its routed experts in host memory (the expert cache)
  --data-dir DIR   where chats, settings and the window size are saved (default: $DEEPSEEK_WGPU_APP_DATA,
                   else the platform's data folder, ~/.local/share/deepseek-wgpu on Linux)";

fn parse(args: &[String]) -> Result<(Startup, Option<AdapterChoice>), String> {
    let mut s = Startup::default();
    let mut adapter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--prompt" => s.prompt = Some(value(a)?),
            "--ctx" => s.ctx = num(a, &value(a)?)?,
            "--max-tokens" => s.max_tokens = Some(num(a, &value(a)?)?),
            "--seed" => s.seed = Some(num(a, &value(a)?)?),
            "--temperature" => s.temperature = Some(num(a, &value(a)?)?),
            "--colour-layer" | "--color-layer" => s.colour_row = Some(num(a, &value(a)?)?),
            "--expand-thinking" => s.expand_thinking = true,
            "--data-dir" => s.data_dir = Some(PathBuf::from(value(a)?)),
            "--gpu-memory" => s.gpu_memory = Some(deepseek_wgpu::model::parse_size(&value(a)?).map_err(|e| format!("--gpu-memory: {e}"))?),
            "--adapter" => adapter = Some(value(a)?.parse::<AdapterChoice>().map_err(|e| format!("--adapter: {e}"))?),
            x if x.starts_with("--") => return Err(format!("unknown option {x}")),
            x if s.model_dir.is_none() => s.model_dir = Some(PathBuf::from(x)),
            x => return Err(format!("unexpected argument {x}")),
        }
    }
    // A key on the command line would show in `ps`; the environment does not.
    s.api_key = std::env::var("DEEPSEEK_WGPU_API_KEY").ok().filter(|k| !k.is_empty());
    Ok((s, adapter))
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{name}: {v:?} is not a valid number"))
}

fn main() -> eframe::Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (startup, adapter) = match parse(&args) {
        Ok(s) => s,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    // The adapter chosen in the window last time, unless --adapter names one.
    let data = deepseek_wgpu_app::store::data_dir(startup.data_dir.as_deref());
    // (one that is gone is skipped: a start must not fail on a stale setting)
    let saved = deepseek_wgpu_app::chats::saved_adapter(data.clone()).filter(|name| {
        let there = deepseek_wgpu::gpu::list_adapters().iter().any(|(info, _, _)| &info.name == name);
        if !there {
            eprintln!("the adapter chosen last time, {name}, is not there; using the default");
        }
        there
    });
    let adapter = adapter.or(saved.map(AdapterChoice::Name));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1400.0, 900.0]).with_title("deepseek-wgpu"),
        // The engine shares this device, so ask for the adapter's full limits.
        wgpu_options: deepseek_wgpu_app::gpu::wgpu_configuration(adapter),
        // The window's size and position and the panels' layout (app.ron) go beside the chats.
        persistence_path: data,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native("deepseek-wgpu", options, Box::new(move |cc| Ok(Box::new(App::new(cc, startup)))))
}
