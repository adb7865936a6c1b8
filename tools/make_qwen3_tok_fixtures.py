#!/usr/bin/env python3
"""Qwen3 / DeepSeek-R1-0528-Qwen3-8B goldens from Hugging Face's own implementations, for
tests/qwen3_tokenizer.rs (our `ChatTokenizer`, minijinja renderer and reasoning splitter).

    python3 -m venv /tmp/venv-tok && /tmp/venv-tok/bin/pip install tokenizers transformers jinja2
    /tmp/venv-tok/bin/python tools/make_qwen3_tok_fixtures.py

Reads (see the SOURCE.md files next to them)
  tests/fixtures/qwen3_tokenizer/{tokenizer.json,tokenizer_config.json}   Qwen3's tokenizer
  tests/fixtures/chat_templates/deepseek-r1-0528-qwen3-8b.jinja            DeepSeek-R1-0528-Qwen3-8B's template
  tests/fixtures/chat_templates/deepseek-r1-distill-qwen.jinja             DeepSeek-R1-Distill-Qwen's template

Writes tests/fixtures/qwen3_goldens.json
  tokenizer: per text, the ids of the `tokenizers` library (Tokenizer.from_file) and of
             transformers' AutoTokenizer (both without special tokens: they must agree, the
             script stops otherwise), the ids AutoTokenizer gives with special tokens (Qwen3
             adds none: no BOS), and the decoded text.
  templates: per template, the bos/eos strings it was rendered with and, per conversation,
             transformers' apply_chat_template text with and without the generation prompt;
             for Qwen3's template also the ids (tokenize=True) and the text with
             enable_thinking=False.
  replies:   per template, a model output (text) as that template's model writes it, its ids
             under Qwen3's tokenizer, and the reasoning / answer a reader should see.
"""
import json
import shutil
import tempfile
from pathlib import Path

from tokenizers import Tokenizer
from transformers import AutoTokenizer

from make_chat_fixtures import CONVERSATIONS as BASE_CONVERSATIONS

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
QWEN3 = FIX / "qwen3_tokenizer"
TEMPLATES = FIX / "chat_templates"

# DeepSeek's special tokens as the R1 tokenizer configs name them (R1-0528-Qwen3-8B "shares
# the same tokenizer configuration as DeepSeek-R1-0528").
DS_BOS = "<｜begin▁of▁sentence｜>"
DS_EOS = "<｜end▁of▁sentence｜>"

TEXTS = [
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Numbers: 1234567890 3.14159 -42 1e-9 0x1F 2,147,483,647 12345678901234567890",
    "深度求索是一家人工智能公司。你好，世界！请用中文回答。",
    "日本語のテキストとカタカナ、ひらがな。한국어 텍스트도 있습니다.",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "if x:\n\tif y:\n\t\treturn {'a': [1, 2]}\n\telse:\n\t\tpass\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", v);\n}\n",
    "Emoji: 😀🎉👍🏽 family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵 keycap: 1️⃣ rainbow flag: 🏳️‍🌈",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\t\tnewlines\n\n\nand \r\n windows   \n  ",
    "many spaces:          end\n\n\n\n\n\nmany newlines",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.<|im_end|>",
    "<|endoftext|>text after end of text<|endoftext|>",
    "a<think>b</think>c <think> </think>  <tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "Ünïcödé àccents, Ελληνικά, русский, العربية, हिन्दी, ไทย, עברית",
    "mixed: English中文English日本語English한국어 Ωμέγα ẞ ǅ",
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ and x<=y && y>=z || !w",
    "I'm sure you'll see they've done it, we'd've said so. DON'T SHOUT",
    "URL https://example.com/a/b?c=d&e=f#g and e-mail someone@example.org",
    "decomposed (NFC-normalised by Qwen3): Cafe\u0301 n\u0303 A\u030a \u1100\u1161\u11a8 \u212b",
    "\u00a0non-breaking\u2009thin\u3000ideographic space\u200bzero width",
    "",
    "a",
    " ",
    "\n",
]

# The assistant turn our Session stores after a reply with reasoning (src/chat: `assistant_content`).
def session_content(reasoning, answer):
    return f"<think>\n{reasoning.rstrip()}\n</think>\n\n{answer}" if reasoning else answer


# The conversations of the DeepSeek chat goldens, whose assistant turns are already in the
# session's shape, plus two that end at an assistant turn or have no reasoning at all.
CONVERSATIONS = {k: BASE_CONVERSATIONS[k] for k in ["single", "system", "multi_turn_with_reasoning", "unicode"]}
assert CONVERSATIONS["multi_turn_with_reasoning"][2]["content"] == session_content("The user greets me.", "Hello! How can I help?")
CONVERSATIONS["assistant_last_with_reasoning"] = [
    {"role": "user", "content": "What is 2 + 5?"},
    {"role": "assistant", "content": session_content("2+5=7\n", "7")},
]
CONVERSATIONS["no_reasoning_history"] = [
    {"role": "user", "content": "Say hi."},
    {"role": "assistant", "content": "Hi."},
    {"role": "user", "content": "Thanks!"},
]

# What each template's model writes: Qwen3 and R1-0528-Qwen3-8B open <think> themselves;
# R1-Distill's prompt opened it, so its output starts inside the reasoning.
REPLIES = {
    "qwen3": ("<think>\nThe user asks 347 + 589.\n347 + 589 = 936.\n</think>\n\nThe answer is **936**.", "The user asks 347 + 589.\n347 + 589 = 936.\n", "The answer is **936**."),
    "deepseek-r1-0528-qwen3-8b": ("<think>\n347 + 589: 300+500=800, 47+89=136, total 936.\n</think>\n\n347 + 589 = 936 ✅", "347 + 589: 300+500=800, 47+89=136, total 936.\n", "347 + 589 = 936 ✅"),
    "deepseek-r1-distill-qwen": ("Okay, 347 + 589 = 936.\n</think>\n\n**936**", "Okay, 347 + 589 = 936.\n", "**936**"),
}


def tokenizer_goldens():
    raw = Tokenizer.from_file(str(QWEN3 / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(QWEN3))
    out = []
    for text in TEXTS:
        ids = raw.encode(text, add_special_tokens=False).ids
        ids_hf = hf(text, add_special_tokens=False)["input_ids"]
        assert ids == ids_hf, (text, ids, ids_hf)
        out.append({
            "text": text,
            "ids": ids,
            "ids_hf_with_special": hf(text)["input_ids"],
            "decoded": raw.decode(ids, skip_special_tokens=False),
        })
    return out


def deepseek_folder(tmp, name):
    """Qwen3's tokenizer with a DeepSeek distill's tokenizer_config (bos/eos and template): only
    for rendering text, since the real distill's tokenizer.json is not in the repository."""
    d = Path(tmp) / name
    d.mkdir()
    shutil.copyfile(QWEN3 / "tokenizer.json", d / "tokenizer.json")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "bos_token": DS_BOS, "eos_token": DS_EOS,
        "tokenizer_class": "LlamaTokenizerFast", "clean_up_tokenization_spaces": False,
        "chat_template": (TEMPLATES / f"{name}.jinja").read_text(),
    }, ensure_ascii=False))
    return d


def template_goldens(folder, with_ids):
    hf = AutoTokenizer.from_pretrained(str(folder))
    out = {"bos_token": hf.bos_token or "", "eos_token": hf.eos_token or "", "conversations": {}}
    for name, conv in CONVERSATIONS.items():
        c = {"messages": conv}
        for gen, key in [(True, "with_generation_prompt"), (False, "without_generation_prompt")]:
            c[key] = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
        if with_ids:
            ids = hf.apply_chat_template(conv, tokenize=True, add_generation_prompt=True)
            c["ids_with_generation_prompt"] = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            c["with_generation_prompt_thinking_off"] = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=True, enable_thinking=False)
        out["conversations"][name] = c
    return out


def main():
    qwen3 = Tokenizer.from_file(str(QWEN3 / "tokenizer.json"))
    with tempfile.TemporaryDirectory() as tmp:
        templates = {"qwen3": template_goldens(QWEN3, True)}
        for name in ["deepseek-r1-0528-qwen3-8b", "deepseek-r1-distill-qwen"]:
            templates[name] = template_goldens(deepseek_folder(tmp, name), False)
    replies = {
        k: {"text": t, "ids": qwen3.encode(t, add_special_tokens=False).ids, "reasoning": r, "answer": a}
        for k, (t, r, a) in REPLIES.items()
    }
    goldens = {"tokenizer": tokenizer_goldens(), "templates": templates, "replies": replies}
    path = FIX / "qwen3_goldens.json"
    path.write_text(json.dumps(goldens, indent=1, ensure_ascii=False) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
