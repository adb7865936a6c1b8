//! Routing data as the views and the exporter see it: plain shapes and per-position routes,
//! no egui and no GPU. Keeping this separate lets the views be tested at R1's shape
//! (58 MoE layers × 256 experts) with synthetic data, without a model of that size.

use deepseek_wgpu::session::LayerRoute;
use serde::Serialize;

/// The MoE shape the routing views draw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoutingShape {
    /// model layer index of each MoE layer, in order (rows of the heatmaps)
    pub layers: Vec<usize>,
    /// routed experts per layer (columns)
    pub n_experts: usize,
    /// expert groups for group-limited routing: `n_group` contiguous blocks of
    /// `n_experts / n_group` experts (1 = no grouping)
    pub n_group: usize,
    /// groups the gate may pick from per token
    pub topk_group: usize,
    /// experts chosen per token per layer
    pub top_k: usize,
}

impl RoutingShape {
    pub fn group_size(&self) -> usize {
        (self.n_experts / self.n_group.max(1)).max(1)
    }

    pub fn group_of(&self, expert: usize) -> usize {
        expert / self.group_size()
    }

    /// Whether groups are worth drawing (more than one group that divides the experts evenly).
    pub fn grouped(&self) -> bool {
        self.n_group > 1 && self.n_experts.is_multiple_of(self.n_group)
    }
}

/// The routes of one position as it went through the model.
#[derive(Clone, Debug, Serialize)]
pub struct PositionRoute {
    pub position: usize,
    pub token: u32,
    /// the token decoded on its own (a byte-level piece may be a partial character)
    pub text: String,
    /// one entry per MoE layer, in `RoutingShape::layers` order
    pub layers: Vec<LayerRoute>,
}

impl PositionRoute {
    /// The expert with the largest gate weight in MoE row `row` (the choice order of the gate
    /// is not always by weight).
    pub fn top1(&self, row: usize) -> Option<u32> {
        let r = self.layers.get(row)?;
        r.experts.iter().zip(&r.weights).max_by(|a, b| a.1.total_cmp(b.1)).map(|(e, _)| *e)
    }

    /// Selected groups of MoE row `row` (a group is selected when any chosen expert is in it).
    pub fn selected_groups(&self, row: usize, shape: &RoutingShape) -> Vec<bool> {
        let mut g = vec![false; shape.n_group.max(1)];
        if let Some(r) = self.layers.get(row) {
            for &e in &r.experts {
                if let Some(s) = g.get_mut(shape.group_of(e as usize)) {
                    *s = true;
                }
            }
        }
        g
    }
}

/// Balance of one layer's cumulative load.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Balance {
    /// expert picks counted (tokens × top-k)
    pub picks: u64,
    /// busiest expert's load over the mean load (1 = perfectly even)
    pub max_over_mean: f64,
    /// coefficient of variation of the loads (std / mean; 0 = even)
    pub cv: f64,
    /// entropy of the load distribution over ln(n_experts) (1 = even, 0 = one expert)
    pub entropy: f64,
}

impl Balance {
    pub fn of(loads: &[u32]) -> Balance {
        let n = loads.len();
        let picks: u64 = loads.iter().map(|&c| c as u64).sum();
        if n == 0 || picks == 0 {
            return Balance::default();
        }
        let mean = picks as f64 / n as f64;
        let max = loads.iter().copied().max().unwrap_or(0) as f64;
        let var = loads.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let h: f64 = loads
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / picks as f64;
                -p * p.ln()
            })
            .sum();
        let entropy = if n > 1 { h / (n as f64).ln() } else { 1.0 };
        Balance { picks, max_over_mean: max / mean, cv: var.sqrt() / mean, entropy }
    }
}

/// The routing of every position of the conversation (what the latent cache holds), and the
/// cumulative expert load it adds up to.
#[derive(Clone, Debug)]
pub struct Trace {
    pub shape: RoutingShape,
    /// sorted by position; a turn that re-feeds from position p replaces everything from p on
    pub positions: Vec<PositionRoute>,
    /// `[MoE row][expert]` picks over `positions`
    pub load: Vec<Vec<u32>>,
    /// with routed experts beyond GPU memory: per MoE row, the experts on the GPU after the
    /// last reply (the engine's expert cache); `None`: all of them
    pub resident: Option<Vec<Vec<u32>>>,
    /// a new value (unique across traces) after every change, so views can cache what they
    /// derive from the trace
    revision: u64,
}

impl Trace {
    pub fn new(shape: RoutingShape) -> Self {
        let load = vec![vec![0; shape.n_experts]; shape.layers.len()];
        Trace { shape, positions: Vec::new(), load, resident: None, revision: next_revision() }
    }

    pub fn clear(&mut self) {
        self.revision = next_revision();
        self.positions.clear();
        self.load.iter_mut().for_each(|row| row.fill(0));
    }

    /// Add a position's routing. Anything at or after its position came from an earlier
    /// version of the conversation (regenerate, edit) and is dropped first.
    pub fn push(&mut self, route: PositionRoute) {
        self.truncate(route.position);
        self.revision = next_revision();
        self.count(&route, true);
        self.positions.push(route);
    }

    /// Drop the routes of positions ≥ `position`.
    pub fn truncate(&mut self, position: usize) {
        let keep = self.positions.partition_point(|p| p.position < position);
        let dropped: Vec<PositionRoute> = self.positions.drain(keep..).collect();
        if !dropped.is_empty() {
            self.revision = next_revision();
        }
        for r in &dropped {
            self.count(r, false);
        }
    }

    fn count(&mut self, route: &PositionRoute, add: bool) {
        for (row, lr) in route.layers.iter().enumerate() {
            let Some(loads) = self.load.get_mut(row) else { continue };
            for &e in &lr.experts {
                if let Some(c) = loads.get_mut(e as usize) {
                    *c = if add { *c + 1 } else { c.saturating_sub(1) };
                }
            }
        }
    }

    /// Changes whenever the positions do (a trace with the same revision holds the same routes).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, position: usize) -> Option<&PositionRoute> {
        self.positions.binary_search_by_key(&position, |p| p.position).ok().map(|i| &self.positions[i])
    }

    pub fn last(&self) -> Option<&PositionRoute> {
        self.positions.last()
    }

    pub fn balance(&self, row: usize) -> Balance {
        self.load.get(row).map(|l| Balance::of(l)).unwrap_or_default()
    }

    /// A group-limited random trace of the given shape, for testing and demonstrating the
    /// views without a model of that size. Deterministic for a seed.
    pub fn synthetic(shape: RoutingShape, n_positions: usize, seed: u64) -> Trace {
        let mut rng = SplitMix(seed);
        let mut t = Trace::new(shape.clone());
        let gs = shape.group_size();
        for pos in 0..n_positions {
            let layers = shape
                .layers
                .iter()
                .enumerate()
                .map(|(row, &layer)| {
                    // Skewed preferences per layer so the load views have something to show.
                    let mut groups: Vec<usize> = (0..shape.n_group.max(1)).collect();
                    shuffle(&mut groups, &mut rng);
                    groups.truncate(shape.topk_group.clamp(1, shape.n_group.max(1)));
                    let mut experts = Vec::with_capacity(shape.top_k);
                    let mut guard = 0;
                    while experts.len() < shape.top_k.min(groups.len() * gs) && guard < 10_000 {
                        guard += 1;
                        let g = groups[(rng.next() % groups.len() as u64) as usize];
                        let hot = (row * 7 + g * 3) % gs;
                        let off = if rng.unit() < 0.5 { (hot + (rng.next() % 3) as usize) % gs } else { (rng.next() % gs as u64) as usize };
                        let e = (g * gs + off) as u32;
                        if !experts.contains(&e) {
                            experts.push(e);
                        }
                    }
                    let raw: Vec<f32> = experts.iter().map(|_| 0.05 + rng.unit() as f32).collect();
                    let sum: f32 = raw.iter().sum();
                    let weights = raw.iter().map(|w| w / sum).collect();
                    LayerRoute { layer, experts, weights }
                })
                .collect();
            t.push(PositionRoute { position: pos, token: (rng.next() % 1000) as u32, text: format!("t{pos}"), layers });
        }
        t
    }
}

fn next_revision() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// DeepSeek-R1's MoE shape: layers 3..61 are MoE, 256 experts in 8 groups, 4 groups and 8
/// experts per token.
pub fn r1_shape() -> RoutingShape {
    RoutingShape { layers: (3..61).collect(), n_experts: 256, n_group: 8, topk_group: 4, top_k: 8 }
}

/// Small deterministic generator (no dependency needed for synthetic data).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn shuffle<T>(v: &mut [T], rng: &mut SplitMix) {
    for i in (1..v.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_figures() {
        let even = Balance::of(&[5, 5, 5, 5]);
        assert!((even.max_over_mean - 1.0).abs() < 1e-12 && even.cv.abs() < 1e-12 && (even.entropy - 1.0).abs() < 1e-12);
        let one = Balance::of(&[0, 0, 8, 0]);
        assert!((one.max_over_mean - 4.0).abs() < 1e-12 && one.entropy.abs() < 1e-12);
        assert_eq!(Balance::of(&[0, 0]), Balance::default());
    }

    #[test]
    fn push_replaces_later_positions_and_keeps_load_consistent() {
        let shape = RoutingShape { layers: vec![1, 2], n_experts: 8, n_group: 2, topk_group: 1, top_k: 2 };
        let mut t = Trace::synthetic(shape.clone(), 10, 7);
        assert_eq!(t.balance(0).picks, 20);
        let route = t.positions[3].clone();
        t.push(PositionRoute { position: 4, ..route });
        assert_eq!(t.positions.len(), 5);
        assert_eq!(t.balance(1).picks, 10);
        let fresh = {
            let mut f = Trace::new(shape);
            for p in &t.positions {
                f.push(p.clone());
            }
            f
        };
        assert_eq!(fresh.load, t.load);
    }

    #[test]
    fn synthetic_r1_routes_are_group_limited() {
        let shape = r1_shape();
        let t = Trace::synthetic(shape.clone(), 20, 1);
        for p in &t.positions {
            assert_eq!(p.layers.len(), 58);
            for (row, l) in p.layers.iter().enumerate() {
                assert_eq!(l.experts.len(), 8);
                let groups = p.selected_groups(row, &shape).iter().filter(|&&s| s).count();
                assert!(groups <= 4, "{groups} groups");
            }
        }
    }
}
