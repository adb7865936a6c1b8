#!/usr/bin/env bash
# Fixtures for tests/quantize.rs (tests/fixtures/quant/):
#   ref.bin         random f32 rows and their Q8_0 / Q6_K / Q4_K blocks from llama.cpp's own
#                   quantize_row_*_ref (tools/quant_ref.c linked against ggml-quants.c, compiled
#                   with -ffp-contract=off: the reference rounding, no FMA contraction)
#   gguf_py_q8_0.bin the same rows through gguf-py's quants.quantize(Q8_0) (an independent
#                   implementation; gguf-py has no K-quant quantizer)
# Usage: tools/make_quant_fixtures.sh [path to llama.cpp's ggml/src]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-/work/llama-build/llama_cpp_python-0.3.36/vendor/llama.cpp/ggml/src}
out=$here/tests/fixtures/quant
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
gcc -O2 -ffp-contract=off -std=gnu11 -I"$src/../include" -I"$src" -c "$src/ggml-quants.c" -o "$tmp/ggml-quants.o"
gcc -O2 -ffp-contract=off -I"$src/../include" -I"$src" -o "$tmp/quant_ref" "$here/tools/quant_ref.c" "$tmp/ggml-quants.o" -lm
"$tmp/quant_ref" "$out/ref.bin"
python3 - "$out" <<'PY'
import sys, numpy as np
from gguf import quants, GGMLQuantizationType
out = sys.argv[1]
raw = open(f"{out}/ref.bin", "rb").read()
assert raw[:4] == b"QREF"
rows, n = np.frombuffer(raw[4:12], "<u4")
x = np.frombuffer(raw[12:12 + 4 * rows * n], "<f4").reshape(rows, n)
q = quants.quantize(x, GGMLQuantizationType.Q8_0)
open(f"{out}/gguf_py_q8_0.bin", "wb").write(q.tobytes())
print(f"{rows} rows of {n}: ref.bin, gguf_py_q8_0.bin ({q.nbytes} bytes)")
PY
