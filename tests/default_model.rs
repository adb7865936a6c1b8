//! The embedded default model (assets/tiny-r1, trained by tools/train_tiny.py): every command
//! runs it without --model, it reasons before answering, and it gets 2–3 digit addition and
//! subtraction right through this engine.

mod common;

use std::process::Command;

use common::bin;
use serde_json::Value;

#[test]
fn answers_with_reasoning_without_any_model_flag() {
    let o = Command::new(bin()).args(["generate", "--quiet", "--chat", "--prompt", "What is 347 + 589?", "--temperature", "0", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["answer"], "936", "{v}");
    assert!(v["reasoning"].as_str().unwrap().contains("347+589"), "the reasoning works the sum: {v}");
    assert_eq!(v["stop"], "eos");
    // Streaming text output shows the reasoning apart, then the answer.
    let o = Command::new(bin()).args(["generate", "--quiet", "--chat", "--prompt", "What is 72 - 15?", "--temperature", "0"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("<think>\n") && out.contains("</think>") && out.trim_end().ends_with("57"), "{out}");
}

#[test]
fn addition_and_subtraction_accuracy_through_the_engine() {
    let o = Command::new(bin()).args(["eval", "--quiet", "--json", "--n", "30", "--seed", "99", "--tasks", "add,sub"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for s in v.as_array().unwrap() {
        let acc = s["accuracy"].as_f64().unwrap();
        assert!(acc >= 0.9, "{}: {:.0}% < 90%: {s}", s["task"], acc * 100.0);
    }
}
