#!/usr/bin/env python3
"""Train `assets/tiny-r1`: a tiny DeepSeek-V3 (transformers `DeepseekV3ForCausalLM`) that does
short arithmetic with an R1-style `<think>` trace.  Everything is generated here; nothing is downloaded.

Reproduce (the shipped checkpoint):

    nohup nice -n 10 python3 tools/train_tiny.py train --out assets/tiny-r1 > /tmp/train_tiny.log 2>&1 &

    * CPU only, float32, `torch.set_num_threads(2)`; about 75 minutes on 2 cores (see tools/TRAINING.md for
      the measured time; it depends on the load of the machine).
    * Seeds: training data and weight init `--seed 1234`, evaluation problems `--eval-seed 987654`
      (both are the defaults).  CPU kernels are not bit-deterministic across machines/thread counts, so a
      rerun gives a model of the same quality, not identical bytes.
    * Checkpoints are written atomically into `--out` every `--save-every` steps and at the end, so a
      usable model exists if the run is cut short.  At the end the script reloads the saved files,
      evaluates them (greedy, fresh problems, different seed) and writes the numbers into README.md.

Other sub-commands:

    python3 tools/train_tiny.py eval   --model assets/tiny-r1 [--n 200]      # accuracy table from the files
    python3 tools/train_tiny.py engine --model assets/tiny-r1 [--n 8]        # engine vs PyTorch greedy ids
    python3 tools/train_tiny.py sample --model assets/tiny-r1 "What is 347 + 589?"
    python3 tools/train_tiny.py train --out /tmp/tiny-smoke --steps 30 --smoke   # 1-2 minute pipeline check

Data (chat-formatted; the prompt is rendered with the tokenizer's chat template, `add_generation_prompt=True`,
which ends in `<｜Assistant｜><think>\\n`; the model writes the trace, `</think>\\n\\n`, the number, eos):

    What is 347 + 589?      347+589 / 7+9+0=16 6 / 4+8+1=13 36 / 3+5+1=9 936            -> 936
    What is 15 - 72?        15-72 / 1<7 / 72-15 neg / 12-5-0=7 7 / 7-1-1=5 57           -> -57
    What is 123 * 7?        123*7 / 3*7=21+0=21 1 / 2*7=14+2=16 61 / 1*7=7+1=8 861       -> 861
    Which is larger, 347 or 374?   347 374 / 3=3 / 4<7                                   -> 374
    Which is smaller, 347 or 374?  (same trace)                                          -> 347

    Hello! Who are you?     not arithmetic I know                                         -> I am tiny-r1, ...

(`/` = newline.)  Operands have 1-6 digits and are zero-padded to the same width inside the trace.  Each
column line is `digits = column result` followed by the partial result so far (the new digit prepended),
so the final answer is a copy of the last partial result (leading zeros dropped, sign added).
Subtraction allows negative results: it first compares the operands (most significant digit first,
stopping at the first difference), then subtracts the smaller from the larger, writing a borrowed
column as `1x-y-b`.  Multiplication is a 1-6 digit number times one digit (0-9).
Anything else (chat, knowledge, code, other scripts, division, multi-digit multipliers, three operands, ...)
gets the one-line trace `not arithmetic I know` and the sentence OOD_REPLY.

The shipped model was trained in two stages (both are this script's `train`):
    1. from scratch, 1-3 digit operands, no out-of-domain questions: the script as of commit cb44520
       (`git show cb44520:tools/train_tiny.py > /tmp/train_v1.py && python3 /tmp/train_v1.py train --out /tmp/stage1`,
       73 minutes);
    2. `train --init /tmp/stage1 --out assets/tiny-r1 --steps 1600 --batch 96 --lr 1.5e-3 --warmup 50` with this
       version: 1-6 digit operands and the out-of-domain questions.
"""

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

# libgomp's default busy-wait makes 2 threads ~8x slower when the cores are shared (e.g. with a compiler);
# passive waiting costs little when they are not. Must be set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(2)

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
THINK = "<think>"
END_THINK = "</think>"
UNK = "<｜▁unk▁｜>"
SPECIALS = [BOS, EOS, PAD, USER, ASSISTANT, THINK, END_THINK, UNK]  # ids 0..7
VOCAB_SIZE = 128  # embedding rows; the tokenizer uses 8 + 96 of them

# Simple Jinja that transformers (jinja2) and minijinja (+ pycompat for str.split) both render.
# Modelled on DeepSeek-R1(-0528): bos, system prompt, turns; history assistant turns lose their
# reasoning (content.split('</think>')|last); the generation prompt opens <think> for the model.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set ns = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{%- set ns.system = ns.system + message['content'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{{- ns.system -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '<｜User｜>' + message['content'] -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- set content = message['content'] -%}"
    "{%- if '</think>' in content -%}{%- set content = content.split('</think>')|last -%}{%- endif -%}"
    "{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<｜Assistant｜><think>\\n' -}}{%- endif -%}"
)

TASKS = ["add", "sub", "mul", "cmp", "ood"]

# What the model says to anything that is not one of its four question forms (the issue asks for one short,
# honest sentence saying what it can do). The engine's eval checks this exact text.
OOD_TRACE = "not arithmetic I know"
OOD_REPLY = "I am tiny-r1, a tiny demo: I only do +, -, * by one digit and compare numbers. Run a real model with --model."


# ----------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------

LENGTHS = (1, 2, 3, 4, 5, 6)
LENGTH_WEIGHTS = (0.06, 0.1, 0.14, 0.2, 0.24, 0.26)  # longer operands are harder: more of them


def rand_operand(rng, lengths=LENGTHS, weights=LENGTH_WEIGHTS):
    n = rng.choices(lengths, weights)[0]
    lo = 0 if n == 1 else 10 ** (n - 1)
    return rng.randint(lo, 10 ** n - 1)


def compare_lines(pa, pb):
    """Most significant digit first until the first difference. Returns (lines, sign of a-b)."""
    lines = []
    for x, y in zip(pa, pb):
        if x == y:
            lines.append(f"{x}={y}")
        else:
            lines.append(f"{x}{'<' if x < y else '>'}{y}")
            return lines, (-1 if x < y else 1)
    return lines, 0


def trace_add(a, b):
    n = max(len(str(a)), len(str(b)))
    pa, pb = str(a).zfill(n), str(b).zfill(n)
    lines = [f"{pa}+{pb}"]
    c, part = 0, ""
    for i in range(n - 1, -1, -1):
        x, y = int(pa[i]), int(pb[i])
        s = x + y + c
        part = (str(s) if i == 0 else str(s % 10)) + part
        lines.append(f"{x}+{y}+{c}={s} {part}")
        c = s // 10
    assert int(part) == a + b
    return lines, str(a + b)


def trace_sub(a, b):
    n = max(len(str(a)), len(str(b)))
    pa, pb = str(a).zfill(n), str(b).zfill(n)
    lines = [f"{pa}-{pb}"]
    cl, sign = compare_lines(pa, pb)
    lines += cl
    big, small = (pb, pa) if sign < 0 else (pa, pb)
    lines.append(f"{big}-{small}" + (" neg" if sign < 0 else ""))
    c, part = 0, ""
    for i in range(n - 1, -1, -1):
        x, y = int(big[i]), int(small[i])
        d = x - y - c
        if d < 0:
            lines.append(f"1{x}-{y}-{c}={d + 10} {str(d + 10) + part}")
            part = str(d + 10) + part
            c = 1
        else:
            part = str(d) + part
            lines.append(f"{x}-{y}-{c}={d} {part}")
            c = 0
    assert c == 0
    ans = ("-" if sign < 0 else "") + str(int(part))
    if ans == "-0":
        ans = "0"
    assert int(ans) == a - b
    return lines, ans


def trace_mul(a, b):
    pa = str(a)
    lines = [f"{pa}*{b}"]
    c, part = 0, ""
    for i in range(len(pa) - 1, -1, -1):
        x = int(pa[i])
        p = x * b
        s = p + c
        part = (str(s) if i == 0 else str(s % 10)) + part
        lines.append(f"{x}*{b}={p}+{c}={s} {part}")
        c = s // 10
    ans = str(int(part))
    assert int(ans) == a * b
    return lines, ans


def trace_cmp(a, b, larger):
    n = max(len(str(a)), len(str(b)))
    pa, pb = str(a).zfill(n), str(b).zfill(n)
    cl, sign = compare_lines(pa, pb)
    assert sign != 0
    ans = a if (sign > 0) == larger else b
    return [f"{pa} {pb}"] + cl, str(ans)


def make_problem(rng, task, lengths=LENGTHS, weights=LENGTH_WEIGHTS):
    """Returns (question, reasoning_lines, answer)."""
    if task == "ood":
        return ood_question(rng), [OOD_TRACE], OOD_REPLY
    if task == "add":
        a, b = rand_operand(rng, lengths, weights), rand_operand(rng, lengths, weights)
        return f"What is {a} + {b}?", *trace_add(a, b)
    if task == "sub":
        a, b = rand_operand(rng, lengths, weights), rand_operand(rng, lengths, weights)
        return f"What is {a} - {b}?", *trace_sub(a, b)
    if task == "mul":
        a, b = rand_operand(rng, lengths, weights), rng.randint(0, 9)
        return f"What is {a} * {b}?", *trace_mul(a, b)
    if task == "cmp":
        while True:
            a, b = rand_operand(rng, lengths, weights), rand_operand(rng, lengths, weights)
            if a != b:
                break
        larger = rng.random() < 0.6
        word = "larger" if larger else "smaller"
        return f"Which is {word}, {a} or {b}?", *trace_cmp(a, b, larger)
    raise ValueError(task)


# ----------------------------------------------------------------------------------------------------------
# out-of-domain questions: everything the model should decline
# ----------------------------------------------------------------------------------------------------------

GREETINGS = ["Hello", "Hi", "Hey", "Good morning", "Good evening", "Hi there", "Hello there", "Yo", "Greetings",
             "Howdy", "Dear model", "Ok", "Thanks", "Thank you", "Sorry", "Please"]
CHAT_QUESTIONS = [
    "Who are you?", "What are you?", "What can you do?", "What is your name?", "How are you?",
    "Are you an AI?", "Can you help me?", "What do you know?", "Tell me about yourself.", "Who made you?",
    "What is the capital of France?", "What is the meaning of life?", "What is love?", "What is a prime number?",
    "What is the weather like today?", "What time is it?", "What is Rust?", "What is DeepSeek?",
    "Tell me a joke.", "Write a poem about the sea.", "Write a haiku.", "Explain quantum computing.",
    "Summarize this text for me.", "Translate 'cat' into French.", "How do I cook rice?", "Why is the sky blue?",
    "Can you write Python code?", "Write a function that sorts a list.", "Which is better, cats or dogs?",
    "Which is larger, the sun or the moon?", "What is 2 plus 2 in words?", "Do you like music?",
    "Recommend a book.", "How old are you?", "Where do you live?", "What day is it?", "Is it going to rain?",
    "Solve x^2 = 4.", "What is the square root of 16?", "Give me a recipe.", "Explain recursion.",
]
WORDS = ("the a an of to in is it you that he was for on are with as I his they be at one have this from or "
         "had by word but what some we can out other were all there when up use your how said each she which do "
         "their time if will way about many then them write would like so these her long make thing see him two "
         "has look more day could go come did number sound no most people my over know water than call first who "
         "may down side been now find any new work part take get place made live where after back little only "
         "round man year came show every good me give our under name very through just form sentence great think "
         "say help low line differ turn cause much mean before move right boy old too same tell does set three want "
         "air well also play small end put home read hand port large spell add even land here must big high such "
         "follow act why ask men change went light kind off need house picture try us again animal point mother "
         "world near build self earth father model answer question code rust python weather music story").split()
STARTS = ["What is", "Who is", "Why is", "How do I", "Can you", "Please", "Tell me", "Explain", "Write",
          "Which is", "Is there", "Where is", "When did", "Do you", "Should I", "Could you", "Give me", "Show me"]
CJK = "你好世界谢谢再见请问今天天气怎么样我是谁数学问题こんにちは안녕하세요привет"


def ood_question(rng):
    """A question tiny-r1 must decline: chat, knowledge, code, other scripts, or arithmetic it does not do."""
    kind = rng.choices(["chat", "greet_chat", "words", "start_words", "chars", "cjk", "near_miss"],
                       [0.2, 0.15, 0.15, 0.2, 0.08, 0.07, 0.15])[0]
    if kind == "chat":
        q = rng.choice(CHAT_QUESTIONS)
    elif kind == "greet_chat":
        q = f"{rng.choice(GREETINGS)}{rng.choice(['!', ',', '.', ''])} {rng.choice(CHAT_QUESTIONS)}"
    elif kind == "words":
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9)))
        q = q[0].upper() + q[1:] + rng.choice(["", ".", "?", "!"])
    elif kind == "start_words":
        q = rng.choice(STARTS) + " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7)))
        q += rng.choice(["?", ".", "", "!"])
    elif kind == "chars":
        q = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(1, 30)))
    elif kind == "cjk":
        q = "".join(rng.choice(CJK) for _ in range(rng.randint(1, 12))) + rng.choice(["", "?", "!"])
    else:
        # arithmetic it was not trained for: division, powers, multi-digit multipliers, several operands,
        # operands written as words, a missing operand.
        a, b = rand_operand(rng), rand_operand(rng)
        q = rng.choice([
            f"What is {a} / {b}?", f"What is {a} ^ {b % 10}?", f"What is {a} * {rng.randint(10, 999)}?",
            f"What is {a} + {b} + {rand_operand(rng)}?", f"What is {a} - {b} + {rand_operand(rng)}?",
            f"What is {a} % {b}?", f"What is {a} +?", f"What is + {b}?", f"What is {a}?",
            f"What is two + {b}?", f"What is {a} plus {b}?", f"Which is larger, {a} or {b} or {rand_operand(rng)}?",
            f"Which is larger, {a} or apples?", f"{a} + {b}", f"Is {a} prime?", f"What is the sum of {a} and {b}?",
        ])
    return q[:60]


def assistant_text(lines, answer):
    """What the model writes after the generation prompt (which already ends in '<think>\\n')."""
    return "\n".join(lines) + "\n" + END_THINK + "\n\n" + answer + EOS


# ----------------------------------------------------------------------------------------------------------
# tokenizer / config files
# ----------------------------------------------------------------------------------------------------------

def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import AddedToken

    chars = [chr(c) for c in range(32, 127)] + ["\n"]  # printable ASCII + newline, one token each
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for ch in chars:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok


def tokenizer_config():
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": UNK,
        "add_bos_token": False,  # the chat template writes bos itself
        "add_eos_token": False,
        "model_max_length": 256,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "chat_template": CHAT_TEMPLATE,
    }


def model_config(args):
    """Hub (DeepSeek-V3 config.json) spelling: rope_scaling + top-level rope_theta."""
    return {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": args.hidden,
        "intermediate_size": args.dense_inter,
        "moe_intermediate_size": args.moe_inter,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.heads,
        "q_lora_rank": args.q_lora,
        "kv_lora_rank": args.kv_lora,
        "qk_rope_head_dim": 16,
        "qk_nope_head_dim": 32,
        "v_head_dim": 32,
        "n_routed_experts": 16,
        "n_shared_experts": 1,
        "num_experts_per_tok": 4,
        "n_group": 4,
        "topk_group": 2,
        "routed_scaling_factor": 2.5,
        "norm_topk_prob": True,
        "scoring_func": "sigmoid",
        "topk_method": "noaux_tc",
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "num_nextn_predict_layers": 0,
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "rope_theta": 10000.0,
        "rope_scaling": {"type": "yarn", "factor": 2.0, "original_max_position_embeddings": 128,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
        "rms_norm_eps": 1e-6,
        "initializer_range": 0.02,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "use_cache": True,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "torch_dtype": "float32" if not args.bf16 else "bfloat16",
    }


def atomic_write_bytes(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def atomic_write_json(path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def write_static_files(out, args):
    os.makedirs(out, exist_ok=True)
    atomic_write_bytes(os.path.join(out, "tokenizer.json"), build_tokenizer().to_str(pretty=True).encode())
    atomic_write_json(os.path.join(out, "tokenizer_config.json"), tokenizer_config())
    atomic_write_json(os.path.join(out, "special_tokens_map.json"),
                      {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK})
    atomic_write_json(os.path.join(out, "generation_config.json"), {
        "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2,
        "do_sample": True, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 256,
    })
    atomic_write_json(os.path.join(out, "config.json"), model_config(args))


def load_tokenizer(path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(path)


def save_weights(model, out, bf16):
    """save_pretrained into a temp dir (real HF per-expert layout), then rename model.safetensors in."""
    tmp = tempfile.mkdtemp(dir=out, prefix=".tmp_save_")
    try:
        m = model
        if bf16:
            import copy
            m = copy.deepcopy(model).to(torch.bfloat16)
            for layer in m.model.layers:  # keep router weight + bias in f32 like real checkpoints
                if hasattr(layer.mlp, "gate"):
                    layer.mlp.gate.float()
        m.save_pretrained(tmp, safe_serialization=True)
        os.chmod(os.path.join(tmp, "model.safetensors"), 0o644)
        os.replace(os.path.join(tmp, "model.safetensors"), os.path.join(out, "model.safetensors"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------------------------------

class Batcher:
    def __init__(self, tok, rng, batch_size, task_weights, group=16):
        self.tok, self.rng, self.bs, self.tw, self.group = tok, rng, batch_size, task_weights, group
        self.queue = []
        self.pad_id = tok.convert_tokens_to_ids(PAD)

    def render(self, question, lines, answer):
        prompt = self.tok.apply_chat_template([{"role": "user", "content": question}],
                                              tokenize=False, add_generation_prompt=True)
        return prompt, prompt + assistant_text(lines, answer)

    def refill(self):
        n = self.bs * self.group
        tasks = self.rng.choices(TASKS, self.tw, k=n)
        prompts, fulls = [], []
        for t in tasks:
            p, f = self.render(*make_problem(self.rng, t))
            prompts.append(p)
            fulls.append(f)
        enc_p = self.tok(prompts, add_special_tokens=False)["input_ids"]
        enc_f = self.tok(fulls, add_special_tokens=False)["input_ids"]
        ex = []
        for p, f in zip(enc_p, enc_f):
            assert f[:len(p)] == p
            ex.append((f, len(p)))
        ex.sort(key=lambda e: len(e[0]))  # length-bucketed batches: little padding
        batches = [ex[i:i + self.bs] for i in range(0, n, self.bs)]
        self.rng.shuffle(batches)
        self.queue.extend(batches)

    def next(self):
        if not self.queue:
            self.refill()
        ex = self.queue.pop()
        T = max(len(f) for f, _ in ex)
        ids = torch.full((len(ex), T), self.pad_id, dtype=torch.long)
        labels = torch.full((len(ex), T), -100, dtype=torch.long)
        for i, (f, lp) in enumerate(ex):
            ids[i, :len(f)] = torch.tensor(f)
            labels[i, lp:len(f)] = torch.tensor(f[lp:])  # loss on the assistant part only
        return ids, labels


# ----------------------------------------------------------------------------------------------------------
# routing statistics / aux-loss-free balancing
# ----------------------------------------------------------------------------------------------------------

class RouterStats:
    """Forward hooks on every DeepseekV3TopkRouter: count tokens routed to each expert."""

    def __init__(self, model):
        self.E = model.config.n_routed_experts
        self.layers = [i for i, l in enumerate(model.model.layers) if hasattr(l.mlp, "gate")]
        self.gates = {i: model.model.layers[i].mlp.gate for i in self.layers}
        self.step_load = {i: torch.zeros(self.E) for i in self.layers}
        self.window_load = {i: torch.zeros(self.E) for i in self.layers}
        self.token_mask = None  # flattened bool mask of real (non-pad) tokens
        self.active = False
        for i in self.layers:
            self.gates[i].register_forward_hook(self._hook(i))

    def _hook(self, i):
        def hook(module, inputs, output):
            if not self.active:
                return
            idx = output[2].detach()  # (router_logits, topk_weights, topk_indices[T, k])
            if self.token_mask is not None:
                idx = idx[self.token_mask]
            self.step_load[i] += torch.bincount(idx.reshape(-1), minlength=self.E).float()
        return hook

    @torch.no_grad()
    def update_bias(self, gamma):
        for i in self.layers:
            load = self.step_load[i]
            bias = self.gates[i].e_score_correction_bias
            bias += gamma * torch.sign(load.mean() - load)
            self.window_load[i] += load
            load.zero_()

    def entropies(self, reset=True):
        out = {}
        for i in self.layers:
            p = self.window_load[i] / self.window_load[i].sum().clamp(min=1)
            h = -(p * torch.log(p.clamp(min=1e-12))).sum() / math.log(self.E)
            out[i] = round(float(h), 4)
            if reset:
                self.window_load[i].zero_()
        return out


def routing_stats(model, tok, rng_seed=4242, n=400):
    """Routing of each MoE layer on n fresh teacher-forced conversations: expert-load entropy (normalised by
    log E; 1 = even load), load shares, and the mutual information between the input token and the chosen
    experts in bits (0 = routing ignores the token; top-4 of 16 allows at most log2(16/4) = 2 bits)."""
    rng = random.Random(rng_seed)
    E = model.config.n_routed_experts
    layers = [i for i, l in enumerate(model.model.layers) if hasattr(l.mlp, "gate")]
    V = model.config.vocab_size
    joint = {i: torch.zeros(V, E) for i in layers}
    cur = {}
    hooks = []
    for i in layers:
        def hook(module, inputs, output, i=i):
            idx = output[2]  # [T, k]
            tid = cur["ids"].reshape(-1, 1).expand_as(idx)
            joint[i].index_put_((tid.reshape(-1), idx.reshape(-1)), torch.ones(idx.numel()), accumulate=True)
        hooks.append(model.model.layers[i].mlp.gate.register_forward_hook(hook))
    b = Batcher(tok, rng, 1, [1] * len(TASKS))
    with torch.no_grad():
        for _ in range(n):
            _, full = b.render(*make_problem(rng, rng.choice(TASKS)))
            ids = tok(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
            cur["ids"] = ids[0]
            model(ids)
    for h in hooks:
        h.remove()
    ent, share, mi = {}, {}, {}
    for i in layers:
        pj = joint[i] / joint[i].sum()
        pe = pj.sum(0)
        pt = pj.sum(1, keepdim=True)
        ent[i] = round(float(-(pe * torch.log(pe.clamp(min=1e-12))).sum() / math.log(E)), 4)
        share[i] = [round(float(x), 4) for x in pe]
        nz = pj > 0
        mi[i] = round(float((pj[nz] * torch.log2(pj[nz] / (pt.expand_as(pj)[nz] * pe.expand_as(pj)[nz]))).sum()), 3)
    return {"load_entropy": ent, "load_share": share, "token_expert_mi_bits": mi}


# ----------------------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------------------

EVAL_LENGTHS = (2, 3, 4, 5, 6)


def eval_problems(seed, n):
    """Fresh problems (different seed from training): operands of 2-6 digits (each length equally likely) for
    add/sub/cmp, 2-6 digit x 1 digit mul, and out-of-domain questions."""
    rng = random.Random(seed)
    probs = {}
    for t in TASKS:
        probs[t] = [make_problem(rng, t, lengths=EVAL_LENGTHS, weights=(1,) * len(EVAL_LENGTHS)) for _ in range(n)]
    return probs


def extract_answer(text):
    if END_THINK not in text:
        return None
    return text.split(END_THINK)[-1].replace(EOS, "").strip()


@torch.no_grad()
def greedy_generate(model, tok, prompts, max_new_tokens=200, batch_size=64):
    """Greedy continuation of each prompt; prompts of equal token length are batched (no padding needed)."""
    eos = tok.convert_tokens_to_ids(EOS)
    pad = tok.convert_tokens_to_ids(PAD)
    enc = tok(prompts, add_special_tokens=False)["input_ids"]
    by_len = {}
    for i, e in enumerate(enc):
        by_len.setdefault(len(e), []).append(i)
    outs = [None] * len(prompts)
    for L, idxs in by_len.items():
        for s in range(0, len(idxs), batch_size):
            chunk = idxs[s:s + batch_size]
            ids = torch.tensor([enc[i] for i in chunk])
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=eos, pad_token_id=pad)
            for j, i in enumerate(chunk):
                g = gen[j, L:].tolist()
                if eos in g:
                    g = g[:g.index(eos) + 1]
                outs[i] = g
    return outs


def evaluate(model, tok, seed, n, verbose=False):
    probs = eval_problems(seed, n)
    res = {}
    fails = {}
    model.eval()
    for t, plist in probs.items():
        prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                           add_generation_prompt=True) for q, _, _ in plist]
        outs = greedy_generate(model, tok, prompts)
        ok = 0
        trace_ok = 0
        for (q, lines, ans), g in zip(plist, outs):
            text = tok.decode(g, skip_special_tokens=False)
            pred = extract_answer(text)
            ok += pred == ans
            trace_ok += text == assistant_text(lines, ans)
            if pred != ans and verbose and len(fails.setdefault(t, [])) < 3:
                fails[t].append((q, ans, text))
        res[t] = {"n": len(plist), "correct": ok, "accuracy": round(ok / len(plist), 4),
                  "exact_trace": round(trace_ok / len(plist), 4)}
    if verbose:
        for t, fl in fails.items():
            for q, a, text in fl:
                print(f"  FAIL [{t}] {q} expected {a}: {text!r}", flush=True)
    return res


def load_model(path, attn="eager"):
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn, dtype=torch.float32,
                                             experts_implementation="eager")
    m.eval()
    return m


# ----------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------

def lr_at(step, total, peak, warmup, final_frac):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def train(args):
    from transformers import AutoModelForCausalLM, DeepseekV3Config

    t_start = time.time()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    out = args.out
    write_static_files(out, args)
    tok = load_tokenizer(out)
    config = DeepseekV3Config.from_pretrained(out)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32,
                                             experts_implementation="grouped_mm")  # same maths, faster on CPU
    if args.init:
        # from_pretrained undoes save_pretrained's per-expert split into the fused in-memory layout
        init = AutoModelForCausalLM.from_pretrained(args.init, attn_implementation="sdpa", dtype=torch.float32,
                                                    experts_implementation="grouped_mm")
        state = init.state_dict()
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SystemExit(f"--init {args.init}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        print(f"initialised from {args.init} ({len(state)} tensors)", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params:,} ({n_params * (2 if args.bf16 else 4) / 1e6:.2f} MB as "
          f"{'bf16' if args.bf16 else 'f32'})", flush=True)
    print(f"config rope: {config.rope_parameters}", flush=True)

    stats = RouterStats(model)
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n_ else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    batcher = Batcher(tok, random.Random(args.seed), args.batch, args.task_weights)
    log = {"args": vars(args), "params": n_params, "checkpoints": []}

    model.train()
    ema_loss = None
    tokens_seen = 0
    t0 = time.time()
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.final_lr_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        ids, labels = batcher.next()
        stats.token_mask = (ids != batcher.pad_id).reshape(-1)
        stats.active = True
        logits = model(input_ids=ids).logits
        stats.active = False
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                               labels[:, 1:].reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        stats.update_bias(args.gamma)  # aux-loss-free balancing, after the optimizer step
        tokens_seen += int(stats.token_mask.sum())
        lv = float(loss)
        ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
        if step % args.log_every == 0 or step == args.steps - 1:
            el = time.time() - t0
            print(f"step {step:5d}/{args.steps} loss {lv:.4f} ema {ema_loss:.4f} gnorm {float(gn):.2f} "
                  f"lr {lr:.2e} T {ids.shape[1]} tok/s {tokens_seen / el:.0f} "
                  f"step/s {(step + 1) / el:.3f} elapsed {el / 60:.1f}m", flush=True)
        last = step == args.steps - 1
        if (step + 1) % args.save_every == 0 or last:
            save_weights(model, out, args.bf16)
            ent = stats.entropies()
            ck = {"step": step + 1, "ema_loss": round(ema_loss, 4), "minutes": round((time.time() - t0) / 60, 2),
                  "load_entropy": ent}
            if not args.smoke or last:
                model.eval()
                ck["quick_eval"] = {t: r["accuracy"] for t, r in
                                    evaluate(model, tok, args.eval_seed + 1 + step, args.quick_eval_n).items()}
                model.train()
            log["checkpoints"].append(ck)
            atomic_write_json(os.path.join(out, "training_log.json"), log)
            print(f"checkpoint {json.dumps(ck)}", flush=True)
    train_minutes = (time.time() - t0) / 60
    log["train_minutes"] = round(train_minutes, 2)
    log["final_ema_loss"] = round(ema_loss, 4)
    print(f"training done in {train_minutes:.1f} min", flush=True)

    # ---- reload from the files as saved and evaluate them ----
    model_d = load_model(out)
    model.eval()
    ids = tok(batcher.render(*make_problem(random.Random(7), "add"))[1], add_special_tokens=False,
              return_tensors="pt")["input_ids"]
    with torch.no_grad():
        diff = (model(ids).logits - model_d(ids).logits).abs().max().item()
    print(f"reload check: max |logits(in-memory) - logits(saved)| = {diff:.3g}", flush=True)
    log.update({"reload_max_abs_diff": diff, "total_minutes": round((time.time() - t_start) / 60, 2)})
    report(out, model_d, tok, log, args.eval_seed, args.eval_n)


def report(out, model, tok, log, eval_seed, eval_n):
    """Evaluate the saved model, store the numbers in training_log.json and rewrite README.md."""
    res = evaluate(model, tok, eval_seed, eval_n, verbose=True)
    rs = routing_stats(model, tok)
    log.update({"eval": res, "eval_seed": eval_seed, "routing": rs})
    atomic_write_json(os.path.join(out, "training_log.json"), log)
    print("eval " + json.dumps(res), flush=True)
    print("routing " + json.dumps({k: v for k, v in rs.items() if k != "load_share"}), flush=True)
    write_readme(out, model.config, log)


def write_readme(out, config, log):
    size = os.path.getsize(os.path.join(out, "model.safetensors"))
    a = log["args"]
    names = {"add": "addition (2-6 digit operands)", "sub": "subtraction (2-6 digit operands, may be negative)",
             "mul": "multiplication (2-6 digit x 1 digit)", "cmp": "comparison (2-6 digit, larger/smaller)",
             "ood": "out of domain (declines with its one sentence)"}
    rows = "\n".join(f"| {names[t]} | {r['correct']}/{r['n']} | {100 * r['accuracy']:.1f}% | "
                     f"{100 * r['exact_trace']:.1f}% |" for t, r in log["eval"].items())
    last_ck = log["checkpoints"][-1]["load_entropy"]
    rs = log["routing"]
    ent_rows = "\n".join(f"| {i} | {last_ck.get(i, last_ck.get(str(i)))} | {e} | {rs['token_expert_mi_bits'][i]} |"
                         for i, e in rs["load_entropy"].items())
    cmd = ("nice -n 10 python3 tools/train_tiny.py train" + (f" --init {a['init']}" if a.get("init") else "") +
           " --out assets/tiny-r1")
    eng = log.get("engine_check")
    eng_text = ("not run yet (`python3 tools/train_tiny.py engine`)." if eng is None else
                f"{eng['matched']}/{eng['prompts']} prompts give exactly PyTorch's greedy ids and expert choices at "
                f"every position (`python3 tools/train_tiny.py engine`, up to {eng['max_tokens']} new tokens).")
    text = f"""# tiny-r1

A tiny model with exactly the DeepSeek-V3 architecture (`DeepseekV3ForCausalLM`, `model_type: deepseek_v3`),
trained from scratch on CPU to answer short arithmetic questions with an R1-style `<think>` trace. It is the
default model of the deepseek-wgpu engine and desktop app: small enough to ship in the repository, yet it
exercises every part of the V3 forward pass (q-LoRA + MLA, YaRN RoPE, a dense first layer, sigmoid
`noaux_tc` group-limited routing with a correction bias, a shared expert, normalised top-k weights scaled by
`routed_scaling_factor`).

Licence: MIT OR Apache-2.0 (same as the project). All training data is synthetic and generated by
`tools/train_tiny.py`.

## Use

Prompt with the chat template (`tokenizer_config.json`), e.g. `What is 347 + 589?`. The generation prompt ends
in `<｜Assistant｜><think>\\n`; the model writes its reasoning, `</think>`, a blank line and the number:

```
<｜begin▁of▁sentence｜><｜User｜>What is 347 + 589?<｜Assistant｜><think>
347+589
7+9+0=16 6
4+8+1=13 36
3+5+1=9 936
</think>

936<｜end▁of▁sentence｜>
```

Other questions it knows: `What is 72 - 15?` (negative results too), `What is 123 * 7?` (up to 6 digits times
one digit), `Which is larger, 347 or 374?` / `Which is smaller, 347 or 374?`. Operands have 1-6 digits.
Anything else (`Hello! Who are you?`) gets a one-line trace and one honest sentence:

```
<think>
not arithmetic I know
</think>

{OOD_REPLY}
```

The tokenizer is character level (every digit is one token) with
DeepSeek's special tokens; `generation_config.json` has R1's sampling defaults (temperature 0.6, top_p 0.95),
but greedy decoding is the most accurate.

## Model

| | |
|---|---|
| hidden / layers / heads | {config.hidden_size} / {config.num_hidden_layers} (first dense, {config.num_hidden_layers - config.first_k_dense_replace} MoE) / {config.num_attention_heads} |
| q_lora_rank / kv_lora_rank | {config.q_lora_rank} / {config.kv_lora_rank} |
| qk_nope / qk_rope / v head dim | {config.qk_nope_head_dim} / {config.qk_rope_head_dim} / {config.v_head_dim} |
| experts | {config.n_routed_experts} routed (width {config.moe_intermediate_size}), top-{config.num_experts_per_tok}, {config.n_group} groups keep {config.topk_group}, {config.n_shared_experts} shared; dense MLP width {config.intermediate_size} |
| routing | sigmoid + `e_score_correction_bias` (noaux_tc), norm_topk_prob, routed_scaling_factor {config.routed_scaling_factor} |
| RoPE | YaRN factor 2 over 128 original positions, max_position_embeddings {config.max_position_embeddings}, theta 10000 |
| vocab | {config.vocab_size} rows (8 special + 96 character tokens used) |
| parameters | {log['params']:,} |
| checkpoint | `model.safetensors`, {'BF16 (router in F32)' if a['bf16'] else 'F32'}, {size / 1e6:.2f} MB, per-expert tensor names as written by `save_pretrained` |

## Training

`{cmd}` ({a['steps']} steps, batch {a['batch']} sequences, AdamW lr {a['lr']} with {a['warmup']} warm-up steps
and cosine decay to {a['final_lr_frac']} x, weight decay {a['wd']}, grad clip {a['clip']}, seed {a['seed']};
float32 on 2 CPU threads). Loss only on the assistant part (after `<think>\\n`). DeepSeek-V3's
auxiliary-loss-free balancing: after every optimizer step each MoE layer's `e_score_correction_bias` moves by
`{a['gamma']} * sign(mean_load - load_e)` (loads counted with forward hooks on the routers); there is no
auxiliary balancing loss, so the experts are free to specialise.

{"Two stages: the first is the script as of commit cb44520 (from scratch, 1-3 digit operands, 73 minutes), this one " +
 "continues from it with 1-6 digit operands and the out-of-domain questions (see the script's docstring), so a " +
 "reproduction from scratch takes both. " if a.get("init") else ""}This stage took {log['train_minutes']:.0f} minutes of wall-clock time on a shared 2-core machine; final training loss
(EMA over steps, mean per assistant token) {log['final_ema_loss']}.

## Evaluation (PyTorch, from the saved files, greedy, fresh problems with seed {a['eval_seed']})

| task | correct | accuracy | trace exactly as trained |
|---|---|---|---|
{rows}

Accuracy = the number after `</think>` is exactly right; the last column counts answers whose whole trace is
also exactly the trained one.

Routing per MoE layer: expert-load entropy normalised by log(16) (1.0 = perfectly even load), during the last
{a['save_every']} training steps and on 400 fresh teacher-forced conversations, and the mutual information
between the input token and its chosen experts (bits; at most 2 for top-4 of 16). The bias keeps the overall
load even while the experts still specialise by token.

| layer | load entropy (training) | load entropy (fresh problems) | token-expert MI (bits) |
|---|---|---|---|
{ent_rows}

Engine check (deepseek-wgpu, greedy, from these files): {eng_text}
"""
    atomic_write_bytes(os.path.join(out, "README.md"), text.encode())


# ----------------------------------------------------------------------------------------------------------
# engine check / sampling
# ----------------------------------------------------------------------------------------------------------

@torch.no_grad()
def torch_routing(model, ids):
    """{moe layer: [sorted expert ids per position]} for one sequence."""
    out, hooks = {}, []
    for i, layer in enumerate(model.model.layers):
        if hasattr(layer.mlp, "gate"):
            def hook(module, inputs, output, i=i):
                out[i] = [sorted(r) for r in output[2].tolist()]
            hooks.append(layer.mlp.gate.register_forward_hook(hook))
    model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return out


def engine_check(args):
    tok = load_tokenizer(args.model)
    model = load_model(args.model)
    rng = random.Random(args.eval_seed + 99)
    qs = [make_problem(rng, TASKS[i % len(TASKS)])[0] for i in range(args.n)]
    binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "deepseek-wgpu")
    all_ok = True
    n_match = n_route = 0
    env = dict(os.environ)
    env.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    for q in qs:
        prompt = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        pt = greedy_generate(model, tok, [prompt], max_new_tokens=args.max_tokens)[0]
        # also a no-cache full-forward greedy loop, the way the fixture goldens are made
        cur = list(ids)
        with torch.no_grad():
            for _ in range(len(pt)):
                cur.append(int(model(torch.tensor([cur])).logits[0, -1].argmax()))
        full = cur[len(ids):]
        r = subprocess.run([binary, "generate", "--model", args.model, "--ids", ",".join(map(str, ids)),
                            "--max-tokens", str(args.max_tokens), "--temperature", "0", "--json", "--quiet"],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"engine failed: {r.stderr[-2000:]}")
            all_ok = False
            continue
        res = json.loads(r.stdout)
        eng = res["ids"]
        eos = tok.convert_tokens_to_ids(EOS)
        if pt and pt[-1] == eos:  # the engine stops at eos without listing it (and reports "stop": "eos")
            match = eng == pt[:-1] and res.get("stop", "eos") == "eos"
        else:
            match = eng[:len(pt)] == pt
        # routing: the engine lists the sorted experts of every position it processed (prompt + fed tokens)
        seq = (ids + eng)[:len(next(iter(res["routing"].values())))]
        route_pt = torch_routing(model, seq)
        same_route = all(route_pt[int(k)] == v for k, v in res["routing"].items())
        n_match += bool(match and full == pt and same_route)
        n_route += same_route
        all_ok &= match and full == pt and same_route
        print(f"{'MATCH' if match else 'DIFF '} {q!r}: torch {len(pt)} ids, engine {len(eng)} ids "
              f"(stop {res.get('stop')}), no-cache loop {'same' if full == pt else 'DIFFERENT'}, "
              f"routing of {len(seq)} positions {'same' if same_route else 'DIFFERENT'}; text {tok.decode(pt)!r}")
        if not match:
            print(f"   torch  {pt}\n   engine {eng}")
    print("ALL MATCH" if all_ok else "SOME DIFFER")
    log_path = os.path.join(args.model, "training_log.json")
    if args.update_readme and os.path.exists(log_path):
        with open(log_path) as f:
            log = json.load(f)
        log["engine_check"] = {"prompts": len(qs), "matched": n_match, "routing_matched": n_route,
                               "max_tokens": args.max_tokens}
        atomic_write_json(log_path, log)
        if "routing" in log:
            write_readme(args.model, model.config, log)
    return 0 if all_ok else 1


def sample(args):
    tok = load_tokenizer(args.model)
    model = load_model(args.model)
    for q in args.questions:
        prompt = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        g = greedy_generate(model, tok, [prompt])[0]
        print(prompt + tok.decode(g))
        print("-" * 40)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--out", default="assets/tiny-r1")
    tr.add_argument("--steps", type=int, default=2400)
    tr.add_argument("--batch", type=int, default=128)
    tr.add_argument("--lr", type=float, default=2e-3)
    tr.add_argument("--warmup", type=int, default=100)
    tr.add_argument("--final-lr-frac", type=float, default=0.05)
    tr.add_argument("--wd", type=float, default=0.05)
    tr.add_argument("--clip", type=float, default=1.0)
    tr.add_argument("--gamma", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=1234)
    tr.add_argument("--eval-seed", type=int, default=987654)
    tr.add_argument("--eval-n", type=int, default=200)
    tr.add_argument("--quick-eval-n", type=int, default=25)
    tr.add_argument("--save-every", type=int, default=200)
    tr.add_argument("--log-every", type=int, default=25)
    tr.add_argument("--task-weights", type=float, nargs=5, default=[0.26, 0.32, 0.22, 0.1, 0.1],
                    help="add sub mul cmp ood")
    tr.add_argument("--init", default=None,
                    help="start from the weights of this model folder (same config) instead of a random init")
    tr.add_argument("--hidden", type=int, default=128)
    tr.add_argument("--layers", type=int, default=5)
    tr.add_argument("--heads", type=int, default=4)
    tr.add_argument("--q-lora", type=int, default=64)
    tr.add_argument("--kv-lora", type=int, default=32)
    tr.add_argument("--moe-inter", type=int, default=64)
    tr.add_argument("--dense-inter", type=int, default=256)
    tr.add_argument("--bf16", action="store_true", help="store BF16 weights (router in F32)")
    tr.add_argument("--smoke", action="store_true", help="no quick evals at intermediate checkpoints")
    ev = sub.add_parser("eval")
    ev.add_argument("--model", default="assets/tiny-r1")
    ev.add_argument("--n", type=int, default=200)
    ev.add_argument("--eval-seed", type=int, default=987654)
    ev.add_argument("--update-readme", action="store_true", help="store the numbers in training_log.json/README.md")
    en = sub.add_parser("engine")
    en.add_argument("--model", default="assets/tiny-r1")
    en.add_argument("--n", type=int, default=12)
    en.add_argument("--max-tokens", type=int, default=200)
    en.add_argument("--eval-seed", type=int, default=987654)
    en.add_argument("--update-readme", action="store_true", help="store the result in training_log.json/README.md")
    sa = sub.add_parser("sample")
    sa.add_argument("--model", default="assets/tiny-r1")
    sa.add_argument("questions", nargs="+")
    args = ap.parse_args()
    if args.cmd == "train":
        train(args)
    elif args.cmd == "eval":
        tok = load_tokenizer(args.model)
        model = load_model(args.model)
        if args.update_readme:
            with open(os.path.join(args.model, "training_log.json")) as f:
                log = json.load(f)
            report(args.model, model, tok, log, args.eval_seed, args.n)
        else:
            print(json.dumps(evaluate(model, tok, args.eval_seed, args.n, verbose=True), indent=1))
            rs = routing_stats(model, tok)
            print(json.dumps({k: v for k, v in rs.items() if k != "load_share"}))
    elif args.cmd == "engine":
        sys.exit(engine_check(args))
    elif args.cmd == "sample":
        sample(args)


if __name__ == "__main__":
    main()
