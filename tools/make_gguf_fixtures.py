#!/usr/bin/env python3
"""Small GGUF files written by gguf-py, and what gguf-py's own reader reads from them.

    pip install gguf numpy                      # made with gguf 0.19.0, numpy 2.4.6
    python3 tools/make_gguf_fixtures.py         # rewrites tests/fixtures/gguf/

gguf-py (llama.cpp's Python package) is an implementation independent of src/gguf.rs: its
GGUFWriter writes the files and its GGUFReader reads them back; tests/gguf_reader.rs checks that
our reader sees exactly what GGUFReader sees (metadata with value types, tensor names, ggml
types, shapes in ggml order, absolute data offsets, byte counts and a checksum of the bytes).

Files:
  all_types.gguf          v3, general.alignment = 64, every metadata value type (nested arrays
                          too), tensors F32/F16/BF16/I32/Q8_0/Q4_0/TQ1_0/Q4_K with odd and 3-D shapes
  v2.gguf                 a small file whose version field is patched to 2 (v2 and v3 share
                          one layout for little-endian files; GGUFWriter only writes v3)
  no_tensors.gguf         metadata only
  split-0000N-of-00003.gguf  a split set written by GGUFWriter(split_max_tensors=2)
  expected.json           the sidecar: per file what GGUFReader reads, and the ggml type table

Checksums: FNV-1a 64 of each tensor's bytes (the crate has no sha2 dependency and FNV is a few
lines in Rust), plus sha256 for people reading the JSON.
"""

import hashlib
import json
import os
import struct

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import quantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "gguf")


def fnv1a64(b: bytes) -> str:
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def write_all_types(path, rng):
    w = GGUFWriter(path, "deepseek2")
    w.add_custom_alignment(64)
    w.add_name("fixture with every value type")
    w.add_uint8("test.u8", 255)
    w.add_int8("test.i8", -128)
    w.add_uint16("test.u16", 65535)
    w.add_int16("test.i16", -32768)
    w.add_uint32("deepseek2.block_count", 3)
    w.add_uint32("test.u32", 0xFFFFFFFF)
    w.add_int32("test.i32", -2147483648)
    w.add_uint64("test.u64", 0xFFFFFFFFFFFFFFFF)
    w.add_int64("test.i64", -(1 << 63))
    w.add_float32("deepseek2.rope.freq_base", 10000.0)
    w.add_float32("test.f32", 3.1415927)
    w.add_float32("test.f32_neg_zero", -0.0)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_bool("test.true", True)
    w.add_bool("test.false", False)
    w.add_string("test.string", "héllo ✓ 日本 \"quoted\" \\ \n tab\t")
    w.add_string("test.empty_string", "")
    w.add_array("tokenizer.ggml.tokens", ["<｜begin▁of▁sentence｜>", "a", "", "Ġthe", "<0x0A>"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.5, 2.25, -1e30, 1e-30])
    w.add_key_value("tokenizer.ggml.token_type", [1, 2, 3, 6, 1], GGUFValueType.ARRAY, sub_type=GGUFValueType.INT32)
    w.add_key_value("test.u8_array", b"\x00\x01\xfe\xff", GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT8)
    w.add_key_value("test.u64_array", [0, 1 << 40, 0xFFFFFFFFFFFFFFFF], GGUFValueType.ARRAY, sub_type=GGUFValueType.UINT64)
    w.add_key_value("test.f64_array", [0.5, -0.25], GGUFValueType.ARRAY, sub_type=GGUFValueType.FLOAT64)
    w.add_array("test.bool_array", [True, False, True])
    w.add_array("test.nested_ints", [[1, 2], [3], [-4, 5, 6]])
    w.add_array("test.nested_strings", [["a", "bc"], ["déf"]])
    w.add_array("test.nested_twice", [[[1], [2, 3]], [[4]]])

    # numpy shapes; the file stores them reversed (ggml order: ne0 = the contiguous row).
    w.add_tensor("token_embd.weight", rng.standard_normal((3, 64)).astype(np.float32))
    w.add_tensor("output_norm.weight", rng.standard_normal(64).astype(np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((5, 7)).astype(np.float16))
    w.add_tensor("blk.0.ffn_gate_exps.weight", rng.standard_normal((4, 8, 32)).astype(np.float16))
    w.add_tensor("blk.0.ffn_down_exps.weight", quantize(rng.standard_normal((4, 8, 32)).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_kv_a_mqa.weight", quantize(rng.standard_normal((4, 64)).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
    # gguf-py 0.19 cannot quantize to Q4_K (only dequantize), so its blocks are random bytes of
    # the right size: 2 rows × 1 block × 144 bytes. The reader never looks inside blocks.
    w.add_tensor("blk.0.ffn_up.weight", rng.integers(0, 256, (2, 144), dtype=np.uint8), raw_dtype=T.Q4_K)
    w.add_tensor("blk.0.ffn_gate.weight", quantize(rng.standard_normal((2, 64)).astype(np.float32), T.Q4_0), raw_dtype=T.Q4_0)
    w.add_tensor("blk.0.ffn_down.weight", quantize(rng.standard_normal((1, 256)).astype(np.float32), T.TQ1_0), raw_dtype=T.TQ1_0)
    w.add_tensor("blk.0.attn_output.weight", quantize(rng.standard_normal((3, 5)).astype(np.float32), T.BF16), raw_dtype=T.BF16)
    w.add_tensor("test.ints", np.arange(-3, 6, dtype=np.int32).reshape(3, 3))
    finish(w)


def write_small(path, rng, name):
    w = GGUFWriter(path, "deepseek2")
    w.add_name(name)
    w.add_uint32("deepseek2.block_count", 1)
    w.add_tensor("output_norm.weight", rng.standard_normal(16).astype(np.float32))
    w.add_tensor("blk.0.ffn_up.weight", quantize(rng.standard_normal((2, 32)).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
    finish(w)


def write_no_tensors(path):
    w = GGUFWriter(path, "deepseek2")
    w.add_name("metadata only")
    w.add_array("tokenizer.ggml.tokens", ["x", "y"])
    finish(w)


def write_split(base, rng):
    w = GGUFWriter(base, "deepseek2", split_max_tensors=2)
    w.add_name("split fixture")
    w.add_uint32("deepseek2.block_count", 2)
    w.add_tensor("token_embd.weight", rng.standard_normal((3, 8)).astype(np.float32))
    w.add_tensor("output_norm.weight", rng.standard_normal(8).astype(np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((4, 8)).astype(np.float16))
    w.add_tensor("blk.0.ffn_up.weight", quantize(rng.standard_normal((2, 32)).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
    w.add_tensor("blk.1.attn_q.weight", rng.standard_normal((4, 8)).astype(np.float16))
    w.add_tensor("blk.1.ffn_up.weight", quantize(rng.standard_normal((2, 32)).astype(np.float32), T.Q8_0), raw_dtype=T.Q8_0)
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def typed(vtype, parts, i):
    """Rebuild one value from GGUFReader's flat `parts`, starting at parts[i]; returns (json, next i).

    GGUFReader's `contents()` flattens nested arrays, but its `parts` keep every length and type
    header in file order, so walking them reproduces exactly what it parsed.
    """
    name = GGUFValueType(vtype).name
    if vtype == GGUFValueType.STRING:
        return {"type": name, "value": bytes(parts[i + 1]).decode("utf-8")}, i + 2
    if vtype == GGUFValueType.ARRAY:
        elem = int(parts[i][0])
        n = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(n):
            v, i = typed(elem, parts, i)
            items.append(v)
        return {"type": name, "elem": GGUFValueType(elem).name, "items": items}, i
    x = parts[i][0]
    if vtype == GGUFValueType.FLOAT32:
        return {"type": name, "bits": struct.unpack("<I", struct.pack("<f", float(x)))[0]}, i + 1
    if vtype == GGUFValueType.FLOAT64:
        return {"type": name, "bits": struct.unpack("<Q", struct.pack("<d", float(x)))[0]}, i + 1
    if vtype == GGUFValueType.BOOL:
        return {"type": name, "value": bool(x)}, i + 1
    return {"type": name, "value": int(x)}, i + 1


def describe(path):
    r = GGUFReader(path)
    raw = open(path, "rb").read()
    meta = {}
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        v, end = typed(f.types[0], f.parts, 3)  # parts[0..3]: key length, key bytes, value type
        assert end == len(f.parts), key
        meta[key] = v
    tensors = []
    for t in r.tensors:
        b = raw[t.data_offset:t.data_offset + t.n_bytes]
        assert len(b) == t.n_bytes
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "shape": [int(d) for d in t.shape],  # ggml order, as stored
            "data_offset": int(t.data_offset),
            "n_bytes": int(t.n_bytes),
            "fnv1a64": fnv1a64(b),
            "sha256": hashlib.sha256(b).hexdigest(),
        })
    return {
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "size": len(raw),
        "metadata": meta,
        "tensors": tensors,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".gguf"):
            os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20261207)
    write_all_types(os.path.join(OUT, "all_types.gguf"), rng)
    v2 = os.path.join(OUT, "v2.gguf")
    write_small(v2, rng, "version 2")
    with open(v2, "r+b") as f:
        f.seek(4)
        f.write(struct.pack("<I", 2))
    write_no_tensors(os.path.join(OUT, "no_tensors.gguf"))
    write_split(os.path.join(OUT, "split.gguf"), rng)

    files = sorted(f for f in os.listdir(OUT) if f.endswith(".gguf"))
    assert "split-00003-of-00003.gguf" in files, files
    out = {
        "gguf_py": gguf.__version__ if hasattr(gguf, "__version__") else _pkg_version(),
        "numpy": np.__version__,
        "ggml_types": [
            {"id": int(t), "name": t.name, "block_size": gguf.GGML_QUANT_SIZES[t][0], "type_size": gguf.GGML_QUANT_SIZES[t][1]}
            for t in gguf.GGMLQuantizationType
        ],
        "files": {f: describe(os.path.join(OUT, f)) for f in files},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(files)} GGUF files and expected.json to {OUT}: {total} bytes")


def _pkg_version():
    from importlib.metadata import version

    return version("gguf")


if __name__ == "__main__":
    main()
