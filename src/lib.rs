//! deepseek-wgpu: DeepSeek-V3/R1/V2 inference on any GPU through wgpu compute shaders.
//!
//! Layers, bottom to top (see ARCHITECTURE.md): [`checkpoint`] (safetensors, mmap), [`gguf`] (GGUF files),
//! [`config`] (config.json → [`config::ModelConfig`]), [`gpu`] (device, buffers, recorder),
//! [`tensor`] (chunked weight matrices), [`ops`] (one module per WGSL kernel family),
//! [`model`] (the DeepSeek graph and latent cache), [`grammar`] (constrained decoding's
//! token masks), [`session`] (the token loop),
//! [`server`] (an OpenAI-compatible HTTP server over sessions).

pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod eval;
pub mod format;
pub mod gguf;
pub mod gpu;
pub mod grammar;
pub mod model;
pub mod npy;
pub mod ops;
pub mod sampling;
pub mod server;
pub mod session;
pub mod synthetic;
pub mod tensor;

/// The model every command and the app load when no folder is given: the tiny trained
/// DeepSeek-V3-architecture model from `assets/tiny-r1`. Its files are compiled into the
/// library; they are written once to a cache folder (keyed by their size and a hash) so the
/// folder-based loaders read them like any checkpoint.
pub fn default_model_dir() -> Result<std::path::PathBuf, String> {
    embedded::dir()
}

mod embedded {
    #[cfg(embedded_model)]
    const FILES: &[(&str, &[u8])] = &[
        ("config.json", include_bytes!("../assets/tiny-r1/config.json")),
        ("model.safetensors", include_bytes!("../assets/tiny-r1/model.safetensors")),
        ("tokenizer.json", include_bytes!("../assets/tiny-r1/tokenizer.json")),
        ("tokenizer_config.json", include_bytes!("../assets/tiny-r1/tokenizer_config.json")),
        ("generation_config.json", include_bytes!("../assets/tiny-r1/generation_config.json")),
    ];
    #[cfg(not(embedded_model))]
    const FILES: &[(&str, &[u8])] = &[];

    pub fn dir() -> Result<std::path::PathBuf, String> {
        if FILES.is_empty() {
            return Err("this build has no embedded model (assets/tiny-r1 was missing when it was compiled); pass --model DIR".into());
        }
        // FNV-1a over all files: a new model gets a new folder.
        let mut h: u64 = 0xcbf29ce484222325;
        for (name, bytes) in FILES {
            for b in name.bytes().chain(bytes.iter().copied()) {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join("deepseek-wgpu").join(format!("tiny-r1-{h:016x}"));
        let complete = FILES.iter().all(|(n, b)| std::fs::metadata(dir.join(n)).is_ok_and(|m| m.len() == b.len() as u64));
        if !complete {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for (name, bytes) in FILES {
                // Write then rename, so a concurrent reader never sees a partial file.
                let tmp = dir.join(format!(".{name}.{}", std::process::id()));
                std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, dir.join(name)).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
        }
        Ok(dir)
    }
}
