//! A model whose embedding, head and expert pools exceed a (lowered) binding limit still
//! loads and matches the golden: tensors are split into chunks under the limit.

mod common;

use std::sync::Arc;

use common::*;
use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{Ffn, LoadOptions, LogitsMode, Model};

#[test]
fn split_tensors_match_golden() {
    // Limits below the embedding and expert-pool sizes, above one expert matrix.
    for (name, limit) in [("v3_qlora_yarn", 16 * 1024), ("v3_fp8", 48 * 1024)] {
        let g = golden(name);
        let gpu = Arc::new(Gpu::new(&GpuOptions { max_binding_bytes: Some(limit), ..Default::default() }).expect("GPU adapter"));
        let model = Model::load(gpu, &fixture(name), &LoadOptions { max_chunk: 256, max_ctx: 64, ..Default::default() }, &mut |_| {}).unwrap();
        assert!(model.embed.bytes() > limit && model.embed.chunks.len() > 1, "{name}: embedding must be split");
        assert!(model.lm_head.chunks.len() > 1, "{name}: head must be split");
        let pool_split = model.layers.iter().any(|l| matches!(&l.ffn, Ffn::Moe(m) if m.experts.gate.chunks.len() > 1));
        assert!(pool_split, "{name}: an expert pool must be split");
        let mut cache = model.new_cache(64).unwrap();
        let out = model.forward(&mut cache, &g.input_ids, LogitsMode::All).unwrap();
        let err = rel_err(&out.logits, &g.logits);
        assert!(err <= TOL, "{name}: split model max|err|/std = {err:.3e}");
    }
}
