//! Decode efficiency regression: `deepseek-wgpu bench` on the `r1-shape-ci` synthetic model
//! (R1's structure, 512 wide, 3 layers, R1's 129280-row head, so decode reads ~147 MB per
//! token), compared with the fastest streaming read a kernel reaches on the same adapter in
//! the same run (`read_bw`), not as an absolute time. Fails when the best of a few runs falls
//! below the floor. Checks only on CPU adapters (lavapipe), where the figure was measured;
//! other adapters only print theirs.
//!
//! Why the read kernel and not the host's memory bandwidth: the VMs this runs on differ by 7×
//! in what lavapipe's kernels reach against an unchanged host read (read_bw 8.3 GB/s on the
//! 2026-11-28 VM, 0.6–1.2 GB/s on 2026-12-02's, host read ~21 GB/s on both), so a fraction of
//! the host read measures the VM, not the engine (BENCHMARKS.md, "Regression test").

mod common;

use std::process::Command;

use serde_json::Value;

/// Decode GB/s over the read kernel's GB/s at context 16, recorded in BENCHMARKS.md (lavapipe,
/// 2 shared cores, 2026-12-02): 0.91–0.92 on that VM; 0.47–0.70 on the 2026-11-28/30 VM, whose
/// read kernel was faster.
const RECORDED: f64 = 0.9;
/// Below this the engine has regressed: under the lowest figure of either VM class, and
/// half the recorded one (a 2× slower decode against the same read kernel fails).
const FLOOR: f64 = 0.4;
const RUNS: usize = 3;

fn bench() -> Value {
    let o = Command::new(common::bin())
        .args(["bench", "--synthetic", "r1-shape-ci", "--prompt-len", "0", "--gen", "6", "--decode-at", "16", "--no-profile", "--json"])
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .expect("run deepseek-wgpu bench");
    assert!(o.status.success(), "bench failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("bench --json prints one JSON object")
}

#[test]
fn decode_efficiency_has_not_regressed() {
    let fraction = |r: &Value| {
        let read = r["roofline"]["read_kernel_gb_per_s"].as_f64().unwrap_or(0.0);
        if read > 0.0 { r["decode"][0]["gb_per_s"].as_f64().unwrap_or(0.0) / read } else { 0.0 }
    };
    let mut best: Option<Value> = None;
    for run in 0..RUNS {
        let r = bench();
        let d = &r["decode"][0];
        let f = fraction(&r);
        eprintln!(
            "run {run}: decode {:.1} ms/token, {:.2} GB/s; read kernel {:.2} GB/s: {f:.3} of it; host read {:.2} GB/s: {:.3} of it; cores {:.2}",
            d["best_ms"].as_f64().unwrap_or(0.0),
            d["gb_per_s"].as_f64().unwrap_or(0.0),
            r["roofline"]["read_kernel_gb_per_s"].as_f64().unwrap_or(0.0),
            r["roofline"]["gb_per_s"].as_f64().unwrap_or(0.0),
            d["roofline_fraction"].as_f64().unwrap_or(0.0),
            d["cores_used"].as_f64().unwrap_or(0.0)
        );
        if best.as_ref().is_none_or(|b| f > fraction(b)) {
            best = Some(r);
        }
        // Stop early once the figure is comfortably met: the machine is not the problem.
        if f >= RECORDED {
            break;
        }
    }
    let best = best.expect("at least one run");
    let f = fraction(&best);
    let cpu = best["machine"]["device_type"].as_str() == Some("Cpu");
    if !cpu {
        eprintln!("{}: decode at {f:.3} of the read kernel; the recorded figure is for CPU adapters", best["machine"]["adapter"]);
        return;
    }
    assert!(
        f >= FLOOR,
        "decode reaches {f:.3} of the read kernel's bandwidth, under the floor {FLOOR} (recorded {RECORDED}); see BENCHMARKS.md"
    );
}

/// Q4_K weights make decode faster than BF16: `bench --compare bf16,q4_k` loads both
/// r1-shape-ci models in one process and alternates their decode steps, so a busy machine
/// slows both alike; the ratio of best steps must exceed 1.5 in one of up to 3 runs. Measured
/// 2.3–2.6x (lavapipe, 2 shared cores; BENCHMARKS.md, "GGUF block formats"): R1's 129280-row
/// head is most of the bytes (132 MB in BF16, 37 MB in Q4_K). Checks only on CPU adapters,
/// where the figure was measured.
#[test]
fn q4_k_decode_beats_bf16() {
    const FLOOR: f64 = 1.5;
    let mut best = 0.0f64;
    let mut cpu = true;
    for run in 0..3 {
        let o = Command::new(common::bin())
            .args(["bench", "--synthetic", "r1-shape-ci", "--compare", "bf16,q4_k", "--prompt-len", "0", "--gen", "4", "--rounds", "2"])
            .args(["--decode-at", "16", "--no-profile", "--json"])
            .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
            .output()
            .expect("run deepseek-wgpu bench");
        assert!(o.status.success(), "bench --compare failed: {}", String::from_utf8_lossy(&o.stderr));
        let r: Value = serde_json::from_slice(&o.stdout).expect("bench --json prints one JSON object");
        cpu = r["machine"]["device_type"].as_str() == Some("Cpu");
        let ratio = r["ratios_to_first"][1]["decode_best"].as_f64().unwrap_or(0.0);
        let ms = |i: usize| 1e3 / r["compare"][i]["decode"]["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
        eprintln!("run {run}: bf16 {:.1} ms, q4_k {:.1} ms per decode token: {ratio:.2}x", ms(0), ms(1));
        best = best.max(ratio);
        if best > FLOOR {
            break;
        }
    }
    if cpu {
        assert!(best > FLOOR, "Q4_K decode is only {best:.2}x as fast as BF16 (floor {FLOOR}x, measured 2.3-2.6x); see BENCHMARKS.md");
    }
}

/// `bench --model DIR --json` on a checkpoint folder: every figure the issue asks for is there
/// and plausible (the fp8 fixture: FP8 weights with block scales, both kernel paths).
#[test]
fn bench_reports_every_figure_for_a_checkpoint() {
    let o = Command::new(common::bin())
        .args(["bench", "--model"])
        .arg(common::fixture("v3_fp8"))
        .args(["--prompt-len", "12", "--gen", "3", "--decode-at", "4,9", "--reps", "1", "--json"])
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .expect("run deepseek-wgpu bench");
    assert!(o.status.success(), "bench failed: {}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let pos = |v: &Value, what: &str| assert!(v.as_f64().is_some_and(|x| x > 0.0 && x.is_finite()), "{what} = {v}");
    pos(&r["roofline"]["gb_per_s"], "roofline");
    pos(&r["prefill"]["tokens_per_s"], "prefill tok/s");
    pos(&r["prefill"]["gflop_per_s"], "prefill GFLOP/s");
    let d = r["decode"].as_array().expect("decode rows");
    assert_eq!(d.iter().map(|x| x["ctx"].as_u64().unwrap()).collect::<Vec<_>>(), [4, 9]);
    for x in d {
        pos(&x["tokens_per_s"], "decode tok/s");
        pos(&x["weight_bytes"], "weight bytes");
        pos(&x["roofline_fraction"], "roofline fraction");
        assert!(x["cache_bytes"].as_u64().unwrap() > 0);
    }
    // more cached rows, more cache bytes read
    assert!(d[1]["cache_bytes"].as_u64() > d[0]["cache_bytes"].as_u64());
    if r["machine"]["timestamps"].as_bool() == Some(true) {
        let k = r["prefill"]["profile"]["kernels"].as_array().expect("per-kernel times");
        assert!(k.iter().any(|x| x["kernel"] == "moe_gate"), "{k:?}");
        // A decode step is one submission: every layer, the head and the sampler recorded
        // into one command buffer, with no host wait inside the step.
        for x in d {
            assert_eq!(x["profile"]["submissions"], 1, "decode at ctx {}: {}", x["ctx"], x["profile"]);
        }
    }
}

#[test]
fn bench_names_the_known_shapes_on_a_typo() {
    let o = Command::new(common::bin()).args(["bench", "--synthetic", "r1-shape-smal"]).output().expect("run deepseek-wgpu bench");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("r1-shape-small") && err.contains("v2-lite-shape") && !err.contains("panicked"), "{err}");
}

#[test]
fn bench_refuses_zero_decode_steps() {
    let o = Command::new(common::bin()).args(["bench", "--gen", "0"]).output().expect("run deepseek-wgpu bench");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--gen 0") && !err.contains("panicked"), "{err}");
}

/// Without a prefill (--prompt-len 0) there is no prefill/decode ratio to report.
#[test]
fn bench_without_prefill_reports_no_ratio() {
    let o = Command::new(common::bin())
        .args(["bench", "--model"])
        .arg(common::fixture("v3_fp8"))
        .args(["--prompt-len", "0", "--gen", "2", "--decode-at", "4", "--no-profile", "--json"])
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .expect("run deepseek-wgpu bench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert!(r["prefill"].is_null() && r["prefill_over_decode"].is_null(), "{r}");
    assert!(r["decode"][0]["tokens_per_s"].as_f64().is_some_and(|x| x > 0.0));
}

/// A synthetic shape larger than the host's memory is refused with the numbers before any
/// allocation (v2-lite-shape is 31 GB: the process would otherwise be killed mid-build).
#[test]
fn bench_refuses_a_shape_larger_than_host_memory() {
    let o = Command::new(common::bin())
        .args(["bench", "--synthetic", "r1-shape-ci", "--host-memory-mib", "100"])
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .expect("run deepseek-wgpu bench");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("r1-shape-ci needs") && err.contains("0.1 GB is available") && !err.contains("panicked"), "{err}");
}
