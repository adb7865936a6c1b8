//! The published `config.json` of every checkpoint we claim (R1-0528, R1, V3, V3.1, V2,
//! V2-Lite(-Chat), Moonlight-16B-A3B(-Instruct)), as published and after a transformers 5
//! `save_pretrained` round trip (`tests/fixtures/configs`, made by
//! `tools/make_config_fixtures.py`): `inspect` loads each with no weights present and reports
//! the parameter counts and cache size that transformers' own model implies, and the model
//! cards' rounded figures. V2-Lite-Chat and the Moonlight base model are missing: no copy of
//! their config.json could be found (tests/fixtures/configs/SOURCE.md); their cards give the
//! same architecture as V2-Lite and Moonlight-Instruct.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::bin;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/configs")
}

fn inspect(dir: &Path) -> Value {
    let o = Command::new(bin()).args(["inspect", "--json", "--ctx", "1000", "--model"]).arg(dir).output().unwrap();
    assert!(o.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `card` as printed ("671", "15.7"): the count must round to it at that many decimals, give
/// or take 2.5% (the cards round loosely: V2-Lite's 2.451B active is printed "2.4B").
fn rounds_to(count: u64, card: &str) -> bool {
    let decimals = card.split('.').nth(1).map_or(0, str::len) as i32;
    let b = count as f64 / 1e9;
    let want: f64 = card.parse().unwrap();
    (b - want).abs() <= (0.5 * 10f64.powi(-decimals)).max(0.025 * want)
}

#[test]
fn every_published_config_loads_with_the_figures_transformers_implies() {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(root().join("expected.json")).unwrap()).unwrap();
    let models = expected["models"].as_object().unwrap();
    for name in ["r1-0528", "r1", "v3", "v3.1", "v2", "v2-lite", "moonlight-16b-a3b-instruct"] {
        let want = &models[name];
        for dir in [root().join(name), root().join(name).join("saved-by-transformers")] {
            let got = inspect(&dir);
            for key in ["params_total", "params_active", "params_embedding", "kv_cache_bytes_per_token"] {
                assert_eq!(got[key], want[key], "{}: {key}", dir.display());
            }
            assert_eq!(got["kv_cache_bytes"].as_u64().unwrap(), 1000 * want["kv_cache_bytes_per_token"].as_u64().unwrap());
            let (total, active) = (got["params_total"].as_u64().unwrap(), got["params_active"].as_u64().unwrap());
            let (card_total, card_active) = (want["card_total_b"].as_str().unwrap(), want["card_active_b"].as_str().unwrap());
            assert!(rounds_to(total, card_total), "{name}: {total} parameters is not the card's {card_total}B");
            assert!(rounds_to(active, card_active), "{name}: {active} active parameters is not the card's {card_active}B");
            assert!(got["unknown_config_keys"].as_array().unwrap().is_empty(), "{}: {got}", dir.display());
        }
    }
}

#[test]
fn round_tripped_configs_carry_both_rope_spellings() {
    // The bug this guards: transformers 5 writes `rope_type` and `type` side by side.
    let text = std::fs::read_to_string(root().join("r1-0528/saved-by-transformers/config.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let rope = v.get("rope_parameters").or(v.get("rope_scaling")).unwrap();
    assert_eq!(rope["rope_type"], "yarn", "{rope}");
    assert_eq!(rope["type"], "yarn", "{rope}");
}

#[test]
fn disagreeing_rope_spellings_are_refused_with_both_values() {
    let dir = tempdir("rope-disagree");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(root().join("v3/config.json")).unwrap()).unwrap();
    v["rope_scaling"]["rope_type"] = "linear".into();
    std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
    let o = Command::new(bin()).args(["inspect", "--model"]).arg(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("\"rope_type\": \"linear\"") && err.contains("\"type\": \"yarn\"") && err.contains("config.json"), "{err}");
}

#[test]
fn a_model_type_we_do_not_run_is_named_with_what_we_do() {
    let dir = tempdir("model-type");
    std::fs::write(dir.join("config.json"), r#"{"model_type": "llama", "hidden_size": 8}"#).unwrap();
    let o = Command::new(bin()).args(["inspect", "--model"]).arg(&dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("\"llama\"") && err.contains("deepseek_v3") && err.contains("deepseek_v2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dsw-configs-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
