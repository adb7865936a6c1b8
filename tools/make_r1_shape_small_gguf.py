#!/usr/bin/env python3
"""r1-shape-small as GGUF files llama.cpp and deepseek-wgpu both read: the same-driver comparison
(BENCHMARKS.md "Same driver: llama.cpp Vulkan on lavapipe").

r1-shape-small is `deepseek-wgpu bench`'s synthetic shape (src/synthetic.rs): DeepSeek-R1's structure
at hidden 1024, 8 layers (the first dense), 8 heads, q_lora 384, kv_lora 128, 64 routed experts of
width 256 (8 active, 8 groups keeping 4), one shared expert, R1's vocabulary of 129280, YaRN. The
engine builds it in memory; llama.cpp needs a file. This script:

 1. builds the same config as a transformers `DeepseekV3ForCausalLM` with random weights (BF16)
    and saves it in the HF layout with the real DeepSeek-V3 tokenizer (assets/deepseek-v3-tokenizer);
 2. converts it with llama.cpp's own `convert_hf_to_gguf.py --outtype bf16`;
 3. quantizes that with llama.cpp's `llama-quantize` to Q4_K_M.

The weights are random (the speed of a forward pass does not depend on them; routing is then
close to uniform, as in `bench --synthetic`). Output: OUT/r1-shape-small-bf16.gguf and
OUT/r1-shape-small-q4_k_m.gguf.

Usage: tools/make_r1_shape_small_gguf.py LLAMA_CPP_DIR LLAMA_QUANTIZE OUT
(LLAMA_CPP_DIR: llama.cpp's source tree, e.g. vendor/llama.cpp of the llama-cpp-python sdist)
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

ROOT = Path(__file__).resolve().parent.parent

# src/synthetic.rs, config_json("r1-shape-small")
CONFIG = {
    "model_type": "deepseek_v3", "vocab_size": 129280, "hidden_size": 1024,
    "intermediate_size": 2816, "moe_intermediate_size": 256,
    "num_hidden_layers": 8, "first_k_dense_replace": 1, "moe_layer_freq": 1,
    "num_attention_heads": 8, "num_key_value_heads": 8, "q_lora_rank": 384, "kv_lora_rank": 128,
    "qk_rope_head_dim": 32, "qk_nope_head_dim": 64, "v_head_dim": 64,
    "n_routed_experts": 64, "n_shared_experts": 1, "num_experts_per_tok": 8,
    "n_group": 8, "topk_group": 4, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
    "norm_topk_prob": True, "routed_scaling_factor": 2.5,
    "rope_theta": 10000, "max_position_embeddings": 163840,
    "rope_scaling": {"type": "yarn", "rope_type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 1,
}


def main():
    llama, quantize, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    hf = out / "r1-shape-small-hf"
    if not (hf / "model.safetensors").exists() and not (hf / "model.safetensors.index.json").exists():
        torch.manual_seed(0)
        cfg = DeepseekV3Config(**{k: v for k, v in CONFIG.items() if k != "model_type"})
        model = DeepseekV3ForCausalLM(cfg).to(torch.bfloat16)
        with torch.no_grad():
            for p in model.parameters():
                # weights of a trained model's scale (init's 0.02 std), no zeros or NaNs
                p.normal_(0.0, 0.02)
        model.save_pretrained(hf)
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            shutil.copy(ROOT / "assets" / "deepseek-v3-tokenizer" / f, hf / f)
        c = json.loads((hf / "config.json").read_text())
        c["architectures"] = ["DeepseekV3ForCausalLM"]
        (hf / "config.json").write_text(json.dumps(c, indent=2))
    bf16 = out / "r1-shape-small-bf16.gguf"
    if not bf16.exists():
        subprocess.run([sys.executable, str(llama / "convert_hf_to_gguf.py"), str(hf), "--outtype", "bf16", "--outfile", str(bf16)], check=True)
    q4 = out / "r1-shape-small-q4_k_m.gguf"
    if not q4.exists():
        subprocess.run([str(quantize), str(bf16), str(q4), "Q4_K_M"], check=True)
    for f in [bf16, q4]:
        print(f, f.stat().st_size)


if __name__ == "__main__":
    main()
