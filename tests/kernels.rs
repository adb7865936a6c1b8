//! Every WGSL kernel against its CPU reference on random inputs of odd sizes, plus edge cases.
//! GPU tests: they fail loudly when no adapter exists.

mod common;

use common::{assert_close, gpu_with, rnd, upload};
use deepseek_wgpu::format::{fp8_e4m3_to_f32, Format as DType};
use deepseek_wgpu::config::{Scoring, TopK};
use deepseek_wgpu::gpu::{Gpu, Recorder};
use deepseek_wgpu::ops::mla_absorb::{Absorb, Heads};
use deepseek_wgpu::ops::moe_gate::Gate;
use deepseek_wgpu::ops::matmul::Out;
use deepseek_wgpu::ops::*;
use deepseek_wgpu::tensor::Matrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};


/// Random weights of a dtype: (packed bytes, dequantised-without-scale f32).
fn weights(rng: &mut StdRng, dt: DType, n: usize) -> (Vec<u8>, Vec<f32>) {
    match dt {
        DType::F32 => {
            let v = rnd(rng, n, 1.0);
            (bytemuck::cast_slice(&v).to_vec(), v)
        }
        DType::BF16 => {
            let v: Vec<half::bf16> = rnd(rng, n, 1.0).into_iter().map(half::bf16::from_f32).collect();
            (v.iter().flat_map(|x| x.to_le_bytes()).collect(), v.iter().map(|x| x.to_f32()).collect())
        }
        DType::F16 => {
            let v: Vec<half::f16> = rnd(rng, n, 1.0).into_iter().map(half::f16::from_f32).collect();
            (v.iter().flat_map(|x| x.to_le_bytes()).collect(), v.iter().map(|x| x.to_f32()).collect())
        }
        DType::F8E4M3 => {
            let b: Vec<u8> = (0..n).map(|_| rng.random::<u8>() % 0x70 | (rng.random::<u8>() & 0x80)).collect();
            let f = b.iter().map(|&x| fp8_e4m3_to_f32(x)).collect();
            (b, f)
        }
        _ => unreachable!("{dt:?}: block formats are tested in tests/block_kernels.rs"),
    }
}

/// A stack of `e` matrices `[rows][cols]` of dtype `dt` with FP8 block scales (block 7×5
/// so edge blocks are partial): the GPU matrix and the dequantised f32 reference.
fn matrix(g: &Gpu, rng: &mut StdRng, dt: DType, e: usize, rows: usize, cols: usize) -> (Matrix, Vec<f32>) {
    let (bytes, mut f) = weights(rng, dt, e * rows * cols);
    let mb = dt.size_of(rows * cols);
    let scale = (dt == DType::F8E4M3).then(|| {
        let blk = [7, 5];
        let (sr, sc) = (rows.div_ceil(7), cols.div_ceil(5));
        let s: Vec<f32> = (0..e * sr * sc).map(|_| 0.01 + rng.random::<f32>()).collect();
        for m in 0..e {
            for r in 0..rows {
                for c in 0..cols {
                    f[(m * rows + r) * cols + c] *= s[(m * sr + r / 7) * sc + c / 5];
                }
            }
        }
        (s, blk)
    });
    let m = Matrix::build(g, "w", dt, e, rows, cols, |i| &bytes[i * mb..][..mb], scale).unwrap();
    (m, f)
}

const DTYPES: [DType; 4] = [DType::F32, DType::BF16, DType::F16, DType::F8E4M3];

#[test]
fn matmul_dense_all_dtypes_and_split() {
    let mut rng = StdRng::seed_from_u64(1);
    for limit in [None, Some(4096)] {
        let g = gpu_with(limit);
        let k = Kernels::new(&g).unwrap();
        for dt in DTYPES {
            let (rows, cols, t) = (173, 131, 3);
            let (m, wf) = matrix(&g, &mut rng, dt, 1, rows, cols);
            if limit.is_some() {
                assert!(m.chunks.len() > 1, "{dt:?}: a 4 KiB binding limit must split the matrix");
            }
            let x = rnd(&mut rng, t * cols, 1.0);
            let y0 = rnd(&mut rng, t * rows, 1.0);
            let (xb, yb) = (upload(&g, &x), upload(&g, &y0));
            let mut rec = Recorder::new(&g);
            matmul::run(&mut rec, &k, &m, Rows::new(&xb, cols, t), Rows::new(&yb, rows, t), Out::Add);
            rec.submit("test").unwrap();
            let got = g.read_f32(&yb, 0, (t * rows) as u64).unwrap();
            let want: Vec<f32> = matmul::reference(&wf, rows, cols, &x, cols, 0, t, 1, None).iter().zip(&y0).map(|(a, b)| a + b).collect();
            assert_close(&format!("matmul {dt:?} limit {limit:?}"), &got, &want, 1e-4, 1e-4);
        }
    }
}

#[test]
fn matmul_routed_experts_from_gpu_ids() {
    let mut rng = StdRng::seed_from_u64(2);
    let g = gpu_with(Some(3000));
    let k = Kernels::new(&g).unwrap();
    for dt in DTYPES {
        let (e, rows, cols, t, slots) = (9, 13, 37, 5, 3);
        let (m, wf) = matrix(&g, &mut rng, dt, e, rows, cols);
        assert!(m.chunks.len() > 1, "pool must be split into several chunks");
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
        assert_close(&format!("routed matmul {dt:?}"), &got, &want, 1e-4, 1e-4);
    }
}

#[test]
fn embed_gathers_across_chunks() {
    let mut rng = StdRng::seed_from_u64(3);
    let g = gpu_with(Some(1024));
    let k = Kernels::new(&g).unwrap();
    for dt in [DType::F32, DType::BF16, DType::F16] {
        let (vocab, hidden) = (101, 37);
        let (m, wf) = matrix(&g, &mut rng, dt, 1, vocab, hidden);
        assert!(m.chunks.len() > 1);
        let ids: Vec<u32> = vec![0, 100, 57, 3, 57, 99, 12];
        let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
        let out = g.storage("out", (ids.len() * hidden * 4) as u64);
        let mut rec = Recorder::new(&g);
        embed::run(&mut rec, &k, &m, &idb, Rows::new(&out, hidden, ids.len()));
        rec.submit("test").unwrap();
        let got = g.read_f32(&out, 0, (ids.len() * hidden) as u64).unwrap();
        assert_close(&format!("embed {dt:?}"), &got, &embed::reference(&wf, hidden, &ids), 0.0, 0.0);
    }
}

#[test]
fn rmsnorm_strided_rows() {
    let mut rng = StdRng::seed_from_u64(4);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let (n, rows, stride) = (1757, 5, 1800);
    let x = rnd(&mut rng, rows * stride, 30.0);
    let w = rnd(&mut rng, n, 2.0);
    let out = g.storage("out", (rows * stride * 4) as u64);
    let (wb, xb) = (upload(&g, &w), upload(&g, &x));
    let mut rec = Recorder::new(&g);
    rmsnorm::run(&mut rec, &k, &wb, Rows::strided(&xb, 7, stride, n, rows), Rows::strided(&out, 3, stride, n, rows), 1e-6);
    rec.submit("test").unwrap();
    let got = g.read_f32(&out, 0, (rows * stride) as u64).unwrap();
    for r in 0..rows {
        let want = rmsnorm::reference(&x[7 + r * stride..][..n], &w, 1e-6);
        assert_close("rmsnorm", &got[3 + r * stride..][..n], &want, 1e-5, 1e-4);
    }
}

/// Qwen3's per-head q/k norm followed by RoPE in one dispatch (`rmsnorm::run_rope`), with both
/// pair kinds, a head wider than a workgroup's 64 lanes, strided output rows and a position
/// offset: against the CPU references of the two steps, and against the two-dispatch path.
#[test]
fn rmsnorm_then_rope_in_one_dispatch() {
    let mut rng = StdRng::seed_from_u64(14);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let (t, heads, d, pos0, eps) = (3, 5, 136, 9, 1e-6);
    let table: Vec<[f32; 2]> = (0..(pos0 + t) * d / 2).map(|i| {
        let a = (i / (d / 2)) as f32 * 0.37 / (1.0 + (i % (d / 2)) as f32);
        [a.cos() * 1.1, a.sin() * 1.1]
    }).collect();
    let tb = g.storage_init("table", bytemuck::cast_slice(&table));
    for pairs in [rope::Pairs::HalfSplit, rope::Pairs::Interleaved] {
        let x = rnd(&mut rng, t * heads * d, 20.0);
        let w = rnd(&mut rng, d, 2.0);
        let (xb, wb) = (upload(&g, &x), upload(&g, &w));
        // output rows of d at offset 5 with a stride of d + 3 (a cache's head rows are strided)
        let (off, stride) = (5, d + 3);
        let fused = g.storage("fused", ((off + t * heads * stride) * 4) as u64);
        let split = g.storage("split", ((off + t * heads * stride) * 4) as u64);
        let out_rows = |b| Rows::strided(b, off, stride, d, t * heads);
        let mut rec = Recorder::new(&g);
        let r = rmsnorm::Rope { table: &tb, rows_per_pos: heads, pos0, pairs };
        rmsnorm::run_rope(&mut rec, &k, &wb, Rows::new(&xb, d, t * heads), out_rows(&fused), eps, r);
        rmsnorm::run(&mut rec, &k, &wb, Rows::new(&xb, d, t * heads), out_rows(&split), eps);
        rope::run(&mut rec, &k, &tb, Rows::strided(&split, off, heads * stride, d, t), heads, stride, pos0, pairs);
        rec.submit("test").unwrap();
        let n = (off + t * heads * stride) as u64;
        let (got, two) = (g.read_f32(&fused, 0, n).unwrap(), g.read_f32(&split, 0, n).unwrap());
        for tok in 0..t {
            for h in 0..heads {
                let row = tok * heads + h;
                let mut want = rmsnorm::reference(&x[row * d..][..d], &w, eps);
                rope::reference(&mut want, 1, d, 0, &table[(pos0 + tok) * d / 2..][..d / 2], pairs);
                let o = off + row * stride;
                assert_close(&format!("{pairs:?} token {tok} head {h}"), &got[o..o + d], &want, 1e-5, 1e-4);
                assert_close(&format!("{pairs:?} fused vs two dispatches"), &got[o..o + d], &two[o..o + d], 1e-6, 1e-6);
            }
        }
    }
}

/// MLA's latent row in one dispatch (`rmsnorm::run_tail_rope`): c_kv normalized, k_pe copied
/// and rotated (interleaved pairs) into strided cache rows at a position offset, against the
/// CPU references and against the three-dispatch path (norm, copy, RoPE) the model used before.
#[test]
fn rmsnorm_with_a_rotated_tail_in_one_dispatch() {
    let mut rng = StdRng::seed_from_u64(24);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    // c_kv wider than the workgroup's 64 lanes and not a multiple of them; a rope tail of 12
    let (t, n, tail, pos0, eps) = (4, 150, 12, 7, 1e-6);
    let (w_row, cd) = (n + tail, n + tail + 5);
    let table: Vec<[f32; 2]> = (0..(pos0 + t) * tail / 2).map(|i| {
        let a = (i / (tail / 2)) as f32 * 0.41 / (1.0 + (i % (tail / 2)) as f32);
        [a.cos() * 1.2, a.sin() * 1.2]
    }).collect();
    let tb = g.storage_init("table", bytemuck::cast_slice(&table));
    let x = rnd(&mut rng, t * w_row, 20.0);
    let w = rnd(&mut rng, n, 2.0);
    let (xb, wb) = (upload(&g, &x), upload(&g, &w));
    let (fused, three) = (g.storage("fused", ((3 + t * cd) * 4) as u64), g.storage("three", ((3 + t * cd) * 4) as u64));
    let rows = |b| Rows::strided(b, 3, cd, w_row, t);
    let pairs = rope::Pairs::Interleaved;
    let mut rec = Recorder::new(&g);
    let r = rmsnorm::Rope { table: &tb, rows_per_pos: 1, pos0, pairs };
    rmsnorm::run_tail_rope(&mut rec, &k, &wb, n, Rows::new(&xb, w_row, t), rows(&fused), eps, r);
    rmsnorm::run(&mut rec, &k, &wb, Rows::new(&xb, w_row, t).cols(0, n), rows(&three).cols(0, n), eps);
    copy_rows::run(&mut rec, &k, Rows::new(&xb, w_row, t).cols(n, tail), rows(&three).cols(n, tail));
    rope::run(&mut rec, &k, &tb, rows(&three).cols(n, tail), 1, 0, pos0, pairs);
    rec.submit("test").unwrap();
    let len = (3 + t * cd) as u64;
    let (got, old) = (g.read_f32(&fused, 0, len).unwrap(), g.read_f32(&three, 0, len).unwrap());
    for tok in 0..t {
        let xr = &x[tok * w_row..][..w_row];
        let mut want = rmsnorm::reference(&xr[..n], &w, eps);
        let mut kpe = xr[n..].to_vec();
        rope::reference(&mut kpe, 1, tail, 0, &table[(pos0 + tok) * tail / 2..][..tail / 2], pairs);
        want.extend(kpe);
        let o = 3 + tok * cd;
        assert_close(&format!("token {tok}"), &got[o..o + w_row], &want, 1e-5, 1e-4);
        assert_close(&format!("token {tok}: one dispatch vs three"), &got[o..o + w_row], &old[o..o + w_row], 1e-6, 1e-6);
        assert!(got[o + w_row..o + cd].iter().all(|v| *v == 0.0), "token {tok}: wrote past its row");
    }
}

/// MLA attention that rotates q_pe itself (`rope_q`), on the flash-decoding kernel (with
/// splits and without) and the portable one of a small GPU: against attention on q rotated by
/// the CPU reference, and against `rope::run` then attention.
#[test]
fn attention_rotates_q_pe_as_it_loads_it() {
    use deepseek_wgpu::gpu::GpuOptions;
    let mut rng = StdRng::seed_from_u64(25);
    let h = Heads { heads: 6, nope: 8, rope: 12, v: 4, kvl: 64 };
    let qk = h.nope + h.rope;
    let small = Gpu::new(&GpuOptions { small: true, ..Default::default() }).unwrap();
    for (g, name) in [(gpu_with(None), "default"), (small, "small")] {
        let k = Kernels::new(&g).unwrap();
        for (pos0, t) in [(0, 1), (150, 1), (9, 5)] {
            let table: Vec<[f32; 2]> = (0..(pos0 + t) * h.rope / 2).map(|i| {
                let a = (i / (h.rope / 2)) as f32 * 0.29 / (1.0 + (i % (h.rope / 2)) as f32);
                [a.cos(), a.sin()]
            }).collect();
            let tb = g.storage_init("table", bytemuck::cast_slice(&table));
            let cache = rnd(&mut rng, (pos0 + t) * (h.kvl + h.rope), 1.0);
            let ql = rnd(&mut rng, t * h.heads * h.kvl, 1.0);
            let q = rnd(&mut rng, t * h.heads * qk, 1.0);
            let (qlb, qb, cb) = (upload(&g, &ql), upload(&g, &q), upload(&g, &cache));
            let q2 = upload(&g, &q);
            let (fused, two) = (g.storage("o_lat", (t * h.heads * h.kvl * 4) as u64), g.storage("o_lat", (t * h.heads * h.kvl * 4) as u64));
            let (q_lat, qrows) = (Rows::new(&qlb, h.kvl, t * h.heads), |b| Rows::new(b, h.heads * qk, t));
            let mut rec = Recorder::new(&g);
            mla_attn::run(&mut rec, &k, h, 0.3, pos0, q_lat, qrows(&qb), &cb, Rows::new(&fused, h.kvl, t * h.heads), Some(&tb));
            rope::run(&mut rec, &k, &tb, qrows(&q2).cols(h.nope, h.rope), h.heads, qk, pos0, rope::Pairs::Interleaved);
            mla_attn::run(&mut rec, &k, h, 0.3, pos0, q_lat, qrows(&q2), &cb, Rows::new(&two, h.kvl, t * h.heads), None);
            rec.submit("test").unwrap();
            let n = (t * h.heads * h.kvl) as u64;
            let (got, old) = (g.read_f32(&fused, 0, n).unwrap(), g.read_f32(&two, 0, n).unwrap());
            let mut qr = q.clone();
            for tok in 0..t {
                rope::reference(&mut qr[tok * h.heads * qk..][..h.heads * qk], h.heads, qk, h.nope, &table[(pos0 + tok) * h.rope / 2..][..h.rope / 2], rope::Pairs::Interleaved);
            }
            let want = mla_attn::reference(h, 0.3, pos0, t, &ql, &qr, &cache);
            assert_close(&format!("{name} pos0 {pos0} t {t}"), &got, &want, 1e-4, 1e-3);
            assert_close(&format!("{name} pos0 {pos0} t {t}: rope in the attention vs before it"), &got, &old, 1e-5, 1e-5);
        }
    }
}

/// Rope on rows of `heads` heads of `hs` values whose rotary part is columns `off .. off + rope_d`.
#[allow(clippy::too_many_arguments)]
fn rope_gpu(g: &Gpu, k: &Kernels, x: &[f32], table: &[[f32; 2]], t: usize, heads: usize, hs: usize, off: usize, rope_d: usize, pos0: usize, pairs: rope::Pairs) -> Vec<f32> {
    let xb = upload(g, x);
    let tb = g.storage_init("table", bytemuck::cast_slice(table));
    let mut rec = Recorder::new(g);
    rope::run(&mut rec, k, &tb, Rows::new(&xb, heads * hs, t).cols(off, rope_d), heads, hs, pos0, pairs);
    rec.submit("test").unwrap();
    g.read_f32(&xb, 0, x.len() as u64).unwrap()
}

#[test]
fn rope_rotates_interleaved_and_half_split_pairs() {
    let mut rng = StdRng::seed_from_u64(5);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let (t, heads, nope, rope_d, pos0) = (3, 5, 7, 10, 11);
    let hs = nope + rope_d;
    for pairs in [rope::Pairs::Interleaved, rope::Pairs::HalfSplit] {
        let x = rnd(&mut rng, t * heads * hs, 1.0);
        let table: Vec<[f32; 2]> = (0..(pos0 + t) * rope_d / 2).map(|_| [rng.random(), rng.random()]).collect();
        let got = rope_gpu(&g, &k, &x, &table, t, heads, hs, nope, rope_d, pos0, pairs);
        let mut want = x.clone();
        for ti in 0..t {
            let cs = &table[(pos0 + ti) * rope_d / 2..][..rope_d / 2];
            rope::reference(&mut want[ti * heads * hs..][..heads * hs], heads, hs, nope, cs, pairs);
        }
        assert_close(&format!("rope {pairs:?}"), &got, &want, 1e-6, 1e-5);
    }
}

/// Half-split rope on whole heads (Qwen3: the rotary dim is the head dim) against the textbook
/// form written out here, independently of `rope::reference`: transformers'
/// `q·cos + rotate_half(q)·sin` with `cos = cat(cos(p·f), cos(p·f))`, `rotate_half(x) = cat(−x₂, x₁)`,
/// `f_i = θ^(−2i/d)`.
#[test]
fn rope_half_split_is_rotate_half() {
    let mut rng = StdRng::seed_from_u64(55);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let (t, heads, d, pos0, theta) = (4, 3, 16, 1000, 1_000_000.0f64);
    let x = rnd(&mut rng, t * heads * d, 1.0);
    let freq = |i: usize| (1.0 / theta.powf((2 * i) as f64 / d as f64)) as f32;
    let table: Vec<[f32; 2]> = (0..pos0 + t).flat_map(|p| (0..d / 2).map(move |i| [(p as f32 * freq(i)).cos(), (p as f32 * freq(i)).sin()])).collect();
    let got = rope_gpu(&g, &k, &x, &table, t, heads, d, 0, d, pos0, rope::Pairs::HalfSplit);
    let mut want = vec![0.0; x.len()];
    for ti in 0..t {
        for h in 0..heads {
            let head = &x[(ti * heads + h) * d..][..d];
            let cos: Vec<f32> = (0..d).map(|j| ((pos0 + ti) as f32 * freq(j % (d / 2))).cos()).collect();
            let sin: Vec<f32> = (0..d).map(|j| ((pos0 + ti) as f32 * freq(j % (d / 2))).sin()).collect();
            let rotated: Vec<f32> = (0..d).map(|j| if j < d / 2 { -head[j + d / 2] } else { head[j - d / 2] }).collect();
            for j in 0..d {
                want[(ti * heads + h) * d + j] = head[j] * cos[j] + rotated[j] * sin[j];
            }
        }
    }
    assert_close("rope half split vs rotate_half", &got, &want, 1e-5, 1e-5);
}

#[test]
fn mla_absorb_both_directions() {
    let mut rng = StdRng::seed_from_u64(6);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let h = Heads { heads: 3, nope: 11, rope: 6, v: 9, kvl: 71 };
    let t = 4;
    for dt in DTYPES {
        let (m, wf) = matrix(&g, &mut rng, dt, 1, h.heads * (h.nope + h.v), h.kvl);
        let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), 1.0);
        let ol = rnd(&mut rng, t * h.heads * h.kvl, 1.0);
        let (qb, olb) = (upload(&g, &q), upload(&g, &ol));
        let ql = g.storage("q_lat", (t * h.heads * h.kvl * 4) as u64);
        let o = g.storage("o", (t * h.heads * h.v * 4) as u64);
        let mut rec = Recorder::new(&g);
        let w = Absorb::KvB { kv_b: m, uk_t: None };
        mla_absorb::q_absorb(&mut rec, &k, &w, h, Rows::new(&qb, h.heads * (h.nope + h.rope), t), Rows::new(&ql, h.kvl, t * h.heads));
        mla_absorb::v_up(&mut rec, &k, &w, h, Rows::new(&olb, h.kvl, t * h.heads), Rows::new(&o, h.heads * h.v, t));
        rec.submit("test").unwrap();
        assert_close(&format!("q_absorb {dt:?}"), &g.read_f32(&ql, 0, (t * h.heads * h.kvl) as u64).unwrap(), &mla_absorb::q_absorb_ref(&wf, h, &q, t), 1e-4, 1e-4);
        assert_close(&format!("v_up {dt:?}"), &g.read_f32(&o, 0, (t * h.heads * h.v) as u64).unwrap(), &mla_absorb::v_up_ref(&wf, h, &ol, t), 1e-4, 1e-4);
    }
}

#[test]
fn mla_attention_over_long_cache_and_large_scores() {
    let mut rng = StdRng::seed_from_u64(7);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let h = Heads { heads: 3, nope: 5, rope: 6, v: 4, kvl: 131 };
    for (pos0, t, amp) in [(0, 1, 1.0), (150, 3, 1.0), (0, 70, 1.0), (40, 2, 40.0)] {
        let cd = h.kvl + h.rope;
        let cache = rnd(&mut rng, (pos0 + t) * cd, 1.0);
        let ql = rnd(&mut rng, t * h.heads * h.kvl, amp);
        let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), amp);
        let out = g.storage("o_lat", (t * h.heads * h.kvl * 4) as u64);
        let mut rec = Recorder::new(&g);
        let (qlb, qb, cb) = (upload(&g, &ql), upload(&g, &q), upload(&g, &cache));
        attend(&mut rec, &k, h, pos0, t, &qlb, &qb, &cb, &out);
        rec.submit("test").unwrap();
        let got = g.read_f32(&out, 0, (t * h.heads * h.kvl) as u64).unwrap();
        let want = mla_attn::reference(h, 0.3, pos0, t, &ql, &q, &cache);
        assert_close(&format!("mla_attn pos0 {pos0} t {t} amp {amp}"), &got, &want, 1e-4, 1e-3);
    }
}

#[test]
fn moe_gate_all_methods() {
    let mut rng = StdRng::seed_from_u64(8);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let cases = [
        Gate { n_exp: 64, k: 8, n_group: 8, topk_group: 4, scoring: Scoring::Sigmoid, topk: TopK::NoAuxTc, norm: true, scale: 2.5 },
        Gate { n_exp: 24, k: 6, n_group: 1, topk_group: 1, scoring: Scoring::Softmax, topk: TopK::Greedy, norm: false, scale: 1.0 },
        Gate { n_exp: 30, k: 4, n_group: 5, topk_group: 2, scoring: Scoring::Softmax, topk: TopK::GroupLimitedGreedy, norm: true, scale: 1.0 },
        Gate { n_exp: 16, k: 1, n_group: 1, topk_group: 1, scoring: Scoring::Sigmoid, topk: TopK::NoAuxTc, norm: false, scale: 1.5 },
    ];
    for gate in cases {
        let t = 67;
        let logits = rnd(&mut rng, t * gate.n_exp, 4.0);
        let bias = rnd(&mut rng, gate.n_exp, 0.3);
        let lb = upload(&g, &logits);
        let ids = g.storage("ids", (t * gate.k * 4) as u64);
        let wts = g.storage("wts", (t * gate.k * 4) as u64);
        let mut rec = Recorder::new(&g);
        let bb = upload(&g, &bias);
        moe_gate::run(&mut rec, &k, &gate, &bb, Rows::new(&lb, gate.n_exp, t), Rows::new(&ids, gate.k, t), Rows::new(&wts, gate.k, t));
        rec.submit("test").unwrap();
        let gi = g.read_u32(&ids, 0, (t * gate.k) as u64).unwrap();
        let gw = g.read_f32(&wts, 0, (t * gate.k) as u64).unwrap();
        for ti in 0..t {
            let (ri, rw) = moe_gate::reference(&gate, &logits[ti * gate.n_exp..][..gate.n_exp], &bias);
            assert_eq!(&gi[ti * gate.k..][..gate.k], &ri[..], "{gate:?} token {ti}: ids");
            assert_close(&format!("{gate:?} weights"), &gw[ti * gate.k..][..gate.k], &rw, 1e-6, 1e-5);
        }
    }
}

#[test]
fn swiglu_combine_copy() {
    let mut rng = StdRng::seed_from_u64(9);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    let n = 1757;
    let (ga, up) = (rnd(&mut rng, n, 6.0), rnd(&mut rng, n, 1.0));
    let gb = upload(&g, &ga);
    let (hidden, t, top) = (37, 3, 5);
    let x = rnd(&mut rng, t * hidden, 1.0);
    let wts = rnd(&mut rng, t * top, 1.0);
    let eo = rnd(&mut rng, t * top * hidden, 1.0);
    let xb = upload(&g, &x);
    let src = rnd(&mut rng, 5 * 13, 1.0);
    let dst = g.storage("dst", 4 * 40 * 4);
    let mut rec = Recorder::new(&g);
    let (upb, wb, eb, sb) = (upload(&g, &up), upload(&g, &wts), upload(&g, &eo), upload(&g, &src));
    swiglu::run(&mut rec, &k, Rows::new(&upb, n, 1), Rows::new(&gb, n, 1));
    moe_combine::run(&mut rec, &k, Rows::new(&wb, top, t), Rows::new(&eb, hidden, t * top), Rows::new(&xb, hidden, t));
    copy_rows::run(&mut rec, &k, Rows::strided(&sb, 7, 13, 6, 4), Rows::strided(&dst, 2, 40, 6, 4));
    rec.submit("test").unwrap();
    assert_close("swiglu", &g.read_f32(&gb, 0, n as u64).unwrap(), &swiglu::reference(&ga, &up), 1e-6, 1e-5);
    let mut want = x.clone();
    moe_combine::reference(&mut want, hidden, top, &wts, &eo);
    assert_close("moe_combine", &g.read_f32(&xb, 0, x.len() as u64).unwrap(), &want, 1e-5, 1e-5);
    let got = g.read_f32(&dst, 0, 160).unwrap();
    for r in 0..4 {
        assert_eq!(&got[2 + r * 40..][..6], &src[7 + r * 13..][..6], "copy_rows row {r}");
    }
}

/// Like [`matrix`] with FP8 block scales of `blk` (columns a multiple of 16 keep the
/// matvec/gemm fast path: one scale per 16-byte word).
fn matrix_blk(g: &Gpu, rng: &mut StdRng, dt: DType, e: usize, rows: usize, cols: usize, blk: [usize; 2]) -> (Matrix, Vec<f32>) {
    let (bytes, mut f) = weights(rng, dt, e * rows * cols);
    let mb = dt.size_of(rows * cols);
    let scale = (dt == DType::F8E4M3).then(|| {
        let (sr, sc) = (rows.div_ceil(blk[0]), cols.div_ceil(blk[1]));
        let s: Vec<f32> = (0..e * sr * sc).map(|_| 0.01 + rng.random::<f32>()).collect();
        for m in 0..e {
            for r in 0..rows {
                for c in 0..cols {
                    f[(m * rows + r) * cols + c] *= s[(m * sr + r / blk[0]) * sc + c / blk[1]];
                }
            }
        }
        (s, blk)
    });
    (Matrix::build(g, "w", dt, e, rows, cols, |i| &bytes[i * mb..][..mb], scale).unwrap(), f)
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

/// Fast matvec (1–2 tokens) and gemm (more) against the reference, every dtype, with
/// residual accumulation, a partial last tile and, under a lowered binding limit, chunks.
fn fast_dense(g: &Gpu, seed: u64) {
    fast_dense_with(g, seed, None)
}

/// Kernels whose gemm streams `shape.0` rows per lane over tiles of `shape.1` items.
fn kernels_shaped(g: &Gpu, shape: Option<(u32, u32)>) -> Kernels {
    let k = Kernels::new(g).unwrap();
    match shape {
        Some((streams, nt)) => Kernels::with_tune(g, matmul::Tune { streams, nt, ..k.tune() }).unwrap(),
        None => k,
    }
}

fn fast_dense_with(g: &Gpu, seed: u64, shape: Option<(u32, u32)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = kernels_shaped(g, shape);
    for dt in DTYPES {
        // 384 columns: one segment of x registers; 2048: several (lanes of 8)
        for (rows, cols, ts) in [(173, 384, &[1, 2, 5, 19][..]), (37, 2048, &[1][..])] {
            let (m, wf) = matrix_blk(g, &mut rng, dt, 1, rows, cols, [7, 128]);
            for &t in ts {
                // RMSNorm folded into matvec (t ≤ 2), or run first (more): every t but 2
                let normed = t != 2;
                let x = rnd(&mut rng, t * cols, 1.0);
                let nw = rnd(&mut rng, cols, 2.0);
                let y0 = rnd(&mut rng, t * rows, 1.0);
                let (xb, yb, nwb) = (upload(g, &x), upload(g, &y0), upload(g, &nw));
                let used = kernels_used(g, || {
                    let mut rec = Recorder::new(g);
                    let (xr, yr) = (Rows::new(&xb, cols, t), Rows::new(&yb, rows, t));
                    match normed {
                        true => matmul::run_normed(&mut rec, &k, &m, xr, matmul::Norm { weight: &nwb, eps: 1e-6 }, yr, Out::Add),
                        false => matmul::run(&mut rec, &k, &m, xr, yr, Out::Add),
                    }
                    rec.submit("test").unwrap();
                });
                let want_kernel = if t <= matmul::MATVEC_MAX_TOKENS { "matvec/" } else { "gemm/" };
                // Lanes of 8 (lavapipe): every dtype's rows are a whole number of lane words.
                if k.tune().lanes == 8 {
                    let folded = t <= matmul::MATVEC_MAX_TOKENS;
                    assert!(used.iter().all(|l| l.starts_with(want_kernel) || normed && !folded && l.starts_with("rmsnorm")), "{dt:?} t {t}: dispatched {used:?}");
                    assert_eq!(used.iter().filter(|l| l.starts_with("rmsnorm")).count(), (normed && !folded) as usize, "{dt:?} t {t}: dispatched {used:?}");
                }
                let xn = if normed { rmsnorm::reference(&x, &nw, 1e-6) } else { x.clone() };
                let got = g.read_f32(&yb, 0, (t * rows) as u64).unwrap();
                let want: Vec<f32> = matmul::reference(&wf, rows, cols, &xn, cols, 0, t, 1, None).iter().zip(&y0).map(|(a, b)| a + b).collect();
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert_close(&format!("fast matmul {dt:?} cols {cols} t {t} normed {normed}"), &got, &want, 1e-5 * scale, 1e-4);
            }
        }
    }
}

#[test]
fn matvec_gemm_all_dtypes() {
    fast_dense(&gpu_with(None), 11);
    // 8 KiB bindings: the matrices are split into row chunks.
    fast_dense(&gpu_with(Some(8192)), 12);
}

#[test]
fn matvec_gemm_without_subgroups() {
    let mut g = gpu_with(None);
    g.features.remove(wgpu::Features::SUBGROUP);
    fast_dense(&g, 13);
    glu_and_grouped(&g, 14);
}

/// The gemm shapes other adapters get (GPUs: 2 rows per lane) and odd ones (a tile wider
/// than the subgroup exchange's default, many streams), under a lowered binding limit too.
#[test]
fn gemm_shapes() {
    for (i, shape) in [(2, 8), (4, 16), (6, 3), (16, 8)].into_iter().enumerate() {
        fast_dense_with(&gpu_with(None), 20 + i as u64, Some(shape));
        glu_and_grouped_with(&gpu_with(Some(200_000)), 30 + i as u64, Some(shape));
    }
}

#[test]
fn glu_and_grouped_experts() {
    glu_and_grouped(&gpu_with(None), 15);
    glu_and_grouped(&gpu_with(Some(200_000)), 16);
}

/// Fused SwiGLU (dense, routed per item, and grouped by expert) and the grouped down
/// projection, against silu(gate x) · (up x) and the routed reference.
fn glu_and_grouped(g: &Gpu, seed: u64) {
    glu_and_grouped_with(g, seed, None)
}

fn glu_and_grouped_with(g: &Gpu, seed: u64, shape: Option<(u32, u32)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = kernels_shaped(g, shape);
    for dt in [DType::BF16, DType::F8E4M3, DType::F32] {
        let (e, width, hidden, slots) = (9, 128, 256, 3);
        let (gate, gf) = matrix_blk(g, &mut rng, dt, e, width, hidden, [16, 16]);
        let (up, uf) = matrix_blk(g, &mut rng, dt, e, width, hidden, [16, 16]);
        let (down, df) = matrix_blk(g, &mut rng, dt, e, hidden, width, [16, 16]);
        for t in [1, 2, 37] {
            let n = t * slots;
            let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..e as u32)).collect();
            let idb = g.storage_init("ids", bytemuck::cast_slice(&ids));
            let x = rnd(&mut rng, t * hidden, 1.0);
            // x normalized by the kernels (folded into matvec_glu for 1 token, a dispatch of
            // its own before the grouped gemm for 37), plain for 2
            let normed = t != 2;
            let nw = rnd(&mut rng, hidden, 2.0);
            let (xb, nwb) = (upload(g, &x), upload(g, &nw));
            let hb = g.storage("hb", (n * width * 4) as u64);
            let scratch = g.storage("scratch", (n * width * 4) as u64);
            let eo = g.storage("eo", (n * hidden * 4) as u64);
            let groups = g.storage("groups", (moe_group::out_len(n, e) * 4) as u64);
            let grouped = n > matmul::MATVEC_MAX_ROUTED;
            let used = kernels_used(g, || {
                let mut rec = Recorder::new(g);
                let items = Routed { x: Rows::new(&xb, hidden, t), slots, slot_stride: 0, ids: &idb };
                let norm = normed.then_some(matmul::Norm { weight: &nwb, eps: 1e-6 });
                matmul::routed_swiglu(&mut rec, &k, [&gate, &up, &down], items, norm, &hb, &scratch, Rows::new(&eo, hidden, n), n);
                rec.submit("test").unwrap();
            });
            assert_eq!(used.iter().any(|l| l.starts_with("rmsnorm")), normed && grouped, "{dt:?} t {t}: dispatched {used:?}");
            let x = if normed { rmsnorm::reference(&x, &nw, 1e-6) } else { x };
            if grouped {
                // the expert lists routed_swiglu grouped its items by, listed again to check them
                let mut rec = Recorder::new(g);
                moe_group::run(&mut rec, &k, e, &idb, n, &groups);
                rec.submit("test").unwrap();
            }
            if k.tune().lanes == 8 {
                let fused = if grouped { "gemm/gemm_glu" } else { "matvec/matvec_glu" };
                assert!(used.iter().any(|l| l.starts_with(fused)), "{dt:?} t {t}: dispatched {used:?}");
                assert!(!used.iter().any(|l| l.starts_with("swiglu") || l.starts_with("matmul")), "{dt:?} t {t}: dispatched {used:?}");
            }
            let g_ref = matmul::reference(&gf, width, hidden, &x, hidden, 0, t, slots, Some(&ids));
            let u_ref = matmul::reference(&uf, width, hidden, &x, hidden, 0, t, slots, Some(&ids));
            let h_ref: Vec<f32> = g_ref.iter().zip(&u_ref).map(|(a, b)| silu(*a) * b).collect();
            let h_got = g.read_f32(&hb, 0, (n * width) as u64).unwrap();
            // silu(g)·u multiplies two long sums: compare relative to the largest value, the
            // scale of their rounding error (an indexing or scale bug is off by O(that)).
            let scaled = |v: &[f32]| 1e-5 * v.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert_close(&format!("glu {dt:?} t {t}"), &h_got, &h_ref, scaled(&h_ref), 1e-4);
            // Down projection from the GPU's own hb, so the comparison isolates this kernel.
            let d_ref = matmul::reference(&df, hidden, width, &h_got, slots * width, width, t, slots, Some(&ids));
            assert_close(&format!("down {dt:?} t {t}"), &g.read_f32(&eo, 0, (n * hidden) as u64).unwrap(), &d_ref, scaled(&d_ref), 1e-4);
            if grouped {
                let out = g.read_u32(&groups, 0, (e + 1 + n) as u64).unwrap();
                let (off, lists) = moe_group::reference(&ids, e);
                assert_eq!(&out[..=e], &off[..], "moe_group offsets");
                for (ei, l) in lists.iter().enumerate() {
                    let mut got = out[e + 1 + off[ei] as usize..e + 1 + off[ei + 1] as usize].to_vec();
                    got.sort_unstable();
                    assert_eq!(&got, l, "moe_group list of expert {ei}");
                }
            }
        }
    }
}

/// Attention of `t` queries at `pos0..` over `cache` rows, with the tests' scale 0.3.
#[allow(clippy::too_many_arguments)]
fn attend(rec: &mut Recorder, k: &Kernels, h: Heads, pos0: usize, t: usize, ql: &wgpu::Buffer, q: &wgpu::Buffer, cache: &wgpu::Buffer, out: &wgpu::Buffer) {
    let (q_lat, o_lat) = (Rows::new(ql, h.kvl, t * h.heads), Rows::new(out, h.kvl, t * h.heads));
    mla_attn::run(rec, k, h, 0.3, pos0, q_lat, Rows::new(q, h.heads * (h.nope + h.rope), t), cache, o_lat, None);
}

#[test]
fn flash_decoding_attention_splits_and_heads() {
    let mut rng = StdRng::seed_from_u64(17);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    // 11 heads: two head groups, the second partial; kvl a multiple of 4 lanes' words.
    let h = Heads { heads: 11, nope: 8, rope: 12, v: 4, kvl: 64 };
    for (pos0, t, amp) in [(0, 1, 1.0), (150, 1, 1.0), (700, 2, 1.0), (0, 70, 1.0), (40, 3, 40.0), (33, 5, 1.0)] {
        let cd = h.kvl + h.rope;
        let cache = rnd(&mut rng, (pos0 + t) * cd, 1.0);
        let ql = rnd(&mut rng, t * h.heads * h.kvl, amp);
        let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), amp);
        let out = g.storage("o_lat", (t * h.heads * h.kvl * 4) as u64);
        let (qlb, qb, cb) = (upload(&g, &ql), upload(&g, &q), upload(&g, &cache));
        let used = kernels_used(&g, || {
            let mut rec = Recorder::new(&g);
            attend(&mut rec, &k, h, pos0, t, &qlb, &qb, &cb, &out);
            rec.submit("test").unwrap();
        });
        if g.subgroups() && g.info.subgroup_min_size == g.info.subgroup_max_size {
            assert!(used.iter().any(|l| l.starts_with("mla_attn/split")), "pos0 {pos0} t {t}: {used:?}");
            let splits = used.iter().any(|l| l.starts_with("mla_attn/combine"));
            assert_eq!(splits, pos0 + t > 64 && t < 4, "pos0 {pos0} t {t}: {used:?}");
        }
        let got = g.read_f32(&out, 0, (t * h.heads * h.kvl) as u64).unwrap();
        let want = mla_attn::reference(h, 0.3, pos0, t, &ql, &q, &cache);
        assert_close(&format!("flash attention pos0 {pos0} t {t} amp {amp}"), &got, &want, 1e-4, 1e-3);
    }
}

#[test]
fn mla_absorb_fast_paths() {
    let mut rng = StdRng::seed_from_u64(18);
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    // Word-aligned head sizes: both products run on matvec (1–2 tokens) or gemm (more),
    // q_absorb on the transposed W_UK; FP8 keeps the portable kernels.
    let h = Heads { heads: 5, nope: 64, rope: 8, v: 32, kvl: 128 };
    for dt in DTYPES {
        let (m, wf) = matrix_blk(&g, &mut rng, dt, 1, h.heads * (h.nope + h.v), h.kvl, [16, 128]);
        let uk_t = mla_absorb::transpose_uk(&k, &g, &m, h).unwrap();
        assert_eq!(uk_t.is_some(), dt != DType::F8E4M3, "{dt:?}: W_UK transposed");
        let w = Absorb::KvB { kv_b: m, uk_t };
        for t in [1, 2, 9] {
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
            if dt != DType::F8E4M3 && k.tune().lanes == 8 {
                let kernel = if t <= matmul::MATVEC_MAX_TOKENS { "matvec/" } else { "gemm/" };
                assert_eq!(used.iter().filter(|l| l.starts_with(kernel)).count(), 2, "{dt:?} t {t}: {used:?}");
            }
            let scaled = |v: &[f32]| 1e-5 * v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let want = mla_absorb::q_absorb_ref(&wf, h, &q, t);
            assert_close(&format!("q_absorb {dt:?} t {t}"), &g.read_f32(&ql, 0, (t * h.heads * h.kvl) as u64).unwrap(), &want, scaled(&want), 1e-4);
            let want = mla_absorb::v_up_ref(&wf, h, &ol, t);
            assert_close(&format!("v_up {dt:?} t {t}"), &g.read_f32(&o, 0, (t * h.heads * h.v) as u64).unwrap(), &want, scaled(&want), 1e-4);
        }
    }
}

/// llama.cpp's split kv_b (GGUF): W_UK transposed `[H][kvl][nope]` and W_UV `[H][v][kvl]` as
/// pools of heads, through the fast per-head kernels and (binding limit lowered, pools
/// split) the generic kernel with head ids, against the references over the same weights
/// laid out as transformers' kv_b_proj.
#[test]
fn mla_absorb_split_form() {
    let mut rng = StdRng::seed_from_u64(19);
    let h = Heads { heads: 5, nope: 64, rope: 8, v: 32, kvl: 128 };
    for limit in [None, Some(40_000)] {
        let g = gpu_with(limit);
        let k = Kernels::new(&g).unwrap();
        for dt in [DType::F32, DType::BF16, DType::F16] {
            let (k_b, kf) = matrix(&g, &mut rng, dt, h.heads, h.kvl, h.nope);
            let (v_b, vf) = matrix(&g, &mut rng, dt, h.heads, h.v, h.kvl);
            assert_eq!(limit.is_some(), k_b.chunks.len() > 1, "{dt:?} limit {limit:?}: pool chunks");
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
            for t in [1, 9] {
                let q = rnd(&mut rng, t * h.heads * (h.nope + h.rope), 1.0);
                let ol = rnd(&mut rng, t * h.heads * h.kvl, 1.0);
                let (qb, olb) = (upload(&g, &q), upload(&g, &ol));
                let ql = g.storage("q_lat", (t * h.heads * h.kvl * 4) as u64);
                let o = g.storage("o", (t * h.heads * h.v * 4) as u64);
                let mut rec = Recorder::new(&g);
                mla_absorb::q_absorb(&mut rec, &k, &w, h, Rows::new(&qb, h.heads * (h.nope + h.rope), t), Rows::new(&ql, h.kvl, t * h.heads));
                mla_absorb::v_up(&mut rec, &k, &w, h, Rows::new(&olb, h.kvl, t * h.heads), Rows::new(&o, h.heads * h.v, t));
                rec.submit("test").unwrap();
                let scaled = |v: &[f32]| 1e-5 * v.iter().fold(0f32, |m, x| m.max(x.abs()));
                let want = mla_absorb::q_absorb_ref(&wf, h, &q, t);
                assert_close(&format!("split q_absorb {dt:?} t {t} limit {limit:?}"), &g.read_f32(&ql, 0, (t * h.heads * h.kvl) as u64).unwrap(), &want, scaled(&want), 1e-4);
                let want = mla_absorb::v_up_ref(&wf, h, &ol, t);
                assert_close(&format!("split v_up {dt:?} t {t} limit {limit:?}"), &g.read_f32(&o, 0, (t * h.heads * h.v) as u64).unwrap(), &want, scaled(&want), 1e-4);
            }
        }
    }
}

/// `--shader-checks`: the option parses, and a model whose kernels are all built without
/// wgpu's runtime checks (`off`, every family) gives the checked kernels' logits, to 1e-5 of
/// their std, on a golden (MLA attention, MoE with group-limited routing, dense layers) in prefill and
/// in decode, and both match transformers. (tests/fixtures_cli.rs and tests/gguf_models.rs run
/// every golden with the checks on; the other tests run the default, `auto`.)
#[test]
fn unchecked_kernels_give_the_checked_logits() {
    use deepseek_wgpu::gpu::ShaderChecks;
    use deepseek_wgpu::model::{LoadOptions, Model};
    for (s, want) in [("on", ShaderChecks::On), ("OFF", ShaderChecks::Off), (" auto ", ShaderChecks::Auto)] {
        assert_eq!(s.parse::<ShaderChecks>(), Ok(want));
        assert_eq!(want.to_string().parse::<ShaderChecks>(), Ok(want));
    }
    let err = "yes".parse::<ShaderChecks>().unwrap_err();
    assert!(err.contains("'yes'") && err.contains("on, off, auto"), "{err}");
    assert_eq!(ShaderChecks::default(), ShaderChecks::Auto);
    for f in ["matvec", "gemm", "sample", "mla_attn"] {
        assert!(trusted(ShaderChecks::Off, f) && !trusted(ShaderChecks::On, f));
        assert_eq!(trusted(ShaderChecks::Auto, f), TRUSTED_FAMILIES.contains(&f));
    }

    let gpu = std::sync::Arc::new(gpu_with(None));
    let name = "v2_group_limited";
    let g = common::golden(name);
    let logits = |checks| {
        let opts = LoadOptions { max_ctx: 64, shader_checks: Some(checks), ..Default::default() };
        let m = Model::load(gpu.clone(), &common::fixture(name), &opts, &mut |_| {}).unwrap_or_else(|e| panic!("{name} checks {checks}: {e}"));
        [g.input_ids.len(), 1].map(|step| common::logits_in_chunks(&m, &g.input_ids, step, 64))
    };
    let (on, off) = (logits(ShaderChecks::On), logits(ShaderChecks::Off));
    for (i, path) in ["prefill", "decode"].iter().enumerate() {
        let err = common::rel_err(&on[i], &g.logits);
        assert!(err <= common::TOL, "{name} {path}, checked: max|err|/std = {err:.3e}");
        // On lavapipe (Mesa 22.3) prefill came out bit for bit the same and decode in the
        // last bits (3.4e-6 of the std, while two checked runs repeat bit for bit): the
        // unchecked SPIR-V compiles to different code (which float operation it rounds
        // differently is not pinned down). An index out of range would be off by far more.
        let differ = on[i].iter().zip(&off[i]).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        let err = common::rel_err(&off[i], &on[i]);
        assert!(err <= 1e-5, "{name} {path}: {differ} of {} logits differ between checked and unchecked kernels, max|err|/std {err:.3e}", on[i].len());
    }
}
