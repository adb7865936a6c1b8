//! GGUF files (llama.cpp's format), versions 2 and 3, little-endian, memory-mapped: one file
//! or a split set named as `gguf-split` writes it (`NAME-00001-of-00003.gguf`). Validates the
//! whole header (every count and length against the bytes left, tensor sizes from the ggml
//! type table, alignment, overlaps, duplicates) and hands out zero-copy byte slices. Knows
//! nothing about layers or how blocks decode.
//!
//! Layout (all little-endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata
//! count, the metadata (key string, u32 value type, value), the tensor infos (name string,
//! u32 n_dims, n_dims × u64 dims, u32 ggml type, u64 offset), padding to `general.alignment`
//! (default 32), then the tensor data; a tensor's offset counts from the start of the data.
//! Strings are a u64 byte length then UTF-8 bytes. Version 1 used u32 counts and lengths and
//! is refused; version 3 only added big-endian files, which are refused too.
//!
//! Choices where the format leaves room:
//! - dims may be 0 (llama.cpp allows it): the tensor has no bytes and overlaps nothing, but
//!   its offset must still be aligned and inside the file. `n_dims` may be 0 (a scalar, one
//!   element); at most 4 (GGML_MAX_DIMS).
//! - Tensor offsets must be multiples of the alignment and the tensors must not overlap;
//!   unlike llama.cpp they need not be packed in order.
//! - Strings must be UTF-8 and bools 0 or 1: a file that breaks either is corrupt, and
//!   guessing would hand the tokenizer wrong text.
//! - Duplicate metadata keys and duplicate tensor names (within a file or across splits)
//!   are refused.

pub mod deepseek2;
mod hf;
pub mod qwen3;
mod types;
mod value;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::checkpoint::{Checkpoint, CheckpointError};

pub use types::GgmlType;
pub use value::{Array, Value, MAX_ARRAY_DEPTH};
use value::Cursor;

/// The llama.cpp architectures this crate maps to transformers' layout: which module turns a
/// GGUF into a `config.json` and a [`Checkpoint`] of views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `deepseek2`: [`deepseek2`].
    Deepseek2,
    /// `qwen3`: [`qwen3`].
    Qwen3,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Deepseek2, Arch::Qwen3];

    /// The file's `general.architecture`, or an error listing the ones this crate maps.
    pub fn of(g: &Gguf) -> Result<Arch, GgufError> {
        let found = g.architecture()?;
        Arch::ALL.into_iter().find(|a| a.name() == found).ok_or_else(|| hf::unsupported(g, found))
    }

    /// llama.cpp's name (`general.architecture`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Deepseek2 => deepseek2::ARCH,
            Arch::Qwen3 => qwen3::ARCH,
        }
    }

    /// The models llama.cpp writes under this name that the engine runs.
    pub fn models(self) -> &'static str {
        match self {
            Arch::Deepseek2 => "DeepSeek-V2/V3/R1, Moonlight",
            Arch::Qwen3 => "Qwen3, DeepSeek-R1-0528-Qwen3-8B",
        }
    }

    /// transformers' `config.json` from the metadata ([`deepseek2::hf_config`], [`qwen3::hf_config`]).
    pub fn hf_config(self, g: &Gguf) -> Result<serde_json::Value, GgufError> {
        match self {
            Arch::Deepseek2 => deepseek2::hf_config(g),
            Arch::Qwen3 => qwen3::hf_config(g),
        }
    }

    /// The tensors under transformers' names ([`deepseek2::checkpoint`], [`qwen3::checkpoint`]).
    pub fn checkpoint(self, g: &Gguf) -> Result<Checkpoint, CheckpointError> {
        match self {
            Arch::Deepseek2 => deepseek2::checkpoint(g),
            Arch::Qwen3 => qwen3::checkpoint(g),
        }
    }
}

/// `general.alignment` when the file does not set it.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML_MAX_DIMS.
pub const MAX_DIMS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// The fixed header, a metadata key that could not be read, or the file as a whole.
    #[error("{path}: {msg}")]
    Header { path: PathBuf, msg: String },
    #[error("{path}: metadata key {key}: {msg}")]
    Metadata { path: PathBuf, key: String, msg: String },
    #[error("{path}: tensor {tensor}: {msg}")]
    Tensor { path: PathBuf, tensor: String, msg: String },
    /// The split files disagree with each other or with their names.
    #[error("{path}: {msg}")]
    Split { path: PathBuf, msg: String },
    #[error("{missing}: not found, but {first} is the first of a split set of {count} files; the download is incomplete")]
    MissingSplit { first: PathBuf, missing: PathBuf, count: u32 },
    #[error("{path}: metadata key {key} is missing{hint}")]
    MissingKey { path: PathBuf, key: String, hint: String },
    #[error("{path}: metadata key {key} holds {found}, expected {expected}")]
    KeyType { path: PathBuf, key: String, expected: &'static str, found: String },
    #[error("{path}: tensor {tensor} not found ({n} tensors present){hint}")]
    MissingTensor { path: PathBuf, tensor: String, n: usize, hint: String },
}

/// Where one tensor lives. Built only by the reader, so its range is always inside its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    file: usize,
    start: usize,
    end: usize,
}

impl TensorInfo {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Dimensions in ggml order: `dims[0]` (ne0) is the contiguous row length, so a
    /// PyTorch/numpy shape `[rows, cols]` is stored as `[cols, rows]`, and stacked experts
    /// `[n_expert, rows, cols]` as `[cols, rows, n_expert]`.
    pub fn dims(&self) -> &[u64] {
        &self.dims
    }

    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Index of the file that holds the tensor, into [`Gguf::paths`] and [`Gguf::files`].
    pub fn file(&self) -> usize {
        self.file
    }

    /// Absolute byte range in that file.
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    pub fn n_bytes(&self) -> usize {
        self.end - self.start
    }

    /// Number of values (the product of the dims; checked against overflow when read).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Bytes of one file: memory-mapped from disk, or held in memory (tests, fuzzing).
enum Bytes {
    Mmap(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// One file of an opened model.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    alignment: u64,
    data_offset: u64,
}

impl GgufFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 2 or 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// This file's `general.alignment` (or 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Where the tensor data section starts: the end of the tensor infos, aligned up.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// File size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// An opened GGUF model: metadata from its (first) file, tensors from all its files.
pub struct Gguf {
    files: Vec<GgufFile>,
    metadata: BTreeMap<String, Value>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for Gguf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gguf").field("paths", &self.paths()).field("metadata", &self.metadata.len()).field("tensors", &self.tensors.len()).finish()
    }
}

/// One file's parsed header; tensors have `file` 0 until merged.
struct Parsed {
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: BTreeMap<String, Value>,
    tensors: Vec<TensorInfo>,
}

impl Gguf {
    /// Open a GGUF file. A file named like `NAME-00002-of-00003.gguf` opens the whole split
    /// set `NAME-0000{1,2,3}-of-00003.gguf` beside it, whichever split is named; a file with
    /// `split.count` > 1 in its metadata must carry that naming so the others can be found.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        if let Some(split) = SplitName::parse(path) {
            // The named file itself first, so a typo is reported as such.
            std::fs::metadata(path).map_err(|err| GgufError::Io { path: path.to_path_buf(), err })?;
            return Self::open_split(&split);
        }
        let bytes = map(path)?;
        let parsed = parse(&bytes, path)?;
        if let Some(count) = split_key(&parsed.metadata, path, "split.count")?.filter(|&c| c > 1) {
            return Err(GgufError::Split {
                path: path.to_path_buf(),
                msg: format!(
                    "split.count is {count}, but the file name does not follow gguf-split's NAME-00001-of-{count:05}.gguf, so the other splits cannot be found; restore the names gguf-split gave them"
                ),
            });
        }
        Ok(Self::single(path, bytes, parsed))
    }

    /// A GGUF file held in memory; `name` labels errors. Refuses a file that says it is one
    /// split of several (its other tensors would be silently missing).
    pub fn from_memory(name: &str, bytes: Vec<u8>) -> Result<Self, GgufError> {
        let path = PathBuf::from(name);
        let parsed = parse(&bytes, &path)?;
        if let Some(count) = split_key(&parsed.metadata, &path, "split.count")?.filter(|&c| c > 1) {
            return Err(GgufError::Split { path, msg: format!("is one split of {count}; open the set from disk with Gguf::open") });
        }
        Ok(Self::single(&path, Bytes::Owned(bytes), parsed))
    }

    fn single(path: &Path, bytes: Bytes, p: Parsed) -> Self {
        let by_name = p.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let file = GgufFile { path: path.to_path_buf(), bytes, version: p.version, alignment: p.alignment, data_offset: p.data_offset };
        Gguf { files: vec![file], metadata: p.metadata, tensors: p.tensors, by_name }
    }

    fn open_split(split: &SplitName) -> Result<Self, GgufError> {
        let count = split.count;
        let first = split.path(1);
        // Check every split exists before mapping any, so a partial download names the
        // missing file rather than failing halfway.
        for no in 1..=count {
            let p = split.path(no);
            if !p.is_file() {
                return Err(GgufError::MissingSplit { first, missing: p, count });
            }
        }
        let mut g = Gguf { files: Vec::new(), metadata: BTreeMap::new(), tensors: Vec::new(), by_name: HashMap::new() };
        for no in 1..=count {
            let path = split.path(no);
            let bytes = map(&path)?;
            let parsed = parse(&bytes, &path)?;
            let serr = |msg: String| GgufError::Split { path: path.clone(), msg };
            // gguf-split numbers split.no from 0 and the file names from 1.
            for (key, want) in [("split.count", count as u64), ("split.no", no as u64 - 1)] {
                match split_key(&parsed.metadata, &path, key)? {
                    Some(v) if v == want => {}
                    Some(v) => {
                        return Err(serr(format!("{key} is {v}, but the file name says split {no} of {count} ({key} {want})")));
                    }
                    None if count == 1 => {}
                    None => return Err(serr(format!("has no {key}, but the file name says split {no} of {count}"))),
                }
            }
            let idx = g.files.len();
            for mut t in parsed.tensors {
                t.file = idx;
                if let Some(&j) = g.by_name.get(&t.name) {
                    let other = g.tensors.get(j).and_then(|o| g.files.get(o.file)).map_or(path.display(), |f| f.path.display()).to_string();
                    return Err(GgufError::Tensor { path, tensor: t.name, msg: format!("also appears in {other}") });
                }
                g.by_name.insert(t.name.clone(), g.tensors.len());
                g.tensors.push(t);
            }
            if no == 1 {
                g.metadata = parsed.metadata;
            }
            g.files.push(GgufFile { path, bytes, version: parsed.version, alignment: parsed.alignment, data_offset: parsed.data_offset });
        }
        if let Some(want) = split_key(&g.metadata, &first, "split.tensors.count")? {
            if want != g.tensors.len() as u64 {
                return Err(GgufError::Split {
                    path: first,
                    msg: format!("split.tensors.count is {want}, but the {count} splits hold {} tensors", g.tensors.len()),
                });
            }
        }
        Ok(g)
    }

    /// All metadata of the (first) file. Keys are as stored (`deepseek2.block_count`,
    /// `tokenizer.ggml.tokens`, ...).
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A value that must be present.
    pub fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.metadata.get(key).ok_or_else(|| {
            // A loader asking for `deepseek2.*` in a file of another architecture: say so.
            let arch = self.metadata.get("general.architecture").and_then(Value::as_str);
            let hint = match (arch, key.split_once('.')) {
                (Some(a), Some((prefix, _))) if prefix != a && !["general", "tokenizer", "split"].contains(&prefix) => {
                    format!("; this file's general.architecture is {a:?}")
                }
                _ => String::new(),
            };
            GgufError::MissingKey { path: self.first_path(), key: key.into(), hint }
        })
    }

    fn typed<'a, T>(&'a self, key: &str, expected: &'static str, f: impl FnOnce(&'a Value) -> Option<T>) -> Result<T, GgufError> {
        let v = self.require(key)?;
        f(v).ok_or_else(|| GgufError::KeyType { path: self.first_path(), key: key.into(), expected, found: v.describe() })
    }

    /// Any integer type holding a value ≥ 0.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.typed(key, "an integer ≥ 0", Value::as_u64)
    }

    /// Any integer type holding a value that fits u32.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.typed(key, "an integer in 0..=4294967295", Value::as_u32)
    }

    /// Any integer type holding a value that fits i64.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        self.typed(key, "an integer", Value::as_i64)
    }

    /// An f32 (or an f64, rounded).
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        self.typed(key, "a float", Value::as_f32)
    }

    /// An f64 or an f32.
    pub fn get_f64(&self, key: &str) -> Result<f64, GgufError> {
        self.typed(key, "a float", Value::as_f64)
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        self.typed(key, "a bool", Value::as_bool)
    }

    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.typed(key, "a string", Value::as_str)
    }

    pub fn get_array(&self, key: &str) -> Result<&Array, GgufError> {
        self.typed(key, "an array", Value::as_array)
    }

    /// An array of strings (`tokenizer.ggml.tokens`).
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        self.typed(key, "an array of strings", |v| v.as_array().and_then(Array::as_strs))
    }

    /// `general.architecture` (`deepseek2`, `llama`, ...): the prefix of the model's keys.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get_str("general.architecture")
    }

    /// Tensors in file order (split 1's first).
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = &TensorInfo> {
        self.tensors.iter()
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor that must be present; the error names near misses.
    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor(name).ok_or_else(|| {
            let prefix = name.rsplit_once('.').map(|p| p.0).unwrap_or(name);
            let near: Vec<&str> = self.tensors.iter().map(|t| t.name.as_str()).filter(|k| k.starts_with(prefix)).take(3).collect();
            GgufError::MissingTensor {
                path: self.first_path(),
                tensor: name.into(),
                n: self.tensors.len(),
                hint: if near.is_empty() { String::new() } else { format!("; similar: {near:?}") },
            }
        })
    }

    /// The tensor's bytes, straight from the map.
    ///
    /// # Panics
    /// If `t` came from another `Gguf` and does not fit this one's files.
    pub fn bytes(&self, t: &TensorInfo) -> &[u8] {
        &self.files[t.file].bytes[t.start..t.end]
    }

    /// The files, in split order (one for an unsplit model).
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    pub fn files(&self) -> &[GgufFile] {
        &self.files
    }

    fn first_path(&self) -> PathBuf {
        self.files.first().map(|f| f.path.clone()).unwrap_or_default()
    }
}

fn map(path: &Path) -> Result<Bytes, GgufError> {
    let io = |err| GgufError::Io { path: path.to_path_buf(), err };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the file is opened read-only; a concurrent truncation by another process
    // could fault, which is the documented risk of every mmap-based loader.
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    Ok(Bytes::Mmap(map))
}

/// An integer `split.*` key, if present.
fn split_key(meta: &BTreeMap<String, Value>, path: &Path, key: &str) -> Result<Option<u64>, GgufError> {
    match meta.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| GgufError::KeyType {
            path: path.to_path_buf(),
            key: key.into(),
            expected: "an integer ≥ 0",
            found: v.describe(),
        }),
    }
}

/// `PREFIX-NNNNN-of-MMMMM.gguf`, llama.cpp's `%s-%05d-of-%05d.gguf`.
struct SplitName {
    dir: PathBuf,
    prefix: String,
    count: u32,
}

impl SplitName {
    fn parse(path: &Path) -> Option<SplitName> {
        let name = path.file_name()?.to_str()?;
        let (rest, count) = name.strip_suffix(".gguf")?.rsplit_once("-of-")?;
        let (prefix, no) = rest.rsplit_once('-')?;
        let num = |s: &str| if s.len() >= 5 && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u32>().ok() } else { None };
        let (no, count) = (num(no)?, num(count)?);
        if prefix.is_empty() || no == 0 || no > count {
            return None;
        }
        Some(SplitName { dir: path.parent().unwrap_or(Path::new("")).to_path_buf(), prefix: prefix.into(), count })
    }

    fn path(&self, no: u32) -> PathBuf {
        self.dir.join(format!("{}-{no:05}-of-{:05}.gguf", self.prefix, self.count))
    }
}

/// Parse and validate one file's header and tensor table.
fn parse(data: &[u8], path: &Path) -> Result<Parsed, GgufError> {
    let herr = |msg: String| GgufError::Header { path: path.to_path_buf(), msg };
    let mut c = Cursor::new(data);
    let magic = c.take(4, "the magic").map_err(|_| herr(format!("file is {} bytes, too short to be GGUF", data.len())))?;
    if magic != b"GGUF" {
        return Err(herr(format!("not a GGUF file: it starts with {:?}, not \"GGUF\"", String::from_utf8_lossy(magic))));
    }
    let version = c.u32("the version").map_err(herr)?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(herr(
                "GGUF version 1 is not supported (it used 32-bit counts and lengths); reconvert the model with a current llama.cpp (this reader reads versions 2 and 3)".into(),
            ))
        }
        v if v & 0xFFFF == 0 && (1..=3).contains(&v.swap_bytes()) => {
            return Err(herr(format!("a big-endian GGUF file (version {}); only little-endian files are supported", v.swap_bytes())))
        }
        v => return Err(herr(format!("GGUF version {v} is not supported (this reader reads versions 2 and 3)"))),
    }
    let n_tensors = c.u64("the tensor count").map_err(herr)?;
    let n_kv = c.u64("the metadata count").map_err(herr)?;
    // Smallest metadata entry: empty key (8), type (4), a u8 (1). Smallest tensor info:
    // empty name (8), n_dims (4), type (4), offset (8).
    let n_kv = c.count(n_kv, 13, "metadata count").map_err(herr)?;
    let n_tensors = c.count(n_tensors, 24, "tensor count").map_err(herr)?;

    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c.string("key").map_err(|e| herr(format!("metadata entry {i} of {n_kv}: {e}")))?;
        let merr = |msg: String| GgufError::Metadata { path: path.to_path_buf(), key: key.clone(), msg };
        let ty = c.u32("value type").map_err(merr)?;
        let v = c.value(ty).map_err(merr)?;
        if metadata.contains_key(&key) {
            return Err(merr("appears twice in the metadata".into()));
        }
        metadata.insert(key, v);
    }

    let mut tensors: Vec<TensorInfo> = Vec::new();
    // (offset in the data section, byte size) per tensor, placed once the data start is known.
    let mut spans: Vec<(u64, u64)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for i in 0..n_tensors {
        let name = c.string("tensor name").map_err(|e| herr(format!("tensor info {i} of {n_tensors}: {e}")))?;
        let terr = |msg: String| GgufError::Tensor { path: path.to_path_buf(), tensor: name.clone(), msg };
        let n_dims = c.u32("n_dims").map_err(terr)?;
        if n_dims > MAX_DIMS {
            return Err(terr(format!("has {n_dims} dimensions; ggml allows at most {MAX_DIMS}")));
        }
        let dims = (0..n_dims).map(|_| c.u64("a dimension")).collect::<Result<Vec<u64>, _>>().map_err(terr)?;
        let type_id = c.u32("ggml type").map_err(terr)?;
        let offset = c.u64("data offset").map_err(terr)?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            let max = GgmlType::ALL.iter().map(|t| t.id()).max().unwrap_or(0);
            terr(format!("unknown ggml type id {type_id} (not one of the {} types this reader knows, ids 0..={max}); a newer llama.cpp may have written it", GgmlType::ALL.len()))
        })?;
        let n_bytes = tensor_bytes(&dims, ggml_type).map_err(terr)?;
        if !seen.insert(name.clone()) {
            return Err(terr("appears twice in the tensor table".into()));
        }
        spans.push((offset, n_bytes));
        tensors.push(TensorInfo { name, dims, ggml_type, file: 0, start: 0, end: 0 });
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(v) => {
            return Err(GgufError::Metadata {
                path: path.to_path_buf(),
                key: "general.alignment".into(),
                msg: format!("holds {}; it must be a u32 power of two", v.describe()),
            })
        }
    };
    // The cursor is inside the file, so this cannot overflow (alignment ≤ 2^31).
    let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
    let len = data.len() as u64;
    for (t, &(offset, n_bytes)) in tensors.iter_mut().zip(&spans) {
        let terr = |msg: String| GgufError::Tensor { path: path.to_path_buf(), tensor: t.name.clone(), msg };
        if !offset.is_multiple_of(alignment) {
            return Err(terr(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
        }
        let start = data_offset.checked_add(offset);
        match start.and_then(|s| Some((s, s.checked_add(n_bytes)?))) {
            Some((s, e)) if e <= len => {
                t.start = s as usize;
                t.end = e as usize;
            }
            Some((s, e)) => {
                return Err(terr(format!("data [{s}..{e}] lies outside the file ({len} bytes); the file may be truncated")));
            }
            None => {
                return Err(terr(format!("data offset {offset} (+ {n_bytes} bytes) lies outside the file ({len} bytes) and any file")));
            }
        }
    }
    let mut placed: Vec<&TensorInfo> = tensors.iter().filter(|t| t.start < t.end).collect();
    placed.sort_by_key(|t| (t.start, t.end));
    for w in placed.windows(2) {
        if w[1].start < w[0].end {
            return Err(herr(format!(
                "tensors {} [{}..{}] and {} [{}..{}] overlap in the data section",
                w[0].name, w[0].start, w[0].end, w[1].name, w[1].start, w[1].end
            )));
        }
    }
    Ok(Parsed { version, alignment, data_offset, metadata, tensors })
}

/// `(ne0 / block_size) * type_size * ne1 * ne2 * ne3`, checked; the element count must also
/// fit ggml's int64 `ne`, and the size a `usize` (it becomes a slice range).
fn tensor_bytes(dims: &[u64], t: GgmlType) -> Result<u64, String> {
    let ne0 = dims.first().copied().unwrap_or(1);
    let row = t.row_bytes(ne0).ok_or_else(|| {
        format!("row length ne0 = {ne0} (dims {dims:?}) is not a multiple of {t}'s block size {}", t.block_size())
    })?;
    let overflow = || format!("dims {dims:?} of {t} overflow");
    let numel = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(overflow)?;
    if numel > i64::MAX as u64 {
        return Err(overflow());
    }
    let bytes = dims.iter().skip(1).try_fold(row, |a, &d| a.checked_mul(d)).ok_or_else(overflow)?;
    // Every range must be indexable on this platform.
    usize::try_from(bytes).map_err(|_| overflow())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        let s = SplitName::parse(Path::new("/m/DeepSeek-R1-Q4_K_M-00002-of-00009.gguf")).unwrap();
        assert_eq!((s.prefix.as_str(), s.count), ("DeepSeek-R1-Q4_K_M", 9));
        assert_eq!(s.path(1), Path::new("/m/DeepSeek-R1-Q4_K_M-00001-of-00009.gguf"));
        let s = SplitName::parse(Path::new("x-123456-of-123456.gguf")).unwrap();
        assert_eq!(s.path(7), Path::new("x-00007-of-123456.gguf"));
        for bad in ["m.gguf", "m-0001-of-0003.gguf", "m-00004-of-00003.gguf", "m-00000-of-00003.gguf", "-00001-of-00002.gguf", "m-00001-of-00002.bin", "m-0000a-of-00002.gguf"] {
            assert!(SplitName::parse(Path::new(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn tensor_sizes() {
        assert_eq!(tensor_bytes(&[256, 2], GgmlType::Q4_K), Ok(288));
        assert_eq!(tensor_bytes(&[32, 8, 4], GgmlType::Q8_0), Ok(1088));
        assert_eq!(tensor_bytes(&[], GgmlType::F32), Ok(4));
        assert_eq!(tensor_bytes(&[64, 0, 3], GgmlType::F16), Ok(0));
        assert!(tensor_bytes(&[100], GgmlType::Q4_K).unwrap_err().contains("block size 256"));
        assert!(tensor_bytes(&[1 << 32, 1 << 32], GgmlType::I8).unwrap_err().contains("overflow"));
        assert!(tensor_bytes(&[1 << 62, 2], GgmlType::I8).unwrap_err().contains("overflow"));
    }
}
