//! `shaders/read_bw.wgsl`: the best streaming read the engine can run, used by the benchmark
//! as the memory roofline of a GPU whose memory the host cannot read directly.

use std::time::Instant;

use crate::gpu::{Gpu, GpuError, Recorder};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    magic: u32,
    _pad: [u32; 2],
}

/// Read `total` bytes (in buffers under the binding limit) `reps` times; return the best
/// bandwidth in bytes per second: GPU time from timestamp queries where the device has them
/// (a discrete GPU reads 1 GiB in well under a millisecond, less than a submission's round
/// trip), else the wall time of a submission.
pub fn measure(gpu: &Gpu, total: u64, reps: usize) -> Result<f64, GpuError> {
    let pipeline = gpu.checked("compiling read_bw", || gpu.compute_pipeline("read_bw", include_str!("../../shaders/read_bw.wgsl"), "main", &[]))?;
    let per = gpu.max_binding.min(total).min(u32::MAX as u64 * 16) & !15;
    let n_bufs = total.div_ceil(per).max(1);
    let pattern: Vec<u8> = (0..1usize << 20).map(|j| (j as u8).wrapping_mul(31) ^ (j >> 8) as u8).collect();
    let bufs: Vec<wgpu::Buffer> = (0..n_bufs)
        .map(|i| {
            gpu.storage_filled(&format!("read_bw source {i}"), per, |v| {
                let mut at = 0usize;
                while at < per as usize {
                    let n = pattern.len().min(per as usize - at);
                    v.slice(at..at + n).copy_from_slice(&pattern[..n]);
                    at += n;
                }
            })
        })
        .collect();
    let out = gpu.storage("read_bw out", 4);
    let groups = (gpu.limits.max_compute_workgroups_per_dimension).min(4096);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) + 1 {
        let mut rec = Recorder::new(gpu);
        for b in &bufs {
            rec.dispatch(Ok(pipeline.clone()), &Params { n: (per / 16) as u32, magic: 0x9e37_79b9, _pad: [0; 2] }, &[b, &out], [groups, 1, 1]);
        }
        let timed = gpu.start_profile();
        let t0 = Instant::now();
        let r = rec.submit("read_bw").and_then(|_| gpu.read_bytes(&out, 0, 4));
        let wall = t0.elapsed().as_secs_f64();
        let gpu_s = gpu.take_profile().map(|p| p.gpu_ns() / 1e9).filter(|&s| timed && s > 0.0);
        r?;
        best = best.min(gpu_s.unwrap_or(wall));
    }
    Ok((per * n_bufs) as f64 / best)
}

/// The params layout, for the test that compares it with the WGSL struct.
#[cfg(test)]
pub(super) fn params_layout() -> super::Layout {
    super::layout!(Params { n: u32, magic: u32, _pad: [u32; 2] })
}
