//! The GGUF reader against gguf-py (tests/fixtures/gguf, made by tools/make_gguf_fixtures.py):
//! every fixture reads as gguf-py's GGUFReader reads it (metadata with value types, tensor
//! names, ggml types, shapes, absolute offsets, sizes and a checksum of the bytes), the ggml
//! type table matches gguf-py's, and hostile files (truncated, mutated, hand-built to lie)
//! fail with a message that names the problem and never panic or allocate what they claim.
//!
//! Checksums are FNV-1a 64, which the fixture script writes next to sha256: the crate has no
//! sha2 dependency and a byte-for-byte check only needs a hash both sides can compute.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deepseek_wgpu::gguf::{Array, GgmlType, Gguf, GgufError, TensorInfo, Value};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf")
}

fn expected() -> Json {
    serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap()
}

fn fnv1a64(b: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h = (h ^ x as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

const VALUE_TYPES: [&str; 13] = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"];

/// A value as the fixture script writes what GGUFReader parsed (floats as bit patterns).
fn to_json(v: &Value) -> Json {
    let ty = VALUE_TYPES[v.type_id() as usize];
    match v {
        Value::Array(a) => json!({
            "type": ty,
            "elem": VALUE_TYPES[a.elem_type_id() as usize],
            "items": (0..a.len()).map(|i| to_json(&a.get(i).unwrap())).collect::<Vec<_>>(),
        }),
        Value::F32(f) => json!({"type": ty, "bits": f.to_bits()}),
        Value::F64(f) => json!({"type": ty, "bits": f.to_bits()}),
        Value::U8(x) => json!({"type": ty, "value": x}),
        Value::I8(x) => json!({"type": ty, "value": x}),
        Value::U16(x) => json!({"type": ty, "value": x}),
        Value::I16(x) => json!({"type": ty, "value": x}),
        Value::U32(x) => json!({"type": ty, "value": x}),
        Value::I32(x) => json!({"type": ty, "value": x}),
        Value::U64(x) => json!({"type": ty, "value": x}),
        Value::I64(x) => json!({"type": ty, "value": x}),
        Value::Bool(x) => json!({"type": ty, "value": x}),
        Value::String(x) => json!({"type": ty, "value": x}),
    }
}

fn tensor_json(g: &Gguf, t: &TensorInfo) -> Json {
    json!({
        "name": t.name(),
        "type": t.ggml_type().name(),
        "type_id": t.ggml_type().id(),
        "shape": t.dims(),
        "data_offset": t.range().start,
        "n_bytes": t.n_bytes(),
        "fnv1a64": fnv1a64(g.bytes(t)),
    })
}

/// Compare an opened model with the sidecar entries of its files.
fn check_against_gguf_py(g: &Gguf, exp: &Json) {
    let first = g.paths()[0].file_name().unwrap().to_str().unwrap().to_string();
    let meta: serde_json::Map<String, Json> = g.metadata().iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
    assert_eq!(Json::Object(meta), exp["files"][&first]["metadata"], "{first}: metadata");
    for (i, f) in g.files().iter().enumerate() {
        let name = f.path().file_name().unwrap().to_str().unwrap();
        let e = &exp["files"][name];
        assert!(e.is_object(), "{name} not in expected.json");
        assert_eq!(f.version(), e["version"].as_u64().unwrap() as u32, "{name}: version");
        assert_eq!(f.alignment(), e["alignment"].as_u64().unwrap(), "{name}: alignment");
        assert_eq!(f.data_offset(), e["data_offset"].as_u64().unwrap(), "{name}: data offset");
        assert_eq!(f.len() as u64, e["size"].as_u64().unwrap(), "{name}: size");
        let ours: Vec<Json> = g.tensors().filter(|t| t.file() == i).map(|t| tensor_json(g, t)).collect();
        let theirs: Vec<Json> = e["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.as_object_mut().unwrap().remove("sha256");
                t
            })
            .collect();
        assert_eq!(ours, theirs, "{name}: tensors");
    }
}

#[test]
fn every_fixture_reads_as_gguf_py_reads_it() {
    let exp = expected();
    let files: Vec<String> = exp["files"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(files.len(), 6, "{files:?}");
    let mut covered = std::collections::BTreeSet::new();
    for name in &files {
        let g = Gguf::open(&dir().join(name)).unwrap_or_else(|e| panic!("{e}"));
        check_against_gguf_py(&g, &exp);
        for p in g.paths() {
            covered.insert(p.file_name().unwrap().to_str().unwrap().to_string());
        }
    }
    assert_eq!(covered.into_iter().collect::<Vec<_>>(), files);
    // The fixtures cover what they claim to.
    let g = Gguf::open(&dir().join("all_types.gguf")).unwrap();
    let types: std::collections::BTreeSet<u32> = g.metadata().values().map(Value::type_id).collect();
    assert_eq!(types.len(), 13, "every value type: {types:?}");
    assert_eq!(g.files()[0].alignment(), 64);
    assert_eq!(Gguf::open(&dir().join("v2.gguf")).unwrap().files()[0].version(), 2);
}

#[test]
fn ggml_type_table_matches_gguf_py() {
    let exp = expected();
    let table = exp["ggml_types"].as_array().unwrap();
    for e in table {
        let id = e["id"].as_u64().unwrap() as u32;
        let t = GgmlType::from_id(id).unwrap_or_else(|| panic!("gguf-py has type {id} {}", e["name"]));
        assert_eq!(t.name(), e["name"].as_str().unwrap(), "{id}");
        assert_eq!(t.block_size(), e["block_size"].as_u64().unwrap(), "{t}: block size");
        assert_eq!(t.type_size(), e["type_size"].as_u64().unwrap(), "{t}: type size");
    }
    assert_eq!(GgmlType::ALL.len(), table.len(), "types gguf-py does not know");
}

#[test]
fn loader_api() {
    let g = Gguf::open(&dir().join("all_types.gguf")).unwrap();
    assert_eq!(g.architecture().unwrap(), "deepseek2");
    assert_eq!(g.get_u32("deepseek2.block_count").unwrap(), 3);
    assert_eq!(g.get_u64("deepseek2.block_count").unwrap(), 3);
    assert_eq!(g.get_f32("deepseek2.rope.freq_base").unwrap(), 10000.0);
    assert_eq!(g.get_f64("test.f64").unwrap(), std::f64::consts::E);
    assert_eq!(g.get_i64("test.i64").unwrap(), i64::MIN);
    assert!(g.get_bool("test.true").unwrap());
    assert_eq!(g.get_str_array("tokenizer.ggml.tokens").unwrap()[3], "Ġthe");
    assert_eq!(g.get_array("tokenizer.ggml.token_type").unwrap().as_i32s(), Some(&[1, 2, 3, 6, 1][..]));
    assert_eq!(g.get_array("tokenizer.ggml.scores").unwrap().as_f32s().unwrap()[2], 2.25);
    let nested = g.get_array("test.nested_ints").unwrap().as_arrays().unwrap();
    assert_eq!(nested[2], Array::I32(vec![-4, 5, 6]));
    assert_eq!(g.get("test.u64"), Some(&Value::U64(u64::MAX)));
    let e = g.get_str("deepseek2.block_count").unwrap_err().to_string();
    assert!(e.contains("all_types.gguf: metadata key deepseek2.block_count holds u32 3, expected a string"), "{e}");
    let e = g.get_u32("test.u64").unwrap_err().to_string();
    assert!(e.contains("test.u64 holds u64 18446744073709551615"), "{e}");
    let e = g.get_u64("llama.block_count").unwrap_err().to_string();
    assert!(e.contains("key llama.block_count is missing; this file's general.architecture is \"deepseek2\""), "{e}");

    let t = g.tensor("blk.0.ffn_down_exps.weight").unwrap();
    assert_eq!((t.dims(), t.ggml_type(), t.n_elements(), t.n_bytes()), (&[32, 8, 4][..], GgmlType::Q8_0, 1024, 1088));
    assert_eq!(g.bytes(t).len(), 1088);
    assert_eq!(g.tensors().len(), 11);
    assert!(g.tensor("nope").is_none());
    let e = g.require_tensor("blk.0.ffn_down_exps.weigth").unwrap_err().to_string();
    assert!(e.contains("not found (11 tensors present); similar: [\"blk.0.ffn_down_exps.weight\"]"), "{e}");
    // An F32 tensor's bytes are its values (little-endian, ggml order: ne0 contiguous).
    let t = g.tensor("test.ints").unwrap();
    let v: Vec<i32> = g.bytes(t).chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(v, (-3..6).collect::<Vec<_>>());
}

/// Every prefix of a valid file fails with a message, or (when only trailing padding is cut)
/// reads exactly as the whole file.
#[test]
fn truncation_at_every_byte() {
    for name in ["all_types.gguf", "v2.gguf", "no_tensors.gguf"] {
        let bytes = std::fs::read(dir().join(name)).unwrap();
        let full = Gguf::from_memory(name, bytes.clone()).unwrap();
        let want: Vec<TensorInfo> = full.tensors().cloned().collect();
        let need = want.iter().map(|t| t.range().end).max().unwrap_or(0);
        let mut ok = 0;
        for len in 0..bytes.len() {
            match Gguf::from_memory(name, bytes[..len].to_vec()) {
                Ok(g) => {
                    assert!(len >= need, "{name}: {len}-byte prefix accepted");
                    assert_eq!(g.tensors().cloned().collect::<Vec<_>>(), want, "{name}: {len}");
                    assert_eq!(g.metadata(), full.metadata());
                    ok += 1;
                }
                Err(e) => assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}"),
            }
        }
        assert!(ok < bytes.len() / 2, "{name}: {ok} prefixes accepted");
        eprintln!("{name}: {} prefixes, {ok} accepted (padding only)", bytes.len());
    }
}

/// Hand-built GGUF files that lie.
#[derive(Clone)]
struct Build {
    version: u32,
    n_kv: u64,
    kv: Vec<u8>,
    n_tensors: u64,
    infos: Vec<u8>,
    align: usize,
    data: Vec<u8>,
}

fn gstr(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

impl Build {
    fn new() -> Self {
        Build { version: 3, n_kv: 0, kv: vec![], n_tensors: 0, infos: vec![], align: 32, data: vec![] }
    }

    fn kv(mut self, key: &str, ty: u32, payload: &[u8]) -> Self {
        self.n_kv += 1;
        self.kv.extend(gstr(key.as_bytes()));
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend_from_slice(payload);
        self
    }

    fn kv_u32(self, key: &str, v: u32) -> Self {
        self.kv(key, 4, &v.to_le_bytes())
    }

    fn kv_u16(self, key: &str, v: u16) -> Self {
        self.kv(key, 2, &v.to_le_bytes())
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        self.n_tensors += 1;
        self.infos.extend(gstr(name.as_bytes()));
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self
    }

    fn data(mut self, n: usize) -> Self {
        self.data = (0..n).map(|i| i as u8).collect();
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend(self.version.to_le_bytes());
        v.extend(self.n_tensors.to_le_bytes());
        v.extend(self.n_kv.to_le_bytes());
        v.extend(&self.kv);
        v.extend(&self.infos);
        v.resize(v.len().div_ceil(self.align) * self.align, 0);
        v.extend(&self.data);
        v
    }

    fn open(&self) -> Result<Gguf, GgufError> {
        Gguf::from_memory("bad.gguf", self.bytes())
    }

    fn err(&self) -> String {
        match self.open() {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }
}

fn assert_err(b: &Build, wants: &[&str]) {
    let e = b.err();
    for w in wants {
        assert!(e.contains(w), "{e:?} lacks {w:?}");
    }
}

const F32: u32 = 0;
const Q4_K: u32 = 12;

#[test]
fn hand_built_valid_files() {
    // The infos end at byte 135: the data starts at 192 with alignment 64 (160 with 32).
    let mut b = Build::new().kv_u32("general.alignment", 64).tensor("a", &[16], F32, 0).tensor("b_tensor_name", &[16], F32, 64).data(128);
    b.align = 64;
    let g = b.open().unwrap();
    let (a, bt) = (g.tensor("a").unwrap(), g.tensor("b_tensor_name").unwrap());
    let d = g.files()[0].data_offset() as usize;
    assert_eq!(d, 192);
    assert_eq!((a.range(), bt.range()), (d..d + 64, d + 64..d + 128));
    assert_eq!(g.bytes(bt)[0], 64);
    // Zero-sized dims: no bytes, may share an offset; a 0-dim tensor is one value.
    let g = Build::new().tensor("z", &[64, 0], F32, 0).tensor("s", &[], F32, 0).tensor("z2", &[0], Q4_K, 32).data(32).open().unwrap();
    assert_eq!((g.tensor("z").unwrap().n_bytes(), g.tensor("s").unwrap().n_bytes(), g.tensor("z2").unwrap().n_bytes()), (0, 4, 0));
    // Empty arrays keep their element type; nested arrays of mixed element types.
    let mut nested = 9u32.to_le_bytes().to_vec();
    nested.extend(2u64.to_le_bytes());
    nested.extend(8u32.to_le_bytes());
    nested.extend(1u64.to_le_bytes());
    nested.extend(gstr(b"x"));
    nested.extend(6u32.to_le_bytes());
    nested.extend(0u64.to_le_bytes());
    let mut empty = 8u32.to_le_bytes().to_vec();
    empty.extend(0u64.to_le_bytes());
    let g = Build::new().kv("e", 9, &empty).kv("n", 9, &nested).open().unwrap();
    assert_eq!(g.get("e"), Some(&Value::Array(Array::String(vec![]))));
    assert_eq!(g.get("n"), Some(&Value::Array(Array::Array(vec![Array::String(vec!["x".into()]), Array::F32(vec![])]))));
    // Trailing bytes after the data are fine.
    assert!(Build::new().tensor("a", &[4], F32, 0).data(100).open().is_ok());
}

#[test]
fn header_lies() {
    let mut b = Build::new().bytes();
    b[0] = b'X';
    assert!(Gguf::from_memory("m.gguf", b).unwrap_err().to_string().contains("m.gguf: not a GGUF file: it starts with \"XGUF\""));
    assert!(Gguf::from_memory("m.gguf", b"GG".to_vec()).unwrap_err().to_string().contains("2 bytes, too short"));
    let mut b = Build::new();
    b.version = 1;
    assert_err(&b, &["version 1 is not supported", "reconvert"]);
    b.version = 4;
    assert_err(&b, &["version 4 is not supported"]);
    b.version = 0;
    assert_err(&b, &["version 0 is not supported"]);
    b.version = 3u32.swap_bytes();
    assert_err(&b, &["a big-endian GGUF file (version 3)"]);
    // A 10-byte file cannot hold its counts.
    let e = Gguf::from_memory("t.gguf", b"GGUF\x03\0\0\0\0\x10".to_vec()).unwrap_err().to_string();
    assert!(e.contains("the tensor count needs 8 bytes at byte 8 but the file ends at byte 10"), "{e}");
    // Huge counts fail on the count, before any allocation.
    let mut b = Build::new();
    b.n_tensors = 1 << 60;
    assert_err(&b, &["tensor count 1152921504606846976 at byte 24 needs at least 24 bytes each, but only 8 bytes are left"]);
    let mut b = Build::new();
    b.n_kv = u64::MAX;
    assert_err(&b, &["metadata count 18446744073709551615"]);
    let mut b = Build::new();
    b.n_kv = 1;
    b.kv = (1u64 << 62).to_le_bytes().to_vec();
    b.kv.extend([0; 20]);
    assert_err(&b, &["metadata entry 0 of 1: key at byte 24 claims 4611686018427387904 bytes, but only 32 bytes are left"]);
    let mut arr = 0u32.to_le_bytes().to_vec();
    arr.extend(u64::MAX.to_le_bytes());
    assert_err(&Build::new().kv("big", 9, &arr), &["metadata key big: array length 18446744073709551615"]);
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend(3u64.to_le_bytes());
    arr.extend(gstr(b"ok"));
    arr.extend(gstr(b"\xff"));
    assert_err(&Build::new().kv("toks", 9, &arr), &["metadata key toks: element 1 of the array at byte", "not UTF-8"]);
    assert_err(&Build::new().kv("deep", 9, &[9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0].repeat(20)), &["more than 8 deep"]);
    assert_err(&Build::new().kv("t", 13, &[0; 8]), &["metadata key t: unknown value type 13"]);
    assert_err(&Build::new().kv("b", 7, &[2]), &["metadata key b: bool value at byte", "is 2, not 0 or 1"]);
    assert_err(&Build::new().kv_u32("k", 1).kv_u32("k", 2), &["metadata key k: appears twice"]);
    let mut b = Build::new();
    b.n_kv = 1;
    b.kv = gstr(b"\xc3\x28");
    b.kv.extend([4, 0, 0, 0, 1, 0, 0, 0]);
    assert_err(&b, &["metadata entry 0 of 1: key at byte 24 is not UTF-8"]);
    for (a, why) in [(0u32, "u32 0"), (48, "u32 48")] {
        assert_err(&Build::new().kv_u32("general.alignment", a), &["general.alignment: holds", why, "power of two"]);
    }
    assert_err(&Build::new().kv("general.alignment", 5, &64i32.to_le_bytes()), &["holds i32 64; it must be a u32"]);
}

#[test]
fn tensor_table_lies() {
    let t = |dims: &[u64], ty: u32, off: u64, data: usize| Build::new().tensor("blk.3.ffn_down_exps.weight", dims, ty, off).data(data);
    let name = "bad.gguf: tensor blk.3.ffn_down_exps.weight: ";
    assert_err(&t(&[1, 1, 1, 1, 1], F32, 0, 32), &[name, "has 5 dimensions; ggml allows at most 4"]);
    assert_err(&t(&[32], 77, 0, 32), &[name, "unknown ggml type id 77"]);
    assert_err(&t(&[32], 4, 0, 32), &[name, "unknown ggml type id 4"]);
    assert_err(&t(&[100, 2], Q4_K, 0, 512), &[name, "ne0 = 100", "Q4_K's block size 256"]);
    assert_err(&t(&[1 << 40, 1 << 40], F32, 0, 32), &[name, "overflow"]);
    assert_err(&t(&[8], F32, 16, 64), &[name, "data offset 16 is not a multiple of the alignment 32"]);
    // 24 header + 8 + 26 name + 4 n_dims + 16 dims + 12 type and offset = 90 → data at 96.
    assert_err(&t(&[32, 4], F32, 0, 500), &[name, "data [96..608] lies outside the file (596 bytes); the file may be truncated"]);
    assert_err(&t(&[1], F32, u64::MAX - 31, 64), &[name, "data offset 18446744073709551584 (+ 4 bytes) lies outside the file"]);
    let b = Build::new().tensor("a", &[16], F32, 0).tensor("b", &[16], F32, 32).data(96);
    assert_err(&b, &["tensors a [", "and b [", "overlap"]);
    let b = Build::new().tensor("a", &[8], F32, 0).tensor("a", &[8], F32, 32).data(64);
    assert_err(&b, &["tensor a: appears twice"]);
    let b = Build::new().tensor("\u{1F600}\u{FFFF}", &[8], F32, 0).data(64);
    assert!(b.open().is_ok());
    let mut b = Build::new().tensor("x", &[8], F32, 0).data(64);
    b.infos[7] = 0x7f; // the name length's top byte
    assert_err(&b, &["tensor info 0 of 1: tensor name at byte 24 claims 9151314442816847873 bytes"]);
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("gguf-reader-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn copy_split_fixture(&self) {
        for i in 1..=3 {
            let n = format!("split-{i:05}-of-00003.gguf");
            std::fs::copy(dir().join(&n), self.0.join(&n)).unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn split_sets() {
    let exp = expected();
    let names: Vec<String> = (1..=3).map(|i| format!("split-{i:05}-of-00003.gguf")).collect();
    let mut all = Vec::new();
    for n in &names {
        let g = Gguf::open(&dir().join(n)).unwrap();
        assert_eq!(g.paths(), names.iter().map(|n| dir().join(n)).collect::<Vec<_>>());
        assert_eq!(g.get_u64("split.count").unwrap(), 3);
        assert_eq!(g.tensors().len(), 6);
        check_against_gguf_py(&g, &exp);
        all.push(g.tensors().cloned().collect::<Vec<_>>());
    }
    assert!(all.windows(2).all(|w| w[0] == w[1]));
    let e = Gguf::from_memory("s.gguf", std::fs::read(dir().join(&names[1])).unwrap()).unwrap_err().to_string();
    assert!(e.contains("one split of 3"), "{e}");
    let e = Gguf::open(&dir().join("split-00004-of-00003.gguf")).unwrap_err().to_string();
    assert!(e.contains("split-00004-of-00003.gguf"), "{e}");

    let s = Scratch::new("missing");
    s.copy_split_fixture();
    std::fs::remove_file(s.0.join(&names[1])).unwrap();
    for open in [&names[0], &names[2]] {
        let e = Gguf::open(&s.0.join(open)).unwrap_err().to_string();
        assert!(e.contains("split-00002-of-00003.gguf: not found") && e.contains("split set of 3 files"), "{e}");
    }
    std::fs::remove_file(s.0.join(&names[0])).unwrap();
    let e = Gguf::open(&s.0.join(&names[2])).unwrap_err().to_string();
    assert!(e.contains("split-00001-of-00003.gguf: not found"), "{e}");

    // A split whose metadata says it is split 1 of 3, under a plain name.
    let s = Scratch::new("renamed");
    std::fs::copy(dir().join(&names[0]), s.0.join("model.gguf")).unwrap();
    let e = Gguf::open(&s.0.join("model.gguf")).unwrap_err().to_string();
    assert!(e.contains("model.gguf: split.count is 3") && e.contains("NAME-00001-of-00003.gguf"), "{e}");
}

/// Write a hand-built split set `m-0000N-of-0000C.gguf`; `f(no)` builds split `no` (1-based).
fn write_set(s: &Scratch, count: u32, f: impl Fn(u32) -> Build) -> PathBuf {
    for no in 1..=count {
        std::fs::write(s.0.join(format!("m-{no:05}-of-{count:05}.gguf")), f(no).bytes()).unwrap();
    }
    s.0.join(format!("m-00001-of-{count:05}.gguf"))
}

fn split(no: u32, count: u16) -> Build {
    Build::new().kv_u16("split.no", no as u16 - 1).kv_u16("split.count", count).tensor(&format!("t{no}"), &[8], F32, 0).data(32)
}

#[test]
fn split_sets_that_disagree() {
    let s = Scratch::new("disagree");
    let first = write_set(&s, 3, |no| split(no, 3));
    let g = Gguf::open(&first).unwrap();
    assert_eq!(g.tensors().map(|t| (t.name().to_string(), t.file())).collect::<Vec<_>>(), [("t1".into(), 0), ("t2".into(), 1), ("t3".into(), 2)]);
    assert_eq!(g.bytes(g.tensor("t3").unwrap()), &(0..32).collect::<Vec<u8>>()[..]);

    write_set(&s, 3, |no| split(no, if no == 2 { 4 } else { 3 }));
    let e = Gguf::open(&first).unwrap_err().to_string();
    assert!(e.contains("m-00002-of-00003.gguf: split.count is 4, but the file name says split 2 of 3"), "{e}");

    write_set(&s, 3, |no| split(if no == 3 { 2 } else { no }, 3));
    let e = Gguf::open(&first).unwrap_err().to_string();
    assert!(e.contains("m-00003-of-00003.gguf: split.no is 1, but the file name says split 3 of 3 (split.no 2)"), "{e}");

    write_set(&s, 3, |no| if no == 2 { Build::new() } else { split(no, 3) });
    let e = Gguf::open(&first).unwrap_err().to_string();
    assert!(e.contains("m-00002-of-00003.gguf: has no split.count"), "{e}");

    write_set(&s, 3, |no| Build::new().kv_u16("split.no", no as u16 - 1).kv_u16("split.count", 3).tensor("same", &[8], F32, 0).data(32));
    let e = Gguf::open(&first).unwrap_err().to_string();
    assert!(e.contains("m-00002-of-00003.gguf: tensor same: also appears in") && e.contains("m-00001-of-00003.gguf"), "{e}");

    write_set(&s, 3, |no| if no == 1 { split(1, 3).kv("split.tensors.count", 5, &4i32.to_le_bytes()) } else { split(no, 3) });
    let e = Gguf::open(&first).unwrap_err().to_string();
    assert!(e.contains("split.tensors.count is 4, but the 3 splits hold 3 tensors"), "{e}");
    write_set(&s, 3, |no| if no == 1 { split(1, 3).kv("split.tensors.count", 5, &3i32.to_le_bytes()) } else { split(no, 3) });
    assert!(Gguf::open(&first).is_ok());

    let text_count = |no: u32| Build::new().kv_u16("split.no", no as u16 - 1).kv("split.count", 8, &gstr(b"2")).tensor(&format!("t{no}"), &[8], F32, 0).data(32);
    write_set(&s, 2, text_count);
    let e = Gguf::open(&s.0.join("m-00002-of-00002.gguf")).unwrap_err().to_string();
    assert!(e.contains("m-00001-of-00002.gguf: metadata key split.count holds string \"2\", expected an integer"), "{e}");

    // One file named as a set of one needs no split keys.
    let one = write_set(&s, 1, |_| Build::new().tensor("x", &[8], F32, 0).data(32));
    assert_eq!(Gguf::open(&one).unwrap().tensors().len(), 1);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap()
}

/// Whatever a mutated file holds, reading it returns, and what it returns is consistent.
fn read_mutated(bytes: Vec<u8>) {
    let len = bytes.len();
    if let Ok(g) = Gguf::from_memory("fuzz.gguf", bytes) {
        for t in g.tensors() {
            assert!(t.range().end <= len);
            assert_eq!(g.bytes(t).len(), t.n_bytes());
            assert_eq!(g.tensor(t.name()), Some(t));
        }
    }
}

/// GGUF encoding of a value's payload (after its type id): the writer side of the round trip.
fn encode(v: &Value) -> Vec<u8> {
    match v {
        Value::U8(x) => x.to_le_bytes().to_vec(),
        Value::I8(x) => x.to_le_bytes().to_vec(),
        Value::U16(x) => x.to_le_bytes().to_vec(),
        Value::I16(x) => x.to_le_bytes().to_vec(),
        Value::U32(x) => x.to_le_bytes().to_vec(),
        Value::I32(x) => x.to_le_bytes().to_vec(),
        Value::U64(x) => x.to_le_bytes().to_vec(),
        Value::I64(x) => x.to_le_bytes().to_vec(),
        Value::F32(x) => x.to_le_bytes().to_vec(),
        Value::F64(x) => x.to_le_bytes().to_vec(),
        Value::Bool(x) => vec![*x as u8],
        Value::String(x) => gstr(x.as_bytes()),
        Value::Array(a) => {
            let mut b = a.elem_type_id().to_le_bytes().to_vec();
            b.extend((a.len() as u64).to_le_bytes());
            for i in 0..a.len() {
                b.extend(encode(&a.get(i).unwrap()));
            }
            b
        }
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    use prop::collection::vec;
    prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        any::<f32>().prop_map(Value::F32),
        any::<f64>().prop_map(Value::F64),
        any::<bool>().prop_map(Value::Bool),
        "[a-zé✓ ]{0,8}".prop_map(Value::String),
        vec(any::<u32>(), 0..5).prop_map(|v| Value::Array(Array::U32(v))),
        vec(any::<f32>(), 0..5).prop_map(|v| Value::Array(Array::F32(v))),
        vec(any::<bool>(), 0..5).prop_map(|v| Value::Array(Array::Bool(v))),
        vec("[a-z]{0,4}", 0..5).prop_map(|v| Value::Array(Array::String(v))),
        vec(vec(any::<i16>(), 0..3).prop_map(Array::I16), 0..3).prop_map(|v| Value::Array(Array::Array(v))),
    ]
}

/// A file's bytes, its metadata and its tensors (name, dims, type).
type FileAndContents = (Vec<u8>, Vec<(String, Value)>, Vec<(String, Vec<u64>, GgmlType)>);

/// A valid file of random metadata and tensors of random types and shapes, with what it holds.
fn arb_file() -> impl Strategy<Value = FileAndContents> {
    use prop::collection::vec;
    let meta = vec(("[a-z]{1,3}\\.[a-z_]{1,6}", arb_value()), 0..6).prop_map(|kv| {
        let mut seen = std::collections::HashSet::new();
        kv.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect::<Vec<_>>()
    });
    let tensor = (0..GgmlType::ALL.len(), 1u64..3, vec(0u64..3, 0..4)).prop_map(|(t, blocks, rest)| {
        let t = GgmlType::ALL[t];
        let mut dims = vec![blocks * t.block_size()];
        dims.extend(rest);
        (dims, t)
    });
    (meta, vec(tensor, 0..4), prop_oneof![Just(32u32), Just(64), Just(1), Just(256)]).prop_map(|(meta, tensors, align)| {
        let mut b = Build::new();
        if align != 32 {
            b = b.kv_u32("general.alignment", align);
        }
        b.align = align as usize;
        for (k, v) in &meta {
            b = b.kv(k, v.type_id(), &encode(v));
        }
        let mut off = 0u64;
        let mut infos = Vec::new();
        for (i, (dims, t)) in tensors.into_iter().enumerate() {
            let name = format!("blk.{i}.w");
            b = b.tensor(&name, &dims, t.id(), off);
            let n = dims.iter().skip(1).product::<u64>() * (dims[0] / t.block_size()) * t.type_size();
            off = (off + n).div_ceil(align as u64) * align as u64;
            infos.push((name, dims, t));
        }
        let b = b.data(off as usize);
        let mut meta = meta;
        if align != 32 {
            meta.push(("general.alignment".into(), Value::U32(align)));
        }
        (b.bytes(), meta, infos)
    })
}

proptest! {
    #[test]
    fn mutated_fixture_never_panics(
        edits in prop::collection::vec((0usize..2200, any::<u8>()), 1..6),
        far in prop::collection::vec((0usize..8000, any::<u8>()), 0..3),
        cut in prop::option::of(0usize..8000),
    ) {
        // Most edits hit the header (the first ~2100 bytes of all_types.gguf), where they matter.
        let mut b = fixture("all_types.gguf");
        for (i, x) in edits.into_iter().chain(far) {
            if i < b.len() {
                b[i] = x;
            }
        }
        if let Some(c) = cut {
            b.truncate(c);
        }
        read_mutated(b);
    }

    #[test]
    fn mutated_length_fields_never_panic(
        at in 0usize..2100,
        v in prop_oneof![any::<u64>(), 0u64..64, Just(u64::MAX), (0u32..64).prop_map(|s| 1u64 << s)],
    ) {
        // Overwrite 8 bytes anywhere in the header with a count-like number.
        let mut b = fixture("all_types.gguf");
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        read_mutated(b);
    }

    #[test]
    fn random_bodies_never_panic(
        // Plausible pieces (small lengths and counts, valid type ids, short names), so the
        // parser gets deep into metadata and tensor infos before the bytes run out.
        pieces in prop::collection::vec(prop_oneof![
            (0u64..48).prop_map(|v| v.to_le_bytes().to_vec()),
            (0u32..14).prop_map(|v| v.to_le_bytes().to_vec()),
            (0u32..42).prop_map(|v| v.to_le_bytes().to_vec()),
            "[a-z.]{0,6}".prop_map(String::into_bytes),
            any::<u8>().prop_map(|b| vec![b]),
        ], 0..64),
        n_t in 0u64..4,
        n_kv in 0u64..4,
    ) {
        let mut b = b"GGUF\x03\0\0\0".to_vec();
        b.extend(n_t.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b.extend(pieces.concat());
        read_mutated(b);
    }

    #[test]
    fn random_files_round_trip((bytes, meta, tensors) in arb_file()) {
        let g = Gguf::from_memory("rt.gguf", bytes).unwrap_or_else(|e| panic!("{e}"));
        let want: BTreeMap<String, Json> = meta.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
        let got: BTreeMap<String, Json> = g.metadata().iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
        prop_assert_eq!(got, want);
        let got: Vec<_> = g.tensors().map(|t| (t.name().to_string(), t.dims().to_vec(), t.ggml_type())).collect();
        prop_assert_eq!(got, tensors);
    }

    #[test]
    fn random_files_cut_and_mutated_never_panic(
        (bytes, _, _) in arb_file(),
        cut in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut b = bytes;
        for (i, x) in edits {
            let n = b.len();
            if n > 0 {
                b[i.index(n)] = x;
            }
        }
        let n = b.len();
        b.truncate(cut.index(n + 1));
        read_mutated(b);
    }
}
