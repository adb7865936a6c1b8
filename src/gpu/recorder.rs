//! The command recorder: a forward pass's dispatches, each with its small params block, in
//! one command buffer and one submission. Bind groups are cached across submissions: the
//! params of every submission go to one persistent arena, so a decode step that binds the
//! same buffers at the same params offsets as the last one creates no bind group at all.

use super::profile::Queries;
use super::*;

struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    params: (u64, u64),
    bufs: Vec<(u32, wgpu::Buffer)>,
    groups: [u32; 3],
}

/// Collects dispatches (each with its own small params block), then records them into a
/// single command buffer with one params arena for all of them.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    params: Vec<u8>,
    cmds: Vec<Dispatch>,
    /// the first kernel that could not be built; `submit` reports it and runs nothing
    error: Option<GpuError>,
}

/// Bind groups by what they bind, kept across submissions (see the module doc).
#[derive(Default)]
pub(super) struct BindCache {
    /// the params arena every submission writes (grown on demand; growing clears `groups`)
    arena: Option<wgpu::Buffer>,
    groups: HashMap<BindKey, (wgpu::BindGroup, u64)>,
    layouts: HashMap<wgpu::ComputePipeline, wgpu::BindGroupLayout>,
    submits: u64,
    /// bind groups created by the last submission (bench reports it)
    pub created: usize,
}

#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    pipeline: wgpu::ComputePipeline,
    params: (u64, u64),
    bufs: Vec<(u32, wgpu::Buffer)>,
}

/// Submissions after which an unused bind group is dropped (it holds its buffers alive).
const BIND_TTL: u64 = 64;

impl Gpu {
    /// Drop every cached bind group (and so the buffers they hold): a model that is dropped
    /// calls this so its weights are freed at once.
    pub fn clear_bind_cache(&self) {
        let mut c = self.binds.lock().unwrap_or_else(|e| e.into_inner());
        c.groups.clear();
        c.layouts.clear();
    }

    /// Bind groups the last submission had to create (0 when every one was cached).
    pub fn bind_groups_created(&self) -> usize {
        self.binds.lock().unwrap_or_else(|e| e.into_inner()).created
    }
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Self { gpu, params: Vec::new(), cmds: Vec::new(), error: None }
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Queue one dispatch. `bufs` bind to bindings 1.. in order; binding 0 is `params`. A
    /// pipeline that failed to build is kept as the recorder's error (`submit` returns it).
    pub fn dispatch<P: bytemuck::Pod>(&mut self, pipeline: Result<wgpu::ComputePipeline, GpuError>, params: &P, bufs: &[&wgpu::Buffer], groups: [u32; 3]) {
        let bound: Vec<(u32, &wgpu::Buffer)> = bufs.iter().enumerate().map(|(i, b)| (i as u32 + 1, *b)).collect();
        self.dispatch_bound(pipeline, params, &bound, groups);
    }

    /// Queue one dispatch with explicit binding numbers (for entry points of one shader
    /// module that use different subsets of its bindings); binding 0 is `params`.
    pub fn dispatch_bound<P: bytemuck::Pod>(&mut self, pipeline: Result<wgpu::ComputePipeline, GpuError>, params: &P, bufs: &[(u32, &wgpu::Buffer)], groups: [u32; 3]) {
        let pipeline = match pipeline {
            Ok(p) => p,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        if groups.contains(&0) {
            return;
        }
        // Kernels may read their params as a uniform or as a storage buffer (see
        // shaders/common/mm_words.wgsl), so offsets satisfy both alignments.
        let l = &self.gpu.limits;
        let align = l.min_uniform_buffer_offset_alignment.max(l.min_storage_buffer_offset_alignment).max(16) as usize;
        let off = self.params.len().next_multiple_of(align);
        self.params.resize(off, 0);
        self.params.extend_from_slice(bytemuck::bytes_of(params));
        let size = (std::mem::size_of::<P>() as u64).next_multiple_of(16);
        self.params.resize(off + size as usize, 0);
        self.cmds.push(Dispatch { pipeline, params: (off as u64, size), bufs: bufs.iter().map(|(i, b)| (*i, (*b).clone())).collect(), groups });
    }

    /// Record everything into one command buffer and submit it (no wait; while profiling,
    /// wait for the timings).
    pub fn submit(self, label: &str) -> Result<(), GpuError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let gpu = self.gpu;
        let t0 = std::time::Instant::now();
        let profiling = gpu.profiling();
        let n_disp = self.cmds.len() as u32;
        let queries = if profiling && n_disp > 0 { Some(Queries::new(gpu, n_disp)) } else { None };
        let mut cache = gpu.binds.lock().unwrap_or_else(|e| e.into_inner());
        gpu.checked(label, || {
            let cache = &mut *cache;
            cache.submits += 1;
            cache.created = 0;
            let need = (self.params.len().max(16) as u64).next_multiple_of(16);
            if cache.arena.as_ref().is_none_or(|a| a.size() < need) {
                cache.arena = Some(gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params arena"),
                    size: need.next_power_of_two(),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
                cache.groups.clear();
            }
            let Some(arena) = cache.arena.clone() else { return };
            // Ordered after the commands of earlier submissions that read the arena.
            if !self.params.is_empty() {
                gpu.queue.write_buffer(&arena, 0, &self.params);
            }
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
            let now = cache.submits;
            let mut i = 0;
            while i < self.cmds.len() {
                // While profiling, every dispatch gets its own pass with timestamps.
                let timestamp_writes = queries.as_ref().map(|q| q.writes(i as u32));
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes });
                while let Some(Dispatch { pipeline, params, bufs, groups }) = self.cmds.get(i) {
                    let key = BindKey { pipeline: pipeline.clone(), params: *params, bufs: bufs.clone() };
                    let bg = match cache.groups.get_mut(&key) {
                        Some((bg, used)) => {
                            *used = now;
                            bg.clone()
                        }
                        None => {
                            let layout = cache.layouts.entry(pipeline.clone()).or_insert_with(|| pipeline.get_bind_group_layout(0)).clone();
                            let bg = bind_group(gpu, &layout, &arena, *params, bufs);
                            cache.created += 1;
                            cache.groups.insert(key, (bg.clone(), now));
                            bg
                        }
                    };
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, &bg, &[]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    i += 1;
                    if queries.is_some() {
                        break;
                    }
                }
            }
            if let Some(q) = &queries {
                q.resolve(&mut enc);
            }
            gpu.queue.submit([enc.finish()]);
            if now % BIND_TTL == 0 {
                cache.groups.retain(|_, (_, used)| now - *used < BIND_TTL);
            }
        })?;
        let created = cache.created;
        drop(cache);
        let record_ns = t0.elapsed().as_nanos() as f64;
        if let Some(q) = queries {
            let ns = q.read(gpu)?;
            let dispatches: Vec<_> =
                self.cmds.iter().zip(&ns).map(|(c, &t)| (gpu.label_of(&c.pipeline), c.groups[0] * c.groups[1] * c.groups[2], t)).collect();
            if let Some(p) = gpu.profile.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                p.dispatches.extend(dispatches);
                p.record_ns += record_ns;
                p.submits += 1;
                p.bind_groups_created += created;
            }
        }
        Ok(())
    }
}

fn bind_group(gpu: &Gpu, layout: &wgpu::BindGroupLayout, arena: &wgpu::Buffer, params: (u64, u64), bufs: &[(u32, wgpu::Buffer)]) -> wgpu::BindGroup {
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: arena, offset: params.0, size: wgpu::BufferSize::new(params.1) }),
    }];
    for (j, b) in bufs {
        entries.push(wgpu::BindGroupEntry { binding: *j, resource: b.as_entire_binding() });
    }
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout, entries: &entries })
}
