//! Decode efficiency regression: `deepseek-wgpu bench` on the `r1-shape-ci` synthetic model
//! (R1's structure, 512 wide, 3 layers, R1's 129280-row head, so decode reads ~147 MB per
//! token), compared as a fraction of the memory roofline measured in the same run, not as
//! an absolute time. Fails when the best of a few runs falls more than 30% below the figure
//! recorded in BENCHMARKS.md for a CPU adapter (lavapipe). Other adapters only print theirs:
//! the recorded figure says nothing about them.

mod common;

use std::process::Command;

use serde_json::Value;

/// Decode roofline fraction of r1-shape-ci at context 16 recorded in BENCHMARKS.md (lavapipe,
/// 2 shared cores; best of runs).
const RECORDED: f64 = 0.14;
/// Allowed drop before the test fails.
const MAX_DROP: f64 = 0.30;
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
    let mut best: Option<Value> = None;
    for run in 0..RUNS {
        let r = bench();
        let d = &r["decode"][0];
        let f = d["roofline_fraction"].as_f64().unwrap_or(0.0);
        eprintln!(
            "run {run}: decode {:.1} ms/token, {:.2} GB/s, roofline {:.2} GB/s, fraction {:.3}, cores {:.2}",
            d["best_ms"].as_f64().unwrap_or(0.0),
            d["gb_per_s"].as_f64().unwrap_or(0.0),
            r["roofline"]["gb_per_s"].as_f64().unwrap_or(0.0),
            f,
            d["cores_used"].as_f64().unwrap_or(0.0)
        );
        if best.as_ref().is_none_or(|b| f > b["decode"][0]["roofline_fraction"].as_f64().unwrap_or(0.0)) {
            best = Some(r);
        }
        // Stop early once the figure is comfortably met: the machine is not the problem.
        if f >= RECORDED {
            break;
        }
    }
    let best = best.expect("at least one run");
    let f = best["decode"][0]["roofline_fraction"].as_f64().unwrap_or(0.0);
    let cpu = best["machine"]["device_type"].as_str() == Some("Cpu");
    if !cpu {
        eprintln!("{}: decode at {f:.3} of the roofline; the recorded figure is for CPU adapters", best["machine"]["adapter"]);
        return;
    }
    let floor = RECORDED * (1.0 - MAX_DROP);
    assert!(
        f >= floor,
        "decode efficiency {f:.3} of the memory roofline is more than {:.0}% below the recorded {RECORDED} (floor {floor:.3}); see BENCHMARKS.md",
        MAX_DROP * 100.0
    );
}
