//! The embedded default model (assets/tiny-r1, trained by tools/train_tiny.py): every command
//! runs it without --model, it reasons before answering, it gets +, −, × by one digit and
//! comparisons of 2–6 digit numbers right through this engine, and it declines anything else
//! with one honest sentence.

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
fn every_task_at_six_digits_through_the_engine() {
    let o = Command::new(bin()).args(["eval", "--quiet", "--json", "--n", "20", "--seed", "99"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let tasks: Vec<&str> = v.as_array().unwrap().iter().map(|s| s["task"].as_str().unwrap()).collect();
    assert_eq!(tasks, ["add", "sub", "mul", "cmp", "ood"]);
    for s in v.as_array().unwrap() {
        let acc = s["accuracy"].as_f64().unwrap();
        assert!(acc >= 0.9, "{}: {:.0}% < 90%: {s}", s["task"], acc * 100.0);
    }
}

#[test]
fn a_six_digit_sum_and_an_out_of_domain_question() {
    let run = |q: &str| -> Value {
        let o = Command::new(bin()).args(["generate", "--quiet", "--chat", "--prompt", q, "--temperature", "0", "--json"]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v = run("What is 4821 + 379?");
    assert_eq!(v["answer"], "5200", "{v}");
    // Spot checks at the longest length (the accuracy gate is the test above: about 95% of
    // 6-digit subtractions are right, so not every single case is).
    let v = run("What is 482113 + 379234?");
    assert_eq!(v["answer"], "861347", "{v}");
    let v = run("What is 58213 * 7?");
    assert_eq!(v["answer"], "407491", "{v}");
    let v = run("Hello! Who are you?");
    assert_eq!(v["answer"].as_str().unwrap(), deepseek_wgpu::eval::DECLINE, "{v}");
    assert!(!v["reasoning"].as_str().unwrap().trim().is_empty(), "it still thinks first: {v}");
    assert_eq!(v["stop"], "eos");
}
