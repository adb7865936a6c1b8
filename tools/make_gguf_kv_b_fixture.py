#!/usr/bin/env python3
"""A GGUF in llama.cpp's OLDER deepseek2 form (one `attn_kv_b` per layer), made from a fixture in the newer
split form (`attn_k_b` + `attn_v_b`) that llama.cpp's own converter wrote.

Older `convert_hf_to_gguf.py` versions stored transformers' `kv_b_proj` as it is, `blk.N.attn_kv_b.weight`
([H·(nope+v)][kvl] row-major, ggml ne = [kvl, H·(nope+v)]), with `attention.key_length` = nope + rope,
`attention.value_length` = v, `attention.head_count_kv` = head_count, and no `*_mla` keys. Newer ones split
it into `attn_k_b` (W_UK per head, transposed: [H][kvl][nope]) and `attn_v_b` ([H][v][kvl]), and write
key_length = kvl + rope with the head sizes under `key_length_mla` / `value_length_mla`.

This script reads the newer file with gguf-py, dequantizes k_b and v_b, puts kv_b back together per head
(rows h·(nope+v) .. +nope = k_b[h]ᵀ, the next v rows = v_b[h]) and writes it as F32, so every weight the model
multiplies by is the same number as in the source file: the source fixture's golden.json and logits.npy
(transformers on gguf-py's dequantization of it) are the goldens of the new file too, and are copied.
Every other tensor keeps its bytes and type; every other metadata key its value.

    python3 tools/make_gguf_kv_b_fixture.py tests/fixtures/gguf_models/v2lite_tiny_q8_0 tests/fixtures/gguf_models/v2lite_tiny_q8_0_kv_b

Needs gguf-py (pip install gguf; written against 0.19.0) and numpy.
"""
import shutil
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize

ARCH = "deepseek2"


def field_value(f):
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        sub = f.types[1]
        if sub == GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data], GGUFValueType.ARRAY, sub
        return [f.parts[i].tolist()[0] for i in f.data], GGUFValueType.ARRAY, sub
    if t == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8"), t, None
    return f.parts[f.data[0]].tolist()[0], t, None


def main(src_dir: Path, dst_dir: Path):
    r = GGUFReader(src_dir / "model.gguf")
    get = lambda k: field_value(r.fields[f"{ARCH}.{k}"])[0]
    heads, rope = get("attention.head_count"), get("rope.dimension_count")
    nope, v = get("attention.key_length_mla") - rope, get("attention.value_length_mla")
    kvl = get("attention.kv_lora_rank")
    dst_dir.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(dst_dir / "model.gguf", ARCH)
    w.add_architecture = lambda: None  # the source's general.architecture is copied below
    replace = {f"{ARCH}.attention.key_length": nope + rope, f"{ARCH}.attention.value_length": v, f"{ARCH}.attention.head_count_kv": heads}
    skip = {f"{ARCH}.attention.key_length_mla", f"{ARCH}.attention.value_length_mla"}
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in skip:
            continue
        val, t, sub = field_value(f)
        val = replace.get(name, val)
        if name == "general.architecture":
            continue  # GGUFWriter writes it
        w.add_key_value(name, val, t, sub_type=sub)
    tensors = {t.name: t for t in r.tensors}
    done = set()
    for t in r.tensors:
        if t.name.endswith("attn_v_b.weight"):
            continue
        if t.name.endswith("attn_k_b.weight"):
            blk = t.name[: -len("attn_k_b.weight")]
            kb = dequantize(t.data, t.tensor_type).reshape(heads, kvl, nope)
            vt = tensors[blk + "attn_v_b.weight"]
            vb = dequantize(vt.data, vt.tensor_type).reshape(heads, v, kvl)
            kv_b = np.concatenate([kb.transpose(0, 2, 1), vb], axis=1).reshape(heads * (nope + v), kvl).astype(np.float32)
            w.add_tensor(blk + "attn_kv_b.weight", kv_b)
            done.add(blk)
            continue
        # the reader's data is typed for F32/F16 and raw bytes [.., bytes per row] for block types
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    for f in ("golden.json", "logits.npy"):
        shutil.copy(src_dir / f, dst_dir / f)
    print(f"{dst_dir / 'model.gguf'}: {len(done)} layers with attn_kv_b [{heads}·({nope}+{v})][{kvl}] F32")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
