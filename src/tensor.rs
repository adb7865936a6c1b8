//! Weight matrices on the GPU, kept in their checkpoint dtype and split into chunks that each
//! fit one storage binding. A [`Matrix`] is a stack of `n_mats` matrices of `[rows][cols]`
//! (1 for a projection, `n_routed_experts` for an expert pool). A single matrix is split by
//! rows; a pool by whole experts. FP8 weights carry their block scales alongside.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::format::Format;
use crate::gpu::Gpu;

#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{what}: one {unit} needs {need} bytes but the adapter binds at most {limit} bytes per storage buffer; this model cannot run on this adapter")]
    TooLarge { what: String, unit: &'static str, need: u64, limit: u64 },
    #[error("{what}: {msg}")]
    Layout { what: String, msg: String },
}

pub struct MatChunk {
    pub buf: wgpu::Buffer,
    /// experts held: [e0, e1)
    pub e0: usize,
    pub e1: usize,
    /// rows of each held matrix: [r0, r0 + rows)
    pub r0: usize,
    pub rows: usize,
}

pub struct Scale {
    pub buf: wgpu::Buffer, // [n_mats][s_rows][s_cols] f32
    pub s_rows: usize,
    pub s_cols: usize,
    pub block: [usize; 2],
}

pub struct Matrix {
    pub name: String,
    pub dtype: Format,
    pub n_mats: usize,
    pub rows: usize,
    pub cols: usize,
    pub chunks: Vec<MatChunk>,
    pub scale: Option<Scale>,
}

impl Matrix {
    /// Build from per-matrix host bytes (`mat(e)` returns matrix e's packed bytes) and, for
    /// FP8, per-matrix f32 scales `[ceil(rows/br)][ceil(cols/bc)]`.
    #[allow(clippy::too_many_arguments)]
    pub fn build<'a>(
        gpu: &Gpu,
        name: &str,
        dtype: Format,
        n_mats: usize,
        rows: usize,
        cols: usize,
        mat: impl Fn(usize) -> &'a [u8],
        scale: Option<(Vec<f32>, [usize; 2])>,
    ) -> Result<Self, TensorError> {
        Self::build_as(gpu, name, dtype, n_mats, rows, cols, mat, scale, false)
    }

    /// [`Matrix::build`]; `writable`: the matrices can be replaced later, one whole matrix at
    /// a time, by `queue.write_buffer` (an expert cache's slots), which needs each matrix to
    /// be a whole number of 4-byte words.
    #[allow(clippy::too_many_arguments)]
    pub fn build_as<'a>(
        gpu: &Gpu,
        name: &str,
        dtype: Format,
        n_mats: usize,
        rows: usize,
        cols: usize,
        mat: impl Fn(usize) -> &'a [u8],
        scale: Option<(Vec<f32>, [usize; 2])>,
        writable: bool,
    ) -> Result<Self, TensorError> {
        let extra = if writable { wgpu::BufferUsages::COPY_DST } else { wgpu::BufferUsages::empty() };
        let row_bytes = dtype.bytes_for(cols).ok_or_else(|| TensorError::Layout {
            what: name.into(),
            msg: format!("{cols} columns are not a whole number of {}-value {} blocks", dtype.block_elems(), dtype.name()),
        })? as u64;
        let limit = gpu.max_binding;
        let mut chunks = Vec::new();
        if n_mats == 1 {
            let per = (limit / row_bytes.max(1)) as usize;
            if per == 0 {
                return Err(TensorError::TooLarge { what: name.into(), unit: "row", need: row_bytes, limit });
            }
            if writable && (row_bytes * per.min(rows) as u64) % 4 != 0 {
                return Err(TensorError::Layout { what: name.into(), msg: format!("rows of {row_bytes} bytes do not make whole 4-byte words, so the matrix cannot be replaced in a GPU expert cache; give the model the GPU memory it needs") });
            }
            let data = mat(0);
            let mut r0 = 0;
            while r0 < rows {
                let n = per.min(rows - r0);
                let bytes = &data[r0 * row_bytes as usize..(r0 + n) * row_bytes as usize];
                let buf = gpu.storage_filled_as(&format!("{name}[{r0}..{}]", r0 + n), bytes.len() as u64, extra, |v| {
                    v.slice(..bytes.len()).copy_from_slice(bytes)
                });
                chunks.push(MatChunk { buf, e0: 0, e1: 1, r0, rows: n });
                r0 += n;
            }
        } else {
            let mat_bytes = row_bytes * rows as u64;
            if writable && mat_bytes % 4 != 0 {
                return Err(TensorError::Layout { what: name.into(), msg: format!("one matrix is {mat_bytes} bytes, not a whole number of 4-byte words, so it cannot be replaced in a GPU expert cache; give the model the GPU memory it needs") });
            }
            let per = (limit / mat_bytes.max(1)) as usize;
            if per == 0 {
                return Err(TensorError::TooLarge { what: name.into(), unit: "expert matrix", need: mat_bytes, limit });
            }
            let mut e0 = 0;
            while e0 < n_mats {
                let n = per.min(n_mats - e0);
                let buf = gpu.storage_filled_as(&format!("{name}[experts {e0}..{}]", e0 + n), mat_bytes * n as u64, extra, |v| {
                    for e in e0..e0 + n {
                        let off = ((e - e0) as u64 * mat_bytes) as usize;
                        v.slice(off..off + mat_bytes as usize).copy_from_slice(mat(e));
                    }
                });
                chunks.push(MatChunk { buf, e0, e1: e0 + n, r0: 0, rows });
                e0 += n;
            }
        }
        let scale = scale.map(|(s, block)| Scale {
            buf: gpu.storage_init(&format!("{name}.scale_inv"), bytemuck::cast_slice(&s)),
            s_rows: rows.div_ceil(block[0]),
            s_cols: cols.div_ceil(block[1]),
            block,
        });
        Ok(Matrix { name: name.into(), dtype, n_mats, rows, cols, chunks, scale })
    }

    /// Upload `names` (one tensor per stacked matrix, each `[rows][cols]`) from a checkpoint,
    /// with their `*_scale_inv` block scales when the tensors are FP8.
    pub fn load(
        gpu: &Gpu,
        ck: &Checkpoint,
        label: &str,
        names: &[String],
        rows: usize,
        cols: usize,
        fp8_block: Option<[usize; 2]>,
    ) -> Result<Self, TensorError> {
        let first = ck.expect_shape(&names[0], &[rows, cols])?.dtype;
        for n in &names[1..] {
            let d = ck.expect_shape(n, &[rows, cols])?.dtype;
            if d != first {
                return Err(ck.mismatch(n, format!("dtype {} differs from {} of {}", d.name(), first.name(), names[0])).into());
            }
        }
        let scale = if first.external_scale() {
            let block = fp8_block.unwrap_or([128, 128]);
            let shape = [rows.div_ceil(block[0]), cols.div_ceil(block[1])];
            let mut all = Vec::with_capacity(names.len() * shape[0] * shape[1]);
            for n in names {
                let sn = format!("{}_scale_inv", n);
                if ck.get(&sn).is_none() {
                    return Err(ck
                        .mismatch(n, format!("is F8_E4M3 but its block scale {sn} is missing; the checkpoint is incomplete or not block-quantized"))
                        .into());
                }
                let t = ck.info(&sn)?;
                if t.shape != shape {
                    return Err(ck
                        .mismatch(&sn, format!("shape {:?}, but weight [{rows}, {cols}] with blocks {block:?} needs {shape:?}", t.shape))
                        .into());
                }
                all.extend(ck.f32_vec(&sn)?);
            }
            Some((all, block))
        } else {
            None
        };
        let bytes: Vec<&[u8]> = names.iter().map(|n| ck.bytes(n)).collect::<Result<_, _>>()?;
        Self::build(gpu, label, first, names.len(), rows, cols, |e| bytes[e], scale)
    }

    pub fn bytes(&self) -> u64 {
        (self.n_mats * self.rows) as u64 * self.dtype.bytes_for(self.cols).unwrap_or(0) as u64
    }
}
