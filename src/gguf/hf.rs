//! What the architecture modules ([`super::deepseek2`], [`super::qwen3`]) share when they turn a
//! GGUF into transformers' layout: the architecture check, the names every llama.cpp
//! architecture spells alike, the vocabulary size, the special token ids, and the
//! [`Checkpoint`] of views under transformers' names.

use std::path::Path;

use serde_json::{json, Map, Value as Json};

use super::{Gguf, GgufError};
use crate::checkpoint::{Checkpoint, CheckpointError, Storage};
use crate::format::Format;

/// An error unless `general.architecture` is `arch`.
pub(crate) fn require_arch(g: &Gguf, arch: &str) -> Result<(), GgufError> {
    let found = g.architecture()?;
    if found == arch {
        return Ok(());
    }
    Err(match super::Arch::ALL.iter().find(|a| a.name() == found) {
        Some(_) => GgufError::Metadata {
            path: g.paths()[0].to_path_buf(),
            key: "general.architecture".into(),
            msg: format!("architecture {found:?}, not {arch:?} (read it through gguf::Arch::of)"),
        },
        None => unsupported(g, found),
    })
}

/// The error for an architecture this crate does not map, listing those it does.
pub(crate) fn unsupported(g: &Gguf, found: &str) -> GgufError {
    let runs = super::Arch::ALL.iter().map(|a| format!("{:?}: {}", a.name(), a.models())).collect::<Vec<_>>().join("; ");
    GgufError::Metadata {
        path: g.paths()[0].to_path_buf(),
        key: "general.architecture".into(),
        msg: format!("architecture {found:?} is not one this engine runs (it runs {runs})"),
    }
}

/// transformers' name of the tensors outside the blocks, the same in every architecture here.
pub(crate) fn global_name(gguf_name: &str) -> Option<&'static str> {
    match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    }
}

/// `blk.N.rest` → `(N, rest)`.
pub(crate) fn block(gguf_name: &str) -> Option<(usize, &str)> {
    let (layer, part) = gguf_name.strip_prefix("blk.")?.split_once('.')?;
    Some((layer.parse().ok()?, part))
}

/// `hf_name` for an architecture given its table of block parts: globals from [`global_name`],
/// `blk.N.part` → `model.layers.N.<table(part)>`.
pub(crate) fn hf_name_with(gguf_name: &str, part_name: impl Fn(&str) -> Option<&'static str>) -> Option<String> {
    if let Some(n) = global_name(gguf_name) {
        return Some(n.into());
    }
    let (layer, part) = block(gguf_name)?;
    Some(format!("model.layers.{layer}.{}", part_name(part)?))
}

/// The vocabulary size: `<arch>.vocab_size`, else the token list's length, else the
/// embedding's rows.
pub(crate) fn vocab_size(g: &Gguf, arch: &str) -> Result<u64, GgufError> {
    let key = format!("{arch}.vocab_size");
    if g.get(&key).is_some() {
        return g.get_u64(&key);
    }
    Ok(match g.get("tokenizer.ggml.tokens") {
        Some(_) => g.get_str_array("tokenizer.ggml.tokens")?.len() as u64,
        None => g.require_tensor("token_embd.weight")?.dims().get(1).copied().unwrap_or(0),
    })
}

/// `bos_token_id` / `eos_token_id` from `tokenizer.ggml.*` when the file has them.
pub(crate) fn insert_special_ids(g: &Gguf, c: &mut Map<String, Json>) -> Result<(), GgufError> {
    for (key, hf) in [("tokenizer.ggml.bos_token_id", "bos_token_id"), ("tokenizer.ggml.eos_token_id", "eos_token_id")] {
        if g.get(key).is_some() {
            c.insert(hf.into(), json!(g.get_u64(key)?));
        }
    }
    Ok(())
}

/// The GGUF's tensors as a [`Checkpoint`] under the names `hf_name` gives (views into the
/// mmap'd files, nothing copied). A name with `{e}` is a stack of experts `[E][rows][cols]`,
/// one view per expert. A tensor type the engine does not decode is an error naming it;
/// tensors `hf_name` leaves out (e.g. a multi-token-prediction layer) are skipped.
pub(crate) fn checkpoint_with(g: &Gguf, hf_name: impl Fn(&str) -> Option<String>) -> Result<Checkpoint, CheckpointError> {
    let paths = g.paths();
    let files = paths.iter().map(|p| Ok((p.to_path_buf(), Storage::map(p)?))).collect::<Result<Vec<_>, CheckpointError>>()?;
    let mut views = Vec::new();
    for t in g.tensors() {
        let Some(name) = hf_name(t.name()) else {
            log::debug!("{}: tensor {} is not used by the engine", paths[t.file()].display(), t.name());
            continue;
        };
        let terr = |msg: String| CheckpointError::Tensor { path: paths[t.file()].to_path_buf(), tensor: t.name().into(), msg };
        let fmt = Format::from_ggml_name(t.ggml_type().name()).ok_or_else(|| {
            terr(format!(
                "type {} is not one the engine decodes (it reads {})",
                t.ggml_type().name(),
                Format::ALL.iter().filter(|f| !f.external_scale()).map(|f| f.name()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        // ggml lists dims innermost first; transformers outermost first.
        let shape: Vec<usize> = t.dims().iter().rev().map(|&d| d as usize).collect();
        let range = t.range();
        if name.contains("{e}") {
            let [n_exp, rows, cols] = shape[..] else {
                return Err(terr(format!("stacked experts must have 3 dimensions, not {shape:?}")));
            };
            let per = range.len().checked_div(n_exp).unwrap_or(0);
            for e in 0..n_exp {
                let start = range.start + e * per;
                views.push((name.replace("{e}", &e.to_string()), fmt, vec![rows, cols], t.file(), start..start + per));
            }
        } else {
            views.push((name, fmt, shape, t.file(), range));
        }
    }
    let dir = paths[0].parent().unwrap_or(Path::new(".")).to_path_buf();
    Checkpoint::from_views(&dir, files, views)
}
