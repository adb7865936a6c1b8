//! On a headless Linux box (no XDG_RUNTIME_DIR, no display) the CLI prints nothing that reads
//! like a failure: no `error` on stderr from a windowing system, and `devices` lists each
//! adapter once (no second copy through the GL backend).

mod common;

use std::process::Command;

use common::{bin, fixture};

fn headless(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(bin());
    c.args(args).env_remove("XDG_RUNTIME_DIR").env_remove("WAYLAND_DISPLAY").env_remove("DISPLAY").env_remove("NODEVICE_SELECT").env_remove("WGPU_BACKEND");
    c.output().unwrap()
}

#[test]
fn no_error_on_stderr_without_xdg_runtime_dir() {
    let model = fixture("v3_qlora_yarn");
    let model = model.to_str().unwrap();
    for args in [
        vec!["devices"],
        vec!["inspect", "--model", model],
        vec!["logits", "--model", model, "--ids", "1,2,3", "--out", "/dev/null"],
        vec!["generate", "--chat", "--prompt", "What is 12 + 34?", "--temperature", "0", "--max-tokens", "8"],
    ] {
        let o = headless(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(!err.to_lowercase().contains("error"), "{args:?} printed an error on a headless box: {err}");
    }
}

#[test]
fn devices_lists_each_adapter_once_and_no_gl_unless_asked() {
    let o = headless(&["devices"]);
    let out = String::from_utf8_lossy(&o.stdout);
    // `[0] llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu, driver …)`
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with('[')).map(|l| l.split_once("] ").unwrap().1).collect();
    assert!(!rows.is_empty(), "{out}");
    assert!(rows.iter().all(|r| !r.contains("(Gl,")), "the GL backend was created without being asked for: {out}");
    let names: Vec<&str> = rows.iter().map(|r| r.rsplit_once(" (").unwrap().0).collect();
    let mut uniq = names.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), names.len(), "an adapter is listed twice: {out}");
}
