//! Timestamp profiling: GPU time of every dispatch while a profile is open.

use super::*;

/// GPU time of every dispatch recorded while profiling (see [`Gpu::start_profile`]).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// (pipeline label, workgroups, GPU nanoseconds) per dispatch, in order
    pub dispatches: Vec<(String, u32, f64)>,
    /// host time spent recording and submitting command buffers (nanoseconds)
    pub record_ns: f64,
    pub submits: usize,
    /// bind groups the submissions had to create (the rest came from the cache)
    pub bind_groups_created: usize,
}

impl Profile {
    /// GPU nanoseconds and dispatch count per kernel family (the label up to the first `/`),
    /// largest first.
    pub fn by_family(&self) -> Vec<(String, f64, usize)> {
        let mut m: HashMap<&str, (f64, usize)> = HashMap::new();
        for (label, _, ns) in &self.dispatches {
            let fam = label.split('/').next().unwrap_or(label);
            let e = m.entry(fam).or_default();
            e.0 += ns;
            e.1 += 1;
        }
        let mut v: Vec<(String, f64, usize)> = m.into_iter().map(|(k, (ns, n))| (k.to_string(), ns, n)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    pub fn gpu_ns(&self) -> f64 {
        self.dispatches.iter().map(|d| d.2).sum()
    }
}

impl Gpu {
    pub fn start_profile(&self) -> bool {
        let ok = self.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        *self.profile.lock().unwrap_or_else(|e| e.into_inner()) = ok.then(Profile::default);
        ok
    }

    /// Stop profiling and return what was measured since [`Gpu::start_profile`].
    pub fn take_profile(&self) -> Option<Profile> {
        self.profile.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(super) fn profiling(&self) -> bool {
        self.profile.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    pub(super) fn label_of(&self, p: &wgpu::ComputePipeline) -> String {
        self.labels.lock().unwrap_or_else(|e| e.into_inner()).get(p).cloned().unwrap_or_else(|| "unlabelled".into())
    }
}

/// Timestamp queries for profiling: a begin and an end per dispatch, in query sets of at most
/// 4096 queries (wgpu's limit).
pub(super) struct Queries {
    sets: Vec<wgpu::QuerySet>,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    n: u32,
}

const QUERIES_PER_SET: u32 = 4096;

impl Queries {
    pub(super) fn new(gpu: &Gpu, n_disp: u32) -> Self {
        let n = 2 * n_disp;
        let sets = (0..n.div_ceil(QUERIES_PER_SET))
            .map(|s| {
                gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("dispatch timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: (n - s * QUERIES_PER_SET).min(QUERIES_PER_SET),
                })
            })
            .collect();
        let bytes = n as u64 * 8;
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Queries { sets, resolve, staging, n }
    }

    pub(super) fn writes(&self, d: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        let q = 2 * d;
        wgpu::ComputePassTimestampWrites {
            query_set: &self.sets[(q / QUERIES_PER_SET) as usize],
            beginning_of_pass_write_index: Some(q % QUERIES_PER_SET),
            end_of_pass_write_index: Some(q % QUERIES_PER_SET + 1),
        }
    }

    pub(super) fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        for (s, set) in self.sets.iter().enumerate() {
            let first = s as u32 * QUERIES_PER_SET;
            let count = (self.n - first).min(QUERIES_PER_SET);
            enc.resolve_query_set(set, 0..count, &self.resolve, first as u64 * 8);
        }
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, self.n as u64 * 8);
    }

    /// Nanoseconds per dispatch (blocks until the submission finished).
    pub(super) fn read(&self, gpu: &Gpu) -> Result<Vec<f64>, GpuError> {
        let (tx, rx) = mpsc::channel();
        self.staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Map(e.to_string()))?;
        rx.recv().map_err(|e| GpuError::Map(e.to_string()))?.map_err(|e| GpuError::Map(e.to_string()))?;
        let period = gpu.queue.get_timestamp_period() as f64;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.staging.slice(..).get_mapped_range().map_err(|e| GpuError::Map(e.to_string()))?);
        self.staging.unmap();
        Ok(ticks.chunks_exact(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect())
    }
}
