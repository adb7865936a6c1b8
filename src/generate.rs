//! Greedy token loop over the model (sampling, stop rules and streaming events build on it).

use crate::model::{KvCache, LoadError, LogitsMode, Model};

/// Result of a greedy continuation.
pub struct Greedy {
    pub ids: Vec<u32>,
    /// per MoE layer (in `Model::moe_layers` order), per position fed, the chosen experts
    pub routing: Vec<Vec<Vec<u32>>>,
}

pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Prefill `prompt` in chunks of `step` (0 = all at once), then decode `max_tokens` greedily.
pub fn greedy(model: &Model, cache: &mut KvCache, prompt: &[u32], max_tokens: usize, step: usize) -> Result<Greedy, LoadError> {
    let k = model.top_k();
    let n_moe = model.moe_layers().len();
    let mut routing = vec![Vec::new(); n_moe];
    let mut push = |r: &[Vec<u32>]| {
        for (l, ids) in r.iter().enumerate() {
            routing[l].extend(ids.chunks(k.max(1)).map(|c| c.to_vec()));
        }
    };
    let mut ids = Vec::new();
    if max_tokens == 0 {
        return Ok(Greedy { ids, routing });
    }
    let step = if step == 0 { prompt.len() } else { step };
    let mut last = Vec::new();
    for chunk in prompt.chunks(step.max(1)) {
        let out = model.forward(cache, chunk, LogitsMode::Last)?;
        push(&out.routing);
        last = out.logits;
    }
    let mut next = argmax(&last);
    ids.push(next);
    while ids.len() < max_tokens {
        let out = model.forward(cache, &[next], LogitsMode::Last)?;
        push(&out.routing);
        next = argmax(&out.logits);
        ids.push(next);
    }
    Ok(Greedy { ids, routing })
}
