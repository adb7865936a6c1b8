//! Routed experts beyond GPU memory: when the model does not fit the memory budget
//! (`--gpu-memory`), each MoE layer's expert pools on the GPU hold only `slots` experts (an
//! expert cache) and every expert stays readable in host memory (the checkpoint's mmap, no
//! copy). A chunk's MoE layer then runs in three steps: the router and the gate on the GPU,
//! the chosen ids read back, and the experts computed from the cache after the missing ones
//! were uploaded into slots chosen by the [`Policy`]. A chunk that needs more distinct experts
//! than there are slots (a long prefill) runs in waves: each wave's items see their expert's
//! slot and their gate weight, the other items weight 0, and `moe_combine` adds each wave.
//!
//! Why upload on demand rather than compute misses on the CPU (llama.cpp's `-ot exps=CPU`,
//! ktransformers): see docs/R1_ON_A_WORKSTATION.md, "Expert cache". In short: an uploaded
//! expert serves every later token that picks it while it stays resident, routing is skewed
//! enough that the cache keeps most picks, and the result is the GPU kernels' own, bit for
//! bit, whatever the placement.

use std::sync::Mutex;

use crate::checkpoint::HostBytes;
use crate::gpu::Gpu;
use crate::tensor::Matrix;

/// How the expert cache chooses what stays on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// least frequently used by routing: every pick adds 1 to the expert's score, scores decay
    /// by [`DECAY`] per token, and a miss evicts the resident expert of lowest score that the
    /// current wave does not need
    Lfu,
    /// experts `0 .. slots - top_k` stay resident for good (llama.cpp's static placement); the
    /// last `top_k` slots take the misses in turn
    Static,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Lfu => "lfu",
            Policy::Static => "static",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lfu" => Ok(Policy::Lfu),
            "static" => Ok(Policy::Static),
            _ => Err(format!("expert cache policy {s:?}: expected lfu or static")),
        }
    }
}

/// Score decay per token fed: a pick 70 tokens ago counts half.
pub const DECAY: f32 = 0.99;

/// The expert cache a load asks for: `slots` experts per MoE layer on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpertCache {
    pub slots: usize,
    pub policy: Policy,
}

/// Where a model's bytes go under a memory budget (see [`super::load::placement`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// every weight that is not a routed expert
    pub fixed_weights: u64,
    /// all routed experts of all layers
    pub expert_weights: u64,
    /// one expert's gate + up + down (every MoE layer has the same)
    pub bytes_per_expert: u64,
    pub n_moe_layers: usize,
    pub n_routed: usize,
    /// the KV cache at the load's `max_ctx`
    pub cache: u64,
    pub activations: u64,
    /// the budget the plan was made for (`None`: unknown, everything resident)
    pub budget: Option<u64>,
    /// `None`: every expert resident; else the expert cache
    pub expert_cache: Option<ExpertCache>,
}

impl Placement {
    /// Bytes the plan puts on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        let experts = match self.expert_cache {
            None => self.expert_weights,
            Some(c) => self.bytes_per_expert * (c.slots * self.n_moe_layers) as u64,
        };
        self.fixed_weights + experts + self.cache + self.activations
    }
}

/// One matrix kind (gate, up or down) of one layer's experts in host memory.
pub struct HostPool {
    /// per expert: its packed bytes
    pub mats: Vec<HostBytes>,
    /// per expert: its FP8 block scales, `[s_rows][s_cols]` f32 each
    pub scales: Option<Vec<Vec<f32>>>,
}

/// Counters of one MoE layer's expert cache since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerStats {
    /// (token, expert) picks
    pub picks: u64,
    /// picks whose expert was resident when the chunk reached the layer
    pub hits: u64,
    /// experts uploaded
    pub uploads: u64,
    /// bytes uploaded
    pub bytes: u64,
    /// extra passes over the layer's items because a chunk needed more experts than slots
    pub extra_waves: u64,
}

impl LayerStats {
    pub fn hit_rate(&self) -> f64 {
        if self.picks == 0 {
            1.0
        } else {
            self.hits as f64 / self.picks as f64
        }
    }
}

struct LayerCache {
    /// per slot: the expert it holds
    expert_of: Vec<u32>,
    /// per expert: its slot, when resident
    slot_of: Vec<Option<u32>>,
    score: Vec<f32>,
    /// Static: the next overflow slot to take
    next: usize,
    stats: LayerStats,
}

/// One pass of a layer's routed experts: every item's slot (items of other passes point at
/// any slot of this one) and weight (0 for items of other passes), and the uploads before it.
pub struct Wave {
    pub slot_ids: Vec<u32>,
    pub weights: Vec<f32>,
    /// (slot, expert)
    pub uploads: Vec<(u32, u32)>,
}

/// The offloaded experts of a model: host pools, the residency bookkeeping, the wave buffers.
pub struct Offload {
    pub res: Residency,
    /// per MoE layer: gate, up, down in host memory
    pub host: Vec<[HostPool; 3]>,
    /// [T·K] u32: the current wave's slot per item
    pub slot_ids: wgpu::Buffer,
    /// [T·K] f32: the current wave's gate weights
    pub weights: wgpu::Buffer,
}

/// Which expert each GPU slot holds, per MoE layer, and the routing scores that decide it.
pub struct Residency {
    pub cache: ExpertCache,
    top_k: usize,
    layers: Vec<Mutex<LayerCache>>,
}

impl Offload {
    pub fn new(gpu: &Gpu, cache: ExpertCache, top_k: usize, n_routed: usize, host: Vec<[HostPool; 3]>, max_items: usize) -> Self {
        Offload {
            res: Residency::new(cache, top_k, n_routed, host.len()),
            host,
            slot_ids: gpu.storage("expert cache slot ids", (max_items * 4) as u64),
            weights: gpu.storage("expert cache wave weights", (max_items * 4) as u64),
        }
    }

    /// Write expert `e` of layer `moe_i` into `slot` of the GPU pools `[gate, up, down]`.
    pub fn upload(&self, gpu: &Gpu, moe_i: usize, pools: [&Matrix; 3], slot: u32, e: u32) -> u64 {
        let mut bytes = 0;
        for (m, h) in pools.into_iter().zip(&self.host[moe_i]) {
            let src = &h.mats[e as usize];
            let row = src.len() / m.rows;
            // a pool's chunks hold whole experts; a one-slot pool is split by rows
            for c in m.chunks.iter().filter(|c| (c.e0..c.e1).contains(&(slot as usize))) {
                let part = &src[c.r0 * row..(c.r0 + c.rows) * row];
                gpu.queue.write_buffer(&c.buf, ((slot as usize - c.e0) * part.len()) as u64, part);
            }
            bytes += src.len() as u64;
            if let (Some(s), Some(hs)) = (&m.scale, &h.scales) {
                let v = &hs[e as usize];
                gpu.queue.write_buffer(&s.buf, (slot as usize * v.len() * 4) as u64, bytemuck::cast_slice(v));
                bytes += (v.len() * 4) as u64;
            }
        }
        self.res.layers[moe_i].lock().unwrap_or_else(|e| e.into_inner()).stats.bytes += bytes;
        bytes
    }
}

impl Residency {
    /// Slots `0..slots` hold experts `0..slots` at first.
    pub fn new(cache: ExpertCache, top_k: usize, n_routed: usize, n_layers: usize) -> Self {
        let layers = (0..n_layers)
            .map(|_| {
                let mut slot_of = vec![None; n_routed];
                for (s, e) in slot_of.iter_mut().enumerate().take(cache.slots) {
                    *e = Some(s as u32);
                }
                Mutex::new(LayerCache { expert_of: (0..cache.slots as u32).collect(), slot_of, score: vec![0.0; n_routed], next: 0, stats: LayerStats::default() })
            })
            .collect();
        Residency { cache, top_k, layers }
    }

    /// Slots that never take a miss (Static's pinned experts).
    fn pinned(&self) -> usize {
        match self.cache.policy {
            Policy::Lfu => 0,
            Policy::Static => self.cache.slots.saturating_sub(self.top_k.min(self.cache.slots)),
        }
    }

    /// The waves of MoE layer `moe_i` for a chunk of `ids`/`wts` (`[t][top_k]`), updating the
    /// cache's scores, residency and counters.
    pub fn plan(&self, moe_i: usize, ids: &[u32], wts: &[f32]) -> Vec<Wave> {
        let mut c = self.layers[moe_i].lock().unwrap_or_else(|e| e.into_inner());
        let t = ids.len() / self.top_k.max(1);
        let decay = DECAY.powi(t as i32);
        c.score.iter_mut().for_each(|s| *s *= decay);
        let mut needed: Vec<u32> = Vec::new();
        for &e in ids {
            c.score[e as usize] += 1.0;
            if !needed.contains(&e) {
                needed.push(e);
            }
        }
        c.stats.picks += ids.len() as u64;
        c.stats.hits += ids.iter().filter(|&&e| c.slot_of[e as usize].is_some()).count() as u64;
        // resident experts first, then the misses by falling score
        let score = c.score.clone();
        needed.sort_by(|a, b| {
            let (ra, rb) = (c.slot_of[*a as usize].is_some(), c.slot_of[*b as usize].is_some());
            rb.cmp(&ra).then(score[*b as usize].total_cmp(&score[*a as usize])).then(a.cmp(b))
        });
        let (slots, pinned) = (self.cache.slots, self.pinned());
        let mut waves = Vec::new();
        let mut rest = &needed[..];
        while !rest.is_empty() {
            let mut in_wave = vec![false; slots];
            let mut members = Vec::new();
            let mut uploads = Vec::new();
            for &e in rest {
                let slot = match c.slot_of[e as usize] {
                    Some(s) if !in_wave[s as usize] => s,
                    Some(_) => unreachable!("one expert, one slot"),
                    None => {
                        let Some(s) = self.victim(&c, &in_wave, pinned) else { break };
                        if self.cache.policy == Policy::Static {
                            c.next = (s as usize + 1 - pinned) % (slots - pinned);
                        }
                        let old = c.expert_of[s as usize];
                        c.slot_of[old as usize] = None;
                        c.slot_of[e as usize] = Some(s);
                        c.expert_of[s as usize] = e;
                        uploads.push((s, e));
                        s
                    }
                };
                in_wave[slot as usize] = true;
                members.push(e);
            }
            assert!(!members.is_empty(), "an expert cache of {slots} slots ({pinned} pinned) must take at least one expert per wave");
            rest = &rest[members.len()..];
            let any = c.slot_of[members[0] as usize].unwrap_or(0);
            let (mut slot_ids, mut weights) = (Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()));
            for (&e, &w) in ids.iter().zip(wts) {
                match c.slot_of[e as usize].filter(|s| in_wave[*s as usize]) {
                    Some(s) => {
                        slot_ids.push(s);
                        weights.push(w);
                    }
                    None => {
                        slot_ids.push(any);
                        weights.push(0.0);
                    }
                }
            }
            c.stats.uploads += uploads.len() as u64;
            waves.push(Wave { slot_ids, weights, uploads });
        }
        c.stats.extra_waves += waves.len().saturating_sub(1) as u64;
        waves
    }

    /// The slot a miss takes: not in the current wave, not pinned; Lfu: the lowest score,
    /// Static: the overflow slots in turn.
    fn victim(&self, c: &LayerCache, in_wave: &[bool], pinned: usize) -> Option<u32> {
        let free = |s: usize| s >= pinned && !in_wave[s];
        match self.cache.policy {
            Policy::Lfu => (0..in_wave.len()).filter(|&s| free(s)).min_by(|&a, &b| c.score[c.expert_of[a] as usize].total_cmp(&c.score[c.expert_of[b] as usize])).map(|s| s as u32),
            Policy::Static => {
                let n = in_wave.len() - pinned;
                (0..n).map(|i| pinned + (c.next + i) % n).find(|&s| free(s)).map(|s| s as u32)
            }
        }
    }

    /// Per MoE layer: the counters since the last [`Offload::reset_stats`].
    pub fn stats(&self) -> Vec<LayerStats> {
        self.layers.iter().map(|l| l.lock().unwrap_or_else(|e| e.into_inner()).stats).collect()
    }

    pub fn reset_stats(&self) {
        for l in &self.layers {
            l.lock().unwrap_or_else(|e| e.into_inner()).stats = LayerStats::default();
        }
    }

    /// Per MoE layer: the resident experts, by slot.
    pub fn resident(&self) -> Vec<Vec<u32>> {
        self.layers.iter().map(|l| l.lock().unwrap_or_else(|e| e.into_inner()).expert_of.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item lands in exactly one wave with its own weight, in a slot that holds its
    /// expert once that wave's uploads are done; the other items of a wave weigh 0.
    fn plan_checked(r: &Residency, ids: &[u32], wts: &[f32]) -> Vec<Wave> {
        let mut holder = r.resident()[0].clone();
        let waves = r.plan(0, ids, wts);
        let mut seen = vec![0; ids.len()];
        for w in &waves {
            for &(s, e) in &w.uploads {
                holder[s as usize] = e;
            }
            for (i, (&s, &wt)) in w.slot_ids.iter().zip(&w.weights).enumerate() {
                assert!((s as usize) < r.cache.slots);
                if wt != 0.0 {
                    assert_eq!((wt, holder[s as usize]), (wts[i], ids[i]), "item {i}");
                    seen[i] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "every item in exactly one wave: {seen:?}");
        assert_eq!(holder, r.resident()[0], "the uploads replayed give the cache's state");
        waves
    }

    #[test]
    fn waves_cover_every_item_once_and_lfu_keeps_the_popular_experts() {
        let r = Residency::new(ExpertCache { slots: 3, policy: Policy::Lfu }, 2, 8, 1);
        // 4 tokens × top-2, 5 distinct experts over 3 slots: 2 waves
        let ids = [5, 6, 5, 7, 6, 1, 2, 5];
        let wts = [0.5, 0.25, 0.125, 1.0, 2.0, 4.0, 8.0, 16.0];
        let waves = plan_checked(&r, &ids, &wts);
        assert_eq!(waves.len(), 2, "5 experts, 3 slots");
        assert_eq!(r.stats()[0].hits, 2, "experts 1 and 2 were resident (slots 1, 2)");
        assert_eq!(r.stats()[0].picks, 8);
        // 5 and 6 now score highest and stay through a step that needs 3 and 4
        plan_checked(&r, &[3, 4], &[1.0, 1.0]);
        let res = r.resident()[0].clone();
        assert!(res.contains(&5) || res.contains(&6), "{res:?}");
        let before = r.stats()[0].hits;
        plan_checked(&r, &[5, 6], &[1.0, 1.0]);
        assert!(r.stats()[0].hits > before);
    }

    #[test]
    fn static_keeps_its_first_experts() {
        let r = Residency::new(ExpertCache { slots: 4, policy: Policy::Static }, 2, 8, 1);
        for step in 0..10u32 {
            let ids = [4 + step % 4, (5 + step) % 8];
            let waves = plan_checked(&r, &ids, &[1.0, 1.0]);
            assert!(waves.iter().flat_map(|w| &w.uploads).all(|&(s, _)| s >= 2), "slots 0 and 1 are pinned");
            assert_eq!(&r.resident()[0][..2], &[0, 1], "experts 0 and 1 stay");
        }
    }

    #[test]
    fn one_slot_still_serves_every_expert() {
        let r = Residency::new(ExpertCache { slots: 1, policy: Policy::Lfu }, 3, 8, 1);
        let waves = plan_checked(&r, &[1, 2, 3, 3, 2, 7], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(waves.len(), 4);
    }
}
