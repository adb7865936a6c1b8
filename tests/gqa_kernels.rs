//! Grouped-query attention (`ops::gqa_attn`) against its CPU reference: decode steps whose
//! keys are cut into several splits, prefills tiled over query tokens, GQA / MHA / MQA head
//! shapes, on the default device (the flash-decoding kernel where it has subgroups) and on one
//! without subgroups (the portable kernel). GPU tests: they fail loudly when no adapter exists.

mod common;

use common::{assert_close, gpu_with, rnd, upload};
use deepseek_wgpu::gpu::{Gpu, Recorder};
use deepseek_wgpu::ops::gqa_attn::{self, Shape};
use deepseek_wgpu::ops::{matmul, Kernels, Rows};
use rand::rngs::StdRng;
use rand::SeedableRng;

const CTX: usize = 2048;

/// (heads, kv_heads, head_dim): tiny test model, Qwen3-8B, MHA, MQA, a head of 18 words (not
/// a whole number of lane words), and one the fast kernel refuses (not whole 16-byte words).
const SHAPES: [(usize, usize, usize); 6] = [(4, 2, 64), (32, 8, 128), (8, 8, 64), (6, 1, 128), (5, 5, 72), (3, 1, 70)];

/// (pos0, n_tok, q amplitude): decode steps with 1, 1, 4 and 16 splits (large scores in one),
/// prefills of 1, 3, 17 and 64 tokens at position 0 and later (62, 3: a split that holds keys
/// for the last token only), and queries at the end of the cache.
const CASES: [(usize, usize, f32); 14] = [
    (0, 1, 1.0),
    (5, 1, 1.0),
    (200, 1, 20.0),
    (1500, 1, 1.0),
    (0, 3, 1.0),
    (0, 17, 1.0),
    (0, 64, 1.0),
    (90, 1, 1.0),
    (90, 3, 1.0),
    (90, 17, 1.0),
    (62, 3, 1.0),
    (300, 64, 1.0),
    (2047, 1, 1.0),
    (2031, 17, 4.0),
];

/// Run `f` with per-dispatch profiling and return the kernel labels it dispatched.
fn kernels_used(g: &Gpu, f: impl FnOnce()) -> Vec<String> {
    assert!(g.start_profile(), "lavapipe and GPUs report timestamps");
    f();
    g.take_profile().unwrap().dispatches.into_iter().map(|d| d.0).collect()
}

/// Every case on every shape; checks which kernels ran: `fast` says the split kernel is
/// expected for shapes of whole 16-byte words.
fn check_all(g: &Gpu, k: &Kernels, seed: u64, fast: bool, cases: &[(usize, usize, f32)]) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (heads, kv_heads, head_dim) in SHAPES {
        let s = Shape { heads, kv_heads, head_dim };
        // Every row of the cache is filled, so a key read past a query's position shows.
        let cache = rnd(&mut rng, 2 * CTX * kv_heads * head_dim, 1.0);
        let cb = upload(g, &cache);
        for &(pos0, n_tok, amp) in cases {
            let what = format!("gqa {s:?} pos0 {pos0} n_tok {n_tok} amp {amp}");
            let w = heads * head_dim;
            let q = rnd(&mut rng, n_tok * w, amp);
            let qb = upload(g, &q);
            let out = g.storage("out", (n_tok * w * 4) as u64);
            let used = kernels_used(g, || {
                let mut rec = Recorder::new(g);
                gqa_attn::run(&mut rec, k, s, 1.0 / (head_dim as f32).sqrt(), pos0, CTX, Rows::new(&qb, w, n_tok), &cb, Rows::new(&out, w, n_tok));
                rec.submit("test").unwrap();
            });
            if fast && head_dim % 4 == 0 {
                assert!(used.iter().any(|l| l.starts_with("gqa_attn/split")), "{what}: {used:?}");
                let splits = used.iter().any(|l| l.starts_with("gqa_attn/combine"));
                assert_eq!(splits, pos0 + n_tok > 64 && n_tok < 4, "{what}: {used:?}");
            } else {
                assert_eq!(used, ["gqa_attn/main"], "{what}");
            }
            let got = g.read_f32(&out, 0, (n_tok * w) as u64).unwrap();
            let want = gqa_attn::reference(s, 1.0 / (head_dim as f32).sqrt(), pos0, n_tok, CTX, &q, &cache);
            assert_close(&what, &got, &want, 1e-5, 1e-4);
        }
    }
}

/// The flash-decoding kernel and its prefill tiles where the adapter has subgroups of a fixed
/// size (lavapipe, most GPUs); else the portable kernel again.
#[test]
fn gqa_attention_default_device() {
    let g = gpu_with(None);
    let k = Kernels::new(&g).unwrap();
    check_all(&g, &k, 1, k.tune().subgroups, &CASES);
}

#[test]
fn gqa_attention_without_subgroups() {
    let mut g = gpu_with(None);
    g.features.remove(wgpu::Features::SUBGROUP);
    let k = Kernels::new(&g).unwrap();
    assert!(!k.tune().subgroups);
    check_all(&g, &k, 2, false, &CASES);
}

/// Prefill tiles of other widths than the default (tune.attn_tt: 1, an odd 3, the most, 8).
#[test]
fn gqa_prefill_tile_widths() {
    let g = gpu_with(None);
    let base = Kernels::new(&g).unwrap();
    for attn_tt in [1, 3, 8] {
        let k = Kernels::with_tune(&g, matmul::Tune { attn_tt, ..base.tune() }).unwrap();
        check_all(&g, &k, 3 + attn_tt as u64, k.tune().subgroups, &[(0, 17, 1.0), (90, 64, 1.0)]);
    }
}

/// q as the first columns of fused qkv rows and out at an offset with a wider stride: the
/// kernels take strided views.
#[test]
fn gqa_attention_strided_views() {
    let mut rng = StdRng::seed_from_u64(9);
    for subgroups in [true, false] {
        let mut g = gpu_with(None);
        if !subgroups {
            g.features.remove(wgpu::Features::SUBGROUP);
        }
        let (g, k) = (&g, Kernels::new(&g).unwrap());
        let s = Shape { heads: 4, kv_heads: 2, head_dim: 64 };
        let (w, qkv_w, o_off, o_stride) = (256, 512, 12, 300);
        let ctx = 128;
        let cache = rnd(&mut rng, 2 * ctx * 2 * 64, 1.0);
        let cb = upload(g, &cache);
        for (pos0, n_tok) in [(70, 1), (10, 9)] {
            let qkv = rnd(&mut rng, n_tok * qkv_w, 1.0);
            let qb = upload(g, &qkv);
            let out = g.storage("out", ((o_off + n_tok * o_stride) * 4) as u64);
            let mut rec = Recorder::new(g);
            let q = Rows::new(&qb, qkv_w, n_tok).cols(0, w);
            gqa_attn::run(&mut rec, &k, s, 0.125, pos0, ctx, q, &cb, Rows::strided(&out, o_off, o_stride, w, n_tok));
            rec.submit("test").unwrap();
            let got = g.read_f32(&out, 0, (o_off + n_tok * o_stride) as u64).unwrap();
            let q_dense: Vec<f32> = qkv.chunks(qkv_w).flat_map(|r| r[..w].to_vec()).collect();
            let want = gqa_attn::reference(s, 0.125, pos0, n_tok, ctx, &q_dense, &cache);
            for t in 0..n_tok {
                let what = format!("strided subgroups {subgroups} pos0 {pos0} token {t}");
                assert_close(&what, &got[o_off + t * o_stride..][..w], &want[t * w..][..w], 1e-5, 1e-4);
            }
        }
    }
}
