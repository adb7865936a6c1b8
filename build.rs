//! Embeds the default model (assets/tiny-r1) into the library when it is present, so a
//! binary copied anywhere still runs without a download.

fn main() {
    let dir = std::path::Path::new("assets/tiny-r1");
    println!("cargo::rustc-check-cfg=cfg(embedded_model)");
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        println!("cargo:rerun-if-changed=assets/tiny-r1/{f}");
    }
    let complete = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].iter().all(|f| dir.join(f).exists());
    if complete {
        println!("cargo:rustc-cfg=embedded_model");
    }
}
