//! Kernels on GGUF's block formats against their CPU references over `Format::decode`d
//! weights: the fast matvec/gemm kernels (decode and prefill, dense, routed, grouped experts,
//! fused SwiGLU; `kernels_used` checks that they, not the generic kernel, ran) and the
//! kernels that gather single weights (matmul, embed, mla_absorb's portable path); odd row
//! counts, rows that start off a 16-byte word, matrices and expert pools split across
//! storage bindings. (tests/formats.rs checks the decodes themselves against gguf-py, bit
//! for bit.) GPU tests: they fail loudly when no adapter exists.

mod common;

use common::{assert_close, gpu_with, rnd, upload};
use deepseek_wgpu::format::Format;
use deepseek_wgpu::gpu::{Gpu, Recorder};
use deepseek_wgpu::ops::matmul::Out;
use deepseek_wgpu::ops::mla_absorb::{Absorb, Heads};
use deepseek_wgpu::ops::*;
use deepseek_wgpu::tensor::Matrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The legacy and K-quant block formats. The i-quants have tests of their own below, on fewer
/// shapes: each kernel variant costs lavapipe seconds to compile cold, and walking all nine
/// through every test here took over half an hour.
fn block_formats() -> impl Iterator<Item = Format> {
    Format::ALL.into_iter().filter(|f| f.is_block() && f.iquant().is_none())
}

fn iquants() -> impl Iterator<Item = Format> {
    Format::ALL.into_iter().filter(|f| f.iquant().is_some())
}

/// Columns for `f`: a few whole blocks (7 for the 32-value formats, 2 for the K-quants).
fn cols_for(f: Format) -> usize {
    if f.block_elems() == 32 { 7 * 32 } else { 2 * 256 }
}

/// Byte offsets of the f16 scale fields (d, then m / dmin) in a block of `f`.
fn f16_fields(f: Format) -> &'static [usize] {
    match f {
        Format::Q8_0 | Format::Q4_0 | Format::Q5_0 => &[0],
        Format::Q4_1 | Format::Q5_1 | Format::Q4_K | Format::Q5_K => &[0, 2],
        Format::Q2_K => &[80, 82],
        Format::Q3_K => &[108],
        Format::Q6_K => &[208],
        // IQ1_M's d is the top nibbles of its scale words at 48..56 (see `set_f16`)
        Format::IQ1_M => &[48],
        _ if f.iquant().is_some() => &[0],
        _ => unreachable!("{f:?} is not a block format"),
    }
}

/// Write the f16 `v` into the scale field at byte `o` of block `b` of `f`.
fn set_f16(f: Format, b: &mut [u8], o: usize, v: half::f16) {
    let bits = v.to_bits();
    if f == Format::IQ1_M {
        for i in 0..4 {
            let hi = &mut b[o + 1 + 2 * i];
            *hi = (*hi & 0x0f) | ((((bits >> (4 * i)) & 0xf) as u8) << 4);
        }
    } else {
        b[o..o + 2].copy_from_slice(&bits.to_le_bytes());
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
                    set_f16(f, b, o, half::f16::from_f32(if i == k { 1.0 } else { 0.0 }));
                }
                f.decode(b).into_iter().fold(1.0f32, |m, v| m.max(v.abs()))
            })
            .collect();
        for (&o, peak) in fields.iter().zip(peaks) {
            let sign = if rng.random::<bool>() { -1.0 } else { 1.0 };
            let s = half::f16::from_f32(sign * (0.25 + 0.75 * rng.random::<f32>()) / (peak * fields.len() as f32));
            set_f16(f, b, o, s);
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
    for f in block_formats().filter(|f| 64 % f.block_elems() == 0) {
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

/// Run `f` with per-dispatch profiling and return the kernel labels it dispatched.
fn kernels_used(g: &Gpu, f: impl FnOnce()) -> Vec<String> {
    assert!(g.start_profile(), "lavapipe and GPUs report timestamps");
    f();
    g.take_profile().unwrap().dispatches.into_iter().map(|d| d.0).collect()
}

fn silu(v: f32) -> f32 {
    v / (1.0 + (-v).exp())
}

/// Column counts the fast kernels must handle for `f`: a row shorter than one 256-value step
/// (7 blocks of 32: the step is partial and rows start at any even byte), whole steps, and
/// rows of several K-quant blocks (Q2_K, Q3_K and Q6_K rows then start off a 16-byte word).
fn fast_cols(f: Format) -> [usize; 2] {
    if f.block_elems() == 32 { [7 * 32, 13 * 32] } else { [2 * 256, 5 * 256] }
}

/// Only the fast kernel of the right family ran.
fn assert_fast(what: &str, used: &[String], family: &str) {
    assert!(!used.is_empty() && used.iter().all(|l| l.starts_with(family)), "{what}: wanted only {family}*, dispatched {used:?}");
}

/// Dense products through matvec (1–2 tokens) and gemm (more) with residual accumulation, odd
/// row counts and a partial last item tile; every block format.
fn fast_dense(g: &Gpu, k: &Kernels, seed: u64, formats: &[Format]) {
    let mut rng = StdRng::seed_from_u64(seed);
    for &f in formats {
        for cols in fast_cols(f) {
            let rows = 173;
            let (m, wf) = matrix(g, &mut rng, f, 1, rows, cols);
            for t in [1, 2, 19] {
                // RMSNorm run first (the block kernels do not fold it), none for 2
                let normed = t != 2;
                let x = rnd(&mut rng, t * cols, 1.0);
                let nw = rnd(&mut rng, cols, 2.0);
                let y0 = rnd(&mut rng, t * rows, 1.0);
                let (xb, yb, nwb) = (upload(g, &x), upload(g, &y0), upload(g, &nw));
                let used = kernels_used(g, || {
                    let mut rec = Recorder::new(g);
                    let (xr, yr) = (Rows::new(&xb, cols, t), Rows::new(&yb, rows, t));
                    match normed {
                        true => matmul::run_normed(&mut rec, k, &m, xr, matmul::Norm { weight: &nwb, eps: 1e-6 }, yr, Out::Add),
                        false => matmul::run(&mut rec, k, &m, xr, yr, Out::Add),
                    }
                    rec.submit("test").unwrap();
                });
                let what = format!("fast matmul {f:?} cols {cols} t {t} chunks {} normed {normed}", m.chunks.len());
                // the block formats' matvec does not fold it (see matmul::folding_kernel)
                assert_eq!(used.iter().any(|l| l.starts_with("rmsnorm")), normed, "{what}: {used:?}");
                let products: Vec<String> = used.into_iter().filter(|l| !l.starts_with("rmsnorm")).collect();
                assert_fast(&what, &products, if t <= matmul::MATVEC_MAX_TOKENS { "matvec/matvec/" } else { "gemm/gemm/" });
                let xn = if normed { rmsnorm::reference(&x, &nw, 1e-6) } else { x.clone() };
                let got = g.read_f32(&yb, 0, (t * rows) as u64).unwrap();
                let want: Vec<f32> = matmul::reference(&wf, rows, cols, &xn, cols, 0, t, 1, None).iter().zip(&y0).map(|(a, b)| a + b).collect();
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert_close(&what, &got, &want, 1e-5 * scale.max(1.0), 1e-4);
            }
        }
    }
}

#[test]
fn matvec_gemm_block_formats() {
    let formats: Vec<Format> = block_formats().collect();
    let g = gpu_with(None);
    fast_dense(&g, &Kernels::new(&g).unwrap(), 21, &formats);
    // 8 KiB bindings: every matrix is split into row chunks, most ending mid 16-byte word.
    let g = gpu_with(Some(8192));
    fast_dense(&g, &Kernels::new(&g).unwrap(), 22, &formats);
}

/// A row of 36 Q4_K steps: more than a group of lanes holds in registers, so the matvec
/// walks it in segments (adding into y after the first).
#[test]
fn matvec_long_block_rows_in_segments() {
    let mut rng = StdRng::seed_from_u64(23);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    for f in [Format::Q4_K, Format::Q8_0] {
        let (rows, cols, t) = (37, 36 * 256, 1);
        let (m, wf) = matrix(&g, &mut rng, f, 1, rows, cols);
        let x = rnd(&mut rng, t * cols, 1.0);
        let nw = rnd(&mut rng, cols, 2.0);
        let (xb, yb, yn, nwb) = (upload(&g, &x), g.storage("y", (t * rows * 4) as u64), g.storage("y normed", (t * rows * 4) as u64), upload(&g, &nw));
        let used = kernels_used(&g, || {
            let mut rec = Recorder::new(&g);
            matmul::run(&mut rec, &k, &m, Rows::new(&xb, cols, t), Rows::new(&yb, rows, t), Out::Set);
            // a norm the block kernels get applied first
            matmul::run_normed(&mut rec, &k, &m, Rows::new(&xb, cols, t), matmul::Norm { weight: &nwb, eps: 1e-6 }, Rows::new(&yn, rows, t), Out::Set);
            rec.submit("test").unwrap();
        });
        let products: Vec<String> = used.iter().filter(|l| !l.starts_with("rmsnorm")).cloned().collect();
        assert_fast(&format!("long rows {f:?}"), &products, "matvec/matvec/");
        assert_eq!(used.len(), 3, "long rows {f:?}: plain, then norm and product: {used:?}");
        let want = matmul::reference(&wf, rows, cols, &x, cols, 0, t, 1, None);
        assert_close(&format!("long rows {f:?}"), &g.read_f32(&yb, 0, (t * rows) as u64).unwrap(), &want, 1e-3, 1e-4);
        let want = matmul::reference(&wf, rows, cols, &rmsnorm::reference(&x, &nw, 1e-6), cols, 0, t, 1, None);
        assert_close(&format!("long rows {f:?} normed"), &g.read_f32(&yn, 0, (t * rows) as u64).unwrap(), &want, 1e-3, 1e-4);
    }
}

/// (width, hidden) of the expert tests: every row a few whole blocks, 32-value rows off a
/// 16-byte word.
fn expert_shape(f: Format) -> (usize, usize) {
    if f.block_elems() == 32 { (5 * 32, 7 * 32) } else { (256, 512) }
}

/// A GPU whose bindings hold about three of `f`'s expert matrices, so that every pool is
/// split into several chunks.
fn gpu_for_pools(f: Format) -> Gpu {
    let (width, hidden) = expert_shape(f);
    gpu_with(Some((3 * f.bytes_for(width * hidden).unwrap() + 64) as u64))
}

/// Routed experts run per item by matvec (up to MATVEC_MAX_ROUTED items) from ids on the GPU,
/// the pool split into chunks of whole experts.
#[test]
fn matvec_routed_block_formats() {
    let mut rng = StdRng::seed_from_u64(24);
    for f in block_formats() {
        let g = gpu_for_pools(f);
        let k = Kernels::new(&g).unwrap();
        let (e, (rows, cols), t, slots) = (9, expert_shape(f), 5, 3);
        let (m, wf) = matrix(&g, &mut rng, f, e, rows, cols);
        assert!(m.chunks.len() > 2, "{f:?}: pool must be split");
        let ids: Vec<u32> = (0..t * slots).map(|_| rng.random_range(0..e as u32)).collect();
        let x = rnd(&mut rng, t * slots * cols, 1.0);
        let (xb, yb) = (upload(&g, &x), g.storage("y", (t * slots * rows * 4) as u64));
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let items = Routed { x: Rows::strided(&xb, 0, slots * cols, cols, t), slots, slot_stride: cols, ids: &idb };
        let used = kernels_used(&g, || {
            let mut rec = Recorder::new(&g);
            matmul::run_routed(&mut rec, &k, &m, items, Rows::new(&yb, rows, t * slots));
            rec.submit("test").unwrap();
        });
        assert_fast(&format!("routed {f:?}"), &used, "matvec/matvec/");
        let want = matmul::reference(&wf, rows, cols, &x, slots * cols, cols, t, slots, Some(&ids));
        assert_close(&format!("routed {f:?}"), &g.read_f32(&yb, 0, (t * slots * rows) as u64).unwrap(), &want, 1e-4, 1e-4);
    }
}

/// Fused SwiGLU of routed experts (matvec_glu per item for 1–2 tokens; grouped gemm_glu over
/// moe_group's lists for 37) and the down projection, pools split across chunks, plus the
/// dense `glu` (matvec_glu, gemm_glu).
fn glu_and_grouped(g: &Gpu, k: &Kernels, seed: u64, f: Format) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (e, (width, hidden), slots) = (9, expert_shape(f), 3);
    let (gate, gf) = matrix(g, &mut rng, f, e, width, hidden);
    let (up, uf) = matrix(g, &mut rng, f, e, width, hidden);
    let (down, df) = matrix(g, &mut rng, f, e, hidden, width);
    // silu(g)·u multiplies two long sums: compare relative to the largest value, the scale
    // of their rounding error (an indexing or decode bug is off by O(that)).
    let scaled = |v: &[f32]| 1e-5 * v.iter().fold(0f32, |m, x| m.max(x.abs()));
    for t in [1, 2, 37] {
        let n = t * slots;
        let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..e as u32)).collect();
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let x = rnd(&mut rng, t * hidden, 1.0);
        // x normalized first (the block kernels do not fold it), plain for 2
        let normed = t != 2;
        let nw = rnd(&mut rng, hidden, 2.0);
        let (xb, nwb) = (upload(g, &x), upload(g, &nw));
        let hb = g.storage("hb", (n * width * 4) as u64);
        let scratch = g.storage("scratch", (n * width * 4) as u64);
        let eo = g.storage("eo", (n * hidden * 4) as u64);
        let used = kernels_used(g, || {
            let mut rec = Recorder::new(g);
            let items = Routed { x: Rows::new(&xb, hidden, t), slots, slot_stride: 0, ids: &idb };
            let norm = normed.then_some(matmul::Norm { weight: &nwb, eps: 1e-6 });
            matmul::routed_swiglu(&mut rec, k, [&gate, &up, &down], items, norm, &hb, &scratch, Rows::new(&eo, hidden, n), n);
            rec.submit("test").unwrap();
        });
        let what = format!("routed swiglu {f:?} t {t} normed {normed}");
        assert_eq!(used.iter().any(|l| l.starts_with("rmsnorm")), normed, "{what}: {used:?}");
        let x = if normed { rmsnorm::reference(&x, &nw, 1e-6) } else { x };
        let (fused, plain) = if n > matmul::MATVEC_MAX_ROUTED { ("gemm/gemm_glu/", "gemm/gemm/") } else { ("matvec/matvec_glu/", "matvec/matvec/") };
        assert!(used.iter().any(|l| l.starts_with(fused)) && used.iter().any(|l| l.starts_with(plain)), "{what}: dispatched {used:?}");
        assert!(!used.iter().any(|l| l.starts_with("swiglu") || l.starts_with("matmul")), "{what}: dispatched {used:?}");
        let g_ref = matmul::reference(&gf, width, hidden, &x, hidden, 0, t, slots, Some(&ids));
        let u_ref = matmul::reference(&uf, width, hidden, &x, hidden, 0, t, slots, Some(&ids));
        let h_ref: Vec<f32> = g_ref.iter().zip(&u_ref).map(|(a, b)| silu(*a) * b).collect();
        let h_got = g.read_f32(&hb, 0, (n * width) as u64).unwrap();
        assert_close(&format!("{what}: glu"), &h_got, &h_ref, scaled(&h_ref), 1e-4);
        // Down projection from the GPU's own hb, so the comparison isolates this kernel.
        let d_ref = matmul::reference(&df, hidden, width, &h_got, slots * width, width, t, slots, Some(&ids));
        assert_close(&format!("{what}: down"), &g.read_f32(&eo, 0, (n * hidden) as u64).unwrap(), &d_ref, scaled(&d_ref), 1e-4);
    }
    // Dense SwiGLU.
    let (g1, g1f) = matrix(g, &mut rng, f, 1, width, hidden);
    let (u1, u1f) = matrix(g, &mut rng, f, 1, width, hidden);
    for t in [1, 19] {
        let x = rnd(&mut rng, t * hidden, 1.0);
        let xb = upload(g, &x);
        let yb = g.storage("y", (t * width * 4) as u64);
        let scratch = g.storage("scratch", (t * width * 4) as u64);
        let used = kernels_used(g, || {
            let mut rec = Recorder::new(g);
            matmul::glu(&mut rec, k, &g1, &u1, Rows::new(&xb, hidden, t), Rows::new(&yb, width, t), &scratch);
            rec.submit("test").unwrap();
        });
        let what = format!("dense glu {f:?} t {t}");
        assert_fast(&what, &used, if t <= matmul::MATVEC_MAX_TOKENS { "matvec/matvec_glu/" } else { "gemm/gemm_glu/" });
        let g_ref = matmul::reference(&g1f, width, hidden, &x, hidden, 0, t, 1, None);
        let u_ref = matmul::reference(&u1f, width, hidden, &x, hidden, 0, t, 1, None);
        let want: Vec<f32> = g_ref.iter().zip(&u_ref).map(|(a, b)| silu(*a) * b).collect();
        assert_close(&what, &g.read_f32(&yb, 0, (t * width) as u64).unwrap(), &want, scaled(&want), 1e-4);
    }
}

#[test]
fn glu_and_grouped_experts_block_formats() {
    for (i, f) in block_formats().enumerate() {
        let g = gpu_for_pools(f);
        glu_and_grouped(&g, &Kernels::new(&g).unwrap(), 30 + i as u64, f);
    }
}

/// The workgroup-memory lane exchange (adapters without subgroups), gemm shapes other
/// adapters get (2 rows per lane over tiles of 3 items; 4 rows over tiles of 16) and a GPU's
/// matvec shape, on the formats of a Q4_K_M file. (Without subgroups the small shape only: lavapipe compiles
/// barriers as coroutines, which takes it a minute for the default shape's gemm_glu.)
#[test]
fn block_kernels_without_subgroups_and_other_shapes() {
    let formats = [Format::Q4_K, Format::Q6_K, Format::Q8_0, Format::Q5_0];
    let shaped = |g: &Gpu, streams, nt| Kernels::with_tune(g, matmul::Tune { streams, nt, ..Kernels::new(g).unwrap().tune() }).unwrap();
    let mut g = gpu_with(None);
    g.features.remove(wgpu::Features::SUBGROUP);
    let k = shaped(&g, 2, 3);
    assert!(!k.tune().subgroups);
    fast_dense(&g, &k, 40, &formats);
    for (i, f) in formats.into_iter().enumerate() {
        let mut g = gpu_for_pools(f);
        g.features.remove(wgpu::Features::SUBGROUP);
        glu_and_grouped(&g, &shaped(&g, 2, 3), 50 + i as u64, f);
    }
    let g = gpu_with(None);
    fast_dense(&g, &shaped(&g, 4, 16), 41, &formats);
    let g = gpu_for_pools(Format::Q4_K);
    glu_and_grouped(&g, &shaped(&g, 4, 16), 60, Format::Q4_K);
    // A GPU's matvec: x read where it is used (no registers), 4 groups of lanes per workgroup.
    for subgroups in [true, false] {
        let mut g = gpu_for_pools(Format::Q8_0);
        if !subgroups {
            g.features.remove(wgpu::Features::SUBGROUP);
        }
        let k0 = Kernels::new(&g).unwrap();
        let k = Kernels::with_tune(&g, matmul::Tune { xreg: false, nsg: 4, streams: 2, nt: 3, ..k0.tune() }).unwrap();
        fast_dense(&g, &k, 70, &formats);
        glu_and_grouped(&g, &k, 71, Format::Q8_0);
    }
}

/// llama.cpp's split kv_b in block formats through the fast per-head kernels: W_UK transposed
/// `[H][kvl][nope]` and W_UV `[H][v][kvl]` as pools of heads (matvec for 1–2 tokens, gemm
/// with each head's items for more).
#[test]
fn mla_absorb_split_block_formats_fast() {
    let mut rng = StdRng::seed_from_u64(16);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    // q rows of nope + rope = 72 floats: each head's q_nope starts on a vec4, as the fast
    // kernels need
    let h = Heads { heads: 3, nope: 64, rope: 8, v: 9, kvl: 256 };
    for f in [Format::Q8_0, Format::Q4_0, Format::Q5_1] {
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
        let w = Absorb::Split { k_b, v_b };
        for t in [1, 2, 7] {
            let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), 1.0);
            let ol = rnd(&mut rng, t * h.heads * h.kvl, 1.0);
            let (qb, olb) = (upload(&g, &q), upload(&g, &ol));
            let ql = g.storage("q_lat", (t * h.heads * h.kvl * 4) as u64);
            let o = g.storage("o", (t * h.heads * h.v * 4) as u64);
            let used = kernels_used(&g, || {
                let mut rec = Recorder::new(&g);
                mla_absorb::q_absorb(&mut rec, &k, &w, h, Rows::new(&qb, h.heads * (h.nope + h.rope), t), Rows::new(&ql, h.kvl, t * h.heads));
                mla_absorb::v_up(&mut rec, &k, &w, h, Rows::new(&olb, h.kvl, t * h.heads), Rows::new(&o, h.heads * h.v, t));
                rec.submit("test").unwrap();
            });
            let what = format!("split absorb {f:?} t {t}");
            assert_fast(&what, &used, if t <= matmul::MATVEC_MAX_TOKENS { "matvec/matvec/" } else { "gemm/gemm/" });
            assert_close(&format!("{what}: q_absorb"), &g.read_f32(&ql, 0, (t * h.heads * h.kvl) as u64).unwrap(), &mla_absorb::q_absorb_ref(&wf, h, &q, t), 1e-4, 1e-4);
            assert_close(&format!("{what}: v_up"), &g.read_f32(&o, 0, (t * h.heads * h.v) as u64).unwrap(), &mla_absorb::v_up_ref(&wf, h, &ol, t), 1e-4, 1e-4);
        }
    }
}

/// The i-quants through every kernel that reads them: the generic kernel (dense prefill: they
/// have no gemm), the fast matvec's step decode (decode: dense, and routed experts from GPU
/// ids with the pool split across bindings) and embed; residual accumulation, 173 rows, each
/// starting off a 16-byte word (one 256-value block per row; IQ4_NL: 7 blocks of 32, a
/// partial step). Against the CPU reference over `Format::decode`, which tests/formats.rs
/// holds bit-exact to gguf-py's `dequantize` (embed here: bit for bit).
///
/// One shape per format on purpose: every matvec variant (format × steps per lane × lanes per
/// row) is a pipeline that lavapipe compiles in seconds to tens of seconds cold, and one row
/// of one step is the variant that compiles fastest (one step per lane: 64 unrolled decodes);
/// the dense and routed products share it. On this 2-core machine, shared with other jobs:
/// 119 s wall (37 s user CPU) with MESA_SHADER_CACHE_DISABLE=true, 21 s (7 s) warm; the same
/// products on two row shapes plus a third routed one took 671 s cold.
#[test]
fn iquants_generic_matvec_routed_embed() {
    let mut rng = StdRng::seed_from_u64(31);
    for f in iquants() {
        let cols = if f.block_elems() == 32 { 7 * 32 } else { 256 };
        // bindings of about three experts: the experts' pool and the dense matrix are split
        let (e_rows, rows) = (37, 173);
        let g = gpu_with(Some((3 * f.bytes_for(e_rows * cols).unwrap() + 64) as u64));
        let k = Kernels::new(&g).unwrap();
        let (m, wf) = matrix(&g, &mut rng, f, 1, rows, cols);
        assert!(m.chunks.len() > 1, "{f:?}: matrix must be split");
        for t in [1, 3] {
            let x = rnd(&mut rng, t * cols, 1.0);
            let y0 = rnd(&mut rng, t * rows, 1.0);
            let (xb, yb) = (upload(&g, &x), upload(&g, &y0));
            let used = kernels_used(&g, || {
                let mut rec = Recorder::new(&g);
                matmul::run(&mut rec, &k, &m, Rows::new(&xb, cols, t), Rows::new(&yb, rows, t), Out::Add);
                rec.submit("test").unwrap();
            });
            let what = format!("{f:?} t {t} chunks {}", m.chunks.len());
            assert_fast(&what, &used, if t == 1 { "matvec/matvec/" } else { "matmul/" });
            let got = g.read_f32(&yb, 0, (t * rows) as u64).unwrap();
            let want: Vec<f32> = matmul::reference(&wf, rows, cols, &x, cols, 0, t, 1, None).iter().zip(&y0).map(|(a, b)| a + b).collect();
            assert_close(&what, &got, &want, 1e-4, 1e-4);
        }

        let (e, t, slots) = (9, 5, 3);
        let (m, wf) = matrix(&g, &mut rng, f, e, e_rows, cols);
        assert!(m.chunks.len() > 2, "{f:?}: pool must be split");
        let ids: Vec<u32> = (0..t * slots).map(|_| rng.random_range(0..e as u32)).collect();
        let x = rnd(&mut rng, t * slots * cols, 1.0);
        let (xb, yb) = (upload(&g, &x), g.storage("y", (t * slots * e_rows * 4) as u64));
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let items = Routed { x: Rows::strided(&xb, 0, slots * cols, cols, t), slots, slot_stride: cols, ids: &idb };
        let used = kernels_used(&g, || {
            let mut rec = Recorder::new(&g);
            matmul::run_routed(&mut rec, &k, &m, items, Rows::new(&yb, e_rows, t * slots));
            rec.submit("test").unwrap();
        });
        assert_fast(&format!("routed {f:?}"), &used, "matvec/matvec/");
        let want = matmul::reference(&wf, e_rows, cols, &x, slots * cols, cols, t, slots, Some(&ids));
        assert_close(&format!("routed {f:?}"), &g.read_f32(&yb, 0, (t * slots * e_rows) as u64).unwrap(), &want, 1e-4, 1e-4);

        // embed: rows of the split dense table, bit for bit
        let (m, wf) = matrix(&g, &mut rng, f, 1, rows, cols);
        let ids: Vec<u32> = vec![0, 172, 57, 3, 57, 101];
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let out = g.storage("out", (ids.len() * cols * 4) as u64);
        let mut rec = Recorder::new(&g);
        embed::run(&mut rec, &k, &m, &idb, Rows::new(&out, cols, ids.len()));
        rec.submit("test").unwrap();
        let got = g.read_f32(&out, 0, (ids.len() * cols) as u64).unwrap();
        assert_close(&format!("embed {f:?}"), &got, &embed::reference(&wf, cols, &ids), 0.0, 0.0);
    }
}
