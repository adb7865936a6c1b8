//! deepseek-wgpu desktop app: chat with a DeepSeek-V3-family model and watch its experts
//! being chosen, token by token. The engine and egui share one wgpu device; the engine runs
//! on its own thread ([`worker`]) and the UI only ever drains its events.

pub mod analysis;
pub mod analysis_view;
pub mod app;
pub mod cache_view;
pub mod chat_view;
pub mod chats;
pub mod export;
pub mod gpu;
pub mod perf;
pub mod picker;
pub mod markdown;
pub mod remote;
pub mod routing;
pub mod routing_view;
pub mod settings;
pub mod store;
pub mod worker;

pub use app::{App, Startup};
