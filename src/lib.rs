//! deepseek-wgpu: DeepSeek-V3/R1/V2 inference on any GPU through wgpu compute shaders.
//!
//! Layers, bottom to top (see ARCHITECTURE.md): [`checkpoint`] (safetensors, mmap),
//! [`config`] (config.json → [`config::ModelConfig`]), [`gpu`] (device, buffers, recorder),
//! [`tensor`] (chunked weight matrices), [`ops`] (one module per WGSL kernel family),
//! [`model`] (the DeepSeek graph and latent cache), [`generate`] (token loop).

pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod generate;
pub mod gpu;
pub mod model;
pub mod npy;
pub mod ops;
pub mod session;
pub mod tensor;

/// The model every command and the app load when no folder is given: the tiny trained
/// DeepSeek-V3-architecture model shipped in `assets/tiny-r1`.
pub fn default_model_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-r1");
    if dir.join("config.json").exists() {
        Ok(dir)
    } else {
        Err(format!("the embedded model is missing ({}); pass --model DIR", dir.display()))
    }
}
