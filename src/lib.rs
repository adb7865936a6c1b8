//! deepseek-wgpu: DeepSeek-V3/R1/V2 inference on any GPU through wgpu compute shaders.
//!
//! Layers, bottom to top (see ARCHITECTURE.md): [`checkpoint`] (safetensors, mmap),
//! [`config`] (config.json → [`config::ModelConfig`]), [`gpu`] (device, buffers, recorder),
//! [`tensor`] (chunked weight matrices), [`ops`] (one module per WGSL kernel family),
//! [`model`] (the DeepSeek graph and latent cache), [`generate`] (token loop).

pub mod checkpoint;
pub mod config;
pub mod generate;
pub mod gpu;
pub mod model;
pub mod npy;
pub mod ops;
pub mod tensor;
