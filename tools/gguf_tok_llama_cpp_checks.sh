#!/usr/bin/env bash
# Runs the two checks of tests/gguf_tokenizer.rs that need llama.cpp's own files:
#  - DeepSeek-V3's vocabulary converted by llama.cpp's convert_hf_to_gguf.py --vocab-only
#    (the test's GGUF writer must write the same tokenizer metadata);
#  - llama.cpp's ggml-vocab-deepseek-{llm,coder}.gguf with Hugging Face's ids (.inp/.out).
# Needs: pip (llama.cpp comes from the llama-cpp-python sdist), and for the converter
# python3 with torch, numpy and transformers.
#
#     tools/gguf_tok_llama_cpp_checks.sh [WORKDIR]      # default /tmp/gguf-tok-llama-cpp
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/gguf-tok-llama-cpp}
mkdir -p "$WORK"
if ! ls "$WORK"/llama_cpp_python-*/vendor/llama.cpp/convert_hf_to_gguf.py >/dev/null 2>&1; then
    pip download --no-deps --no-build-isolation --no-binary :all: llama-cpp-python -d "$WORK"
    tar xf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
fi
LCP=$(ls -d "$WORK"/llama_cpp_python-*/vendor/llama.cpp | head -1)

V3="$WORK/v3-folder"
mkdir -p "$V3"
cp "$ROOT"/assets/deepseek-v3-tokenizer/tokenizer.json "$ROOT"/assets/deepseek-v3-tokenizer/tokenizer_config.json "$V3"/
python3 - "$ROOT/tests/fixtures/v3_moonlight/config.json" "$V3/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["vocab_size"] = 129280  # DeepSeek-V3's
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
(cd "$LCP" && python3 convert_hf_to_gguf.py --vocab-only "$V3" --outfile "$WORK/deepseek-v3-vocab.gguf")

cd "$ROOT"
DEEPSEEK_WGPU_V3_VOCAB_GGUF="$WORK/deepseek-v3-vocab.gguf" LLAMA_CPP_MODELS_DIR="$LCP/models" \
    cargo test --test gguf_tokenizer -- --ignored writer_matches_llama_cpp llama_cpp_deepseek_vocab --nocapture
