#!/usr/bin/env python3
"""Reference decodes of the weight formats, from PyTorch (an implementation independent of ours).

    python3 tools/make_format_fixtures.py      # writes tests/fixtures/formats.json

For each format: the packed bytes (as a list of byte values) and the f32 bit pattern PyTorch decodes each
value to (bit patterns, so NaN and infinities survive JSON). FP8 E4M3 ("fn") covers all 256 bytes; BF16 and
F16 cover their special values (zeros, subnormals, max, infinities, NaN) and 500 random patterns.
"""

import json
import os
import random

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "formats.json")


def case(raw_u8, dtype):
    t = torch.tensor(raw_u8, dtype=torch.uint8).view(dtype).float()
    return {"bytes": raw_u8, "f32_bits": [int(x) & 0xFFFFFFFF for x in t.view(torch.int32).tolist()]}


def main():
    rng = random.Random(20261202)
    out = {"torch": torch.__version__}
    out["F8_E4M3"] = case(list(range(256)), torch.float8_e4m3fn)
    specials = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0,
                0x7C00, 0xFC00, 0x7E00, 0x03FF, 0x0400, 0x3C00, 0x7BFF]
    for name, dt in [("BF16", torch.bfloat16), ("F16", torch.float16)]:
        pats = specials + [rng.randrange(0, 1 << 16) for _ in range(500)]
        raw = [b for p in pats for b in (p & 0xFF, p >> 8)]  # little endian
        out[name] = case(raw, dt)
    pats = [rng.randrange(0, 1 << 32) for _ in range(64)] + [0, 0x80000000, 0x7F800000, 0x7FC00000, 1]
    raw = [b for p in pats for b in p.to_bytes(4, "little")]
    out["F32"] = case(raw, torch.float32)
    with open(OUT, "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
