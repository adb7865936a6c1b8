//! Every shader variant the engine can create, translated by naga to the languages of the
//! other backends wgpu runs on: MSL (Metal, Apple GPUs), HLSL (DX12) and SPIR-V (Vulkan),
//! the SPIR-V also checked by `spirv-val` (Debian's `spirv-tools`, which `.ci/run`
//! installs). The engine's own tests run on one driver (lavapipe, SPIR-V); a shader that
//! validates there can still fail naga's MSL or HLSL writer (subgroup operations, workgroup
//! sizes, override-sized arrays), which a user would meet as a crash at load.
//!
//! A variant is one assembled source (each template expansion the host can produce) with
//! one set of pipeline-overridable constants (each weight format, and the kernel shapes
//! `Tune::for_gpu` picks for the adapter classes below), translated per entry point.
//! A failure names the shader, the variant and the target.

use std::collections::BTreeMap;

use naga::back::{hlsl, msl, pipeline_constants, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

use super::matmul::{self, Tune};
use super::{gqa_attn, mla_attn, plain_source, with_weights};
use crate::format::Format;

/// One source with the override values its pipelines may be created with.
struct Variant {
    label: String,
    src: String,
    /// override sets to translate with (names absent from the module are dropped)
    consts: Vec<Vec<(&'static str, f64)>>,
}

/// The kernel shapes `Tune::for_gpu` gives the adapter classes wgpu reaches: a CPU adapter
/// (lavapipe, llvmpipe's 8-wide lanes, with and without fixed subgroups), a GPU without a
/// fixed subgroup size (16 lanes of workgroup reductions), and GPUs whose subgroups are 8
/// (Intel), 16 (Intel), 32 (NVIDIA, Apple, AMD RDNA) or 64 (AMD GCN) wide.
fn adapter_tunes() -> Vec<Tune> {
    let cpu = |subgroups| Tune { lanes: 8, subgroups, xreg: true, nsg: 1, nt: 8, streams: 8, attn_tt: 2 };
    let gpu = |lanes: u32, subgroups| Tune { lanes, subgroups, xreg: false, nsg: (128 / lanes).max(1), nt: 8, streams: 2, attn_tt: 2 };
    vec![cpu(false), cpu(true), gpu(16, false), gpu(8, true), gpu(16, true), gpu(32, true), gpu(64, true)]
}

fn wdt(f: Format) -> (&'static str, f64) {
    ("WDT", f.wgsl_id() as f64)
}

fn variants() -> Vec<Variant> {
    let mut v = Vec::new();
    let one = |label: &str, src: String| Variant { label: label.into(), src, consts: vec![vec![]] };
    for family in ["copy_rows", "rmsnorm", "rope", "moe_gate", "moe_combine", "moe_group", "swiglu", "sample", "mla_attn", "gqa_attn"] {
        v.push(one(family, plain_source(family)));
    }
    v.push(one("read_bw", include_str!("../../shaders/read_bw.wgsl").into()));
    // the generic kernels gather single weights of every format
    let all: Vec<Vec<(&str, f64)>> = Format::ALL.iter().map(|&f| vec![wdt(f)]).collect();
    for (name, src) in [
        ("embed", include_str!("../../shaders/embed.wgsl")),
        ("matmul", include_str!("../../shaders/matmul.wgsl")),
        ("mla_absorb", include_str!("../../shaders/mla_absorb.wgsl")),
    ] {
        v.push(Variant { label: name.into(), src: with_weights(src), consts: all.clone() });
    }
    let floats: Vec<Format> = Format::ALL.into_iter().filter(|f| !f.is_block()).collect();
    let blocks: Vec<Format> = Format::ALL.into_iter().filter(|f| f.is_block()).collect();
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    // fast float kernels: every gemm expansion (streams × tile width, with and without
    // subgroups), matvec per lane width, each float format
    // The gemm template unrolls `streams` weight rows per lane and `nt` items per tile: each
    // value of one at the other's defaults (2 on GPUs, 8 on CPUs; tile 8) — 8 + 8 (or 32)
    // expansions per subgroup setting rather than all 8 × 32 products, which only repeat the
    // same lines more times.
    for subgroups in [false, true] {
        let lanes = if subgroups { 32 } else { 8 };
        let nt_max = if subgroups { 32 } else { 8 };
        let mut shapes: Vec<(u32, u32)> = (2..=16).step_by(2).map(|s| (s, 8)).chain((1..=nt_max).flat_map(|nt| [(2, nt), (8, nt)])).collect();
        shapes.sort_unstable();
        shapes.dedup();
        for (streams, nt) in shapes {
            let tune = Tune { lanes, subgroups, xreg: !subgroups, nsg: 1, nt, streams, attn_tt: 2 };
            let [matvec, gemm] = matmul::sources(&tune);
            let sets = floats.iter().map(|&f| vec![wdt(f), ("LANES", lanes as f64)]).collect::<Vec<_>>();
            v.push(Variant { label: format!("gemm subgroups={subgroups} streams={streams} nt={nt}"), src: gemm, consts: sets });
            if streams == 2 && nt == 1 {
                let mut consts = Vec::new();
                for t in adapter_tunes().into_iter().filter(|t| t.subgroups == subgroups) {
                    for j in [1.0, 2.0, 4.0, 8.0] {
                        consts.extend(floats.iter().map(|&f| vec![wdt(f), ("LANES", t.lanes as f64), ("NSG", t.nsg as f64), ("XREG", flag(t.xreg)), ("J", j)]));
                    }
                }
                v.push(Variant { label: format!("matvec subgroups={subgroups}"), src: matvec, consts });
            }
        }
    }
    // block-format kernels: each format × steps per lane, in every adapter class's shape
    for t in adapter_tunes() {
        for &f in &blocks {
            for j in 1..=8 {
                let [matvec, gemm] = matmul::block_sources(&t, f, j);
                let base = vec![wdt(f), ("LANES", t.lanes as f64), ("NSG", t.nsg as f64), ("XREG", flag(t.xreg))];
                let consts = [1.0, 2.0, t.lanes as f64].iter().flat_map(|&spl| [false, true].map(|a| [base.clone(), vec![("SPL", spl), ("ALIGNED", flag(a))]].concat())).collect();
                v.push(Variant { label: format!("matvec_blocks {} j={j} lanes={} subgroups={}", f.name(), t.lanes, t.subgroups), src: matvec, consts });
                // the i-quants have no gemm (matmul.rs `fast_pipeline` never builds one)
                if j == 1 && f.iquant().is_none() {
                    let consts = [false, true].map(|a| vec![wdt(f), ("LANES", t.lanes as f64), ("ALIGNED", flag(a))]).to_vec();
                    v.push(Variant { label: format!("gemm_blocks {} lanes={} subgroups={}", f.name(), t.lanes, t.subgroups), src: gemm, consts });
                }
            }
        }
    }
    // flash-decoding attention: every tokens-per-workgroup expansion, at the (words per lane)
    // shapes of DeepSeek's (512 + 64) latent rows and Qwen3's 128-wide heads per lane width
    for tt in 1..=8 {
        let consts = [8u32, 16, 32, 64].iter().map(|&l| vec![("LANES", l as f64), ("WPL", (144u32.div_ceil(l)) as f64), ("VPL", (128 / l).max(1) as f64)]).collect();
        v.push(Variant { label: format!("mla_attn split tt={tt}"), src: mla_attn::split_source(tt), consts });
    }
    for hg in 1..=8 {
        for tt in 1..=16 / hg {
            let consts = [8u32, 16, 32, 64].iter().map(|&l| vec![("LANES", l as f64), ("WPL", (32u32.div_ceil(l)) as f64)]).collect();
            v.push(Variant { label: format!("gqa_attn split hg={hg} tt={tt}"), src: gqa_attn::split_source(hg, tt), consts });
        }
    }
    v
}

/// The shading-language targets: (name, writer) pairs run on a module whose overrides are
/// resolved for one entry point.
#[derive(Clone, Copy, Debug)]
enum Target {
    Msl(u8, u8),
    Hlsl(hlsl::ShaderModel),
    Spv(u8, u8),
}

impl Target {
    /// Metal Shading Language 2.1 (macOS 10.14 / iOS 12, the oldest with SIMD-group
    /// operations) to 2.4 (Apple silicon, macOS 12); HLSL shader model 6.0 (wave intrinsics,
    /// DXC) and 6.6; SPIR-V at the oldest version the module can be written for: 1.3 (Vulkan
    /// 1.1, subgroup operations) or 1.0. Modules without subgroup operations also go to MSL
    /// 2.0 and SM 5.1 (FXC). (wgpu itself writes SPIR-V 1.0–1.3 for Vulkan: 1.5 would only
    /// repeat what 1.3 checks, at the cost of a spirv-val run per module.)
    fn all(subgroups: bool) -> Vec<Target> {
        let mut t = vec![Target::Msl(2, 1), Target::Msl(2, 4), Target::Hlsl(hlsl::ShaderModel::V6_0), Target::Hlsl(hlsl::ShaderModel::V6_6)];
        if subgroups {
            t.push(Target::Spv(1, 3));
        } else {
            t.extend([Target::Msl(2, 0), Target::Hlsl(hlsl::ShaderModel::V5_1), Target::Spv(1, 0)]);
        }
        t
    }

    fn write(self, module: &naga::Module, info: &naga::valid::ModuleInfo, entry: &str) -> Result<Option<Vec<u32>>, String> {
        let ep = Some((naga::ShaderStage::Compute, entry.to_string()));
        match self {
            Target::Msl(major, minor) => {
                let opts = msl::Options { lang_version: (major, minor), ..Default::default() };
                let pipe = msl::PipelineOptions { entry_point: ep, ..Default::default() };
                msl::write_string(module, info, &opts, &pipe).map(|_| None).map_err(|e| format!("{e:?}"))
            }
            Target::Hlsl(sm) => {
                let opts = hlsl::Options { shader_model: sm, ..Default::default() };
                let pipe = hlsl::PipelineOptions { entry_point: ep };
                let mut out = String::new();
                hlsl::Writer::new(&mut out, &opts, &pipe).write(module, info, None).map(|_| None).map_err(|e| format!("{e:?}"))
            }
            Target::Spv(major, minor) => {
                let opts = spv::Options { lang_version: (major, minor), ..Default::default() };
                let pipe = spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: entry.to_string() };
                spv::write_vec(module, info, &opts, Some(&pipe)).map(Some).map_err(|e| format!("{e:?}"))
            }
        }
    }
}

/// `spirv-val`, or why not: it is required where `.ci/run` installs it (CI) and wherever
/// it is on the PATH; elsewhere `DSW_NO_SPIRV_VAL=1` skips only this check, loudly.
fn spirv_val() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("spirv-val")).find(|p| p.is_file()));
    if found.is_none() && std::env::var_os("DSW_NO_SPIRV_VAL").is_none() {
        panic!("spirv-val not found: install Debian's spirv-tools (.ci/run does), or set DSW_NO_SPIRV_VAL=1 to translate without validating the SPIR-V");
    }
    if found.is_none() {
        eprintln!("WARNING: DSW_NO_SPIRV_VAL is set: the SPIR-V is written but not validated by spirv-val");
    }
    found
}

#[test]
fn every_shader_variant_translates_to_msl_hlsl_and_valid_spirv() {
    let val = spirv_val();
    let dir = std::env::temp_dir().join(format!("dsw-spv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut spv_files = Vec::new();
    for var in variants() {
        let module = naga::front::wgsl::parse_str(&var.src).unwrap_or_else(|e| panic!("{}: {}", var.label, e.emit_to_string(&var.src)));
        let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).unwrap_or_else(|e| panic!("{}: {}", var.label, e.emit_to_string(&var.src)));
        let names: Vec<String> = module.overrides.iter().filter_map(|(_, o)| o.name.clone()).collect();
        let subgroups = var.src.contains("subgroup");
        for consts in &var.consts {
            let map: naga::back::PipelineConstants = consts.iter().filter(|(n, _)| names.iter().any(|m| m == n)).map(|&(n, x)| (n.to_string(), x)).collect();
            let set = consts.iter().map(|(n, x)| format!("{n}={x}")).collect::<Vec<_>>().join(",");
            for ep in module.entry_points.iter().map(|e| e.name.clone()) {
                let what = format!("{} [{set}] entry {ep}", var.label);
                let (m, i) = match pipeline_constants::process_overrides(&module, &info, Some((naga::ShaderStage::Compute, &ep)), &map) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{what}: overrides: {e}"));
                        continue;
                    }
                };
                for t in Target::all(subgroups) {
                    match t.write(&m, &i, &ep) {
                        Ok(Some(words)) if val.is_some() => {
                            let path = dir.join(format!("{}.spv", spv_files.len()));
                            std::fs::write(&path, bytemuck::cast_slice(&words)).unwrap();
                            spv_files.push((path, format!("{what} {t:?}"), t));
                        }
                        Ok(_) => {}
                        Err(e) => failures.push(format!("{what} → {t:?}: {e}")),
                    }
                    *counts.entry(format!("{t:?}")).or_default() += 1;
                }
            }
        }
    }
    if let Some(val) = &val {
        // spirv-val is one process per module: run them on every core.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let bad = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, what, t)) = spv_files.get(i) else { break };
                    let env = match t {
                        Target::Spv(1, 0) => "vulkan1.0",
                        Target::Spv(1, 3) => "vulkan1.1",
                        _ => "vulkan1.2",
                    };
                    let out = std::process::Command::new(val).arg("--target-env").arg(env).arg(path).output().expect("run spirv-val");
                    if !out.status.success() {
                        bad.lock().unwrap().push(format!("{what}: spirv-val --target-env {env}: {}", String::from_utf8_lossy(&out.stderr).trim()));
                    }
                });
            }
        });
        failures.extend(bad.into_inner().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("translated: {counts:?}; SPIR-V modules validated by spirv-val: {}", if val.is_some() { spv_files.len() } else { 0 });
    assert!(failures.is_empty(), "{} translation failures, the first ones:\n{}", failures.len(), failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    assert!(counts.values().sum::<usize>() > 1000, "too few variants translated: {counts:?}");
}
