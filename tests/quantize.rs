//! `--quantize`: the host quantizer against llama.cpp's reference blocks, and a model loaded
//! with `LoadOptions::quantize` against the same model whose weights were quantized and
//! dequantized beforehand.

use deepseek_wgpu::format::quantize::{quantize, TARGETS};
use deepseek_wgpu::format::Format;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quant");

/// ref.bin (tools/make_quant_fixtures.sh): rows, and each target's blocks of all rows.
type Reference = (usize, usize, Vec<f32>, Vec<(Format, Vec<u8>)>);

fn reference() -> Reference {
    let raw = std::fs::read(format!("{FIX}/ref.bin")).unwrap();
    assert_eq!(&raw[..4], b"QREF");
    let rows = u32::from_le_bytes(raw[4..8].try_into().unwrap()) as usize;
    let n = u32::from_le_bytes(raw[8..12].try_into().unwrap()) as usize;
    let mut off = 12 + 4 * rows * n;
    let x: Vec<f32> = bytemuck::pod_collect_to_vec(&raw[12..off]);
    let mut blocks = Vec::new();
    for f in [Format::Q8_0, Format::Q6_K, Format::Q4_K] {
        let len = f.bytes_for(rows * n).unwrap();
        blocks.push((f, raw[off..off + len].to_vec()));
        off += len;
    }
    assert_eq!(off, raw.len());
    (rows, n, x, blocks)
}

#[test]
fn bit_exact_with_llama_cpp_reference() {
    let (rows, n, x, blocks) = reference();
    assert_eq!(blocks.iter().map(|b| b.0).collect::<Vec<_>>(), TARGETS);
    for (f, want) in blocks {
        let row_bytes = f.bytes_for(n).unwrap();
        let mut bad = Vec::new();
        for r in 0..rows {
            let got = quantize(f, &x[r * n..(r + 1) * n]).unwrap();
            if got != want[r * row_bytes..(r + 1) * row_bytes] {
                bad.push(r);
            }
        }
        assert!(bad.is_empty(), "{}: rows {bad:?} of {rows} differ from quantize_row_{}_ref", f.name(), f.name().to_lowercase());
        // whole buffer at once: blocks are independent
        assert_eq!(quantize(f, &x).unwrap(), want, "{}", f.name());
    }
}

#[test]
fn q8_0_matches_gguf_py() {
    let (_, _, x, _) = reference();
    let want = std::fs::read(format!("{FIX}/gguf_py_q8_0.bin")).unwrap();
    assert_eq!(quantize(Format::Q8_0, &x).unwrap(), want);
}

mod common;

use std::sync::Arc;

use deepseek_wgpu::checkpoint::{Checkpoint, Storage};
use deepseek_wgpu::format::quantize::quantized_format;
use deepseek_wgpu::gpu::{Gpu, GpuOptions};
use deepseek_wgpu::model::{open, Ffn, LoadOptions, LogitsMode, Model};

/// The checkpoint as `--quantize q` sees it, with every matrix the loader quantizes replaced by
/// `decode(quantize(w))` in F32 (FP8 scaled by its block scales first): the same weights in a
/// float format, which the engine then runs through its float kernels.
fn dequantized_copy(ck: &Checkpoint, cfg_fp8_block: Option<[usize; 2]>, q: Format) -> (Checkpoint, Vec<String>) {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    let mut changed = Vec::new();
    let names: Vec<String> = ck.names().cloned().collect();
    let replaced = |n: &str| {
        let t = ck.get(n).unwrap();
        quantized_format(Some(q), n, t.dtype, &t.shape) == q
    };
    for n in &names {
        if let Some(w) = n.strip_suffix("_scale_inv") {
            if replaced(w) {
                continue;
            }
        }
        let t = ck.get(n).unwrap();
        let start = data.len();
        let dtype = if replaced(n) {
            let cols = *t.shape.last().unwrap();
            let mut x = t.dtype.decode(ck.bytes(n).unwrap());
            if t.dtype.external_scale() {
                let block = cfg_fp8_block.unwrap_or([128, 128]);
                let s = ck.f32_vec(&format!("{n}_scale_inv")).unwrap();
                let s_cols = cols.div_ceil(block[1]);
                for (i, v) in x.iter_mut().enumerate() {
                    *v *= s[(i / cols / block[0]) * s_cols + (i % cols) / block[1]];
                }
            }
            let y = q.decode(&quantize(q, &x).unwrap());
            data.extend_from_slice(bytemuck::cast_slice(&y));
            changed.push(n.clone());
            "F32"
        } else {
            data.extend_from_slice(ck.bytes(n).unwrap());
            t.dtype.name()
        };
        header.insert(n.clone(), serde_json::json!({"dtype": dtype, "shape": t.shape, "data_offsets": [start, data.len()]}));
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut file = (h.len() as u64).to_le_bytes().to_vec();
    file.extend(h);
    file.extend(data);
    (Checkpoint::from_memory("dequantized", vec![Storage::Owned(file)]).unwrap(), changed)
}

fn logits(model: &Model, ids: &[u32]) -> Vec<f32> {
    let mut cache = model.new_cache(ids.len()).unwrap();
    model.forward(&mut cache, ids, LogitsMode::All).unwrap().logits
}

/// `LoadOptions::quantize` gives the logits of the quantize→dequantize weights, on a float
/// fixture and on the FP8 one, and the quantized matrices are Q8_0 on the GPU.
#[test]
fn quantized_load_matches_dequantized_weights() {
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    for (fixture, q) in [("v3_qlora_yarn", Format::Q8_0), ("v3_fp8", Format::Q8_0), ("v3_fp8", Format::Q4_K)] {
        let dir = common::fixture(fixture);
        let ids = common::golden(fixture).input_ids;
        let (cfg, ck) = open(&dir).unwrap();
        let opts = LoadOptions { max_ctx: 64, quantize: Some(q), ..LoadOptions::default() };
        let model = Model::from_checkpoint(gpu.clone(), cfg.clone(), &ck, &opts, &mut |_| {}).unwrap();
        let (deq, changed) = dequantized_copy(&ck, cfg.fp8_block, q);
        let reference = Model::from_checkpoint(gpu.clone(), cfg.clone(), &deq, &LoadOptions { max_ctx: 64, ..LoadOptions::default() }, &mut |_| {}).unwrap();
        let plain = Model::from_checkpoint(gpu.clone(), cfg.clone(), &ck, &LoadOptions { max_ctx: 64, ..LoadOptions::default() }, &mut |_| {}).unwrap();
        let (got, want, orig) = (logits(&model, &ids), logits(&reference, &ids), logits(&plain, &ids));
        let (err, moved) = (common::rel_err(&got, &want), common::rel_err(&orig, &want));
        eprintln!("{fixture} {}: {} matrices quantized, err vs dequantized {err:.2e}, unquantized vs dequantized {moved:.2e}", q.name(), changed.len());
        let fits = |cols: usize| cols.is_multiple_of(q.block_elems());
        if changed.is_empty() {
            // no row is whole blocks (Q4_K's 256 values on these small fixtures): all kept
            assert!(!fits(cfg.hidden));
            assert_eq!(got, orig, "{fixture} {}: nothing to quantize, same model", q.name());
            assert_eq!(model.weight_bytes, plain.weight_bytes);
        } else {
            assert!(err < 1e-4, "{fixture} {}: {err}", q.name());
            assert!(moved > 10.0 * err.max(1e-7), "{fixture} {}: quantizing changed nothing ({moved})", q.name());
            assert!(model.weight_bytes < plain.weight_bytes);
        }
        // which matrices took the format, as the rule says
        let keep_or = |ok: bool, src: Format| if ok { q } else { src };
        let (l0, p0) = (model.layers[0].attn.as_mla().unwrap(), plain.layers[0].attn.as_mla().unwrap());
        assert_eq!(l0.kv_a.dtype, keep_or(fits(cfg.hidden), p0.kv_a.dtype), "kv_a_proj: rows of {}", cfg.hidden);
        assert_eq!(l0.o.dtype, keep_or(fits(cfg.n_heads * cfg.v_dim), p0.o.dtype), "o_proj");
        assert_eq!(model.lm_head.dtype, keep_or(fits(cfg.hidden), plain.lm_head.dtype));
        assert_eq!(model.embed.dtype, plain.embed.dtype, "the embedding stays as it is");
        for (l, p) in model.layers.iter().zip(&plain.layers) {
            if let (Ffn::Moe(m), Ffn::Moe(pm)) = (&l.ffn, &p.ffn) {
                assert_eq!(m.router.dtype, pm.router.dtype, "the router stays as it is");
                assert_eq!(m.experts.gate.dtype, keep_or(fits(cfg.hidden), pm.experts.gate.dtype), "experts' gate_proj");
                let inter = cfg.moe.as_ref().unwrap().intermediate;
                assert_eq!(m.experts.down.dtype, keep_or(fits(inter), pm.experts.down.dtype), "experts' down_proj: rows of {inter}");
            }
        }
    }
}

/// `logits --quantize q8_0` loads through the same path; a bad value and a GGUF source are refused.
#[test]
fn cli_flag() {
    let dir = common::fixture("v3_qlora_yarn");
    let ids = common::golden("v3_qlora_yarn").input_ids;
    let out = std::env::temp_dir().join(format!("quantize_cli_{}.npy", std::process::id()));
    let ids_arg = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let run = |extra: &[&str]| {
        std::process::Command::new(common::bin())
            .args(["logits", "--quiet", "--ctx", "64", "--model", dir.to_str().unwrap(), "--ids", &ids_arg, "--out", out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--quantize", "q8_0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("kept their source format"), "the fallback is logged: {stderr}");
    let (_, cli) = deepseek_wgpu::npy::read_f32(&out).unwrap();
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let (cfg, ck) = open(&dir).unwrap();
    let opts = LoadOptions { max_ctx: 64, quantize: Some(Format::Q8_0), ..LoadOptions::default() };
    let lib = logits(&Model::from_checkpoint(gpu, cfg, &ck, &opts, &mut |_| {}).unwrap(), &ids);
    assert!(common::rel_err(&cli, &lib) < 1e-5);
    std::fs::remove_file(&out).ok();
    let o = run(&["--quantize", "q5_0"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not one of q8_0, q6_k, q4_k"));
    let gguf = common::fixture("gguf_models/v2lite_tiny_q8_0/model.gguf");
    let o = std::process::Command::new(common::bin())
        .args(["logits", "--quiet", "--ctx", "8", "--model", gguf.to_str().unwrap(), "--ids", "1,2", "--out", out.to_str().unwrap(), "--quantize", "q4_k"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("already quantized"), "{stderr}");
    // inspect: bytes per format and the memory for each choice
    let o = std::process::Command::new(common::bin()).args(["inspect", "--model", dir.to_str().unwrap(), "--ctx", "64", "--json"]).output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (w, q8, q6) = (j["weight_bytes"].as_u64().unwrap(), j["quantize_weight_bytes"]["q8_0"].as_u64().unwrap(), j["quantize_weight_bytes"]["q6_k"].as_u64().unwrap());
    assert!(q8 < w && q6 == w, "F32 {w}, q8_0 {q8}, q6_k {q6} (no row here is 256 values)");
    assert_eq!(j["dtype_bytes"]["F32"].as_u64(), Some(w));
}

/// Q4_K and Q6_K through a real load: a synthetic DeepSeek-V3-shaped checkpoint whose rows are
/// whole 256-value blocks (r1-shape-ci's layers with a 1024-token vocabulary), against the
/// same graph on `decode(quantize(w))` in F32.
#[test]
fn k_quants_through_a_load() {
    let mut j = deepseek_wgpu::synthetic::config_json("r1-shape-ci").unwrap();
    j["vocab_size"] = 1024.into();
    let cfg = deepseek_wgpu::config::ModelConfig::parse(&j.to_string(), std::path::Path::new("synthetic:r1-shape-ci-1024/config.json")).unwrap();
    assert!(cfg.hidden.is_multiple_of(256), "rows of {} values", cfg.hidden);
    let ck = deepseek_wgpu::synthetic::checkpoint(&cfg, 7).unwrap();
    let gpu = Arc::new(Gpu::new(&GpuOptions::default()).expect("GPU adapter"));
    let ids = [1u32, 17, 300, 5, 1023, 42];
    let plain = Model::from_checkpoint(gpu.clone(), cfg.clone(), &ck, &LoadOptions { max_ctx: 64, ..LoadOptions::default() }, &mut |_| {}).unwrap();
    let orig = logits(&plain, &ids);
    for q in [Format::Q4_K, Format::Q6_K] {
        let opts = LoadOptions { max_ctx: 64, quantize: Some(q), ..LoadOptions::default() };
        let model = Model::from_checkpoint(gpu.clone(), cfg.clone(), &ck, &opts, &mut |_| {}).unwrap();
        assert_eq!(model.layers[0].attn.as_mla().unwrap().kv_a.dtype, q, "kv_a_proj takes {}", q.name());
        assert_eq!(model.lm_head.dtype, q, "the head takes {}", q.name());
        let (deq, changed) = dequantized_copy(&ck, cfg.fp8_block, q);
        let reference = Model::from_checkpoint(gpu.clone(), cfg.clone(), &deq, &LoadOptions { max_ctx: 64, ..LoadOptions::default() }, &mut |_| {}).unwrap();
        let (got, want) = (logits(&model, &ids), logits(&reference, &ids));
        let (err, moved) = (common::rel_err(&got, &want), common::rel_err(&orig, &want));
        eprintln!("r1-shape-ci-1024 {}: {} matrices quantized, err vs dequantized {err:.2e}, unquantized vs dequantized {moved:.2e}", q.name(), changed.len());
        assert!(err < 1e-4, "{}: {err}", q.name());
        assert!(moved > 10.0 * err.max(1e-7), "{}: quantizing changed nothing ({moved})", q.name());
        assert!(model.weight_bytes < plain.weight_bytes);
    }
}
