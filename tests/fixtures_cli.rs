//! Every fixture through the real binary: logits by prefill, by pure decode (`--step 1`) and
//! by chunks (`--step 3`) against transformers' goldens; greedy ids and routing through
//! `generate --json`. The logits run with every kernel's runtime checks on (`--shader-checks
//! on`); generate runs the default (`auto`, see `ops::TRUSTED_FAMILIES`).

mod common;

use std::process::Command;

use common::*;

fn logits(name: &str, ids: &[u32], step: Option<usize>) -> Vec<f32> {
    let out = std::env::temp_dir().join(format!("dsw-{name}-{}-{}.npy", step.unwrap_or(0), std::process::id()));
    let ids_s: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let mut cmd = Command::new(bin());
    cmd.args(["logits", "--quiet", "--shader-checks", "on", "--ctx", "64", "--model"]).arg(fixture(name)).args(["--ids", &ids_s.join(","), "--out"]).arg(&out);
    if let Some(s) = step {
        cmd.args(["--step", &s.to_string()]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{name}: logits failed: {}", String::from_utf8_lossy(&o.stderr));
    let (shape, data) = deepseek_wgpu::npy::read_f32(&out).unwrap();
    std::fs::remove_file(&out).ok();
    assert_eq!(shape, vec![ids.len(), data.len() / ids.len()]);
    data
}

#[test]
fn logits_match_transformers_on_every_path() {
    let mut report = Vec::new();
    for name in FIXTURES {
        let g = golden(name);
        for step in [None, Some(1), Some(3)] {
            let ours = logits(name, &g.input_ids, step);
            let err = rel_err(&ours, &g.logits);
            report.push(format!("{name} step {step:?}: max|err|/std = {err:.2e}"));
            assert!(err <= TOL, "{name} step {step:?}: max|err|/std = {err:.3e} > {TOL}");
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn greedy_ids_and_routing_match_transformers() {
    for name in FIXTURES {
        let g = golden(name);
        for step in [None, Some("1"), Some("4")] {
            let ids_s: Vec<String> = g.prompt_ids.iter().map(|i| i.to_string()).collect();
            // No --step: the default path (these fixtures have no tokenizer).
            let step_args: Vec<&str> = step.map_or(vec![], |s| vec!["--step", s]);
            let o = Command::new(bin())
                .args(["generate", "--quiet", "--ctx", "64", "--temperature", "0", "--json"])
                .args(&step_args)
                .arg("--model")
                .arg(fixture(name))
                .args(["--ids", &ids_s.join(","), "--max-tokens", &g.generated_ids.len().to_string()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{name}: generate failed: {}", String::from_utf8_lossy(&o.stderr));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let ids: Vec<u32> = serde_json::from_value(v["ids"].clone()).unwrap();
            assert_eq!(ids, g.generated_ids, "{name} step {step:?}: greedy ids");
            let prompt: Vec<u32> = serde_json::from_value(v["prompt_ids"].clone()).unwrap();
            assert_eq!(prompt, g.prompt_ids);
            let routing: std::collections::BTreeMap<String, Vec<Vec<u32>>> = serde_json::from_value(v["routing"].clone()).unwrap();
            assert_eq!(routing.keys().collect::<Vec<_>>(), g.routing.keys().collect::<Vec<_>>(), "{name}: MoE layers");
            let fed = g.input_ids.len() - 1;
            for (layer, per_pos) in &routing {
                assert_eq!(per_pos.len(), fed, "{name} layer {layer}: one routing entry per position fed");
                assert_eq!(per_pos[..], g.routing[layer][..fed], "{name} step {step:?} layer {layer}: routing");
            }
        }
    }
}

#[test]
fn bad_model_folder_is_a_clear_error() {
    let o = Command::new(bin()).args(["logits", "--quiet", "--model", "/nonexistent", "--ids", "1", "--out", "/tmp/x.npy"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("config.json") && err.contains("/nonexistent"), "{err}");
}

#[test]
fn inspect_reports_counts_and_memory() {
    let o = Command::new(bin()).args(["inspect", "--json", "--ctx", "128", "--model"]).arg(fixture("v3_fp8")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let total = v["params_total"].as_u64().unwrap();
    let active = v["params_active"].as_u64().unwrap();
    assert!(active < total && active > 0, "{v}");
    assert!(v["dtypes"]["F8_E4M3"].as_u64().unwrap() > 0, "{v}");
    assert!(v["kv_cache_bytes"].as_u64().unwrap() > 0);
    // The counts derived from config.json alone equal the tensors transformers saved.
    for name in FIXTURES {
        let o = Command::new(bin()).args(["inspect", "--json", "--model"]).arg(fixture(name)).output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["params_total"], v["params_in_weights"], "{name}: {v}");
    }
    let o = Command::new(bin()).args(["inspect", "--model"]).arg(fixture("v3_qlora_yarn")).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("YaRN") && text.contains("active per token"), "{text}");
}

#[test]
fn devices_lists_an_adapter() {
    let o = Command::new(bin()).arg("devices").output().unwrap();
    assert!(o.status.success(), "no GPU adapter: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("max_storage_buffer_binding_size"));
}

/// `--shader-checks`, `DEEPSEEK_WGPU_SHADER_CHECKS` and a `bench --compare` item's `@` suffix
/// take on, auto or off; anything else is refused before a model is loaded, naming the values.
#[test]
fn shader_checks_option_is_validated() {
    let o = Command::new(bin()).args(["logits", "--shader-checks", "maybe", "--ids", "1", "--out", "/dev/null"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("'maybe' is not one of on, off, auto"), "{err}");
    let o = Command::new(bin()).env("DEEPSEEK_WGPU_SHADER_CHECKS", "never").args(["logits", "--ids", "1", "--out", "/dev/null"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("'never' is not one of on, off, auto"), "{err}");
    // a bench --compare item's @CHECKS suffix, before any model is built
    let o = Command::new(bin()).args(["bench", "--compare", "bf16@on,bf16@sometimes", "--no-profile"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--compare bf16@sometimes: after '@': 'sometimes' is not one of on, off, auto"), "{err}");
}
