//! The generic kernels that gather single weights (matmul, embed, mla_absorb's portable
//! path) on GGUF's block formats, against their CPU references over `Format::decode`d
//! weights: odd row counts, matrices and expert pools split across storage bindings.
//! (tests/formats.rs checks the decodes themselves against gguf-py, bit for bit.)
//! GPU tests: they fail loudly when no adapter exists.

use deepseek_wgpu::format::Format;
use deepseek_wgpu::gpu::{Gpu, GpuOptions, Recorder};
use deepseek_wgpu::ops::matmul::Out;
use deepseek_wgpu::ops::mla_absorb::{Absorb, Heads};
use deepseek_wgpu::ops::*;
use deepseek_wgpu::tensor::Matrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn gpu_with(max_binding: Option<u64>) -> Gpu {
    Gpu::new(&GpuOptions { max_binding_bytes: max_binding, ..Default::default() }).expect("GPU tests need a wgpu adapter (install mesa-vulkan-drivers)")
}

fn block_formats() -> impl Iterator<Item = Format> {
    Format::ALL.into_iter().filter(|f| f.is_block())
}

/// Columns for `f`: a few whole blocks (7 for the 32-value formats, 2 for the K-quants).
fn cols_for(f: Format) -> usize {
    if f.block_elems() == 32 { 7 * 32 } else { 2 * 256 }
}

fn rnd(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect()
}

fn upload(g: &Gpu, v: &[f32]) -> wgpu::Buffer {
    g.storage_init("test input", bytemuck::cast_slice(v))
}

fn assert_close(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let mut worst = (0, 0.0f32);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let excess = (a - b).abs() - (atol + rtol * b.abs());
        if excess > worst.1 || a.is_nan() != b.is_nan() {
            worst = (i, excess.max(f32::MIN_POSITIVE));
        }
    }
    assert!(worst.1 <= 0.0, "{name}: worst at index {}: gpu {} vs ref {}", worst.0, got[worst.0], want[worst.0]);
}

/// Byte offsets of the f16 scale fields (d, then m / dmin) in a block of `f`.
fn f16_fields(f: Format) -> &'static [usize] {
    match f {
        Format::Q8_0 | Format::Q4_0 | Format::Q5_0 => &[0],
        Format::Q4_1 | Format::Q5_1 | Format::Q4_K | Format::Q5_K => &[0, 2],
        Format::Q2_K => &[80, 82],
        Format::Q3_K => &[108],
        Format::Q6_K => &[208],
        _ => unreachable!("{f:?} is not a block format"),
    }
}

/// Random whole blocks holding `n` values of `f`: (packed bytes, CPU-decoded f32). The
/// quants and packed sub-block scales are random bytes; each f16 scale field is set (any
/// sign, differing per block) so that its term contributes at most ±1/fields, keeping the
/// values within ±1.
fn block_weights(rng: &mut StdRng, f: Format, n: usize) -> (Vec<u8>, Vec<f32>) {
    let fields = f16_fields(f);
    let mut bytes: Vec<u8> = (0..f.bytes_for(n).unwrap()).map(|_| rng.random()).collect();
    for b in bytes.chunks_exact_mut(f.block_bytes()) {
        // the largest magnitude each field's term reaches with that field 1 and the others 0
        let peaks: Vec<f32> = (0..fields.len())
            .map(|k| {
                for (i, &o) in fields.iter().enumerate() {
                    b[o..o + 2].copy_from_slice(&half::f16::from_f32(if i == k { 1.0 } else { 0.0 }).to_le_bytes());
                }
                f.decode(b).into_iter().fold(1.0f32, |m, v| m.max(v.abs()))
            })
            .collect();
        for (&o, peak) in fields.iter().zip(peaks) {
            let sign = if rng.random::<bool>() { -1.0 } else { 1.0 };
            let s = half::f16::from_f32(sign * (0.25 + 0.75 * rng.random::<f32>()) / (peak * fields.len() as f32));
            b[o..o + 2].copy_from_slice(&s.to_le_bytes());
        }
    }
    let f32s = f.decode(&bytes);
    assert!(f32s.iter().all(|v| v.is_finite() && v.abs() <= 1.01), "{f:?}: weights out of range");
    (bytes, f32s)
}

/// A stack of `e` matrices `[rows][cols]` of block format `f`: the GPU matrix (chunked under
/// the adapter's binding limit) and the decoded f32 reference.
fn matrix(g: &Gpu, rng: &mut StdRng, f: Format, e: usize, rows: usize, cols: usize) -> (Matrix, Vec<f32>) {
    let (bytes, wf) = block_weights(rng, f, e * rows * cols);
    let mb = f.bytes_for(rows * cols).unwrap();
    let m = Matrix::build(g, "w", f, e, rows, cols, |i| &bytes[i * mb..][..mb], None).unwrap();
    (m, wf)
}

#[test]
fn matmul_dense_block_formats_and_split() {
    let mut rng = StdRng::seed_from_u64(11);
    for limit in [None, Some(4096)] {
        let g = gpu_with(limit);
        let k = Kernels::new(&g).unwrap();
        for f in block_formats() {
            let (rows, cols, t) = (173, cols_for(f), 3);
            let (m, wf) = matrix(&g, &mut rng, f, 1, rows, cols);
            if limit.is_some() {
                assert!(m.chunks.len() > 1, "{f:?}: a 4 KiB binding limit must split the matrix");
            }
            let x = rnd(&mut rng, t * cols, 1.0);
            let y0 = rnd(&mut rng, t * rows, 1.0);
            let (xb, yb) = (upload(&g, &x), upload(&g, &y0));
            let mut rec = Recorder::new(&g);
            matmul::run(&mut rec, &k, &m, Rows::new(&xb, cols, t), Rows::new(&yb, rows, t), Out::Add);
            rec.submit("test").unwrap();
            let got = g.read_f32(&yb, 0, (t * rows) as u64).unwrap();
            let want: Vec<f32> = matmul::reference(&wf, rows, cols, &x, cols, 0, t, 1, None).iter().zip(&y0).map(|(a, b)| a + b).collect();
            assert_close(&format!("matmul {f:?} limit {limit:?}"), &got, &want, 1e-4, 1e-4);
        }
    }
}

#[test]
fn matmul_routed_block_formats_from_gpu_ids() {
    let mut rng = StdRng::seed_from_u64(12);
    // Every format's 9-expert pool is larger than 12000 bytes and one expert smaller.
    let g = gpu_with(Some(12000));
    let k = Kernels::new(&g).unwrap();
    for f in block_formats() {
        let (e, rows, cols, t, slots) = (9, 13, cols_for(f), 5, 3);
        let (m, wf) = matrix(&g, &mut rng, f, e, rows, cols);
        assert!(m.chunks.len() > 1, "{f:?}: pool must be split into several chunks");
        let ids: Vec<u32> = (0..t * slots).map(|_| rng.random_range(0..e as u32)).collect();
        // Down-projection layout: every slot reads its own row.
        let x = rnd(&mut rng, t * slots * cols, 1.0);
        let (xb, yb) = (upload(&g, &x), g.storage("y", (t * slots * rows * 4) as u64));
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let items = Routed { x: Rows::strided(&xb, 0, slots * cols, cols, t), slots, slot_stride: cols, ids: &idb };
        let mut rec = Recorder::new(&g);
        matmul::run_routed(&mut rec, &k, &m, items, Rows::new(&yb, rows, t * slots));
        rec.submit("test").unwrap();
        let got = g.read_f32(&yb, 0, (t * slots * rows) as u64).unwrap();
        let want = matmul::reference(&wf, rows, cols, &x, slots * cols, cols, t, slots, Some(&ids));
        assert_close(&format!("routed matmul {f:?}"), &got, &want, 1e-4, 1e-4);
    }
}

#[test]
fn embed_block_formats_across_chunks() {
    let mut rng = StdRng::seed_from_u64(13);
    let g = gpu_with(Some(4096));
    let k = Kernels::new(&g).unwrap();
    for f in block_formats() {
        let (vocab, hidden) = (101, cols_for(f));
        let (m, wf) = matrix(&g, &mut rng, f, 1, vocab, hidden);
        assert!(m.chunks.len() > 1, "{f:?}: table must be split");
        let ids: Vec<u32> = vec![0, 100, 57, 3, 57, 99, 12];
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let out = g.storage("out", (ids.len() * hidden * 4) as u64);
        let mut rec = Recorder::new(&g);
        embed::run(&mut rec, &k, &m, &idb, Rows::new(&out, hidden, ids.len()));
        rec.submit("test").unwrap();
        let got = g.read_f32(&out, 0, (ids.len() * hidden) as u64).unwrap();
        assert_close(&format!("embed {f:?}"), &got, &embed::reference(&wf, hidden, &ids), 0.0, 0.0);
    }
}

/// mla_absorb's portable kernels on block formats: q_absorb reads kv_b by columns (element
/// c of rows d = 0..nope), v_up by rows; kvl is a multiple of 256 so rows are whole blocks.
#[test]
fn mla_absorb_portable_block_formats() {
    let mut rng = StdRng::seed_from_u64(14);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let h = Heads { heads: 3, nope: 11, rope: 6, v: 9, kvl: 256 };
    let t = 4;
    for f in block_formats() {
        let (m, wf) = matrix(&g, &mut rng, f, 1, h.heads * (h.nope + h.v), h.kvl);
        let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), 1.0);
        let ol = rnd(&mut rng, t * h.heads * h.kvl, 1.0);
        let (qb, olb) = (upload(&g, &q), upload(&g, &ol));
        let ql = g.storage("q_lat", (t * h.heads * h.kvl * 4) as u64);
        let o = g.storage("o", (t * h.heads * h.v * 4) as u64);
        assert!(mla_absorb::transpose_uk(&k, &g, &m, h).unwrap().is_none(), "{f:?}: no transposed W_UK for block formats");
        let w = Absorb::KvB { kv_b: m, uk_t: None };
        let mut rec = Recorder::new(&g);
        mla_absorb::q_absorb(&mut rec, &k, &w, h, Rows::new(&qb, h.heads * (h.nope + h.rope), t), Rows::new(&ql, h.kvl, t * h.heads));
        mla_absorb::v_up(&mut rec, &k, &w, h, Rows::new(&olb, h.kvl, t * h.heads), Rows::new(&o, h.heads * h.v, t));
        rec.submit("test").unwrap();
        assert_close(&format!("q_absorb {f:?}"), &g.read_f32(&ql, 0, (t * h.heads * h.kvl) as u64).unwrap(), &mla_absorb::q_absorb_ref(&wf, h, &q, t), 1e-4, 1e-4);
        assert_close(&format!("v_up {f:?}"), &g.read_f32(&o, 0, (t * h.heads * h.v) as u64).unwrap(), &mla_absorb::v_up_ref(&wf, h, &ol, t), 1e-4, 1e-4);
    }
}

/// llama.cpp's split kv_b in block formats (as GGUF files hold it): W_UK transposed
/// `[H][kvl][nope]` and W_UV `[H][v][kvl]` run as pools of heads through the generic kernel.
#[test]
fn mla_absorb_split_block_formats() {
    let mut rng = StdRng::seed_from_u64(15);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let h = Heads { heads: 3, nope: 64, rope: 6, v: 9, kvl: 256 };
    let t = 4;
    for f in block_formats().into_iter().filter(|f| 64 % f.block_elems() == 0) {
        let (k_b, kf) = matrix(&g, &mut rng, f, h.heads, h.kvl, h.nope);
        let (v_b, vf) = matrix(&g, &mut rng, f, h.heads, h.v, h.kvl);
        let mut wf = vec![0.0; h.heads * (h.nope + h.v) * h.kvl];
        for hh in 0..h.heads {
            for c in 0..h.kvl {
                for d in 0..h.nope {
                    wf[(hh * (h.nope + h.v) + d) * h.kvl + c] = kf[(hh * h.kvl + c) * h.nope + d];
                }
                for j in 0..h.v {
                    wf[(hh * (h.nope + h.v) + h.nope + j) * h.kvl + c] = vf[(hh * h.v + j) * h.kvl + c];
                }
            }
        }
        let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), 1.0);
        let ol = rnd(&mut rng, t * h.heads * h.kvl, 1.0);
        let (qb, olb) = (upload(&g, &q), upload(&g, &ol));
        let ql = g.storage("q_lat", (t * h.heads * h.kvl * 4) as u64);
        let o = g.storage("o", (t * h.heads * h.v * 4) as u64);
        let w = Absorb::Split { k_b, v_b };
        let mut rec = Recorder::new(&g);
        mla_absorb::q_absorb(&mut rec, &k, &w, h, Rows::new(&qb, h.heads * (h.nope + h.rope), t), Rows::new(&ql, h.kvl, t * h.heads));
        mla_absorb::v_up(&mut rec, &k, &w, h, Rows::new(&olb, h.kvl, t * h.heads), Rows::new(&o, h.heads * h.v, t));
        rec.submit("test").unwrap();
        assert_close(&format!("split q_absorb {f:?}"), &g.read_f32(&ql, 0, (t * h.heads * h.kvl) as u64).unwrap(), &mla_absorb::q_absorb_ref(&wf, h, &q, t), 1e-4, 1e-4);
        assert_close(&format!("split v_up {f:?}"), &g.read_f32(&o, 0, (t * h.heads * h.v) as u64).unwrap(), &mla_absorb::v_up_ref(&wf, h, &ol, t), 1e-4, 1e-4);
    }
}
