//! An OpenAI-compatible HTTP server over [`Session`]s: `GET /v1/models`,
//! `POST /v1/chat/completions` (reasoning apart in `reasoning_content`, tool calls in
//! `tool_calls`, SSE streaming), `POST /v1/completions`, `GET /health`, and
//! `POST /apply-template` (the prompt a chat request renders to; llama.cpp's extension).
//!
//! Concurrency: `slots` sessions share one [`crate::model::Model`]; each request takes an
//! idle slot (the one whose cached ids share the longest prefix with its prompt, so a
//! follow-up turn reuses its cache), else waits in a bounded queue, else gets 503. A slot
//! generates on a blocking thread; the model serves one forward chunk at a time, first
//! come first served, so active slots decode in turn. A client that goes away (its
//! response stream or future is dropped) cancels its generation at the next token.

mod api;
mod error;
mod handlers;
pub mod tools;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::oneshot;

pub use error::ApiError;
pub use handlers::router;

use crate::chat::ChatTokenizer;
use crate::grammar::Grammar;
use crate::session::{Session, Settings};

pub struct Config {
    /// the id `/v1/models` lists and requests must name (or leave out)
    pub model_id: String,
    /// requests must send `Authorization: Bearer KEY` (all but `/health`)
    pub api_key: Option<String>,
    /// requests that may wait for a slot; more get 503
    pub max_queue: usize,
    /// largest request body accepted (413 beyond)
    pub max_body_bytes: usize,
}

/// Counters `/health` reports.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub cancelled: AtomicU64,
    /// tokens that arrived after their request's cancel flag was set: at most one per
    /// cancelled request (the forward already running when the client left)
    pub tokens_after_cancel: AtomicU64,
    pub rejected_busy: AtomicU64,
}

pub struct Engine {
    pub cfg: Config,
    pub tokenizer: Arc<ChatTokenizer>,
    /// the checkpoint's sampling defaults (generation_config.json)
    pub defaults: Settings,
    /// context of every slot
    pub ctx: usize,
    pub slots: usize,
    pub created: u64,
    /// the model's MoE shape as `/v1/models` reports it (`None`: a dense model)
    pub routing: Option<serde_json::Value>,
    pub counters: Counters,
    pool: Mutex<Pool>,
    /// the model's vocabulary and end-of-sequence ids, for the grammar engine
    vocab: usize,
    eos: Vec<u32>,
    /// built on the first constrained request, then shared by every slot
    grammar: OnceLock<Result<Arc<Grammar>, String>>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    waiting: VecDeque<oneshot::Sender<Session>>,
}

impl Engine {
    /// An engine over `sessions` (one per slot; all on the same model and tokenizer).
    pub fn new(sessions: Vec<Session>, cfg: Config) -> Result<Arc<Engine>, String> {
        let first = sessions.first().ok_or("the server needs at least one slot")?;
        let tokenizer = first.text_tokenizer().map_err(|e| e.to_string())?;
        let (defaults, ctx) = (first.default_settings(), first.context());
        let (vocab, eos) = (first.model.cfg.vocab, first.eos_ids().to_vec());
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let m = &first.model;
        let routing = m.cfg.moe.as_ref().map(|moe| {
            serde_json::json!({ "n_layers": m.cfg.n_layers, "moe_layers": m.moe_layers(), "n_experts": moe.n_routed, "n_group": moe.n_group.max(1), "topk_group": moe.topk_group, "top_k": moe.top_k })
        });
        let slots = sessions.len();
        let pool = Mutex::new(Pool { idle: sessions, waiting: VecDeque::new() });
        Ok(Arc::new(Engine { cfg, tokenizer, defaults, ctx, slots, created, routing, counters: Counters::default(), pool, vocab, eos, grammar: OnceLock::new() }))
    }

    /// The grammar engine over the model's vocabulary (constrained decoding), built once.
    pub fn grammar(&self) -> Result<Arc<Grammar>, ApiError> {
        self.grammar.get_or_init(|| Grammar::new(&self.tokenizer, self.vocab, &self.eos).map(Arc::new).map_err(|e| e.to_string())).clone().map_err(ApiError::internal)
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// (idle slots, waiting requests)
    pub fn load(&self) -> (usize, usize) {
        let p = self.pool();
        (p.idle.len(), p.waiting.len())
    }

    /// A slot for a request whose prompt is `prompt`: the idle one whose cache shares the
    /// longest prefix with it, else the first to come free (waiting in the queue), else 503.
    pub async fn acquire(self: &Arc<Self>, prompt: &[u32]) -> Result<Lease, ApiError> {
        let rx = {
            let mut p = self.pool();
            let best = p.idle.iter().enumerate().max_by_key(|(i, s)| (common_prefix(s.cached_ids(), prompt), *i)).map(|(i, _)| i);
            if let Some(i) = best {
                let s = p.idle.swap_remove(i);
                return Ok(Lease { engine: self.clone(), session: Some(s) });
            }
            if p.waiting.len() >= self.cfg.max_queue {
                self.counters.rejected_busy.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::busy(self.slots, self.cfg.max_queue));
            }
            let (tx, rx) = oneshot::channel();
            p.waiting.push_back(tx);
            rx
        };
        let mut wait = Waiting { engine: self.clone(), rx: Some(rx) };
        let rx = wait.rx.as_mut().ok_or_else(|| ApiError::internal("slot queue"))?;
        let s = rx.await.map_err(|_| ApiError::internal("the slot queue closed"))?;
        wait.rx = None;
        Ok(Lease { engine: self.clone(), session: Some(s) })
    }

    /// A slot comes free: to the longest-waiting request still there, else idle.
    fn release(&self, mut s: Session) {
        let mut p = self.pool();
        while let Some(tx) = p.waiting.pop_front() {
            match tx.send(s) {
                Ok(()) => return,
                Err(back) => s = back,
            }
        }
        p.idle.push(s);
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A slot's session while a request uses it; back to the pool when dropped (also when the
/// generating thread panics).
pub struct Lease {
    engine: Arc<Engine>,
    session: Option<Session>,
}

impl Lease {
    pub fn session(&mut self) -> &mut Session {
        // present from construction until drop
        self.session.as_mut().expect("a lease holds its session until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(mut s) = self.session.take() {
            s.logprobs = None;
            s.ignore_eos = false;
            self.engine.release(s);
        }
    }
}

/// A place in the queue; a request that leaves it (client gone) passes on a slot that was
/// handed to it in the meantime instead of dropping it.
struct Waiting {
    engine: Arc<Engine>,
    rx: Option<oneshot::Receiver<Session>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if let Ok(s) = rx.try_recv() {
                self.engine.release(s);
            }
        }
    }
}

/// Sets a request's cancel flag when its response (stream or future) is dropped.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Serve `engine` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, engine: Arc<Engine>) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).await
}
