//! Questions asked of a routing trace, as plain data (no egui), so they are tested on their own
//! and the views only draw them:
//!
//! * [`expert_hits`]: which tokens of the conversation an expert of one layer took, with the
//!   gate weight and rank it got for each;
//! * [`CoActivation`]: per layer, how often each pair of experts was chosen for the same
//!   token, and how that compares with chance (lift);
//! * [`Comparison`]: the expert load of two spans of the conversation (a prompt, a reply)
//!   side by side, their difference and per-layer overlap.

use std::ops::Range;

use crate::routing::Trace;

/// One token an expert took.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpertHit {
    /// index into `Trace::positions`
    pub index: usize,
    pub position: usize,
    /// the expert's place in the gate's choice order (0 = first)
    pub rank: usize,
    pub weight: f32,
}

/// Every position whose routing at MoE row `row` chose `expert`, in position order.
pub fn expert_hits(trace: &Trace, row: usize, expert: usize) -> Vec<ExpertHit> {
    trace
        .positions
        .iter()
        .enumerate()
        .filter_map(|(index, p)| {
            let l = p.layers.get(row)?;
            let rank = l.experts.iter().position(|&e| e as usize == expert)?;
            Some(ExpertHit { index, position: p.position, rank, weight: l.weights.get(rank).copied().unwrap_or(0.0) })
        })
        .collect()
}

/// How often experts of one layer were chosen together for the same token.
#[derive(Clone, Debug, PartialEq)]
pub struct CoActivation {
    pub row: usize,
    pub n_experts: usize,
    /// tokens counted
    pub tokens: usize,
    /// `n_experts × n_experts`, symmetric; the diagonal holds each expert's own picks
    pub counts: Vec<u32>,
}

impl CoActivation {
    /// Count the pairs of MoE row `row` over every position of the trace
    /// (tokens × top-k·(top-k−1)/2 increments: ≈ 115 k for 4096 R1 tokens).
    pub fn of(trace: &Trace, row: usize) -> CoActivation {
        let n = trace.shape.n_experts;
        let mut counts = vec![0u32; n * n];
        let mut tokens = 0;
        for p in &trace.positions {
            let Some(l) = p.layers.get(row) else { continue };
            tokens += 1;
            let es: Vec<usize> = l.experts.iter().map(|&e| e as usize).filter(|&e| e < n).collect();
            for (k, &a) in es.iter().enumerate() {
                counts[a * n + a] += 1;
                for &b in &es[k + 1..] {
                    counts[a * n + b] += 1;
                    counts[b * n + a] += 1;
                }
            }
        }
        CoActivation { row, n_experts: n, tokens, counts }
    }

    pub fn get(&self, a: usize, b: usize) -> u32 {
        self.counts.get(a * self.n_experts + b).copied().unwrap_or(0)
    }

    /// Tokens that chose `a` and `b` over what independent choices would give
    /// (`picks(a)·picks(b)/tokens`): 1 = chance, > 1 = they fire together more often.
    pub fn lift(&self, a: usize, b: usize) -> f64 {
        let expected = self.get(a, a) as f64 * self.get(b, b) as f64 / self.tokens.max(1) as f64;
        if expected > 0.0 {
            self.get(a, b) as f64 / expected
        } else {
            0.0
        }
    }

    /// The largest off-diagonal count.
    pub fn max_pair(&self) -> u32 {
        let n = self.n_experts;
        (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b))).map(|(a, b)| self.get(a, b)).max().unwrap_or(0)
    }

    /// The `k` pairs chosen together most often: (a, b, count, lift), a < b.
    pub fn top_pairs(&self, k: usize) -> Vec<(usize, usize, u32, f64)> {
        let n = self.n_experts;
        let mut v: Vec<(usize, usize, u32, f64)> = (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b))).filter_map(|(a, b)| (self.get(a, b) > 0).then(|| (a, b, self.get(a, b), self.lift(a, b)))).collect();
        v.sort_by(|x, y| y.2.cmp(&x.2).then(y.3.total_cmp(&x.3)));
        v.truncate(k);
        v
    }
}

/// A stretch of the conversation to compare: a turn's prompt or a reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub label: String,
    /// positions
    pub range: Range<usize>,
}

/// Expert picks per layer over a span.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanLoad {
    /// routed positions inside the span
    pub tokens: usize,
    /// `[MoE row][expert]`
    pub load: Vec<Vec<u32>>,
    /// picks per row (the sum of `load[row]`)
    pub totals: Vec<u64>,
}

impl SpanLoad {
    pub fn of(trace: &Trace, range: &Range<usize>) -> SpanLoad {
        let mut load = vec![vec![0u32; trace.shape.n_experts]; trace.shape.layers.len()];
        let first = trace.positions.partition_point(|p| p.position < range.start);
        let mut tokens = 0;
        for p in trace.positions[first..].iter().take_while(|p| p.position < range.end) {
            tokens += 1;
            for (row, l) in p.layers.iter().enumerate() {
                let Some(r) = load.get_mut(row) else { continue };
                for &e in &l.experts {
                    if let Some(c) = r.get_mut(e as usize) {
                        *c += 1;
                    }
                }
            }
        }
        let totals = load.iter().map(|r| r.iter().map(|&c| c as u64).sum()).collect();
        SpanLoad { tokens, load, totals }
    }

    /// Share of the row's picks that went to `expert` (0 when the row has none).
    pub fn share(&self, row: usize, expert: usize) -> f64 {
        match (self.load.get(row), self.totals.get(row)) {
            (Some(r), Some(&total)) if total > 0 => r.get(expert).copied().unwrap_or(0) as f64 / total as f64,
            _ => 0.0,
        }
    }
}

/// Two spans' routing side by side.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub a: SpanLoad,
    pub b: SpanLoad,
    /// per layer: `share_a − share_b` per expert
    pub diff: Vec<Vec<f64>>,
    /// per layer: Σ min(share_a, share_b), 1 = the same experts in the same proportions, 0 = disjoint
    pub overlap: Vec<f64>,
}

impl Comparison {
    pub fn of(trace: &Trace, a: &Range<usize>, b: &Range<usize>) -> Comparison {
        let (a, b) = (SpanLoad::of(trace, a), SpanLoad::of(trace, b));
        let rows = trace.shape.layers.len();
        let n = trace.shape.n_experts;
        let diff: Vec<Vec<f64>> = (0..rows).map(|r| (0..n).map(|e| a.share(r, e) - b.share(r, e)).collect()).collect();
        let overlap = (0..rows).map(|r| (0..n).map(|e| a.share(r, e).min(b.share(r, e))).sum()).collect();
        Comparison { a, b, diff, overlap }
    }

    /// Largest |difference| of any cell (the colour scale's end).
    pub fn max_abs_diff(&self) -> f64 {
        self.diff.iter().flatten().fold(0.0f64, |m, d| m.max(d.abs()))
    }

    /// The layers whose routing differs most (smallest overlap first): (row, overlap).
    pub fn most_different(&self, k: usize) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self.overlap.iter().copied().enumerate().filter(|(r, _)| self.a.totals[*r] > 0 && self.b.totals[*r] > 0).collect();
        v.sort_by(|x, y| x.1.total_cmp(&y.1));
        v.truncate(k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{r1_shape, RoutingShape};

    #[test]
    fn hits_coactivation_and_comparison_agree_with_brute_force() {
        let shape = RoutingShape { layers: vec![1, 2, 3], n_experts: 16, n_group: 4, topk_group: 2, top_k: 3 };
        let t = Trace::synthetic(shape, 60, 5);
        for row in 0..3 {
            for e in 0..16 {
                let hits = expert_hits(&t, row, e);
                assert_eq!(hits.len() as u32, t.load[row][e], "hits of row {row} expert {e} = its load");
                for h in &hits {
                    let l = &t.positions[h.index].layers[row];
                    assert_eq!(l.experts[h.rank] as usize, e);
                    assert_eq!(l.weights[h.rank], h.weight);
                }
            }
            let c = CoActivation::of(&t, row);
            for a in 0..16 {
                assert_eq!(c.get(a, a), t.load[row][a]);
                for b in 0..16 {
                    let both = t.positions.iter().filter(|p| {
                        let es = &p.layers[row].experts;
                        a != b && es.contains(&(a as u32)) && es.contains(&(b as u32))
                    });
                    if a != b {
                        assert_eq!(c.get(a, b) as usize, both.count(), "pair {a},{b}");
                    }
                }
            }
            let pairs: u64 = (0..16).flat_map(|a| (a + 1..16).map(move |b| (a, b))).map(|(a, b)| c.get(a, b) as u64).sum();
            assert_eq!(pairs, 60 * 3, "top-3 gives 3 pairs per token");
        }
        let cmp = Comparison::of(&t, &(0..30), &(30..60));
        assert_eq!((cmp.a.tokens, cmp.b.tokens), (30, 30));
        let same = Comparison::of(&t, &(0..60), &(0..60));
        assert!(same.overlap.iter().all(|o| (o - 1.0).abs() < 1e-9) && same.max_abs_diff() == 0.0);
        for row in 0..3 {
            let sum: f64 = cmp.diff[row].iter().sum();
            assert!(sum.abs() < 1e-9, "shares of both spans sum to 1");
        }
    }

    #[test]
    fn lift_is_one_for_independent_experts_and_comparison_finds_changed_layers() {
        // 4 tokens: experts 0 and 1 always together, 2 and 3 in half of them.
        let shape = RoutingShape { layers: vec![0], n_experts: 4, n_group: 1, topk_group: 1, top_k: 2 };
        let mut t = Trace::new(shape);
        for (pos, es) in [[0u32, 1], [0, 1], [2, 3], [2, 3]].into_iter().enumerate() {
            let layers = vec![deepseek_wgpu::session::LayerRoute { layer: 0, experts: es.to_vec(), weights: vec![0.5, 0.5] }];
            t.push(crate::routing::PositionRoute { position: pos, token: 0, text: String::new(), layers });
        }
        let c = CoActivation::of(&t, 0);
        assert_eq!((c.get(0, 1), c.lift(0, 1), c.lift(0, 2)), (2, 2.0, 0.0));
        assert_eq!(c.top_pairs(5).len(), 2);
        // R1 shape: a span whose rows 20..30 use other experts differs most in those rows.
        let mut t = Trace::synthetic(r1_shape(), 800, 9);
        let moved = t.positions[400..].to_vec();
        t.truncate(400);
        for mut p in moved {
            for row in 20..30 {
                for e in &mut p.layers[row].experts {
                    *e = (*e + 16) % 256;
                }
            }
            t.push(p);
        }
        let cmp = Comparison::of(&t, &(0..400), &(400..800));
        let worst: Vec<usize> = cmp.most_different(10).into_iter().map(|(r, _)| r).collect();
        assert!(worst.iter().all(|r| (20..30).contains(r)), "rows 20..30 differ most: {worst:?}");
    }
}
