//! Every weight format decodes as the independent reference does: the float formats as
//! PyTorch (tests/fixtures/formats.json, made by tools/make_format_fixtures.py), GGUF's block
//! formats as gguf-py's `dequantize` (tests/fixtures/blocks.json, made by
//! tools/make_block_fixtures.py; the i-quants from tests/fixtures/iquants.json, made by
//! tools/make_iquant_fixtures.py). Both the CPU reference (`Format::decode`) and the shaders'
//! decode (`shaders/common/{formats,weights}.wgsl`, through the embedding gather), bit for
//! bit; NaN only has to stay NaN.

mod common;

use std::path::Path;

use deepseek_wgpu::format::Format;
use deepseek_wgpu::gpu::{Gpu, GpuOptions, Recorder};
use deepseek_wgpu::ops::{embed, Kernels, Rows};
use deepseek_wgpu::tensor::Matrix;

fn cases() -> Vec<(Format, Vec<u8>, Vec<f32>)> {
    let read = |file: &str| -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(file);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (floats, blocks, iquants) = (read("formats.json"), read("blocks.json"), read("iquants.json"));
    Format::ALL
        .into_iter()
        .map(|f| {
            let c = if f.iquant().is_some() {
                let c = &iquants[f.name()];
                assert_eq!(c["block_bytes"].as_u64(), Some(f.block_bytes() as u64), "{f:?}: block bytes");
                assert_eq!(c["block_elems"].as_u64(), Some(f.block_elems() as u64), "{f:?}: block values");
                c
            } else if f.is_block() {
                &blocks[f.name()]
            } else {
                &floats[f.name()]
            };
            let bytes: Vec<u8> = serde_json::from_value(c["bytes"].clone()).unwrap();
            let bits: Vec<u32> = serde_json::from_value(c["f32_bits"].clone()).unwrap();
            (f, bytes, bits.into_iter().map(f32::from_bits).collect())
        })
        .collect()
}

fn same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(), "{what}: value {i}: got {g:e} ({:#x}), reference {w:e} ({:#x})", g.to_bits(), w.to_bits());
    }
}

#[test]
fn cpu_decode_matches_reference() {
    for (f, bytes, want) in cases() {
        assert!(want.len() > 60, "{f:?}: fixture too small");
        if f.is_block() {
            assert!(want.len() >= 8 * f.block_elems(), "{f:?}: fixture has fewer than 8 blocks");
        }
        same(&format!("{f:?} CPU"), &f.decode(&bytes), &want);
    }
}

#[test]
fn shader_decode_matches_reference() {
    let g = Gpu::new(&GpuOptions::default()).expect("GPU adapter");
    let k = Kernels::new(&g).unwrap();
    for (f, bytes, want) in cases() {
        let n = want.len();
        let m = Matrix::build(&g, "table", f, 1, 1, n, |_| &bytes, None).unwrap();
        let ids = g.storage_init("ids", bytemuck::cast_slice(&[0u32]));
        let out = g.storage("out", (n * 4) as u64);
        let mut rec = Recorder::new(&g);
        embed::run(&mut rec, &k, &m, &ids, Rows::new(&out, n, 1));
        rec.submit("formats").unwrap();
        same(&format!("{f:?} shader"), &g.read_f32(&out, 0, n as u64).unwrap(), &want);
    }
}
