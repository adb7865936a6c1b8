//! How fast can a kernel stream memory on this adapter, by each way WGSL can read it?
//! `cargo run --release --example read_paths` reads 1 GiB (8 bindings of 128 MiB) with:
//! per-lane 16-byte storage loads (grid-strided, unrolled, per-thread runs), 4-byte loads,
//! subgroup-uniform addresses (one lane's address broadcast, then a select per lane),
//! workgroups whose every address is uniform (1 and 8 threads), and `textureLoad` of an
//! Rgba32Uint texture. Best of 4 wall times each. BENCHMARKS.md quotes the results: on
//! lavapipe 22.3 no path beats the plain per-lane storage load, which is why the decode
//! matvec is built on it.
use std::time::Instant;
use deepseek_wgpu::gpu::{Gpu, GpuOptions};

const SSBO: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let stride = nwg.x * 256u;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < n; i += stride) { acc ^= src[i]; }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u { out[0] = gid.x; }
}
"#;

const TEX: &str = r#"
@group(0) @binding(0) var src: texture_2d<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let d = textureDimensions(src);
    let n = d.x * d.y;
    let stride = nwg.x * 256u;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < n; i += stride) { acc ^= textureLoad(src, vec2<u32>(i % d.x, i / d.x), 0); }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u { out[0] = gid.x; }
}
"#;

// all lanes of a subgroup read the same address (uniform path), lanes then pick their word
const UNI: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sl: u32) {
    let n = arrayLength(&src);
    let stride = nwg.x * 256u;
    var acc = vec4<u32>(0u);
    let base0 = subgroupBroadcastFirst(gid.x);
    for (var i = base0; i < n; i += stride) {
        let b = subgroupBroadcastFirst(i);
        let w0 = src[b]; let w1 = src[b+1u]; let w2 = src[b+2u]; let w3 = src[b+3u];
        let w4 = src[b+4u]; let w5 = src[b+5u]; let w6 = src[b+6u]; let w7 = src[b+7u];
        var w = w0;
        w = select(w, w1, sl == 1u); w = select(w, w2, sl == 2u); w = select(w, w3, sl == 3u);
        w = select(w, w4, sl == 4u); w = select(w, w5, sl == 5u); w = select(w, w6, sl == 6u); w = select(w, w7, sl == 7u);
        acc ^= w;
    }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u { out[0] = gid.x; }
}
"#;


const SSBO4: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let stride = nwg.x * 256u;
    var acc = vec4<u32>(0u);
    var acc2 = vec4<u32>(0u);
    for (var i = gid.x; i + 3u * stride < n; i += 4u * stride) { acc ^= src[i]; acc2 ^= src[i + stride]; acc ^= src[i + 2u * stride]; acc2 ^= src[i + 3u * stride]; }
    acc ^= acc2;
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u { out[0] = gid.x; }
}
"#;
// each thread reads a contiguous run (sequential per lane)
const SSBOSEQ: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let per = n / (nwg.x * 64u);
    var acc = vec4<u32>(0u);
    let b = gid.x * per;
    for (var i = 0u; i < per; i++) { acc ^= src[b + i]; }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u { out[0] = gid.x; }
}
"#;
const SSBOU32: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let stride = nwg.x * 256u;
    var acc = 0u;
    for (var i = gid.x; i < n; i += stride) { acc ^= src[i]; }
    if acc == 0x9e3779b9u { out[0] = gid.x; }
}
"#;

// workgroup of one invocation (and, as uniform-wg8, of 8 redundant ones), addresses from
// workgroup_id only: every load is uniform
const UNIWG1: &str = r#"
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&src);
    let per = n / nwg.x;
    var acc = vec4<u32>(0u);
    let b = wid.x * per;
    for (var i = 0u; i < per; i++) { acc ^= src[b + i]; }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u { out[b] = 1u; }
}
"#;
/// Best-of-4 GB/s of one read kernel `p` over `sources` (each bound at binding 0, `out` at 1),
/// `groups` workgroups per source, all in one submission per repetition.
fn best_gbps(gpu: &Gpu, p: &wgpu::ComputePipeline, sources: &[wgpu::BindingResource], out: &wgpu::Buffer, groups: u32, total: u64) -> f64 {
    let dev = &gpu.device;
    let mut best = f64::INFINITY;
    for _ in 0..4 {
        let t0 = Instant::now();
        let mut enc = dev.create_command_encoder(&Default::default());
        for src in sources {
            let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &p.get_bind_group_layout(0),
                entries: &[wgpu::BindGroupEntry { binding: 0, resource: src.clone() }, wgpu::BindGroupEntry { binding: 1, resource: out.as_entire_binding() }],
            });
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(p);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        gpu.queue.submit([enc.finish()]);
        let _ = gpu.read_bytes(out, 0, 4);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    total as f64 / best / 1e9
}

fn main() {
    let gpu = Gpu::new(&GpuOptions::default()).expect("a GPU adapter");
    println!("{} ({:?})", gpu.info.name, gpu.info.backend);
    let dev = &gpu.device;
    let total: u64 = 1 << 30;
    let per: u64 = 128 << 20;
    let n = (total / per) as usize;
    let out = gpu.storage("out", 4);
    let groups = 4096u32;
    // SSBO
    let bufs: Vec<_> = (0..n).map(|i| { let data: Vec<u8> = (0..per as usize).map(|j| (j as u8).wrapping_mul(31) ^ (j >> 9) as u8).collect(); gpu.storage_filled(&format!("b{i}"), per, |v| v.slice(..).copy_from_slice(&data)) }).collect();
    let uniwg8 = UNIWG1.replace("@workgroup_size(1)", "@workgroup_size(8)");
    let sources: Vec<wgpu::BindingResource> = bufs.iter().map(|b| b.as_entire_binding()).collect();
    for (name, src) in [("ssbo", SSBO), ("ssbo-unroll4", SSBO4), ("ssbo-seq", SSBOSEQ), ("ssbo-u32", SSBOU32), ("subgroup-uniform+select", UNI), ("uniform-wg1", UNIWG1), ("uniform-wg8", &uniwg8)] {
        let p = gpu.compute_pipeline(name, src, "main", &[]);
        let g = match name { "ssbo-seq" => 1024, "subgroup-uniform+select" => groups / 8, n if n.starts_with("uniform") => 512, _ => groups };
        println!("{name}: {:.2} GB/s", best_gbps(&gpu, &p, &sources, &out, g, total));
    }
    drop(sources);
    drop(bufs);
    // texture: width 16384 texels, 16 B each
    let w = 16384u32; let h = (per / 16 / w as u64) as u32;
    let texs: Vec<_> = (0..n).map(|_| {
        let t = dev.create_texture(&wgpu::TextureDescriptor { label: None, size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 }, mip_level_count: 1, sample_count: 1, dimension: wgpu::TextureDimension::D2, format: wgpu::TextureFormat::Rgba32Uint, usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST, view_formats: &[] });
        let data: Vec<u8> = (0..per as usize).map(|j| (j as u8).wrapping_mul(31)).collect();
        gpu.queue.write_texture(wgpu::TexelCopyTextureInfo { texture: &t, mip_level: 0, origin: wgpu::Origin3d::ZERO, aspect: wgpu::TextureAspect::All }, &data, wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(w * 16), rows_per_image: Some(h) }, wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 });
        t.create_view(&Default::default())
    }).collect();
    let p = gpu.compute_pipeline("tex", TEX, "main", &[]);
    let sources: Vec<wgpu::BindingResource> = texs.iter().map(wgpu::BindingResource::TextureView).collect();
    println!("texture: {:.2} GB/s", best_gbps(&gpu, &p, &sources, &out, groups, total));
}
