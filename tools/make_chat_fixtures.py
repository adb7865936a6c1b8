#!/usr/bin/env python3
"""Chat fixtures: a tiny model folder with a tokenizer and an R1-style chat template, and
goldens from Hugging Face's `tokenizers`/transformers for the Rust tokenizer and template tests.

    python3 tools/make_chat_fixtures.py      # needs: pip install tokenizers transformers

Writes
  tests/fixtures/chat_tiny/   config.json + model.safetensors copied from v3_moonlight (vocab 320),
                              a byte-level BPE tokenizer.json with DeepSeek's pre-tokenizer and
                              special tokens, tokenizer_config.json with an R1-style chat template
                              (reasoning stripped from history, generation prompt opens <think>),
                              generation_config.json (R1's sampling defaults).
  tests/fixtures/chat_goldens.json
    tokenizer: for the DeepSeek-V3 tokenizer in assets/ and the chat_tiny tokenizer, per text the
               ids without special tokens, the ids transformers' tokenizer gives with them, and
               the decoded text.
    templates: per template folder and conversation, transformers' apply_chat_template text with
               and without add_generation_prompt.
"""
import json
import shutil
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, decoders
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
TINY = FIX / "chat_tiny"
DSV3 = ROOT / "assets" / "deepseek-v3-tokenizer"

SPECIALS = [
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜User｜>", "<｜Assistant｜>",
    "<think>", "</think>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>", "<｜tool▁sep｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>",
    "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>",
]

# R1-style template: the DeepSeek-V3 template's structure, plus what R1 adds: assistant
# history keeps only the text after </think>, and the generation prompt opens <think>.
R1_STYLE_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, system_prompt='', is_first_sp=true) %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}"
    "{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}"
    "{%- endif %}{%- endif %}{%- endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{ '<｜User｜>' + message['content'] }}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] %}"
    "{%- set ns.is_tool = false -%}{%- set ns.is_first = false -%}"
    "{%- for tool in message['tool_calls'] %}"
    "{%- if not ns.is_first %}{{ '<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n```json\\n' + tool['function']['arguments'] + '\\n```<｜tool▁call▁end｜>' }}{%- set ns.is_first = true -%}"
    "{%- else %}{{ '\\n<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n```json\\n' + tool['function']['arguments'] + '\\n```<｜tool▁call▁end｜>' }}{%- endif %}"
    "{%- endfor %}{{ '<｜tool▁calls▁end｜><｜end▁of▁sentence｜>' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{%- set content = message['content'] %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}"
    "{%- if ns.is_tool %}{{ '<｜tool▁outputs▁end｜>' + content + '<｜end▁of▁sentence｜>' }}{%- set ns.is_tool = false -%}"
    "{%- else %}{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}"
    "{%- endif %}"
    "{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}"
    "{{ '<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>' }}{%- endif %}"
    "{%- endfor -%}"
    "{% if ns.is_tool %}{{ '<｜tool▁outputs▁end｜>' }}{% endif %}"
    "{% if add_generation_prompt and not ns.is_tool %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)

TEXTS = [
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog. 1234567890 3.14159",
    "深度求索是一家人工智能公司。你好，世界！",
    "日本語のテキストとカタカナ、ひらがな。",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() { println!(\"{}\", 1 + 2); }",
    "Emoji: 😀🎉👍🏽 family: 👨‍👩‍👧‍👦 flags: 🇫🇷🇯🇵",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\t\tnewlines\n\n\nand \r\n windows   \n  ",
    "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>What is 2+2?<｜Assistant｜><think>\nadd\n</think>\n\n4<｜end▁of▁sentence｜>",
    "Ünïcödé àccents, Ελληνικά, русский, العربية, हिन्दी",
    "",
    "a",
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$ and x<=y && y>=z || !w",
]

CONVERSATIONS = {
    "single": [{"role": "user", "content": "What is 347 + 589?"}],
    "system": [
        {"role": "system", "content": "You are a careful calculator."},
        {"role": "user", "content": "What is 72 - 15?"},
    ],
    "multi_turn_with_reasoning": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?"},
        {"role": "user", "content": "What is 12 * 3?"},
        {"role": "assistant", "content": "<think>\n12*3=36\n</think>\n\n36"},
        {"role": "user", "content": "And 36 + 1?"},
    ],
    "two_systems": [
        {"role": "system", "content": "First rule."},
        {"role": "system", "content": "Second rule."},
        {"role": "user", "content": "Go."},
    ],
    "tool_calls": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"type": "function", "function": {"name": "get_time", "arguments": "{\"tz\": \"CET\"}"}},
        ]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "assistant", "content": "It is 21°C in Paris."},
        {"role": "user", "content": "Thanks 😀"},
    ],
    "unicode": [{"role": "user", "content": "你好！请用中文回答。"}],
}


def build_tiny_tokenizer():
    TINY.mkdir(parents=True, exist_ok=True)
    for name in ["config.json", "model.safetensors"]:
        shutil.copyfile(FIX / "v3_moonlight" / name, TINY / name)
    dsv3 = json.loads((DSV3 / "tokenizer.json").read_text())
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=p["pattern"]["Regex"] and __import__("tokenizers").Regex(p["pattern"]["Regex"]), behavior="isolated")
        for p in dsv3["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"
    ] + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    tok.save(str(TINY / "tokenizer.json"))
    cfg = json.loads((TINY / "config.json").read_text())
    assert tok.get_vocab_size() <= cfg["vocab_size"], (tok.get_vocab_size(), cfg["vocab_size"])
    bos, eos = tok.token_to_id(SPECIALS[0]), tok.token_to_id(SPECIALS[1])
    (TINY / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": SPECIALS[0], "eos_token": SPECIALS[1], "pad_token": SPECIALS[2],
        "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": 512,
        "tokenizer_class": "LlamaTokenizerFast", "unk_token": None,
        "chat_template": R1_STYLE_TEMPLATE,
    }, indent=2, ensure_ascii=False) + "\n")
    (TINY / "generation_config.json").write_text(json.dumps({
        "bos_token_id": bos, "eos_token_id": eos, "do_sample": True, "temperature": 0.6, "top_p": 0.95,
    }, indent=2) + "\n")


def tokenizer_goldens(folder):
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(folder))
    out = []
    for text in TEXTS:
        ids = raw.encode(text, add_special_tokens=False).ids
        out.append({
            "text": text,
            "ids": ids,
            "ids_hf_with_special": hf(text)["input_ids"],
            "decoded": raw.decode(ids, skip_special_tokens=False),
        })
    return out


def template_goldens(folder):
    hf = AutoTokenizer.from_pretrained(str(folder))
    out = {}
    for name, conv in CONVERSATIONS.items():
        if "tool_calls" in name and folder == DSV3:
            # V3's template wants `content: None` on tool-call turns, which transformers 5
            # drops before rendering, so it cannot render them; chat_tiny's template covers tools.
            continue
        out[name] = {
            "messages": conv,
            "with_generation_prompt": hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=True),
            "without_generation_prompt": hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=False),
        }
    return out


def main():
    build_tiny_tokenizer()
    goldens = {
        "tokenizer": {"deepseek-v3": tokenizer_goldens(DSV3), "chat_tiny": tokenizer_goldens(TINY)},
        "templates": {"deepseek-v3": template_goldens(DSV3), "chat_tiny": template_goldens(TINY)},
    }
    (FIX / "chat_goldens.json").write_text(json.dumps(goldens, indent=1, ensure_ascii=False) + "\n")
    print("wrote", TINY, "and", FIX / "chat_goldens.json")


if __name__ == "__main__":
    main()
