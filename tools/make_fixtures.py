#!/usr/bin/env python3
"""Build tiny random DeepSeek-V2/V3 checkpoints plus transformers goldens for the Rust tests.

Re-run (CPU only, float32, no network, ~1 minute):

    python3 tools/make_fixtures.py                 # regenerate every fixture
    python3 tools/make_fixtures.py v3_fp8 v2_greedy  # regenerate only these

Needs: torch, transformers 5.x (written against 5.24.0), safetensors, numpy. Nothing is downloaded:
the models are built from a config with random (seeded) weights, saved with `save_pretrained`
(which writes the real Hugging Face layout: one `mlp.experts.<e>.{gate,up,down}_proj.weight` per
expert), post-processed (dtype / sharding / fp8 / MTP / legacy config spelling), then RELOADED from
disk with `from_pretrained(dir, dtype=torch.float32, attn_implementation="eager")` and the goldens
are computed from that reloaded model (so BF16/F16 rounding of stored weights is in the goldens and
RoPE buffers are computed in float32).

Every fixture lives in tests/fixtures/<name>/ and holds
  config.json                      the checkpoint config (see "config spelling" below)
  model.safetensors                or model-0000X-of-0000N.safetensors + model.safetensors.index.json
  golden.json                      prompt_ids, generated_ids (greedy, 7 tokens, manual loop of full
                                   forward passes + argmax, no KV cache), input_ids = prompt+generated,
                                   routing {"<layer>": [[sorted expert ids] per position]} for every
                                   MoE layer (from one forward over input_ids, captured with forward
                                   hooks on mlp.gate), routing_weights (same order as the sorted ids,
                                   already multiplied by routed_scaling_factor), vocab_size,
                                   logits_std, moe_layers, rope_inv_freq / rope_attention_factor /
                                   softmax_scale (the float32 constants transformers used), plus
                                   diagnostics (router/greedy margins, feature counts, checks, seed,
                                   versions).
After writing each fixture the script re-derives logits, routing and greedy tokens from the fixture FILES
ONLY with an independent float64 numpy implementation (np_forward, written from tools/ORACLE_NOTES.md)
and asserts agreement (max |logit diff| < 1e-3; observed ~3e-6).
  logits.npy                       float32 [len(input_ids), vocab] logits of ONE forward over input_ids

Fixtures
  v3_qlora_yarn    deepseek_v3, F32. moe width 8, intermediate 64, q_lora_rank=40, kv_lora_rank 32, YaRN (factor 4, original_max_position_embeddings
                   64, beta_fast 32, beta_slow 1, mscale 1, mscale_all_dim 1), 16 experts in 4 groups,
                   topk_group 2, top-4, sigmoid + noaux_tc, norm_topk_prob, routed_scaling_factor 2.5,
                   1 shared expert, first_k_dense_replace 1, 3 layers, random e_score_correction_bias.
                   config.json uses the LEGACY hub spelling (rope_scaling {"type": "yarn", ...} +
                   top-level rope_theta), like the real DeepSeek-V3 config.
  v3_moonlight     deepseek_v3, BF16 (bias F32). q_lora_rank null, n_group 1, topk_group 1, top-3 of 8,
                   no rope scaling (legacy spelling "rope_scaling": null, rope_theta 50000),
                   rms_norm_eps 1e-5, 2 shared experts, routed_scaling_factor 2.446.
  v2_greedy        deepseek_v2, F16. softmax, topk_method greedy, top-2 of 8, norm_topk_prob false,
                   q_lora_rank null (V2-Lite-like), 2 shared experts, 2 layers, default RoPE,
                   transformers-5 spelling (rope_parameters).
  v2_group_limited deepseek_v2, BF16. softmax, group_limited_greedy, 16 experts / 4 groups, topk_group 2,
                   top-4, q_lora_rank set, routed_scaling_factor 16, 2 layers, YaRN V2-style
                   (mscale = mscale_all_dim = 0.707), legacy spelling.
  v3_fp8           deepseek_v3 block-FP8 checkpoint: every projection weight (q_a/q_b/kv_a/kv_b/o, dense
                   MLP, experts, shared experts) is F8_E4M3 with an F32 `<name>.weight_scale_inv`
                   [ceil(out/128), ceil(in/128)]; embed/norms/router/lm_head BF16, e_score_correction_bias
                   F32; config has quantization_config (weight_block_size [128,128]). hidden 160,
                   q_lora 144, kv_lora 72, intermediate 200, moe width 136 -> partial edge blocks;
                   6 experts / 2 groups, topk_group 1, top-2, 2 layers.
                   Legacy-spelled YaRN with the real V3 values (factor 40, original 4096).
                   Goldens come from a float32 model holding the DEQUANTISED weights
                   (w = float(w_fp8) * scale_inv[i//128][j//128]).
  v3_sharded       deepseek_v3 in 3 shards + model.safetensors.index.json, MIXED dtypes in one checkpoint
                   (F32 norms/bias, BF16 embed/router/attention of even layers/shared experts, F16
                   lm_head/attention of odd layers/dense MLP/experts), 4 layers, first_k_dense_replace 2,
                   YaRN with mscale 1.0 != mscale_all_dim 0.5 (so the cos/sin attention_factor != 1),
                   transformers-5 spelling (rope_parameters). Carries an MTP layer:
                   num_nextn_predict_layers 1 and model.layers.4.{enorm,hnorm,eh_proj,shared_head.norm,
                   shared_head.head,embed_tokens,self_attn.*,layernorms,mlp.gate,shared_experts,
                   experts.{0,1}} tensors (they land in the last shard); the
                   engine must ignore them. The script checks the goldens are bit-identical with and
                   without those tensors.

Weights: N(0, 1/fan_in) matrices, N(0,1) embeddings, norm weights U(0.8, 1.2), router weights scaled so
router logits have std ~2, e_score_correction_bias N(0, 0.1^2). For each fixture the seed is searched
(deterministically, starting from a fixed base) until (a) every top-k expert choice and group choice has a
margin >= ROUTER_MARGIN (2e-3) between the last chosen and the first rejected candidate (V3: in
sigmoid+bias score space, group score = top-2 sum; V2: in router-logit space, which orders exactly like the
softmax probabilities), (b) every greedy step
has a top1-top2 logit margin >= GREEDY_MARGIN, and (c) the routing features are exercised (the bias and
the group restriction change at least one selection). The margins are recorded in golden.json.
"""

import argparse
import copy
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    DeepseekV2Config,
    DeepseekV2ForCausalLM,
    DeepseekV3Config,
    DeepseekV3ForCausalLM,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

ROUTER_MARGIN = 2e-3  # V3: in score space (sigmoid + bias); V2: in router-logit space (softmax is monotone)
GREEDY_MARGIN = 2e-2  # in logit space
PROMPT_LEN = 11
GEN_LEN = 7
MAX_SEED_TRIES = 200

torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------------
# fixture specs
# --------------------------------------------------------------------------------------------------

def v3_yarn(factor, orig, mscale, mscale_all_dim, theta=10000.0):
    return {
        "rope_type": "yarn",
        "rope_theta": theta,
        "factor": factor,
        "original_max_position_embeddings": orig,
        "beta_fast": 32,
        "beta_slow": 1,
        "mscale": mscale,
        "mscale_all_dim": mscale_all_dim,
    }


FIXTURE_SPECS = {
    "v3_qlora_yarn": dict(
        arch="v3",
        base_seed=1000,
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=64, moe_intermediate_size=8,
            num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=1, n_routed_experts=16, n_group=4, topk_group=2, num_experts_per_tok=4,
            routed_scaling_factor=2.5, norm_topk_prob=True, first_k_dense_replace=1,
            kv_lora_rank=32, q_lora_rank=40, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters=v3_yarn(4.0, 64, 1.0, 1.0),
            num_nextn_predict_layers=0,
        ),
        extra_config=dict(scoring_func="sigmoid", topk_method="noaux_tc", moe_layer_freq=1),
        storage="f32",
        legacy_config=True,
        router_logit_std=2.0,
        bias_std=0.1,
    ),
    "v3_moonlight": dict(
        arch="v3",
        base_seed=2000,
        config=dict(
            vocab_size=320, hidden_size=64, intermediate_size=128, moe_intermediate_size=16,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=2, n_routed_experts=8, n_group=1, topk_group=1, num_experts_per_tok=3,
            routed_scaling_factor=2.446, norm_topk_prob=True, first_k_dense_replace=1,
            kv_lora_rank=32, q_lora_rank=None, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16,
            max_position_embeddings=512, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 50000.0},
            num_nextn_predict_layers=0,
        ),
        extra_config=dict(scoring_func="sigmoid", topk_method="noaux_tc", moe_layer_freq=1),
        storage="bf16",
        legacy_config=True,
        router_logit_std=2.0,
        bias_std=0.1,
    ),
    "v2_greedy": dict(
        arch="v2",
        base_seed=3000,
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=16,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=2, n_routed_experts=8, n_group=1, topk_group=1, num_experts_per_tok=2,
            topk_method="greedy", routed_scaling_factor=1.0, norm_topk_prob=False, first_k_dense_replace=1,
            kv_lora_rank=32, q_lora_rank=None, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        ),
        extra_config=dict(scoring_func="softmax", moe_layer_freq=1, aux_loss_alpha=0.001, seq_aux=True),
        storage="f16",
        legacy_config=False,
        router_logit_std=2.5,
    ),
    "v2_group_limited": dict(
        arch="v2",
        base_seed=4000,
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=16,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=2, n_routed_experts=16, n_group=4, topk_group=2, num_experts_per_tok=4,
            topk_method="group_limited_greedy", routed_scaling_factor=16.0, norm_topk_prob=False,
            first_k_dense_replace=1,
            kv_lora_rank=32, q_lora_rank=48, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters=v3_yarn(4.0, 64, 0.707, 0.707),
        ),
        extra_config=dict(scoring_func="softmax", moe_layer_freq=1, aux_loss_alpha=0.003, seq_aux=True),
        storage="bf16",
        legacy_config=True,
        router_logit_std=2.5,
    ),
    "v3_fp8": dict(
        arch="v3",
        base_seed=5000,
        config=dict(
            vocab_size=256, hidden_size=160, intermediate_size=200, moe_intermediate_size=136,
            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
            n_shared_experts=1, n_routed_experts=6, n_group=2, topk_group=1, num_experts_per_tok=2,
            routed_scaling_factor=2.5, norm_topk_prob=True, first_k_dense_replace=1,
            kv_lora_rank=72, q_lora_rank=144, qk_rope_head_dim=16, qk_nope_head_dim=32, v_head_dim=32,
            max_position_embeddings=163840, rms_norm_eps=1e-6,
            rope_parameters=v3_yarn(40.0, 4096, 1.0, 1.0),
            num_nextn_predict_layers=0,
        ),
        extra_config=dict(
            scoring_func="sigmoid", topk_method="noaux_tc", moe_layer_freq=1,
            quantization_config={
                "activation_scheme": "dynamic",
                "fmt": "e4m3",
                "quant_method": "fp8",
                "weight_block_size": [128, 128],
            },
        ),
        storage="fp8",
        legacy_config=True,
        router_logit_std=2.0,
        bias_std=0.1,
    ),
    "v3_sharded": dict(
        arch="v3",
        base_seed=6000,
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=96, moe_intermediate_size=16,
            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=1, n_routed_experts=8, n_group=2, topk_group=1, num_experts_per_tok=2,
            routed_scaling_factor=2.5, norm_topk_prob=True, first_k_dense_replace=2,
            kv_lora_rank=32, q_lora_rank=40, qk_rope_head_dim=16, qk_nope_head_dim=16, v_head_dim=16,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters=v3_yarn(8.0, 32, 1.0, 0.5),
            num_nextn_predict_layers=1,
        ),
        extra_config=dict(scoring_func="sigmoid", topk_method="noaux_tc", moe_layer_freq=1),
        storage="mixed",
        legacy_config=False,
        shards=3,
        mtp=True,
        router_logit_std=2.0,
        bias_std=0.1,
    ),
}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def arch_classes(arch):
    if arch == "v3":
        return DeepseekV3Config, DeepseekV3ForCausalLM
    return DeepseekV2Config, DeepseekV2ForCausalLM


def build_config(spec):
    cfg_cls, _ = arch_classes(spec["arch"])
    kw = copy.deepcopy(spec["config"])
    kw.update(copy.deepcopy({k: v for k, v in spec["extra_config"].items() if k != "quantization_config"}))
    cfg = cfg_cls(**kw, attn_implementation="eager")
    return cfg


@torch.no_grad()
def init_weights(model, cfg, gen, router_logit_std, bias_std):
    """Deterministic, well-scaled random weights (the HF init, std 0.02, gives near-uniform logits)."""
    H = cfg.hidden_size
    for name, p in model.named_parameters():
        if name.endswith("embed_tokens.weight"):
            p.copy_(torch.randn(p.shape, generator=gen))
        elif "norm" in name.split(".")[-2]:  # input_layernorm, q_a_layernorm, model.norm, ...
            p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=gen))
        elif name.endswith("mlp.gate.weight"):
            # h entering the router has rms ~1 -> router logits std ~ router_logit_std
            p.copy_(torch.randn(p.shape, generator=gen) * (router_logit_std / math.sqrt(H)))
        else:
            fan_in = p.shape[-1]
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
    for name, b in model.named_buffers():
        if name.endswith("e_score_correction_bias"):
            b.copy_(torch.randn(b.shape, generator=gen) * bias_std)


def read_dir_tensors(d):
    """All tensors of a saved checkpoint dir (single file or sharded) as an ordered dict name->tensor."""
    d = Path(d)
    files = sorted(d.glob("*.safetensors"))
    out = {}
    for f in files:
        with safe_open(str(f), "pt") as sf:
            for k in sf.keys():
                out[k] = sf.get_tensor(k)
    return out


def natural_key(name):
    parts = []
    for tok in name.replace("-", ".").split("."):
        parts.append((0, int(tok), "") if tok.isdigit() else (1, 0, tok))
    return parts


def write_checkpoint(d, tensors, shards=1):
    """Write tensors (dict name->tensor, any dtype) as HF safetensors, optionally sharded + index."""
    d = Path(d)
    names = sorted(tensors, key=natural_key)
    meta = {"format": "pt"}
    if shards <= 1:
        save_file({k: tensors[k].contiguous() for k in names}, str(d / "model.safetensors"), metadata=meta)
        (d / "model.safetensors").chmod(0o644)
        return
    sizes = [tensors[k].numel() * tensors[k].element_size() for k in names]
    total = sum(sizes)
    target = total / shards
    groups, cur, acc = [], [], 0
    for k, s in zip(names, sizes):
        if cur and acc + s > target * (len(groups) + 1) and len(groups) < shards - 1:
            groups.append(cur)
            cur = []
        cur.append(k)
        acc += s
    groups.append(cur)
    assert len(groups) == shards, (len(groups), shards)
    weight_map = {}
    for i, g in enumerate(groups):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: tensors[k].contiguous() for k in g}, str(d / fname), metadata=meta)
        for k in g:
            weight_map[k] = fname
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (d / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    for f in d.glob("*.safetensors"):
        f.chmod(0o644)


def to_legacy_config(cfg_json):
    """Rewrite a transformers-5 config.json into the spelling of the real hub DeepSeek configs."""
    c = dict(cfg_json)
    rp = dict(c.pop("rope_parameters"))
    c["rope_theta"] = rp.pop("rope_theta")
    rtype = rp.pop("rope_type")
    rp.pop("type", None)
    if rtype == "default":
        c["rope_scaling"] = None
    else:
        rp["type"] = rtype
        c["rope_scaling"] = dict(sorted(rp.items()))
    c.pop("head_dim", None)
    c.pop("qk_head_dim", None)
    c.pop("rope_interleave", None)  # absent from the real hub configs; transformers defaults it to True
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    return dict(sorted(c.items()))


# ---- dtype policies ------------------------------------------------------------------------------

def storage_dtype(policy, name):
    if name.endswith("e_score_correction_bias"):
        return torch.float32
    if policy == "f32":
        return torch.float32
    if policy == "bf16":
        return torch.bfloat16
    if policy == "f16":
        return torch.float16
    if policy == "mixed":
        if "norm" in name:
            return torch.float32
        if name.endswith("embed_tokens.weight") or name.endswith("mlp.gate.weight"):
            return torch.bfloat16
        if name.startswith("lm_head"):
            return torch.float16
        if ".self_attn." in name:
            layer = int(name.split(".")[2])
            return torch.bfloat16 if layer % 2 == 0 else torch.float16
        if ".shared_experts." in name:
            return torch.bfloat16
        return torch.float16  # dense MLP + routed experts
    raise ValueError(policy)


FP8_MAX = 448.0
BLOCK = 128


def is_fp8_weight(name):
    if not name.endswith(".weight") or name.endswith("mlp.gate.weight"):
        return False
    leaf = name.split(".")[-2]
    return leaf in {
        "q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
        "gate_proj", "up_proj", "down_proj",
    }


def quantize_fp8_block(w):
    """w: float32 [out, in] -> (fp8 [out, in], scale_inv f32 [ceil(out/128), ceil(in/128)])."""
    out_f, in_f = w.shape
    nb_o, nb_i = math.ceil(out_f / BLOCK), math.ceil(in_f / BLOCK)
    scale_inv = torch.empty(nb_o, nb_i, dtype=torch.float32)
    q = torch.empty(out_f, in_f, dtype=torch.float8_e4m3fn)
    for bi in range(nb_o):
        for bj in range(nb_i):
            blk = w[bi * BLOCK:(bi + 1) * BLOCK, bj * BLOCK:(bj + 1) * BLOCK].float()
            s = blk.abs().max() / FP8_MAX
            s = s if s > 0 else torch.tensor(1.0)
            scale_inv[bi, bj] = s
            # clamp: float8_e4m3fn has no inf, an out-of-range cast would give NaN
            q[bi * BLOCK:(bi + 1) * BLOCK, bj * BLOCK:(bj + 1) * BLOCK] = (
                (blk / scale_inv[bi, bj]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
            )
    return q, scale_inv


def dequantize_fp8_block(q, scale_inv):
    out_f, in_f = q.shape
    s = scale_inv.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:out_f, :in_f]
    return q.to(torch.float32) * s


def mtp_tensors(cfg, gen, dtype_fn):
    """Tensors of one DeepSeek-V3 MTP module at layer index num_hidden_layers (engine must ignore)."""
    H, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    E, I = cfg.n_routed_experts, cfg.moe_intermediate_size
    p = f"model.layers.{L}."
    qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
    nh = cfg.num_attention_heads

    def mat(o, i):
        return torch.randn(o, i, generator=gen) / math.sqrt(i)

    def nrm(n):
        return 0.8 + 0.4 * torch.rand(n, generator=gen)

    t = {
        p + "enorm.weight": nrm(H),
        p + "hnorm.weight": nrm(H),
        p + "eh_proj.weight": mat(H, 2 * H),
        p + "embed_tokens.weight": torch.randn(V, H, generator=gen),
        p + "shared_head.norm.weight": nrm(H),
        p + "shared_head.head.weight": mat(V, H),
        p + "input_layernorm.weight": nrm(H),
        p + "post_attention_layernorm.weight": nrm(H),
        p + "self_attn.q_a_proj.weight": mat(cfg.q_lora_rank, H),
        p + "self_attn.q_a_layernorm.weight": nrm(cfg.q_lora_rank),
        p + "self_attn.q_b_proj.weight": mat(nh * qk, cfg.q_lora_rank),
        p + "self_attn.kv_a_proj_with_mqa.weight": mat(cfg.kv_lora_rank + cfg.qk_rope_head_dim, H),
        p + "self_attn.kv_a_layernorm.weight": nrm(cfg.kv_lora_rank),
        p + "self_attn.kv_b_proj.weight": mat(nh * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank),
        p + "self_attn.o_proj.weight": mat(H, nh * cfg.v_head_dim),
        p + "mlp.gate.weight": mat(E, H),
        p + "mlp.gate.e_score_correction_bias": torch.randn(E, generator=gen) * 0.1,
        p + "mlp.shared_experts.gate_proj.weight": mat(I * cfg.n_shared_experts, H),
        p + "mlp.shared_experts.up_proj.weight": mat(I * cfg.n_shared_experts, H),
        p + "mlp.shared_experts.down_proj.weight": mat(H, I * cfg.n_shared_experts),
    }
    for e in range(2):  # a couple of routed experts is enough to look like a real MoE layer
        t[p + f"mlp.experts.{e}.gate_proj.weight"] = mat(I, H)
        t[p + f"mlp.experts.{e}.up_proj.weight"] = mat(I, H)
        t[p + f"mlp.experts.{e}.down_proj.weight"] = mat(H, I)
    return {k: v.to(dtype_fn(k)) for k, v in t.items()}


# --------------------------------------------------------------------------------------------------
# routing analysis (independent re-implementation of the transformers routers; cross-checked)
# --------------------------------------------------------------------------------------------------

def kth_margin(values, k):
    """values [T, N] (may contain -inf); gap between the k-th and (k+1)-th largest per row."""
    s = torch.sort(values, dim=-1, descending=True).values
    if s.shape[-1] <= k:
        return torch.full((s.shape[0],), float("inf"))
    gap = s[:, k - 1] - s[:, k]
    return torch.where(torch.isinf(s[:, k]), torch.full_like(gap, float("inf")), gap)


def analyse_router(arch, cfg, gate, hidden, tf_indices):
    """Returns (margins dict, feature-exercise counts) and asserts our selection == transformers'."""
    x = hidden.reshape(-1, cfg.hidden_size).float()
    logits = x @ gate.weight.float().t()
    E, k, G, TG = cfg.n_routed_experts, cfg.num_experts_per_tok, cfg.n_group or 1, cfg.topk_group or 1
    res = {}
    counts = {}

    def topk_set(v):
        return [sorted(r) for r in torch.topk(v, k, dim=-1).indices.tolist()]

    if arch == "v3":
        scores = logits.sigmoid()
        sfc = scores + gate.e_score_correction_bias.float()
        gs = sfc.view(-1, G, E // G).topk(2, dim=-1).values.sum(-1)
        grp_margin = kth_margin(gs, TG) if TG < G else torch.full((x.shape[0],), float("inf"))
        gidx = torch.topk(gs, TG, dim=-1).indices
        gmask = torch.zeros_like(gs).scatter_(1, gidx, 1.0)
        smask = gmask.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E)
        masked = sfc.masked_fill(smask == 0, float("-inf"))
        exp_margin = kth_margin(masked, k)
        ours = topk_set(masked)
        # feature exercise: does the bias / the group restriction change any selection?
        gs_nb = scores.view(-1, G, E // G).topk(2, dim=-1).values.sum(-1)
        gm_nb = torch.zeros_like(gs_nb).scatter_(1, torch.topk(gs_nb, TG, dim=-1).indices, 1.0)
        masked_nb = scores.masked_fill(gm_nb.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E) == 0,
                                       float("-inf"))
        counts["bias_changes_selection"] = sum(a != b for a, b in zip(ours, topk_set(masked_nb)))
        counts["group_limit_changes_selection"] = sum(a != b for a, b in zip(ours, topk_set(sfc)))
    else:
        # softmax is monotone per token, so V2 margins are measured on the router LOGITS
        scores = logits.softmax(-1)
        if cfg.topk_method == "group_limited_greedy":
            gs = scores.view(-1, G, E // G).max(dim=-1).values
            gl = logits.view(-1, G, E // G).max(dim=-1).values
            grp_margin = kth_margin(gl, TG) if TG < G else torch.full((x.shape[0],), float("inf"))
            gmask = torch.zeros_like(gs).scatter_(1, torch.topk(gs, TG, dim=-1).indices, 1.0)
            smask = gmask.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E)
            masked = scores.masked_fill(smask == 0, 0.0)
            ours = topk_set(masked)
            counts["group_limit_changes_selection"] = sum(a != b for a, b in zip(ours, topk_set(scores)))
            exp_margin = kth_margin(logits.masked_fill(smask == 0, float("-inf")), k)
        else:
            grp_margin = torch.full((x.shape[0],), float("inf"))
            ours = topk_set(scores)
            exp_margin = kth_margin(logits, k)
    theirs = [sorted(r) for r in tf_indices.tolist()]
    assert ours == theirs, "router re-implementation disagrees with transformers"
    res["expert_margin_min"] = float(exp_margin.min())
    res["group_margin_min"] = float(grp_margin.min())
    return res, counts


# --------------------------------------------------------------------------------------------------
# goldens
# --------------------------------------------------------------------------------------------------

def moe_gates(model):
    out = {}
    for i, layer in enumerate(model.model.layers):
        g = getattr(layer.mlp, "gate", None)
        if g is not None and hasattr(g, "top_k"):
            out[i] = g
    return out


@torch.no_grad()
def compute_goldens(arch, model, cfg, prompt):
    model.eval()
    ids = list(prompt)
    greedy_margins = []
    for _ in range(GEN_LEN):
        logits = model(torch.tensor([ids])).logits[0, -1]
        top2 = torch.topk(logits, 2).values
        greedy_margins.append(float(top2[0] - top2[1]))
        ids.append(int(torch.argmax(logits)))
    input_ids = ids

    gates = moe_gates(model)
    captured = {}
    handles = []
    for li, g in gates.items():
        def hook(mod, inp, out, li=li):
            captured[li] = (inp[0].detach().clone(), out[1].detach().clone(), out[2].detach().clone())
        handles.append(g.register_forward_hook(hook))
    logits = model(torch.tensor([input_ids])).logits[0].float()
    for h in handles:
        h.remove()

    routing, routing_w, margins, counts = {}, {}, {}, {}
    for li in sorted(captured):
        hid, w, idx = captured[li]
        order = torch.argsort(idx, dim=-1)
        routing[str(li)] = torch.gather(idx, 1, order).tolist()
        routing_w[str(li)] = [[round(float(v), 7) for v in r] for r in torch.gather(w, 1, order)]
        m, c = analyse_router(arch, cfg, gates[li], hid, idx)
        margins[str(li)] = m
        counts[str(li)] = c
    return dict(
        input_ids=input_ids,
        generated_ids=input_ids[len(prompt):],
        logits=logits,
        routing=routing,
        routing_weights=routing_w,
        router_margins=margins,
        feature_counts=counts,
        greedy_margins=greedy_margins,
    )


def decisive(spec, cfg, g):
    ok = min(g["greedy_margins"]) >= GREEDY_MARGIN
    for m in g["router_margins"].values():
        ok &= m["expert_margin_min"] >= ROUTER_MARGIN and m["group_margin_min"] >= ROUTER_MARGIN
    tot = {}
    for c in g["feature_counts"].values():
        for k, v in c.items():
            tot[k] = tot.get(k, 0) + v
    if spec["arch"] == "v3" and spec.get("bias_std", 0) > 0:
        ok &= tot.get("bias_changes_selection", 0) > 0
    if (cfg.n_group or 1) > 1 and (cfg.topk_group or 1) < (cfg.n_group or 1):
        ok &= tot.get("group_limit_changes_selection", 0) > 0
    # the continuation should not be one repeated token
    ok &= len(set(g["generated_ids"])) > 1
    return bool(ok), tot


def load_f32(arch, d):
    _, cls = arch_classes(arch)
    return cls.from_pretrained(str(d), dtype=torch.float32, attn_implementation="eager")


# --------------------------------------------------------------------------------------------------
# main per-fixture pipeline
# --------------------------------------------------------------------------------------------------

def make_checkpoint(name, spec, seed, out_dir, tmp):
    """Build + save the fixture checkpoint into out_dir; returns (golden_dir, cfg)."""
    cfg = build_config(spec)
    _, cls = arch_classes(spec["arch"])
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = cls(cfg).eval()
    init_weights(model, cfg, gen, spec["router_logit_std"], spec.get("bias_std", 0.0))

    raw = tmp / "raw"
    model.save_pretrained(str(raw))
    cfg_json = json.loads((raw / "config.json").read_text())
    tensors = read_dir_tensors(raw)
    for k, v in tensors.items():
        assert v.dtype == torch.float32, (k, v.dtype)

    policy = spec["storage"]
    golden_dir = out_dir
    if policy == "fp8":
        stored, dequant = {}, {}
        for k, v in tensors.items():
            if is_fp8_weight(k):
                q, s = quantize_fp8_block(v)
                stored[k] = q
                stored[k + "_scale_inv"] = s
                dequant[k] = dequantize_fp8_block(q, s)
            elif k.endswith("e_score_correction_bias"):
                stored[k] = v
                dequant[k] = v
            else:
                stored[k] = v.to(torch.bfloat16)
                dequant[k] = stored[k].float()
        golden_dir = tmp / "dequant"
        golden_dir.mkdir()
        write_checkpoint(golden_dir, dequant)
        gcfg = dict(cfg_json)
        gcfg.pop("quantization_config", None)
        (golden_dir / "config.json").write_text(json.dumps(gcfg, indent=2) + "\n")
        cfg_json["dtype"] = "bfloat16"
    else:
        dt = lambda k: storage_dtype(policy, k)  # noqa: E731
        stored = {k: v.to(dt(k)) for k, v in tensors.items()}
        if policy != "f32":
            cfg_json["dtype"] = "float16" if policy == "f16" else "bfloat16"
    if spec.get("mtp"):
        assert cfg_json.get("num_nextn_predict_layers") == 1
        stored.update(mtp_tensors(cfg, gen, lambda k: storage_dtype(policy, k)))

    for k, v in spec["extra_config"].items():
        cfg_json[k] = v
    if spec.get("legacy_config"):
        cfg_json = to_legacy_config(cfg_json)
    write_checkpoint(out_dir, stored, spec.get("shards", 1))
    (out_dir / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
    return golden_dir, cfg, model


def make_fixture(name, spec):
    out_dir = FIXTURES / name
    for attempt in range(MAX_SEED_TRIES):
        seed = spec["base_seed"] + attempt
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            golden_dir, cfg, live = make_checkpoint(name, spec, seed, out_dir, tmp)
            model = load_f32(spec["arch"], golden_dir)
            # sanity: the reloaded model must use the same RoPE / softmax scale as the live config
            re = model.model.rotary_emb
            assert torch.equal(re.inv_freq, live.model.rotary_emb.inv_freq), "inv_freq changed on reload"
            assert re.attention_scaling == live.model.rotary_emb.attention_scaling
            assert model.model.layers[0].self_attn.scaling == live.model.layers[0].self_attn.scaling
            gcfg = model.config
            prompt_gen = torch.Generator().manual_seed(seed + 7)
            prompt = torch.randint(2, gcfg.vocab_size, (PROMPT_LEN,), generator=prompt_gen).tolist()
            g = compute_goldens(spec["arch"], model, gcfg, prompt)
            ok, tot = decisive(spec, gcfg, g)
            if not ok:
                continue
            extra = checks(name, spec, model, golden_dir, tmp, g)
        break
    else:
        raise RuntimeError(f"{name}: no decisive seed in {MAX_SEED_TRIES} tries")

    logits = g["logits"].numpy().astype(np.float32)
    np.save(out_dir / "logits.npy", logits)
    rm = g["router_margins"]
    golden = {
        "prompt_ids": prompt,
        "generated_ids": g["generated_ids"],
        "input_ids": g["input_ids"],
        "routing": g["routing"],
        "routing_weights": g["routing_weights"],
        "vocab_size": gcfg.vocab_size,
        "logits_std": float(logits.std()),
        "moe_layers": sorted(int(k) for k in g["routing"]),
        # RoPE / attention constants exactly as the transformers model uses them (float32)
        "rope_inv_freq": [float(v) for v in model.model.rotary_emb.inv_freq.tolist()],
        "rope_attention_factor": float(model.model.rotary_emb.attention_scaling),
        "softmax_scale": float(model.model.layers[0].self_attn.scaling),
        "min_router_margin": min(min(m["expert_margin_min"], m["group_margin_min"]) for m in rm.values()),
        "router_margins": rm,
        "min_greedy_margin": min(g["greedy_margins"]),
        "feature_counts": tot,
        "checks": extra,
        "seed": seed,
        "generator": {
            "script": "tools/make_fixtures.py",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    }
    (out_dir / "golden.json").write_text(dump_json(golden) + "\n")
    return golden


@torch.no_grad()
def checks(name, spec, model, golden_dir, tmp, g):
    """Extra fixture-specific verifications; returns a dict of numbers stored in golden.json."""
    extra = {}
    ids = torch.tensor([g["input_ids"]])
    base = model(ids).logits[0]
    # RoPE is relative, so a constant shift of all positions must not matter ...
    pos = torch.arange(ids.shape[1]).unsqueeze(0)
    shifted = model(ids, position_ids=pos + 5).logits[0]
    extra["max_abs_logit_diff_positions_shifted_by_5"] = float((base - shifted).abs().max())
    # ... but the relative distances must: stretch positions x3
    stretched = model(ids, position_ids=pos * 3).logits[0]
    extra["max_abs_logit_diff_positions_times_3"] = float((base - stretched).abs().max())
    assert extra["max_abs_logit_diff_positions_times_3"] > 1e-2
    rp = model.config.rope_parameters
    if rp.get("rope_type") == "yarn":
        # YaRN matters: same weights with plain RoPE must give clearly different logits
        cfg2 = copy.deepcopy(model.config)
        cfg2.rope_parameters = {"rope_type": "default", "rope_theta": rp["rope_theta"]}
        m2 = type(model)(cfg2).eval()
        m2.load_state_dict(model.state_dict(), strict=False)
        plain = m2(ids).logits[0]
        extra["max_abs_logit_diff_vs_plain_rope"] = float((base - plain).abs().max())
        assert extra["max_abs_logit_diff_vs_plain_rope"] > 1e-2
        extra["yarn_attention_factor"] = float(model.model.rotary_emb.attention_scaling)
    extra["softmax_scale"] = float(model.model.layers[0].self_attn.scaling)
    if spec.get("mtp"):
        # goldens must be unaffected by the MTP tensors: reload without them and compare bit-exactly
        nomtp = tmp / "nomtp"
        nomtp.mkdir()
        L = model.config.num_hidden_layers
        t = {k: v for k, v in read_dir_tensors(golden_dir).items()
             if not k.startswith(f"model.layers.{L}.")}
        write_checkpoint(nomtp, t)
        shutil.copy(golden_dir / "config.json", nomtp / "config.json")
        m3 = load_f32(spec["arch"], nomtp)
        same = torch.equal(m3(ids).logits[0], base)
        assert same, "MTP tensors changed the transformers goldens"
        extra["mtp_tensors_do_not_change_logits"] = True
        names = [k for k in read_dir_tensors(golden_dir) if k.startswith(f"model.layers.{L}.")]
        extra["mtp_tensor_count"] = len(names)
    return extra


def dump_json(obj, ind=0):
    """Strict JSON (no Infinity/NaN: those become null) with one line per innermost list
    (keeps golden.json readable and diffable)."""
    pad = " " * ind
    if isinstance(obj, float) and not math.isfinite(obj):
        return pad + "null"
    if isinstance(obj, dict):
        items = [f'{pad} {json.dumps(k)}: {dump_json(v, ind + 1).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], list):
        return pad + "[\n" + ",\n".join(pad + "  " + json.dumps(x, allow_nan=False) for x in obj) + "\n" + pad + "]"
    return pad + json.dumps(obj, allow_nan=False)


# --------------------------------------------------------------------------------------------------
# independent numpy (float64) reference that reads ONLY the fixture files and follows
# tools/ORACLE_NOTES.md; run after generation to prove the notes + files reproduce the goldens
# --------------------------------------------------------------------------------------------------

def np_load_fixture(d):
    d = Path(d)
    cfg = json.loads((d / "config.json").read_text())
    raw = read_dir_tensors(d)
    w = {}
    for k, t in raw.items():
        if k.endswith("_scale_inv"):
            continue
        if t.dtype == torch.float8_e4m3fn:
            s = raw[k + "_scale_inv"].double().numpy()
            q = t.to(torch.float32).double().numpy()
            o, i = q.shape
            w[k] = q * np.repeat(np.repeat(s, BLOCK, 0), BLOCK, 1)[:o, :i]
        else:
            w[k] = t.to(torch.float32).double().numpy()
    return cfg, w


def np_rope_params(cfg):
    """-> (inv_freq [d_r/2], attention_factor, softmax_scale) from either config spelling."""
    if "rope_parameters" in cfg:
        rp = dict(cfg["rope_parameters"] or {})
        theta = rp.get("rope_theta", 10000.0)
        rtype = rp.get("rope_type", rp.get("type", "default"))
    else:
        rp = dict(cfg.get("rope_scaling") or {})
        theta = cfg.get("rope_theta", 10000.0)
        rtype = rp.get("type", rp.get("rope_type", "default")) if rp else "default"
    dim = cfg["qk_rope_head_dim"]
    qk_head_dim = cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]
    pos_freqs = theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    scale = qk_head_dim ** -0.5
    if rtype == "default":
        return 1.0 / pos_freqs, 1.0, scale
    assert rtype == "yarn", rtype
    factor = rp["factor"]
    orig = rp["original_max_position_embeddings"]
    mscale, mscale_all_dim = rp.get("mscale"), rp.get("mscale_all_dim")
    beta_fast, beta_slow = rp.get("beta_fast") or 32, rp.get("beta_slow") or 1

    def get_mscale(sc, m=1.0):
        return 1.0 if sc <= 1 else 0.1 * m * math.log(sc) + 1.0

    if mscale and mscale_all_dim:
        attn_factor = get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
    else:
        attn_factor = get_mscale(factor)

    def corr_dim(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(corr_dim(beta_fast)), 0)
    high = min(math.ceil(corr_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extrap_w = 1.0 - ramp
    inv_freq = (1.0 / (factor * pos_freqs)) * (1 - extrap_w) + (1.0 / pos_freqs) * extrap_w
    if mscale_all_dim:
        m = get_mscale(factor, mscale_all_dim)
        scale = scale * m * m
    return inv_freq, attn_factor, scale


def np_rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def np_silu(x):
    return x / (1.0 + np.exp(-x))


def np_rope_pairs(x, cos, sin):
    """x [..., T, d_r]; rotate pairs (x[2i], x[2i+1]) by angle i (DeepSeek interleaved layout)."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x1 * cos + x0 * sin
    return out


def np_route(cfg, w, pre, h):
    """-> (sorted expert ids per token, weights in the same order)."""
    E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    G, TG = cfg.get("n_group") or 1, cfg.get("topk_group") or 1
    logits = h @ w[pre + "gate.weight"].T
    v3 = cfg["model_type"] == "deepseek_v3"
    ids_all, wts_all = [], []
    for t in range(h.shape[0]):
        if v3:
            scores = 1.0 / (1.0 + np.exp(-logits[t]))
            choice = scores + w[pre + "gate.e_score_correction_bias"]
            gscore = np.sort(choice.reshape(G, E // G), axis=-1)[:, -2:].sum(-1)  # top-2 sum per group
            keep = np.argsort(-gscore, kind="stable")[:TG]
            masked = np.full(E, -np.inf)
            for gi in keep:
                masked[gi * (E // G):(gi + 1) * (E // G)] = choice[gi * (E // G):(gi + 1) * (E // G)]
            ids = np.argsort(-masked, kind="stable")[:k]
            wt = scores[ids]  # weights from the UNBIASED sigmoid scores
            if cfg.get("norm_topk_prob"):
                wt = wt / (wt.sum() + 1e-20)
            wt = wt * cfg["routed_scaling_factor"]
        else:
            z = logits[t] - logits[t].max()
            scores = np.exp(z) / np.exp(z).sum()
            if cfg.get("topk_method", "greedy") == "group_limited_greedy":
                gscore = scores.reshape(G, E // G).max(-1)  # max per group
                keep = np.argsort(-gscore, kind="stable")[:TG]
                masked = np.zeros(E)
                for gi in keep:
                    masked[gi * (E // G):(gi + 1) * (E // G)] = scores[gi * (E // G):(gi + 1) * (E // G)]
            else:
                masked = scores
            ids = np.argsort(-masked, kind="stable")[:k]
            wt = masked[ids] * cfg["routed_scaling_factor"]  # transformers V2: never normalised
        o = np.argsort(ids)
        ids_all.append(ids[o].tolist())
        wts_all.append(wt[o])
    return ids_all, wts_all


def np_forward(cfg, w, ids):
    T = len(ids)
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    kvr, eps = cfg["kv_lora_rank"], cfg["rms_norm_eps"]
    inv_freq, attn_factor, scale = np_rope_params(cfg)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(ang) * attn_factor, np.sin(ang) * attn_factor
    x = w["model.embed_tokens.weight"][ids]
    routing = {}
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for li in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{li}."
        h = np_rmsnorm(x, w[p + "input_layernorm.weight"], eps)
        a = p + "self_attn."
        if cfg.get("q_lora_rank") is None:
            q = h @ w[a + "q_proj.weight"].T
        else:
            q = np_rmsnorm(h @ w[a + "q_a_proj.weight"].T, w[a + "q_a_layernorm.weight"], 1e-6)
            q = q @ w[a + "q_b_proj.weight"].T
        q = q.reshape(T, nh, dn + dr).transpose(1, 0, 2)  # [nh, T, dn+dr]
        ckv = h @ w[a + "kv_a_proj_with_mqa.weight"].T
        c, k_pe = ckv[:, :kvr], ckv[:, kvr:]
        c = np_rmsnorm(c, w[a + "kv_a_layernorm.weight"], 1e-6)
        kv = (c @ w[a + "kv_b_proj.weight"].T).reshape(T, nh, dn + dv).transpose(1, 0, 2)
        k_nope, v = kv[..., :dn], kv[..., dn:]
        q_pe = np_rope_pairs(q[..., dn:], cos, sin)
        k_pe = np_rope_pairs(k_pe, cos, sin)  # [T, dr], shared by all heads
        s = (q[..., :dn] @ k_nope.transpose(0, 2, 1) + q_pe @ k_pe.T) * scale + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        o = (s @ v).transpose(1, 0, 2).reshape(T, nh * dv)
        x = x + o @ w[a + "o_proj.weight"].T
        h = np_rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
        m = p + "mlp."

        def mlp(pre, hh):
            return (np_silu(hh @ w[pre + "gate_proj.weight"].T) * (hh @ w[pre + "up_proj.weight"].T)) @ \
                w[pre + "down_proj.weight"].T

        if li < cfg.get("first_k_dense_replace", 0):
            x = x + mlp(m, h)
        else:
            rid, rwt = np_route(cfg, w, m, h)
            routing[str(li)] = rid
            y = mlp(m + "shared_experts.", h)
            for t in range(T):
                for e, g in zip(rid[t], rwt[t]):
                    y[t] += g * mlp(m + f"experts.{e}.", h[t:t + 1])[0]
            x = x + y
    x = np_rmsnorm(x, w["model.norm.weight"], eps)
    return x @ w["lm_head.weight"].T, routing


def verify_fixture(d):
    """Re-derive logits/routing/greedy tokens from the fixture files with the numpy reference."""
    d = Path(d)
    cfg, w = np_load_fixture(d)
    gold = json.loads((d / "golden.json").read_text())
    ref = np.load(d / "logits.npy")
    logits, routing = np_forward(cfg, w, gold["input_ids"])
    err = float(np.abs(logits - ref).max())
    assert err < 1e-3, f"{d.name}: numpy reference logits differ by {err}"
    assert routing == gold["routing"], f"{d.name}: numpy reference routing differs"
    P = len(gold["prompt_ids"])
    greedy = [int(np.argmax(logits[t])) for t in range(P - 1, len(gold["input_ids"]) - 1)]
    assert greedy == gold["generated_ids"], f"{d.name}: numpy reference greedy tokens differ"
    return err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="fixtures to (re)generate; default all")
    a = ap.parse_args()
    names = a.names or list(FIXTURE_SPECS)
    for n in names:
        if n not in FIXTURE_SPECS:
            sys.exit(f"unknown fixture {n}; known: {', '.join(FIXTURE_SPECS)}")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for n in names:
        gld = make_fixture(n, FIXTURE_SPECS[n])
        err = verify_fixture(FIXTURES / n)
        size = sum(f.stat().st_size for f in (FIXTURES / n).iterdir())
        print(f"{n:18s} seed={gld['seed']} size={size / 1e6:.3f}MB numpy_ref_max_err={err:.2e} "
              f"gen={gld['generated_ids']} "
              f"min_router_margin={gld['min_router_margin']:.4g} "
              f"min_greedy_margin={gld['min_greedy_margin']:.4g} logits_std={gld['logits_std']:.3f} "
              f"features={gld['feature_counts']} checks={gld['checks']}")
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    print(f"total tests/fixtures size: {total / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
