#!/usr/bin/env python3
"""Reference decodes of GGUF's i-quants, from gguf-py (an implementation independent of ours).

    pip install gguf numpy                   # made with gguf 0.19.0
    python3 tools/make_iquant_fixtures.py    # writes tests/fixtures/iquants.json

For each of IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS: the bytes of
a few whole blocks and the f32 bit pattern `gguf.quants.dequantize` decodes each value to.
gguf-py cannot quantize these types, so the blocks are random bytes (every grid index, sign
and sub-block scale bit exercised) with the f16 scale replaced by a random finite f16, plus
edge cases (zero scale, all bits set with a negative scale, all bits clear, the largest f16).
IQ1_M keeps its f16 scale in the top nibbles of its four scale words; those are set the same way.
"""

import importlib.metadata
import json
import os

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "iquants.json"))

TYPES = ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS"]


def set_d(name, block, bits):
    if name == "IQ1_M":
        for i in range(4):  # nibble i of d in the top nibble of scale word i (bytes 48 + 2i)
            hi = block[49 + 2 * i]
            block[49 + 2 * i] = (hi & 0x0F) | (((bits >> (4 * i)) & 0xF) << 4)
    else:
        block[0] = bits & 0xFF
        block[1] = bits >> 8


def finite_f16_bits(rng):
    while True:
        b = int(rng.integers(0, 1 << 16))
        if (b >> 10) & 0x1F != 0x1F:
            return b


def blocks_for(name, rng):
    qtype = GGMLQuantizationType[name]
    n, size = GGML_QUANT_SIZES[qtype]
    out = []
    for _ in range(8):
        b = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        set_d(name, b, finite_f16_bits(rng))
        out.append(b)
    zero = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    set_d(name, zero, 0x0000)
    out.append(zero)
    neg = bytearray(b"\xff" * size)
    set_d(name, neg, 0xB800)  # -0.5
    out.append(neg)
    clear = bytearray(size)
    set_d(name, clear, 0x3C00)  # 1.0
    out.append(clear)
    big = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    set_d(name, big, 0x7BFF)  # 65504
    out.append(big)
    raw = np.frombuffer(b"".join(out), dtype=np.uint8).reshape(len(out), size)
    f = dequantize(raw, qtype).astype(np.float32, copy=False).reshape(-1)
    assert f.size == len(out) * n
    return {"blocks": len(out), "block_bytes": size, "block_elems": n, "bytes": [int(x) for x in raw.reshape(-1)], "f32_bits": [int(x) for x in f.view(np.uint32)]}


def main():
    rng = np.random.default_rng(20261202)
    out = {"gguf": importlib.metadata.version("gguf"), "numpy": np.__version__}
    for name in TYPES:
        out[name] = blocks_for(name, rng)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
