#!/usr/bin/env python3
"""Tiny DeepSeek GGUF files made by llama.cpp's OWN converter and quantizer, plus transformers goldens.

Purpose: test the engine's GGUF loader against an independent implementation. The GGUF files are written by
llama.cpp (`convert_hf_to_gguf.py` + `llama-quantize`). The goldens come from transformers running on the
weights read back from each GGUF file by gguf-py. Nothing here is written by this project's Rust code.

Re-run (CPU only, no network; about 10 minutes on 2 cores):

    python3 tools/make_gguf_model_fixtures.py --llama-cpp /path/to/llama.cpp      # or LLAMA_CPP_DIR=...
    python3 tools/make_gguf_model_fixtures.py --llama-cpp ... --work /tmp/w v3_tiny  # one model only

Needs: torch, transformers 5.x (written against 5.24.0), safetensors, numpy, tokenizers; a llama.cpp
checkout with `build/bin/llama-quantize` built (see tools/GGUF_FIXTURES.md for the exact commands and
versions). The `gguf` Python package is taken from the checkout's own `gguf-py` (the converter expects
its own version), for converting AND for reading back.

Steps (all inside `main`):
 1. Tokenizer (`build_tokenizer`). The converter needs a BPE tokenizer and looks up the hash of the ids it
    gives for a fixed check text (`get_vocab_base_pre`) to choose `tokenizer.ggml.pre`. The real
    DeepSeek-V3 tokenizer (`assets/deepseek-v3-tokenizer`) has 128,815 tokens: its embedding would be
    ~35 MB even in Q8_0. So we cut it: the first 500 ids of the real vocab (0-2 specials BOS/EOS/pad,
    3-258 the 256 byte tokens, 259-499 the results of the first 241 merges, which by construction only use
    ids below them) with those 241 merges, everything else in tokenizer.json unchanged (same
    pre-tokenizer regexes, ByteLevel decoder/post-processor), tokenizer_config.json copied unchanged.
    Every id it emits is the real DeepSeek-V3 id of the same token string. Its check-text hash is of course
    not in the converter's table, so the converter is run through a small wrapper (`CONVERT_WRAPPER`)
    that patches ONE function: when `get_vocab_base_pre` raises "not recognized" AND the tokenizer's hash
    equals the tiny tokenizer's hash (computed here), it returns "deepseek-v3" (what the real tokenizer
    gets, because the pre-tokenizer is identical). That is what `convert_hf_to_gguf_update.py` would do
    by adding the hash to the table. Nothing else in the converter is touched.
    The model's vocab_size is 512 > 500, so the converter pads the token list with `[PAD500]`..
    `[PAD511]` (type UNUSED), as it does for the real V3 (128,815 tokens, 129,280 rows).
 2. Two random HF checkpoints in <--work>/hf/<model> (`MODEL_SPECS`), saved with `save_pretrained` in float32, config
    rewritten to the legacy hub spelling (`rope_scaling` + `rope_theta`, like the real DeepSeek configs).
    Every matrix's input dimension is a multiple of 256 so K-quants apply (hidden, q_lora_rank,
    kv_lora_rank, moe_intermediate_size, intermediate_size, n_heads*v_head_dim, n_shared*moe width).
    Exceptions that real DeepSeek files share: `attn_k_b` (converter-made, row length qk_nope_head_dim)
    and the 1-D / router tensors the quantizer keeps in F32.
    Weights as tools/make_fixtures.py (`init_weights`): N(0, 1/fan_in), embeddings N(0,1), norms
    U(0.8,1.2), router logits std ~2 (V3) / 2.5 (V2), e_score_correction_bias N(0, 0.1^2).
 3. Convert with `convert_hf_to_gguf.py --outtype f32` and `--outtype f16`, then `llama-quantize` the f32
    file to each type in QUANTS (Q8_0, Q4_K_M, Q5_K_S, Q3_K_M, Q2_K; no imatrix). llama.cpp quirk: its
    deepseek2 loader treats a model as q-LoRA-less ("lite") only when it has 26/27 layers, and otherwise
    requires `deepseek2.attention.q_lora_rank`, which the converter omits when q_lora_rank is null; so the
    2-layer V2-Lite-like model is quantized with `--override-kv deepseek2.attention.q_lora_rank=int:0`
    (llama-quantize copies overrides into its output) and that key is then removed again with gguf-py's
    `gguf/scripts/gguf_new_metadata.py --remove-metadata`; the tensor data is asserted byte-identical
    (`LlamaCpp.quantize_file`). The files then look like a real V2-Lite GGUF: no q_lora_rank key.
 4. For every GGUF file: read every tensor with `gguf.GGUFReader`, dequantize with
    `gguf.quants.dequantize` to float32, map GGUF names back to HF names (`gguf_to_hf`, undoing what
    `conversion/deepseek.py` DeepseekV2Model.modify_tensors did: experts stacked per layer as
    `ffn_{gate,up,down}_exps [E, out, in]` are unstacked; `attn_k_b [nh, kv_lora, nope]` (transposed by
    the converter) and `attn_v_b [nh, v, kv_lora]` are rebuilt into `kv_b_proj [nh*(nope+v), kv_lora]`),
    write them as an HF checkpoint (per-expert names, float32) next to the original config.json, reload
    with `from_pretrained(dtype=torch.float32, attn_implementation="eager")` (RoPE buffers computed in
    float32, see tools/ORACLE_NOTES.md) and compute the goldens exactly as tools/make_fixtures.py does
    (its `compute_goldens`: 7 greedy tokens from a manual loop of full forward passes, no KV cache; then one
    forward over input_ids = prompt + generated for logits.npy and the routing captured by hooks on
    mlp.gate). The prompt is BOS (0) + 7 seeded random ids in [3, 500), the same for every file of a model.
 5. Checks (asserts): the f32 GGUF's weights equal the HF weights bit for bit and its goldens equal the
    goldens of the original HF checkpoint computed directly (max|dlogit|/std <= 1e-5, same routing, same
    tokens; observed exactly 0); every file's dequantized weights are within WEIGHT_ERR_MAX (relative RMS
    error per tensor vs the HF weights, per file type); every file's goldens are re-derived by the
    independent float64 numpy forward of tools/make_fixtures.py (`np_forward`) from the dequantized weights
    (max |dlogit| < 1e-3, same routing, same greedy tokens). The seed is searched (as make_fixtures.py
    does) until every file written to tests/fixtures is decisive: router margins >= 2e-3 (k-th vs
    (k+1)-th expert and group), every greedy step has a top-1/top-2 logit gap >= 2e-2, (V3) the bias and
    the group restriction each change at least one selection, and the 7 generated ids hold >= 4
    distinct ids. Files not written to tests/fixtures are not held to this.
    Note: these random models are chaotic. Quantization noise flips some expert choices, so a quantized
    file's logits differ from the f32 checkpoint's by several std (even Q8_0 sometimes); each file's
    goldens are for that file's own dequantized weights, so that does not matter for the tests.
 6. Write tests/fixtures/gguf_models/<model>_<type>/{model.gguf, golden.json, logits.npy} for the types in
    COMMIT (the others stay in <--work>/gguf/<model>; `--commit all` writes them all). golden.json has the
    fields of tools/make_fixtures.py's golden.json (not its fixture-specific `checks`) plus: `gguf` (file
    type, every tensor's GGML type and shape in GGUF order ne0..., every scalar metadata key),
    `hf_config` (the config.json the file was converted from), `max_abs_logit_diff_vs_hf_over_std`
    (quantization error of this file vs the original checkpoint), `weight_rel_rms_err_vs_hf` (per HF
    tensor, experts collapsed), `numpy_ref_max_abs_err`, `generator` (script, versions, tokenizer hash).
"""

import argparse
import ast
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_fixtures as mf  # noqa: E402  (same goldens code, same weight init, same numpy reference)

OUT = ROOT / "tests" / "fixtures" / "gguf_models"
TOKENIZER_SRC = ROOT / "assets" / "deepseek-v3-tokenizer"
TOK_N = 500           # tokenizer size: first 500 ids of the real DeepSeek-V3 vocab
VOCAB = 512           # model rows (> TOK_N: the converter pads with [PADi] UNUSED tokens)
PROMPT_LEN = 8        # BOS + 7 ids
MAX_SEED_TRIES = 60
MIN_DISTINCT_GEN = 4  # the 7 greedy ids of a committed file hold at least this many distinct ids
F32_TOL = 1e-5        # f32 GGUF vs HF goldens, max |dlogit| / std

QUANTS = ["Q8_0", "Q4_K_M", "Q5_K_S", "Q3_K_M", "Q2_K"]   # llama-quantize types (from the f32 file)
# i-quant mixes: llama-quantize with an importance matrix (llama-imatrix over IMATRIX_TEXT, run on the
# F32 file) and per-tensor types, so that one small file holds all nine i-quants. Base type, then
# `--tensor-type` overrides (llama-quantize's own rules pick the rest: token_embd, output, the
# fallback of attn_k_b, whose 32-value rows are no 256-value block, to IQ4_NL).
IQ_MIXES = {
    "IQ_MIX": ("IQ2_XXS", ["ffn_gate_exps=iq1_s", "ffn_up_exps=iq1_m", "ffn_down_exps=iq2_xxs",
                           "attn_q_a=iq2_xs", "attn_q_b=iq2_s", "attn_kv_a_mqa=iq3_xxs",
                           "attn_output=iq3_s", "ffn_gate_shexp=iq4_xs", "ffn_up_shexp=iq4_xs",
                           "ffn_down_shexp=iq4_xs", "ffn_gate=iq4_xs", "ffn_up=iq4_xs", "ffn_down=iq4_xs",
                           "attn_v_b=iq4_nl", "attn_k_b=iq4_nl"]),
}
IMATRIX_TEXT = ROOT / "README.md"   # any text: the imatrix only weights the quantizer's error
FILE_TYPES = ["F32", "F16"] + QUANTS + list(IQ_MIXES)    # every file made per model
COMMIT = {                                               # what goes into tests/fixtures (size budget)
    "v3_tiny": ["Q4_K_M", "Q2_K"],
    "v2lite_tiny": ["Q8_0", "Q4_K_M", "Q5_K_S"],
}

MODEL_SPECS = {
    # DeepSeek-V3 shape: q LoRA, MLA, YaRN (legacy spelling, mscale = mscale_all_dim = 1 as in V3),
    # sigmoid + noaux_tc group-limited routing with e_score_correction_bias, 1 dense + 2 MoE layers,
    # 1 shared expert, norm_topk_prob, routed_scaling_factor 2.5.
    "v3_tiny": dict(
        arch="v3",
        base_seed=7000,
        config=dict(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=256, moe_intermediate_size=256,
            num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=1, n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=3,
            routed_scaling_factor=2.5, norm_topk_prob=True, first_k_dense_replace=1,
            kv_lora_rank=256, q_lora_rank=256, qk_rope_head_dim=32, qk_nope_head_dim=32, v_head_dim=64,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters=mf.v3_yarn(4.0, 64, 1.0, 1.0),
            num_nextn_predict_layers=0, bos_token_id=0, eos_token_id=1,
        ),
        extra_config=dict(scoring_func="sigmoid", topk_method="noaux_tc", moe_layer_freq=1),
        router_logit_std=2.0,
        bias_std=0.1,
    ),
    # DeepSeek-V2-Lite shape: no q LoRA (q_proj), softmax greedy top-k without normalisation, 2 shared
    # experts, 1 dense + 1 MoE layer, V2-style YaRN (mscale = mscale_all_dim = 0.707, legacy spelling).
    "v2lite_tiny": dict(
        arch="v2",
        base_seed=8000,
        config=dict(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=512, moe_intermediate_size=256,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            n_shared_experts=2, n_routed_experts=4, n_group=1, topk_group=1, num_experts_per_tok=2,
            topk_method="greedy", routed_scaling_factor=1.0, norm_topk_prob=False, first_k_dense_replace=1,
            kv_lora_rank=256, q_lora_rank=None, qk_rope_head_dim=32, qk_nope_head_dim=32, v_head_dim=64,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters=mf.v3_yarn(4.0, 64, 0.707, 0.707),
            bos_token_id=0, eos_token_id=1,
        ),
        extra_config=dict(scoring_func="softmax", moe_layer_freq=1, aux_loss_alpha=0.001, seq_aux=True),
        router_logit_std=2.5,
    ),
}

# Runs llama.cpp's convert_hf_to_gguf.py unchanged except for one hook (see step 1 of the docstring).
# argv: <convert_hf_to_gguf.py> <accepted tokenizer hash> <tokenizer.ggml.pre for it> <converter arguments...>
CONVERT_WRAPPER = r'''
import ast, hashlib, inspect, os, re, runpy, sys
script, want, pre = sys.argv[1], sys.argv[2], sys.argv[3]
sys.argv = [script] + sys.argv[4:]
here = os.path.dirname(os.path.abspath(script))
sys.path.insert(0, here)
sys.path.insert(1, os.path.join(here, "gguf-py"))
import conversion.base as base
orig = base.TextModel.get_vocab_base_pre
chktxt = ast.literal_eval(re.search(r"chktxt = (.*)\n", inspect.getsource(orig)).group(1))
def get_vocab_base_pre(self, tokenizer):
    try:
        return orig(self, tokenizer)
    except NotImplementedError:
        got = hashlib.sha256(str(tokenizer.encode(chktxt)).encode()).hexdigest()
        if got != want:
            raise
        print("[wrapper] tiny sub-tokenizer (hash %s) -> tokenizer.ggml.pre = %s" % (got, pre))
        return pre
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
runpy.run_path(script, run_name="__main__")
'''


# --------------------------------------------------------------------------------------------------
# llama.cpp checkout
# --------------------------------------------------------------------------------------------------

class LlamaCpp:
    def __init__(self, path):
        self.dir = Path(path).resolve()
        self.convert = self.dir / "convert_hf_to_gguf.py"
        self.gguf_py = self.dir / "gguf-py"
        cands = [self.dir / "build" / "bin" / "llama-quantize", self.dir / "build" / "llama-quantize"]
        self.quantize = next((c for c in cands if c.exists()), None)
        if not self.convert.exists() or not self.gguf_py.is_dir():
            sys.exit(f"{self.dir}: not a llama.cpp checkout (no convert_hf_to_gguf.py / gguf-py)")
        if self.quantize is None:
            sys.exit(f"{self.dir}: build llama-quantize first (see tools/GGUF_FIXTURES.md)")
        self.imatrix = self.quantize.with_name("llama-imatrix")
        # the converter's own gguf-py, also for reading back
        sys.path.insert(0, str(self.gguf_py))
        import gguf
        assert Path(gguf.__file__).resolve().is_relative_to(self.gguf_py), gguf.__file__
        self.gguf = gguf

    def versions(self):
        v = {"transformers": transformers.__version__, "torch": torch.__version__}
        try:
            v["llama_cpp_commit"] = subprocess.run(
                ["git", "-C", str(self.dir), "rev-parse", "HEAD"], capture_output=True, text=True,
                check=True).stdout.strip()
        except (subprocess.CalledProcessError, FileNotFoundError):
            v["llama_cpp_commit"] = "unknown"
        init = self.dir.parent.parent / "llama_cpp" / "__init__.py"  # llama-cpp-python sdist layout
        if init.exists():
            m = re.search(r'__version__ = "([^"]+)"', init.read_text())
            v["llama_cpp_python"] = m.group(1) if m else "unknown"
        m = re.search(r'^version = "([^"]+)"', (self.gguf_py / "pyproject.toml").read_text(), re.M)
        v["gguf_py"] = m.group(1) if m else "unknown"
        return v

    def convert_hf(self, hf_dir, out, outtype, tok_hash, pre="deepseek-v3"):
        """pre: the tokenizer.ggml.pre the wrapper answers for the tiny tokenizer's hash (that of the
        real tokenizer it was cut from)."""
        cmd = [sys.executable, "-c", CONVERT_WRAPPER, str(self.convert), tok_hash, pre,
               str(hf_dir), "--outtype", outtype, "--outfile", str(out)]
        run(cmd, out.with_suffix(".convert.log"))

    def imatrix_file(self, src, out):
        """llama-imatrix over IMATRIX_TEXT with the model in `src` (CPU, 64-token chunks)."""
        run([str(self.imatrix), "-m", str(src), "-f", str(IMATRIX_TEXT), "-o", str(out), "-c", "64",
             "-b", "64", "-t", "2", "--no-ppl"], out.with_suffix(".log"))

    def quantize_iq(self, src, out, mix, imatrix):
        base, overrides = IQ_MIXES[mix]
        tt = [a for o in overrides for a in ("--tensor-type", o)]
        run([str(self.quantize), "--imatrix", str(imatrix), *tt, str(src), str(out), base, "2"],
            out.with_suffix(".quantize.log"))

    def quantize_file(self, src, out, qtype, lite_workaround=False):
        log = out.with_suffix(".quantize.log")
        if not lite_workaround:
            run([str(self.quantize), str(src), str(out), qtype, "2"], log)
            return
        # llama.cpp's deepseek2 hparams loader (src/models/deepseek2.cpp) treats a model as "lite" (no q
        # LoRA) only when it has 26 or 27 layers (or 48 with a 128256 vocab) and otherwise REQUIRES
        # deepseek2.attention.q_lora_rank, which the converter does not write when q_lora_rank is null.
        # So a 2-layer V2-Lite-like file cannot be quantized as is: quantize with a kv override (which
        # llama-quantize also writes into its output), then drop that key again with gguf-py's own
        # gguf_new_metadata.py. The tensor data is checked to be byte-identical to llama-quantize's output.
        raw = out.with_name(out.stem + ".with_q_lora_key.gguf")
        run([str(self.quantize), "--override-kv", f"{LITE_KEY}=int:0", str(src), str(raw), qtype, "2"], log)
        run([sys.executable, str(self.gguf_py / "gguf" / "scripts" / "gguf_new_metadata.py"), str(raw), str(out),
             "--remove-metadata", LITE_KEY, "--force"], out.with_suffix(".strip.log"),
            env={**os.environ, "PYTHONPATH": str(self.gguf_py)})
        a, b = self.gguf.GGUFReader(str(raw)), self.gguf.GGUFReader(str(out))
        assert set(a.fields) - set(b.fields) == {LITE_KEY} and set(b.fields) <= set(a.fields)
        assert [(t.name, t.tensor_type, list(t.shape)) for t in a.tensors] == \
            [(t.name, t.tensor_type, list(t.shape)) for t in b.tensors]
        for ta, tb in zip(a.tensors, b.tensors):
            assert np.array_equal(ta.data.view(np.uint8), tb.data.view(np.uint8)), ta.name
        del a, b
        raw.unlink()


LITE_KEY = "deepseek2.attention.q_lora_rank"


def needs_lite_workaround(cfg):
    return cfg.get("q_lora_rank") is None and cfg["num_hidden_layers"] not in (26, 27)


def run(cmd, log, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env)
    Path(log).write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd[:1] + cmd[3:] if cmd[1] == '-c' else cmd)}\n"
                 f"see {log}\n{(r.stdout + r.stderr)[-3000:]}")


# --------------------------------------------------------------------------------------------------
# tokenizer: the first TOK_N ids of the real DeepSeek-V3 tokenizer
# --------------------------------------------------------------------------------------------------

def build_tokenizer(dst):
    t = json.loads((TOKENIZER_SRC / "tokenizer.json").read_text())
    m = t["model"]
    assert m["type"] == "BPE"
    vocab = {s: i for s, i in m["vocab"].items() if i < TOK_N}
    assert sorted(vocab.values()) == list(range(TOK_N))
    merges = [x.split(" ") if isinstance(x, str) else list(x) for x in m["merges"]]
    keep = []
    for k, (a, b) in enumerate(merges):
        r = m["vocab"][a + b]
        if r >= TOK_N:
            break
        assert r == 259 + k and vocab[a] < r and vocab[b] < r, (k, a, b)
        keep.append([a, b])
    assert len(keep) == TOK_N - 259
    m["vocab"] = vocab
    m["merges"] = keep
    t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < TOK_N]
    assert [a["id"] for a in t["added_tokens"]] == [0, 1, 2]
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "tokenizer.json").write_text(json.dumps(t, ensure_ascii=False, indent=2) + "\n")
    shutil.copy(TOKENIZER_SRC / "tokenizer_config.json", dst / "tokenizer_config.json")
    return dst


def tokenizer_hash(tok_dir, llama):
    """sha256 of the ids the converter's check text gives (what get_vocab_base_pre compares)."""
    sys.path.insert(0, str(llama.dir))
    from conversion import base  # noqa: E402  (the converter's own module, for its check text)
    src = inspect.getsource(base.TextModel.get_vocab_base_pre)
    chktxt = ast.literal_eval(re.search(r"chktxt = (.*)\n", src).group(1))
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    return hashlib.sha256(str(tok.encode(chktxt)).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# HF checkpoint
# --------------------------------------------------------------------------------------------------

def make_hf_checkpoint(spec, seed, d, tok_dir):
    cfg = mf.build_config(spec)
    _, cls = mf.arch_classes(spec["arch"])
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = cls(cfg).eval()
    mf.init_weights(model, cfg, gen, spec["router_logit_std"], spec.get("bias_std", 0.0))
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(str(d))
    cfg_json = json.loads((d / "config.json").read_text())
    for k, v in spec["extra_config"].items():
        cfg_json[k] = v
    cfg_json = mf.to_legacy_config(cfg_json)
    (d / "config.json").write_text(json.dumps(cfg_json, indent=2) + "\n")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok_dir / f, d / f)
    return cfg_json


# --------------------------------------------------------------------------------------------------
# GGUF -> HF tensors (undo conversion/deepseek.py DeepseekV2Model.modify_tensors + the name map)
# --------------------------------------------------------------------------------------------------

GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLOCK_NAMES = {  # blk.{L}.<gguf> -> model.layers.{L}.<hf>
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q_a.weight": "self_attn.q_a_proj.weight",
    "attn_q_a_norm.weight": "self_attn.q_a_layernorm.weight",
    "attn_q_b.weight": "self_attn.q_b_proj.weight",
    "attn_kv_a_mqa.weight": "self_attn.kv_a_proj_with_mqa.weight",
    "attn_kv_a_norm.weight": "self_attn.kv_a_layernorm.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "ffn_gate_inp.weight": "mlp.gate.weight",
    "exp_probs_b.bias": "mlp.gate.e_score_correction_bias",
    "ffn_gate_shexp.weight": "mlp.shared_experts.gate_proj.weight",
    "ffn_up_shexp.weight": "mlp.shared_experts.up_proj.weight",
    "ffn_down_shexp.weight": "mlp.shared_experts.down_proj.weight",
    # handled specially below: attn_k_b + attn_v_b -> kv_b_proj; ffn_{gate,up,down}_exps -> experts.{e}
}
EXPS = {"ffn_gate_exps.weight": "gate_proj", "ffn_up_exps.weight": "up_proj", "ffn_down_exps.weight": "down_proj"}


def read_gguf(path, gguf):
    """-> (tensors {name: float32 array in numpy (row-major) order}, info dict for golden.json)."""
    r = gguf.GGUFReader(str(path))
    tensors, types = {}, {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        ne = [int(x) for x in t.shape]
        a = np.asarray(a, dtype=np.float32).reshape(list(reversed(ne)))
        tensors[t.name] = a
        types[t.name] = {"type": t.tensor_type.name, "ne": ne}
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        tname = gguf.GGUFValueType(f.types[0]).name if f.types else "?"
        if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
            meta[k] = f"<array of {len(f.data)} {gguf.GGUFValueType(f.types[-1]).name}>"
        else:
            v = f.contents()
            if tname in ("FLOAT32", "FLOAT64"):
                v = float(np.float32(v)) if tname == "FLOAT32" else float(v)
            if k == "tokenizer.chat_template":
                v = f"<string of {len(v)} chars>"
            meta[k] = v
    return tensors, {"tensors": types, "metadata": meta}


def gguf_to_hf(t, cfg):
    """Undo the converter. t: GGUF name -> array. Returns HF name -> torch f32 tensor (per-expert layout)."""
    nh, dn, dv, kvr = (cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["v_head_dim"],
                       cfg["kv_lora_rank"])
    out, used = {}, set()
    for g, h in GLOBAL_NAMES.items():
        out[h] = t[g]
        used.add(g)
    for L in range(cfg["num_hidden_layers"]):
        p, q = f"blk.{L}.", f"model.layers.{L}."
        for g, h in BLOCK_NAMES.items():
            if p + g in t:
                out[q + h] = t[p + g]
                used.add(p + g)
        # converter: kv_b [nh*(dn+dv), kvr] -> view [nh, dn+dv, kvr] -> k_b [nh, dn, kvr].transpose(1,2)
        # (= [nh, kvr, dn], GGUF ne [dn, kvr, nh]) and v_b [nh, dv, kvr] (GGUF ne [kvr, dv, nh])
        kb, vb = t[p + "attn_k_b.weight"], t[p + "attn_v_b.weight"]
        assert kb.shape == (nh, kvr, dn) and vb.shape == (nh, dv, kvr), (kb.shape, vb.shape)
        kv = np.concatenate([kb.transpose(0, 2, 1), vb], axis=1)          # [nh, dn+dv, kvr]
        out[q + "self_attn.kv_b_proj.weight"] = kv.reshape(nh * (dn + dv), kvr)
        used |= {p + "attn_k_b.weight", p + "attn_v_b.weight"}
        # converter: torch.stack over experts -> [E, out, in]
        for g, h in EXPS.items():
            if p + g in t:
                for e, w in enumerate(t[p + g]):
                    out[q + f"mlp.experts.{e}.{h}.weight"] = w
                used.add(p + g)
    missing = set(t) - used
    assert not missing, f"GGUF tensors not mapped back: {sorted(missing)}"
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------
# goldens
# --------------------------------------------------------------------------------------------------

def load_f32_strict(arch, d):
    """tools/make_fixtures.py load_f32, but every checkpoint tensor must be used and none missing."""
    _, cls = mf.arch_classes(arch)
    model, li = cls.from_pretrained(str(d), dtype=torch.float32, attn_implementation="eager",
                                    output_loading_info=True)
    bad = {k: v for k, v in li.items() if v}
    assert not bad, f"{d}: checkpoint does not match the model: {bad}"
    return model


def goldens_from_dir(spec, d, prompt):
    model = load_f32_strict(spec["arch"], d)
    g = mf.compute_goldens(spec["arch"], model, model.config, prompt)
    ok, tot = mf.decisive(spec, model.config, g)
    g["feature_totals"] = tot
    g["rope"] = dict(
        rope_inv_freq=[float(v) for v in model.model.rotary_emb.inv_freq.tolist()],
        rope_attention_factor=float(model.model.rotary_emb.attention_scaling),
        softmax_scale=float(model.model.layers[0].self_attn.scaling),
    )
    return g, ok


def write_readback_dir(hf_dir, w, d):
    """Weights read back from a GGUF (HF names, f32) as an HF checkpoint in d, with hf_dir's config.json."""
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    mf.write_checkpoint(d, w)
    shutil.copy(hf_dir / "config.json", d / "config.json")
    return d


def goldens_for_gguf(spec, hf_dir, path, prompt, gguf, tmp):
    cfg = json.loads((hf_dir / "config.json").read_text())
    raw, info = read_gguf(path, gguf)
    w = gguf_to_hf(raw, cfg)
    d = write_readback_dir(hf_dir, w, tmp / path.stem)
    g, ok = goldens_from_dir(spec, d, prompt)
    # independent float64 numpy forward (tools/make_fixtures.py np_forward) on the same weights
    w64 = {k: v.double().numpy() for k, v in w.items()}
    logits, routing = mf.np_forward(cfg, w64, g["input_ids"])
    err = float(np.abs(logits - g["logits"].numpy()).max())
    assert err < 1e-3, f"{path.name}: numpy reference logits differ by {err}"
    assert routing == g["routing"], f"{path.name}: numpy reference routing differs"
    greedy = [int(np.argmax(logits[t])) for t in range(len(prompt) - 1, len(g["input_ids"]) - 1)]
    assert greedy == g["generated_ids"], f"{path.name}: numpy reference greedy tokens differ"
    g["numpy_ref_max_abs_err"] = err
    return g, ok, info, w


# upper bounds on a tensor's relative RMS dequantization error per file type (observed max: about half;
# a wrong layout / transposition gives ~1.4)
WEIGHT_ERR_MAX = {"F32": 1e-12, "F16": 1e-3, "Q8_0": 0.01, "Q5_K_S": 0.06, "Q4_K_M": 0.12, "Q3_K_M": 0.3,
                  "Q2_K": 0.6, "IQ_MIX": 1.0}


def weight_errors(w, hf_w):
    """HF name (experts collapsed to experts.*) -> relative RMS error of the GGUF weights vs the HF ones."""
    out = {}
    for k, ref in hf_w.items():
        ref = ref.double()
        e = float((w[k].double() - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt())
        kk = re.sub(r"\.experts\.\d+\.", ".experts.*.", k)
        out[kk] = max(out.get(kk, 0.0), e)
    return dict(sorted(out.items(), key=lambda kv: mf.natural_key(kv[0])))


def rel(a, b):
    b = b.double()
    return float((a.double() - b).abs().max() / b.std())


def golden_json(g, prompt, info, file_type, hf_cfg, vs_hf, seed, versions):
    logits = g["logits"].numpy().astype(np.float32)
    rm = g["router_margins"]
    return {
        "prompt_ids": prompt,
        "generated_ids": g["generated_ids"],
        "input_ids": g["input_ids"],
        "routing": g["routing"],
        "routing_weights": g["routing_weights"],
        "vocab_size": int(logits.shape[1]),
        "logits_std": float(logits.std()),
        "moe_layers": sorted(int(k) for k in g["routing"]),
        **g["rope"],
        "min_router_margin": min(min(m["expert_margin_min"], m["group_margin_min"]) for m in rm.values()),
        "router_margins": rm,
        "min_greedy_margin": min(g["greedy_margins"]),
        "feature_counts": g["feature_totals"],
        "max_abs_logit_diff_vs_hf_over_std": vs_hf,
        "weight_rel_rms_err_vs_hf": g["weight_err"],
        "numpy_ref_max_abs_err": g["numpy_ref_max_abs_err"],
        "seed": seed,
        "gguf": {"file_type": file_type, **info},
        "hf_config": hf_cfg,
        "generator": {"script": "tools/make_gguf_model_fixtures.py", **versions},
    }


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

def build_model(name, spec, llama, work, tok_dir, tok_hash, keep, only=False, first_seed=None):
    """Seed search. Returns (seed, prompt, hf config, {file_type: (path, goldens, info, vs_hf)}).

    A seed is accepted when every file type in `keep` (the ones written to tests/fixtures) is decisive
    (tools/make_fixtures.py `decisive`) and its 7 generated ids hold >= MIN_DISTINCT_GEN distinct ids.
    Those files are made and checked first; the other types are made once a seed is accepted."""
    hf_dir = work / "hf" / name
    gdir = work / "gguf" / name
    tmp = work / "tmp" / name

    def make(ft):
        path = gdir / f"{name}_{ft}.gguf"
        if ft in ("F32", "F16"):
            llama.convert_hf(hf_dir, path, ft.lower(), tok_hash)
        elif ft in IQ_MIXES:
            assert not needs_lite_workaround(spec["config"]), "i-quant mixes are made for v3_tiny only"
            imatrix = gdir / f"{name}.imatrix.gguf"
            if not imatrix.exists():
                llama.imatrix_file(gdir / f"{name}_F32.gguf", imatrix)
            llama.quantize_iq(gdir / f"{name}_F32.gguf", path, ft, imatrix)
        else:
            llama.quantize_file(gdir / f"{name}_F32.gguf", path, ft, needs_lite_workaround(spec["config"]))
        return path

    for attempt in range(MAX_SEED_TRIES):
        seed = (first_seed or spec["base_seed"]) + attempt
        cfg_json = make_hf_checkpoint(spec, seed, hf_dir, tok_dir)
        pg = torch.Generator().manual_seed(seed + 7)
        prompt = [0] + torch.randint(3, TOK_N, (PROMPT_LEN - 1,), generator=pg).tolist()
        hf_g, _ = goldens_from_dir(spec, hf_dir, prompt)
        hf_w = mf.read_dir_tensors(hf_dir)
        if gdir.exists():
            shutil.rmtree(gdir)
        gdir.mkdir(parents=True)
        res, all_ok = {}, True
        order = ["F32"] + [ft for ft in keep if ft != "F32"] + [ft for ft in FILE_TYPES if ft not in keep + ["F32"] and not only]
        for ft in order:
            if ft not in keep and not all_ok:
                break
            path = make(ft)
            g, ok, info, w = goldens_for_gguf(spec, hf_dir, path, prompt, llama.gguf, tmp)
            ok &= len(set(g["generated_ids"])) >= MIN_DISTINCT_GEN
            vs_hf = rel(g["logits"], hf_g["logits"])
            assert set(hf_w) == set(w), set(hf_w) ^ set(w)
            g["weight_err"] = weight_errors(w, hf_w)
            worst = max(g["weight_err"].values())
            assert worst < WEIGHT_ERR_MAX[ft], f"{path.name}: dequantized weights too far from HF: {worst}"
            res[ft] = (path, g, info, vs_hf)
            if ft == "F32":
                # the sanity check: converter + gguf-py read-back + name/layout mapping are exact
                for k in hf_w:
                    assert torch.equal(hf_w[k], w[k]), f"F32 GGUF weight {k} differs from the HF checkpoint"
                assert vs_hf <= F32_TOL, f"F32 GGUF goldens differ from HF: {vs_hf}"
                assert g["routing"] == hf_g["routing"] and g["generated_ids"] == hf_g["generated_ids"]
            mrm = min(min(m["expert_margin_min"], m["group_margin_min"]) for m in g["router_margins"].values())
            print(f"  {name} seed {seed} {ft:7s} {path.stat().st_size / 1e6:6.3f} MB decisive={ok} "
                  f"gen={g['generated_ids']} vs_hf={vs_hf:.3g} np_err={g['numpy_ref_max_abs_err']:.2g} "
                  f"min_router_margin={mrm:.3g} min_greedy_margin={min(g['greedy_margins']):.3g} "
                  f"max_weight_rel_rms_err={worst:.3g}", flush=True)
            if ft in keep:
                all_ok &= ok
        if all_ok:
            return seed, prompt, cfg_json, res
        print(f"  {name} seed {seed}: a file to commit is not decisive, next seed", flush=True)
    raise RuntimeError(f"{name}: no decisive seed in {MAX_SEED_TRIES} tries")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models to (re)generate; default all: {', '.join(MODEL_SPECS)}")
    ap.add_argument("--llama-cpp", default=os.environ.get("LLAMA_CPP_DIR"),
                    help="llama.cpp checkout with build/bin/llama-quantize (or env LLAMA_CPP_DIR)")
    ap.add_argument("--work", default=os.environ.get("GGUF_FIXTURES_WORK", "/work/llama-build"),
                    help="scratch dir for HF checkpoints and every GGUF file (not in git)")
    ap.add_argument("--commit", default="default",
                    help="'default' (COMMIT table), 'all', or a comma list of file types, e.g. Q4_K_M,F16")
    ap.add_argument("--only", action="store_true",
                    help="make only F32 and the committed types (and remove only those folders)")
    ap.add_argument("--first-seed", type=int, help="start the seed search here (e.g. the committed seed)")
    a = ap.parse_args()
    if not a.llama_cpp:
        sys.exit("give --llama-cpp or LLAMA_CPP_DIR")
    names = a.names or list(MODEL_SPECS)
    for n in names:
        if n not in MODEL_SPECS:
            sys.exit(f"unknown model {n}; known: {', '.join(MODEL_SPECS)}")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    llama = LlamaCpp(a.llama_cpp)
    versions = llama.versions()
    work = Path(a.work).resolve()
    tok_dir = build_tokenizer(work / "hf" / "tiny_deepseek_v3_tokenizer")
    tok_hash = tokenizer_hash(tok_dir, llama)
    print(f"llama.cpp {versions}; tiny tokenizer check-text hash {tok_hash}")
    OUT.mkdir(parents=True, exist_ok=True)
    for n in names:
        keep = (FILE_TYPES if a.commit == "all" else COMMIT[n] if a.commit == "default"
                else [s.strip().upper() for s in a.commit.split(",")])
        assert all(ft in FILE_TYPES for ft in keep), keep
        seed, prompt, cfg_json, res = build_model(n, MODEL_SPECS[n], llama, work, tok_dir, tok_hash, keep,
                                                  a.only, a.first_seed)
        for old in OUT.glob(f"{n}_*"):
            if not a.only or old.name in [f"{n}_{ft.lower()}" for ft in keep]:
                shutil.rmtree(old)
        for ft in keep:
            path, g, info, vs_hf = res[ft]
            d = OUT / f"{n}_{ft.lower()}"
            d.mkdir(parents=True)
            shutil.copy(path, d / "model.gguf")
            np.save(d / "logits.npy", g["logits"].numpy().astype(np.float32))
            gj = golden_json(g, prompt, info, ft, cfg_json, vs_hf, seed, {**versions,
                             "tiny_tokenizer_hash": tok_hash})
            (d / "golden.json").write_text(mf.dump_json(gj) + "\n")
            size = sum(f.stat().st_size for f in d.iterdir())
            print(f"wrote {d.relative_to(ROOT)} ({size / 1e6:.3f} MB)")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"total {OUT.relative_to(ROOT)}: {total / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
