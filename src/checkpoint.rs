//! Safetensors checkpoints, single file or sharded through `model.safetensors.index.json`,
//! memory-mapped. Validates every header (offsets inside the data, no overlaps, sizes that
//! match dtype × shape) and hands out byte slices. Knows nothing about layers.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::sync::Arc;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::format::Format;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {msg}")]
    Header { path: PathBuf, msg: String },
    #[error("{path}: tensor {tensor}: {msg}")]
    Tensor { path: PathBuf, tensor: String, msg: String },
    #[error("{dir}: no safetensors weights found (expected model.safetensors or model.safetensors.index.json)")]
    NoWeights { dir: PathBuf },
    #[error("{index}: names shard {shard} which does not exist in {dir}; the download is incomplete")]
    MissingShard { index: PathBuf, shard: String, dir: PathBuf },
    #[error("tensor {tensor} not found in the checkpoint at {dir} ({n} tensors present){hint}")]
    Missing { tensor: String, dir: PathBuf, n: usize, hint: String },
}

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub dtype: Format,
    pub shape: Vec<usize>,
    file: usize,
    /// absolute byte range in the file
    start: usize,
    end: usize,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Bytes of one safetensors file: memory-mapped from disk, or held in memory (an embedded
/// model, a synthetic one built for benchmarks).
pub enum Storage {
    Mmap(Mmap),
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Storage {
    /// Memory-map a file read-only.
    pub fn map(path: &Path) -> Result<Self, CheckpointError> {
        let io = |err| CheckpointError::Io { path: path.to_path_buf(), err };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the file is opened read-only; a concurrent truncation by another process
        // could fault, which is the documented risk of every mmap-based loader.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Ok(Storage::Mmap(map))
    }
}

/// A byte range of a checkpoint file, shared with the checkpoint ([`Checkpoint::shared_bytes`]).
#[derive(Clone)]
pub struct HostBytes {
    storage: Arc<Storage>,
    range: std::ops::Range<usize>,
}

impl HostBytes {
    /// The sub-range `range` (relative to this one).
    pub fn slice(&self, range: std::ops::Range<usize>) -> HostBytes {
        assert!(range.end <= self.range.len(), "host bytes {range:?} outside {} bytes", self.range.len());
        HostBytes { storage: self.storage.clone(), range: self.range.start + range.start..self.range.start + range.end }
    }
}

impl std::ops::Deref for HostBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.storage[self.range.clone()]
    }
}

impl std::ops::Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Static(s) => s,
            Storage::Owned(v) => v,
        }
    }
}

pub struct Checkpoint {
    pub dir: PathBuf,
    /// where the config the shapes are checked against comes from (for messages)
    config_source: &'static str,
    files: Vec<(PathBuf, Arc<Storage>)>,
    tensors: BTreeMap<String, TensorInfo>,
}

#[derive(serde::Deserialize)]
struct RawTensor {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

#[derive(serde::Deserialize)]
struct RawIndex {
    weight_map: HashMap<String, String>,
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let index = dir.join("model.safetensors.index.json");
        let mut shards: Vec<String> = if index.exists() {
            let text = std::fs::read_to_string(&index).map_err(|err| CheckpointError::Io { path: index.clone(), err })?;
            let raw: RawIndex = serde_json::from_str(&text)
                .map_err(|e| CheckpointError::Header { path: index.clone(), msg: format!("invalid index JSON: {e}") })?;
            let mut s: Vec<String> = raw.weight_map.into_values().collect();
            s.sort();
            s.dedup();
            for shard in &s {
                if shard.contains('/') || shard.contains("..") || !dir.join(shard).is_file() {
                    return Err(CheckpointError::MissingShard { index, shard: shard.clone(), dir: dir.to_path_buf() });
                }
            }
            s
        } else if dir.join("model.safetensors").is_file() {
            vec!["model.safetensors".into()]
        } else {
            return Err(CheckpointError::NoWeights { dir: dir.to_path_buf() });
        };
        shards.sort();
        let mut ck = Checkpoint { dir: dir.to_path_buf(), config_source: "config.json", files: Vec::new(), tensors: BTreeMap::new() };
        for shard in shards {
            ck.add_file(&dir.join(shard))?;
        }
        Ok(ck)
    }

    /// A checkpoint of tensor views into already validated files (a GGUF file's tensors under
    /// transformers' names: see `gguf::deepseek2`). Each view is (name, format, shape, file
    /// index, byte range); the bytes must hold exactly format × shape, which is checked.
    pub fn from_views(dir: &Path, files: Vec<(PathBuf, Storage)>, views: Vec<(String, Format, Vec<usize>, usize, std::ops::Range<usize>)>) -> Result<Self, CheckpointError> {
        let mut tensors = BTreeMap::new();
        for (name, dtype, shape, file, range) in views {
            let path = files.get(file).map_or_else(|| dir.to_path_buf(), |f| f.0.clone());
            let terr = |msg: String| CheckpointError::Tensor { path: path.clone(), tensor: name.clone(), msg };
            let len = files.get(file).map_or(0, |f| f.1.len());
            let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).and_then(|n| dtype.bytes_for(n));
            if range.end > len || range.start > range.end || Some(range.len()) != want {
                return Err(terr(format!("bytes {range:?} of a {len}-byte file do not hold {} × {shape:?}", dtype.name())));
            }
            if tensors.insert(name.clone(), TensorInfo { dtype, shape, file, start: range.start, end: range.end }).is_some() {
                return Err(terr("appears twice".into()));
            }
        }
        let files = files.into_iter().map(|(p, s)| (p, Arc::new(s))).collect();
        Ok(Checkpoint { dir: dir.to_path_buf(), config_source: "the GGUF metadata", files, tensors })
    }

    /// A checkpoint held in memory as safetensors files' bytes; `name` labels errors.
    pub fn from_memory(name: &str, files: Vec<Storage>) -> Result<Self, CheckpointError> {
        let mut ck = Checkpoint { dir: PathBuf::from(name), config_source: "config.json", files: Vec::new(), tensors: BTreeMap::new() };
        for (i, f) in files.into_iter().enumerate() {
            ck.add_storage(&PathBuf::from(format!("{name}#{i}")), f)?;
        }
        Ok(ck)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), CheckpointError> {
        self.add_storage(path, Storage::map(path)?)
    }

    fn add_storage(&mut self, path: &Path, map: Storage) -> Result<(), CheckpointError> {
        let tensors = parse_header(&map, path)?;
        let idx = self.files.len();
        for (name, mut t) in tensors {
            t.file = idx;
            if self.tensors.contains_key(&name) {
                return Err(CheckpointError::Tensor { path: path.to_path_buf(), tensor: name, msg: "appears in more than one shard".into() });
            }
            self.tensors.insert(name, t);
        }
        self.files.push((path.to_path_buf(), Arc::new(map)));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    pub fn info(&self, name: &str) -> Result<&TensorInfo, CheckpointError> {
        self.tensors.get(name).ok_or_else(|| {
            let prefix = name.rsplit_once('.').map(|p| p.0).unwrap_or(name);
            let near: Vec<&String> = self.tensors.keys().filter(|k| k.starts_with(prefix)).take(3).collect();
            CheckpointError::Missing {
                tensor: name.into(),
                dir: self.dir.clone(),
                n: self.tensors.len(),
                hint: if near.is_empty() { String::new() } else { format!("; similar: {near:?}") },
            }
        })
    }

    /// File that holds a tensor (for error messages).
    pub fn file_of(&self, name: &str) -> PathBuf {
        self.tensors.get(name).map(|t| self.files[t.file].0.clone()).unwrap_or_else(|| self.dir.clone())
    }

    pub fn bytes(&self, name: &str) -> Result<&[u8], CheckpointError> {
        let t = self.info(name)?;
        Ok(&self.files[t.file].1[t.start..t.end])
    }

    /// A tensor's bytes that stay readable without the checkpoint (the file's mapping is
    /// shared, not copied): the expert pools the GPU does not hold (`model::offload`) read
    /// their misses from these.
    pub fn shared_bytes(&self, name: &str) -> Result<HostBytes, CheckpointError> {
        let t = self.info(name)?;
        Ok(HostBytes { storage: self.files[t.file].1.clone(), range: t.start..t.end })
    }

    /// A tensor of any float dtype widened to f32 (for small tensors: norms, biases).
    pub fn f32_vec(&self, name: &str) -> Result<Vec<f32>, CheckpointError> {
        let t = self.info(name)?;
        let b = self.bytes(name)?;
        Ok(t.dtype.decode(b))
    }

    /// Error for a tensor whose shape or dtype disagrees with what the config implies.
    pub fn mismatch(&self, name: &str, msg: String) -> CheckpointError {
        CheckpointError::Tensor { path: self.file_of(name), tensor: name.into(), msg }
    }

    /// Check a tensor's shape; return its info.
    pub fn expect_shape(&self, name: &str, shape: &[usize]) -> Result<&TensorInfo, CheckpointError> {
        let t = self.info(name)?;
        if t.shape != shape {
            return Err(self.mismatch(name, format!("shape {:?}, but {} implies {:?}", t.shape, self.config_source, shape)));
        }
        Ok(t)
    }
}

/// Parse and validate one safetensors header. Public for fuzzing.
pub fn parse_header(data: &[u8], path: &Path) -> Result<Vec<(String, TensorInfo)>, CheckpointError> {
    let herr = |msg: String| CheckpointError::Header { path: path.to_path_buf(), msg };
    if data.len() < 8 {
        return Err(herr(format!("file is {} bytes, too short for a safetensors header; it is truncated", data.len())));
    }
    let n = u64::from_le_bytes(data[..8].try_into().expect("8 bytes")) as u128;
    if n > data.len() as u128 - 8 {
        return Err(herr(format!("header length {n} exceeds the file size {} bytes; the file is truncated or not safetensors", data.len())));
    }
    let n = n as usize;
    let header = std::str::from_utf8(&data[8..8 + n]).map_err(|e| herr(format!("header is not UTF-8: {e}")))?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(header).map_err(|e| herr(format!("header is not valid JSON: {e}")))?;
    let data_start = 8 + n;
    let data_len = data.len() - data_start;
    let mut out = Vec::new();
    for (name, v) in map {
        if name == "__metadata__" {
            continue;
        }
        let terr = |msg: String| CheckpointError::Tensor { path: path.to_path_buf(), tensor: name.clone(), msg };
        let raw: RawTensor = serde_json::from_value(v).map_err(|e| terr(format!("bad header entry: {e}")))?;
        let dtype = Format::from_safetensors(&raw.dtype)
            .ok_or_else(|| terr(format!("dtype {} is not supported (supported: F32, BF16, F16, F8_E4M3)", raw.dtype)))?;
        let [a, b] = raw.data_offsets;
        let numel = raw.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| terr("shape overflows".into()))?;
        let want = dtype.bytes_for(numel).ok_or_else(|| terr("shape overflows".into()))?;
        if a > b || b > data_len {
            return Err(terr(format!(
                "data offsets [{a}, {b}] fall outside the {data_len} data bytes of the file; the file is truncated (re-download it)"
            )));
        }
        if b - a != want {
            return Err(terr(format!("holds {} bytes but {} × {:?} needs {want}", b - a, dtype.name(), raw.shape)));
        }
        out.push((name, TensorInfo { dtype, shape: raw.shape, file: 0, start: data_start + a, end: data_start + b }));
    }
    let mut spans: Vec<(usize, usize, &str)> = out.iter().map(|(n, t)| (t.start, t.end, n.as_str())).filter(|s| s.0 < s.1).collect();
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(herr(format!("tensors {} and {} overlap in the data section", w[0].2, w[1].2)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.resize(v.len() + data, 0);
        v
    }

    #[test]
    fn header_errors() {
        let p = Path::new("m.safetensors");
        let ok = file(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8);
        assert_eq!(parse_header(&ok, p).unwrap().len(), 1);
        let e = parse_header(&ok[..ok.len() - 1], p).unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains("tensor a"), "{e}");
        let e = parse_header(&file(r#"{"a":{"dtype":"I9","shape":[2],"data_offsets":[0,8]}}"#, 8), p).unwrap_err().to_string();
        assert!(e.contains("I9"), "{e}");
        let e = parse_header(
            &file(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12),
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("overlap"), "{e}");
        let mut big = ok.clone();
        big[..8].copy_from_slice(&1000u64.to_le_bytes());
        assert!(parse_header(&big, p).unwrap_err().to_string().contains("header length"));
        assert!(parse_header(&[1, 2], p).unwrap_err().to_string().contains("too short"));
    }
}
