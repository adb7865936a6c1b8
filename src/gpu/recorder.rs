//! The command recorder: a forward pass's dispatches, each with its small params block, in
//! one command buffer and one submission.

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
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        Self { gpu, params: Vec::new(), cmds: Vec::new() }
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// Queue one dispatch. `bufs` bind to bindings 1.. in order; binding 0 is `params`.
    pub fn dispatch<P: bytemuck::Pod>(&mut self, pipeline: &wgpu::ComputePipeline, params: &P, bufs: &[&wgpu::Buffer], groups: [u32; 3]) {
        let bound: Vec<(u32, &wgpu::Buffer)> = bufs.iter().enumerate().map(|(i, b)| (i as u32 + 1, *b)).collect();
        self.dispatch_bound(pipeline, params, &bound, groups);
    }

    /// Queue one dispatch with explicit binding numbers (for entry points of one shader
    /// module that use different subsets of its bindings); binding 0 is `params`.
    pub fn dispatch_bound<P: bytemuck::Pod>(&mut self, pipeline: &wgpu::ComputePipeline, params: &P, bufs: &[(u32, &wgpu::Buffer)], groups: [u32; 3]) {
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
        self.cmds.push(Dispatch {
            pipeline: pipeline.clone(),
            params: (off as u64, size),
            bufs: bufs.iter().map(|(i, b)| (*i, (*b).clone())).collect(),
            groups,
        });
    }

    /// Record everything into one command buffer and submit it (no wait; while profiling,
    /// wait for the timings).
    pub fn submit(self, label: &str) -> Result<(), GpuError> {
        let gpu = self.gpu;
        let t0 = std::time::Instant::now();
        let profiling = gpu.profiling();
        let n_disp = self.cmds.len() as u32;
        let queries = if profiling && n_disp > 0 { Some(Queries::new(gpu, n_disp)) } else { None };
        gpu.checked(label, || {
            // Not create_buffer_init: it panics when the device is lost; this reports it.
            let contents: &[u8] = if self.params.is_empty() { &[0u8; 16] } else { &self.params };
            let arena = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("params arena"),
                size: (contents.len() as u64).next_multiple_of(4),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE,
                mapped_at_creation: true,
            });
            match arena.slice(..).get_mapped_range_mut() {
                Ok(mut view) => view.slice(..contents.len()).copy_from_slice(contents),
                Err(e) => return Err(GpuError::Validation { what: label.to_string(), msg: format!("the GPU device is lost or out of memory ({e}); reload the model") }),
            }
            arena.unmap();
            let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
            let mut i = 0;
            while i < self.cmds.len() {
                // While profiling, every dispatch gets its own pass with timestamps.
                let timestamp_writes = queries.as_ref().map(|q| q.writes(i as u32));
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes });
                while let Some(Dispatch { pipeline, params, bufs, groups }) = self.cmds.get(i) {
                    let layout = pipeline.get_bind_group_layout(0);
                    let mut entries = vec![wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &arena,
                            offset: params.0,
                            size: wgpu::BufferSize::new(params.1),
                        }),
                    }];
                    for (j, b) in bufs {
                        entries.push(wgpu::BindGroupEntry { binding: *j, resource: b.as_entire_binding() });
                    }
                    let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
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
            Ok(())
        })??;
        let record_ns = t0.elapsed().as_nanos() as f64;
        if let Some(q) = queries {
            let ns = q.read(gpu)?;
            let dispatches: Vec<_> =
                self.cmds.iter().zip(&ns).map(|(c, &t)| (gpu.label_of(&c.pipeline), c.groups[0] * c.groups[1] * c.groups[2], t)).collect();
            if let Some(p) = gpu.profile.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                p.dispatches.extend(dispatches);
                p.record_ns += record_ns;
                p.submits += 1;
            }
        }
        Ok(())
    }
}
