#!/usr/bin/env python3
"""Config fixtures of the published checkpoints we claim, and the figures they imply, computed by
transformers (an implementation independent of ours).

    python3 tools/make_config_fixtures.py          # rewrites the files below

Input: `tests/fixtures/configs/<name>/config.json`, verbatim copies of the published files (their source is in
`tests/fixtures/configs/SOURCE.md`). For each it writes

* `tests/fixtures/configs/<name>/saved-by-transformers/config.json`: the config after a transformers
  `from_pretrained` / `save_pretrained` round trip (5.x writes `rope_parameters` with both `rope_type` and
  `type`, and more), which the engine must load as well;
* `tests/fixtures/configs/expected.json`: per checkpoint, the parameter counts of the model transformers
  builds from that config (instantiated on the meta device, so no memory is used), the parameters one token
  activates, and the latent KV cache bytes per token, plus the model cards' rounded figures.

Counting, as the engine's `inspect` reports it: `params_total` = every tensor element of the state dict
transformers builds (parameters and persistent buffers; the MTP layer is not built); `params_active` = total minus the input embedding minus the routed experts a
token does not use (`n_routed - top_k` per MoE layer); KV cache = layers x (kv_lora_rank + qk_rope_head_dim)
x 4 bytes (the engine keeps the latent cache in f32).
"""

import copy
import json
import os
import sys
import tempfile

import torch
import transformers
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, DeepseekV3Config, DeepseekV3ForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "configs")

# The model cards' headline figures (total, activated), in billions, as printed there.
CARDS = {
    "r1-0528": ("671", "37"), "r1": ("671", "37"), "v3": ("671", "37"), "v3.1": ("671", "37"),
    "v2": ("236", "21"), "v2-lite": ("15.7", "2.4"), "v2-lite-chat": ("15.7", "2.4"),
    "moonlight-16b-a3b": ("16", "3"), "moonlight-16b-a3b-instruct": ("16", "3"),
}

CLASSES = {"deepseek_v3": (DeepseekV3Config, DeepseekV3ForCausalLM), "deepseek_v2": (DeepseekV2Config, DeepseekV2ForCausalLM)}


def counts(raw):
    cfg_cls, model_cls = CLASSES[raw["model_type"]]
    d = copy.deepcopy(raw)
    d.pop("quantization_config", None)  # FP8 storage does not change the parameter count
    d.pop("auto_map", None)
    cfg = cfg_cls(**d)
    with torch.device("meta"):
        model = model_cls(cfg)
    # the state dict = what a checkpoint stores: parameters plus persistent buffers (V3's
    # e_score_correction_bias is a buffer in transformers 5, a tensor in every checkpoint)
    total = sum(t.numel() for t in model.state_dict().values())
    embedding = model.model.embed_tokens.weight.numel()
    unused = 0
    for layer in model.model.layers:
        experts = getattr(layer.mlp, "experts", None)
        if experts is None:
            continue
        n = sum(t.numel() for t in experts.state_dict().values())
        unused += n // cfg.n_routed_experts * (cfg.n_routed_experts - cfg.num_experts_per_tok)
    cache = cfg.num_hidden_layers * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) * 4
    return {"params_total": total, "params_active": total - embedding - unused, "params_embedding": embedding,
            "kv_cache_bytes_per_token": cache}


def round_trip(src, dst):
    cfg_cls, _ = CLASSES[json.load(open(os.path.join(src, "config.json")))["model_type"]]
    cfg = cfg_cls.from_pretrained(src)
    os.makedirs(dst, exist_ok=True)
    cfg.save_pretrained(dst)


def main():
    names = sorted(n for n in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, n, "config.json")))
    if not names:
        sys.exit(f"no configs under {ROOT}")
    expected = {"transformers": transformers.__version__, "torch": torch.__version__, "models": {}}
    for n in names:
        src = os.path.join(ROOT, n)
        raw = json.load(open(os.path.join(src, "config.json")))
        c = counts(raw)
        dst = os.path.join(src, "saved-by-transformers")
        round_trip(src, dst)
        c2 = counts(json.load(open(os.path.join(dst, "config.json"))))
        assert c == c2, f"{n}: the round trip changed the model: {c} vs {c2}"
        card = CARDS.get(n)
        c["card_total_b"], c["card_active_b"] = card if card else (None, None)
        expected["models"][n] = c
        print(f"{n:28s} total {c['params_total'] / 1e9:8.3f}B active {c['params_active'] / 1e9:7.3f}B "
              f"(card {card}) cache/token {c['kv_cache_bytes_per_token']} B", flush=True)
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
