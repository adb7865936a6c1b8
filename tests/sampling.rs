//! GPU sampling: exact top-k / top-p / min-p / penalty masks on fixed logits, greedy ties,
//! and sampled frequencies that match the softmax within a statistical bound.

use deepseek_wgpu::gpu::{Gpu, GpuOptions, Recorder};
use deepseek_wgpu::ops::sample;
use deepseek_wgpu::sampling::SampleParams;
use deepseek_wgpu::ops::{Kernels, Rows};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Fixture {
    g: Gpu,
    k: Kernels,
}

impl Fixture {
    fn new() -> Self {
        let g = Gpu::new(&GpuOptions::default()).expect("GPU tests need a wgpu adapter");
        let k = Kernels::new(&g).unwrap();
        Fixture { g, k }
    }

    /// One draw per `u`; returns (id, threshold key, survivors) per draw.
    fn run(&self, logits: &[f32], s: &SampleParams, pen: &[u32], us: &[f32]) -> Vec<[u32; 3]> {
        self.run_masked(logits, s, pen, None, us)
    }

    /// [`Fixture::run`] with a grammar's token mask (bits, ceil(vocab / 32) words).
    fn run_masked(&self, logits: &[f32], s: &SampleParams, pen: &[u32], mask: Option<&[u32]>, us: &[f32]) -> Vec<[u32; 3]> {
        let s = &s.filter().unwrap();
        let mb = self.g.storage_init("mask", bytemuck::cast_slice(mask.unwrap_or(&[0u32])));
        let mask = Rows::new(&mb, mask.map_or(0, |m| m.len()), 1);
        let lb = self.g.storage_init("logits", bytemuck::cast_slice(logits));
        let pb = self.g.storage_init("pen", bytemuck::cast_slice(if pen.is_empty() { &[0u32] } else { pen }));
        let out = self.g.storage("out", (us.len() * 16) as u64);
        let mut rec = Recorder::new(&self.g);
        for (i, u) in us.iter().enumerate() {
            let out_row = Rows::strided(&out, i * 4, 4, 4, 1);
            sample::run(&mut rec, &self.k, s, *u, Rows::new(&lb, logits.len(), 1), Rows::new(&pb, pen.len(), 1), mask, out_row);
        }
        rec.submit("sample test").unwrap();
        let o = self.g.read_u32(&out, 0, (us.len() * 4) as u64).unwrap();
        o.chunks(4).map(|c| [c[0], c[1], c[2]]).collect()
    }
}

fn logits(seed: u64, n: usize, amp: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * amp).collect()
}

#[test]
fn masks_match_transformers_semantics_exactly() {
    let f = Fixture::new();
    let l = logits(11, 1013, 6.0);
    let pen: Vec<u32> = vec![3, 17, 500, 1012, 64];
    let cases = [
        SampleParams { temperature: 1.0, top_k: 7, ..Default::default() },
        SampleParams { temperature: 0.7, top_p: 0.9, ..Default::default() },
        SampleParams { temperature: 1.3, min_p: 0.05, ..Default::default() },
        SampleParams { temperature: 0.6, top_k: 40, top_p: 0.95, min_p: 0.01, repeat_penalty: 1.0 },
        SampleParams { temperature: 1.0, top_k: 0, top_p: 0.5, min_p: 0.0, repeat_penalty: 1.5 },
        SampleParams { temperature: 2.0, top_k: 1013, top_p: 1.0, min_p: 0.0, repeat_penalty: 0.8 },
        SampleParams { temperature: 1.0, top_k: 1, ..Default::default() },
    ];
    for s in cases {
        let p = if s.repeat_penalty != 1.0 { &pen[..] } else { &[][..] };
        let r = f.run(&l, &s, p, &[0.5])[0];
        let (v, keep) = sample::reference(&l, &s.filter().unwrap(), p);
        let gpu_keep: Vec<bool> = v.iter().map(|x| sample::key(*x) >= r[1]).collect();
        let diff: Vec<usize> = (0..v.len()).filter(|&i| gpu_keep[i] != keep[i]).collect();
        assert!(diff.is_empty(), "{s:?}: masks differ at {diff:?}");
        assert_eq!(r[2] as usize, keep.iter().filter(|k| **k).count(), "{s:?}: survivor count");
        assert!(keep[r[0] as usize], "{s:?}: sampled a masked token {}", r[0]);
    }
}

#[test]
fn greedy_is_argmax_with_lowest_index_on_ties() {
    let f = Fixture::new();
    let mut l = logits(12, 129_280, 3.0);
    l[77_777] = 9.0;
    l[100_001] = 9.0;
    let r = f.run(&l, &SampleParams::greedy(), &[], &[0.3]);
    assert_eq!(r[0][0], 77_777);
    // The penalty applies before the argmax.
    let r = f.run(&l, &SampleParams { repeat_penalty: 2.0, ..SampleParams::greedy() }, &[77_777], &[0.3]);
    assert_eq!(r[0][0], 100_001);
}

#[test]
fn sampled_frequencies_follow_the_softmax() {
    let f = Fixture::new();
    let l = logits(13, 61, 2.5);
    let mut rng = StdRng::seed_from_u64(99);
    for s in [SampleParams { temperature: 0.8, ..Default::default() }, SampleParams { temperature: 1.2, top_k: 9, top_p: 0.9, ..Default::default() }] {
        let n = 6000;
        let us: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
        let draws = f.run(&l, &s, &[], &us);
        let (v, keep) = sample::reference(&l, &s.filter().unwrap(), &[]);
        let m = v.iter().cloned().fold(f32::MIN, f32::max);
        let z: f64 = (0..v.len()).filter(|&i| keep[i]).map(|i| ((v[i] - m) as f64).exp()).sum();
        let mut counts = vec![0usize; v.len()];
        for d in &draws {
            counts[d[0] as usize] += 1;
        }
        let mut chi2 = 0.0;
        let mut dof = 0;
        for i in 0..v.len() {
            let p = if keep[i] { ((v[i] - m) as f64).exp() / z } else { 0.0 };
            if p == 0.0 {
                assert_eq!(counts[i], 0, "{s:?}: token {i} is masked but was drawn");
                continue;
            }
            let e = p * n as f64;
            chi2 += (counts[i] as f64 - e).powi(2) / e;
            dof += 1;
        }
        // chi² with dof − 1 degrees of freedom; mean dof − 1, sd sqrt(2(dof − 1)); 6 sd is
        // far beyond chance yet catches any systematic error in the inverse CDF.
        let k = (dof - 1) as f64;
        assert!(chi2 < k + 6.0 * (2.0 * k).sqrt(), "{s:?}: chi² {chi2:.1} with {dof} categories");
    }
}

#[test]
fn same_uniform_same_token() {
    let f = Fixture::new();
    let l = logits(14, 4099, 4.0);
    let s = SampleParams { temperature: 0.6, top_p: 0.95, ..Default::default() };
    let a = f.run(&l, &s, &[], &[0.123, 0.9]);
    let b = f.run(&l, &s, &[], &[0.123, 0.9]);
    assert_eq!(a, b);
}

/// A grammar's mask: greedy and every filter setting pick only allowed tokens, however
/// large the masked logits; a draw over the allowed tokens follows their softmax alone.
#[test]
fn token_mask_is_honoured() {
    let f = Fixture::new();
    let n = 1013;
    let mut l = logits(15, n, 3.0);
    let allowed = [5usize, 77, 400, 401, 1012];
    let mut mask = vec![0u32; n.div_ceil(32)];
    for &i in &allowed {
        mask[i / 32] |= 1 << (i % 32);
    }
    // the likeliest tokens are all masked
    for i in [0, 6, 78, 402, 1000] {
        l[i] = 50.0;
    }
    l[401] = 2.5;
    let cases = [
        SampleParams::greedy(),
        SampleParams { temperature: 1.0, ..Default::default() },
        SampleParams { temperature: 0.7, top_k: 3, ..Default::default() },
        SampleParams { temperature: 1.0, top_k: 40, ..Default::default() },
        SampleParams { temperature: 1.0, top_p: 0.9, ..Default::default() },
        SampleParams { temperature: 1.0, min_p: 0.01, repeat_penalty: 1.3, ..Default::default() },
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for s in cases {
        let us: Vec<f32> = (0..200).map(|_| rng.random::<f32>()).chain([0.0, 0.999_999_9]).collect();
        let pen = if s.repeat_penalty != 1.0 { &[401u32, 6][..] } else { &[][..] };
        for d in f.run_masked(&l, &s, pen, Some(&mask), &us) {
            assert!(allowed.contains(&(d[0] as usize)), "{s:?}: drew the masked token {}", d[0]);
        }
    }
    assert_eq!(f.run_masked(&l, &SampleParams::greedy(), &[], Some(&mask), &[0.5])[0][0], 401);
    // without the mask the same logits give a masked token
    assert_eq!(f.run(&l, &SampleParams::greedy(), &[], &[0.5])[0][0], 0);
    // among the allowed tokens, draws follow their softmax
    let s = SampleParams { temperature: 1.0, ..Default::default() };
    let us: Vec<f32> = (0..3000).map(|_| rng.random::<f32>()).collect();
    let draws = f.run_masked(&l, &s, &[], Some(&mask), &us);
    let z: f64 = allowed.iter().map(|&i| (l[i] as f64).exp()).sum();
    for &i in &allowed {
        let seen = draws.iter().filter(|d| d[0] as usize == i).count() as f64 / us.len() as f64;
        let p = (l[i] as f64).exp() / z;
        assert!((seen - p).abs() < 0.04, "token {i}: drawn {seen:.3}, softmax over the allowed {p:.3}");
    }
}

#[test]
fn invalid_settings_are_rejected() {
    assert!(SampleParams { temperature: -1.0, ..Default::default() }.validate().unwrap_err().contains("temperature"));
    assert!(SampleParams { top_p: 0.0, ..Default::default() }.validate().unwrap_err().contains("top-p"));
    assert!(SampleParams { top_p: 1.5, ..Default::default() }.validate().unwrap_err().contains("top-p"));
    assert!(SampleParams { min_p: 1.0, ..Default::default() }.validate().unwrap_err().contains("min-p"));
    assert!(SampleParams { repeat_penalty: 0.0, ..Default::default() }.validate().unwrap_err().contains("penalty"));
    assert!(SampleParams::default().validate().is_ok());
}
