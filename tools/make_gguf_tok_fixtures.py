#!/usr/bin/env python3
"""Goldens for tests/gguf_tokenizer.rs: Hugging Face's ids for DeepSeek-V3's tokenizer.json
(assets/deepseek-v3-tokenizer) on a varied text set, from the `tokenizers` Python package.

    python3 tools/make_gguf_tok_fixtures.py      # needs: pip install tokenizers

Writes tests/fixtures/gguf_tok/hf_ids.json: the tokenizers version, then per text the ids
without special tokens and the decoded text. The Rust test encodes the same texts with the
tokenizer it rebuilds from a GGUF file's metadata and must give these ids.
"""
import json
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "gguf_tok" / "hf_ids.json"

# llama.cpp's probe text for pre-tokenizer hashes (convert_hf_to_gguf_update.py CHK_TXT):
# whitespace runs, emoji sequences, Khmer, digit runs, CJK, Cyrillic, quote/apostrophe cases.
CHK_TXT = '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL'

TEXTS = [
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "深度求索（DeepSeek）是一家人工智能公司，专注于大语言模型。",
    "日本語のテキスト：ひらがな、カタカナ、漢字を混ぜる。",
    "한국어 문장도 넣어 봅니다.",
    "Привет, мир! Ελληνικά κείμενα. العربية. हिन्दी।",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tlet v: Vec<u32> = (0..10).map(|x| x * x).collect();\n\tprintln!(\"{v:?}\");\n}\n",
    "if (a && b || !c) { x += 0x1F; y <<= 2; } // comment @user #tag $var %mod ^xor ~not `tick`",
    "Emoji: 😀🎉👍🏽 family: 👨‍👩‍👧‍👦 flags: 🇯🇵🇫🇷",
    "12345678901234567890 3.14159265358979 1,000,000 -42 +7 1e-10 ２０２４年",
    "spaces:    four, tabs:\t\t\ttwo+, trailing   ",
    "   leading spaces",
    "line one\nline two\n\n\nafter three newlines\r\nCRLF\rCR",
    "\n\n\n",
    " ",
    "",
    "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hi!<｜Assistant｜><think>\nLet me think.\n</think>\n\nHello!<｜end▁of▁sentence｜>",
    "<think></think><｜User｜><｜Assistant｜>",
    "text<｜User｜>glued<｜Assistant｜>tokens<｜end▁of▁sentence｜>",
    "<｜fim▁begin｜>def f():<｜fim▁hole｜>\n<｜fim▁end｜>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    "<|EOT|> <｜place▁holder▁no▁7｜> <｜▁pad▁｜>",
    "<｜begin of sentence｜> <|User|> < think > </ think>",
    "Mixed: café naïve résumé Ærøskøbing ß ﬁ ½ ² ℃ ™ © — – … “quotes” ‘single’ «guillemets»",
    "URL https://example.com/path?q=1&r=2#frag and email a.b@c.de",
    "Math: ∑_{i=1}^{n} i² = n(n+1)(2n+1)/6, ∀x∈ℝ: x²≥0, √2≈1.414",
    "'s 't 're 've 'm 'll 'd I'm you're WE'LL",
    "A" * 100,
    "ab" * 40 + " " + "语" * 30,
    CHK_TXT,
]


def main():
    tok = Tokenizer.from_file(str(ROOT / "assets" / "deepseek-v3-tokenizer" / "tokenizer.json"))
    cases = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {"tokenizers_version": tokenizers.__version__, "tokenizer": "assets/deepseek-v3-tokenizer/tokenizer.json", "cases": cases}
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(cases)} texts)")


if __name__ == "__main__":
    main()
