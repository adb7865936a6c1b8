#!/usr/bin/env python3
"""Reference decodes of GGUF's block formats, from gguf-py (an implementation independent of ours).

    pip install gguf numpy                 # made with gguf 0.19.0, numpy 2.4.6
    python3 tools/make_block_fixtures.py   # writes tests/fixtures/blocks.json

For each of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: the bytes of a few whole
blocks (a list of byte values) and the f32 bit pattern `gguf.quants.dequantize` decodes each value
to. The blocks are:
  - `quantize`d random data, for the types gguf-py can quantize (the 32-value ones),
  - random bytes with each f16 scale field replaced by a random finite f16 (any sign, subnormals
    included), so every bit of the packed quants and sub-block scales is exercised
    (`dequantize` accepts any bytes),
  - edge cases: zero scales, negative scales with every quant bit set, all quant bits clear with
    a positive scale, and the largest finite f16 scales.
The gguf and numpy versions are recorded in the JSON.
"""

import importlib.metadata
import json
import os

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize, quantize

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "blocks.json"))

# Byte offsets of the f16 scale fields in each block (d, then m / dmin where there is one).
F16_FIELDS = {
    "Q8_0": [0],
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
}


def set_f16(block, off, value_bits):
    block[off] = value_bits & 0xFF
    block[off + 1] = value_bits >> 8


def finite_f16_bits(rng):
    while True:
        b = int(rng.integers(0, 1 << 16))
        if (b >> 10) & 0x1F != 0x1F:  # exponent all ones: inf or NaN
            return b


def blocks_for(name, rng):
    qtype = GGMLQuantizationType[name]
    n, size = GGML_QUANT_SIZES[qtype]
    fields = F16_FIELDS[name]
    assert all(o % 2 == 0 and o + 2 <= size for o in fields) and size % 2 == 0
    out = []
    # quantized random data (gguf-py quantizes the 32-value types only)
    try:
        data = (rng.standard_normal((3, n)) * np.array([[0.02], [1.0], [300.0]])).astype(np.float32)
        q = quantize(data, qtype)
        out += [bytearray(r.tobytes()) for r in q]
    except NotImplementedError:
        pass
    # random bytes, finite scales
    for _ in range(5):
        b = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        for o in fields:
            set_f16(b, o, finite_f16_bits(rng))
        out.append(b)
    # edge cases
    zero = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    for o in fields:
        set_f16(zero, o, 0x0000)
    out.append(zero)
    neg_max = bytearray(b"\xff" * size)
    for o in fields:
        set_f16(neg_max, o, 0xB800)  # -0.5
    out.append(neg_max)
    pos_min = bytearray(size)
    for o in fields:
        set_f16(pos_min, o, 0x3C00)  # 1.0
    out.append(pos_min)
    big = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    for i, o in enumerate(fields):
        set_f16(big, o, 0x7BFF if i == 0 else 0xFBFF)  # ±65504
    out.append(big)
    raw = np.frombuffer(b"".join(out), dtype=np.uint8).reshape(len(out), size)
    f = dequantize(raw, qtype).astype(np.float32, copy=False).reshape(-1)
    assert f.size == len(out) * n
    assert np.isfinite(f).all(), name
    return {"blocks": len(out), "bytes": [int(x) for x in raw.reshape(-1)], "f32_bits": [int(x) for x in f.view(np.uint32)]}


def main():
    rng = np.random.default_rng(20261207)
    out = {"gguf": importlib.metadata.version("gguf"), "numpy": np.__version__}
    for name in F16_FIELDS:
        out[name] = blocks_for(name, rng)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
