//! `--quantize`: the host quantizer against llama.cpp's reference blocks, and a model loaded
//! with `LoadOptions::quantize` against the same model whose weights were quantized and
//! dequantized beforehand.

use deepseek_wgpu::format::quantize::{quantize, TARGETS};
use deepseek_wgpu::format::Format;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quant");

/// ref.bin (tools/make_quant_fixtures.sh): rows, and each target's blocks of all rows.
fn reference() -> (usize, usize, Vec<f32>, Vec<(Format, Vec<u8>)>) {
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
