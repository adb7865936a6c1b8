//! Host-side quantization of f32 rows into GGUF block formats, bit-exact with llama.cpp's
//! reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q6_K_ref`,
//! `quantize_row_q4_K_ref` in ggml-quants.c), as a model file made by `llama-quantize`
//! without an importance matrix would hold.
//!
//! Every float operation is done in f32 in the C source's order (Rust never contracts
//! `a * b + c` into an FMA; the C reference is compiled without contraction too, see
//! `tools/make_quant_fixtures.sh`), `nearest_int` is ggml's magic-number rounding (ties to
//! even), `roundf` is [`f32::round`] (ties away from zero) and `GGML_FP32_TO_FP16` is
//! [`half::f16::from_f32`] (round to nearest even). `tests/quantize.rs` checks the bytes
//! against blocks written by llama.cpp's code itself and, for Q8_0, by gguf-py.

use half::f16;

use super::Format;

/// The formats [`quantize`] writes.
pub const TARGETS: [Format; 3] = [Format::Q8_0, Format::Q6_K, Format::Q4_K];

/// Quantize one row (or several rows back to back: the formats are row-independent) into
/// `fmt`'s blocks. `None` when `fmt` is not one of [`TARGETS`] or `row.len()` is not a
/// multiple of its block size.
pub fn quantize(fmt: Format, row: &[f32]) -> Option<Vec<u8>> {
    if !TARGETS.contains(&fmt) || !row.len().is_multiple_of(fmt.block_elems()) {
        return None;
    }
    let mut out = Vec::with_capacity(fmt.bytes_for(row.len())?);
    quantize_into(fmt, row, &mut out);
    Some(out)
}

/// As [`quantize`], appending to `out`; panics on a format or length [`quantize`] refuses.
pub fn quantize_into(fmt: Format, row: &[f32], out: &mut Vec<u8>) {
    let n = fmt.block_elems();
    assert!(TARGETS.contains(&fmt) && row.len().is_multiple_of(n), "cannot quantize {} values to {}", row.len(), fmt.name());
    for x in row.chunks_exact(n) {
        match fmt {
            Format::Q8_0 => q8_0_block(x, out),
            Format::Q6_K => q6_k_block(x, out),
            Format::Q4_K => q4_k_block(x, out),
            _ => unreachable!(),
        }
    }
}

/// The format tensor `name` (source format `src`, shape `shape`) is uploaded in when
/// loading with `--quantize target`, as llama.cpp's converter + `llama-quantize` would store
/// it (without an importance matrix, all matrices in one type):
/// - quantized: 2-D (and fused 3-D expert) projection matrices in BF16, F16, F32 or FP8
///   (FP8 dequantized with its block scales first), including `lm_head`;
/// - kept: 1-D tensors (norms, biases), the router `mlp.gate.weight` (llama.cpp keeps it in
///   F32 too), `model.embed_tokens.weight` (a lookup table: it costs one row per token, and a
///   tied `lm_head` then stays as it is too), `kv_b_proj` (the MLA absorption transposes it
///   on the GPU, from a float format only; llama.cpp's split `k_b`/`v_b` come from GGUF files,
///   which are refused with --quantize), block formats (already quantized), and any matrix
///   whose rows are not a multiple of the target's block size (32 or 256 values; llama.cpp
///   falls back to another type there too; the loader logs them).
pub fn quantized_format(target: Option<Format>, name: &str, src: Format, shape: &[usize]) -> Format {
    let Some(q) = target else { return src };
    let keep = shape.len() < 2
        || src.is_block()
        || name.ends_with(".mlp.gate.weight")
        || name == "model.embed_tokens.weight"
        || name.contains("kv_b_proj")
        || name.ends_with("_scale_inv")
        || !shape[shape.len() - 1].is_multiple_of(q.block_elems());
    if keep {
        src
    } else {
        q
    }
}

/// ggml's `MAX(a, b)`: `a > b ? a : b` (NaN-propagating differently from `f32::max`).
fn cmax<T: PartialOrd>(a: T, b: T) -> T {
    if a > b {
        a
    } else {
        b
    }
}

fn cmin<T: PartialOrd>(a: T, b: T) -> T {
    if a < b {
        a
    } else {
        b
    }
}

/// ggml's `nearest_int`: add 1.5·2²³ and read the low mantissa bits (ties to even; valid for
/// |x| ≤ 4194303, as in C).
fn nearest_int(x: f32) -> i32 {
    let v = x + 12582912.0f32;
    (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

fn fp16(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

fn q8_0_block(x: &[f32], out: &mut Vec<u8>) {
    let mut amax = 0.0f32;
    for &v in x {
        amax = cmax(amax, v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&fp16(d));
    // C assigns roundf's float to an int8_t; in range for finite input
    out.extend(x.iter().map(|&v| (v * id).round() as i8 as u8));
}

/// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: L in 0..2·nmax, returns the scale.
fn make_qx_quants_rmse1(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < 1e-15 {
        l_out.fill(0);
        return 0.0;
    }
    let clampq = |l: i32| cmax(-nmax, cmin(nmax - 1, l));
    let mut iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (i, &v) in x.iter().enumerate() {
        let l = clampq(nearest_int(iscale * v));
        l_out[i] = (l + nmax) as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1f32 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = clampq(nearest_int(iscale * v));
            let w = v * v;
            sumlx += w * v * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (i, &v) in x.iter().enumerate() {
                l_out[i] = (nmax + clampq(nearest_int(iscale * v))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

fn q6_k_block(x: &[f32], out: &mut Vec<u8>) {
    let mut l = [0i8; 256];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let scale = make_qx_quants_rmse1(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        scales[ib] = scale;
        let abs_scale = scale.abs();
        if abs_scale > max_abs_scale {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    let mut b = [0u8; 210];
    if max_abs_scale < 1e-15 {
        b[208..].copy_from_slice(&fp16(0.0));
        out.extend_from_slice(&b);
        return;
    }
    let iscale = -128.0f32 / max_scale;
    let d16 = fp16(1.0 / iscale);
    let df = f16::from_le_bytes(d16).to_f32();
    let mut sc = [0i8; 16];
    for ib in 0..16 {
        sc[ib] = cmin(127, nearest_int(iscale * scales[ib])) as i8;
    }
    for j in 0..16 {
        let d = df * sc[j] as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let q = cmax(-32, cmin(31, nearest_int(x[16 * j + ii] / d)));
            l[16 * j + ii] = (q + 32) as i8;
        }
    }
    let (ql, rest) = b.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    for (half, j) in [0usize, 128].into_iter().enumerate() {
        let (ql, qh) = (&mut ql[64 * half..], &mut qh[32 * half..]);
        let lu = |k: usize| l[j + k] as u8;
        for i in 0..32 {
            ql[i] = (lu(i) & 0xf) | ((lu(i + 64) & 0xf) << 4);
            ql[i + 32] = (lu(i + 32) & 0xf) | ((lu(i + 96) & 0xf) << 4);
            qh[i] = (lu(i) >> 4) | ((lu(i + 32) >> 4) << 2) | ((lu(i + 64) >> 4) << 4) | ((lu(i + 96) >> 4) << 6);
        }
    }
    for i in 0..16 {
        rest[i] = sc[i] as u8;
    }
    rest[16..18].copy_from_slice(&d16);
    out.extend_from_slice(&b);
}

/// `make_qkx2_quants(32, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad = false)`:
/// returns (scale, the_min).
fn make_qkx2_quants(nmax: i32, x: &[f32], weights: &[f32], l_out: &mut [u8], rmin: f32, rdelta: f32, nstep: i32) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min));
        l_out[i] = cmax(0, cmin(nmax, l)) as u8;
        let diff = scale * l_out[i] as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = cmax(0, cmin(nmax, nearest_int(iscale * (x[i] - min))));
            laux[i] = l as u8;
            let (w, lf) = (weights[i], l as f32);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

fn q4_k_block(x: &[f32], out: &mut Vec<u8>) {
    let mut l = [0u8; 256];
    let mut weights = [0f32; 32];
    let (mut mins, mut scales) = ([0f32; 8], [0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(15, xs, &weights, &mut l[32 * j..32 * j + 32], -1.0, 0.1, 20);
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut b = [0u8; 144];
    {
        let s = &mut b[4..16];
        for j in 0..8 {
            // C stores nearest_int's int into a uint8_t (modulo 256), then clamps to 63
            let ls = cmin(63u8, nearest_int(inv_scale * scales[j]) as u8);
            let lm = cmin(63u8, nearest_int(inv_min * mins[j]) as u8);
            if j < 4 {
                s[j] = ls;
                s[j + 4] = lm;
            } else {
                s[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
                s[j - 4] |= (ls >> 4) << 6;
                s[j] |= (lm >> 4) << 6;
            }
        }
    }
    let (d16, dmin16) = (fp16(max_scale / 63.0), fp16(max_min / 63.0));
    b[0..2].copy_from_slice(&d16);
    b[2..4].copy_from_slice(&dmin16);
    let (df, dminf) = (f16::from_le_bytes(d16).to_f32(), f16::from_le_bytes(dmin16).to_f32());
    for j in 0..8 {
        let (sc, m) = super::blocks::scale_min_k4(&b[4..16], j);
        let d = df * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dminf * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = cmax(0, cmin(15, nearest_int((x[32 * j + ii] + dm) / d))) as u8;
        }
    }
    for (k, j) in (0..256).step_by(64).enumerate() {
        for i in 0..32 {
            b[16 + 32 * k + i] = l[j + i] | (l[j + i + 32] << 4);
        }
    }
    out.extend_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<f32> {
        // deterministic pseudo-random weights, a few scales
        let mut s = 0x2545f4914f6cdd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        (0..4 * 512).map(|i| next() * [0.02, 1.0, 30.0, 1e-3][i / 512]).collect()
    }

    #[test]
    fn round_trip_error_is_small() {
        let x = rows();
        // worst relative RMS error per 512-value row, per format
        for (fmt, tol) in [(Format::Q8_0, 0.01), (Format::Q6_K, 0.03), (Format::Q4_K, 0.12)] {
            let q = quantize(fmt, &x).unwrap();
            assert_eq!(q.len(), fmt.bytes_for(x.len()).unwrap());
            let y = fmt.decode(&q);
            for (xr, yr) in x.chunks(512).zip(y.chunks(512)) {
                let err: f32 = xr.iter().zip(yr).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt();
                let norm: f32 = xr.iter().map(|a| a * a).sum::<f32>().sqrt();
                assert!(err / norm < tol, "{fmt:?}: relative error {}", err / norm);
            }
        }
    }

    #[test]
    fn zeros_and_refusals() {
        for fmt in TARGETS {
            let q = quantize(fmt, &vec![0.0; 256]).unwrap();
            assert_eq!(fmt.decode(&q), vec![0.0; 256]);
            assert!(quantize(fmt, &[0.0; 16]).is_none());
        }
        assert!(quantize(Format::Q4_0, &[0.0; 32]).is_none());
        assert!(quantize(Format::BF16, &[0.0; 32]).is_none());
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-3.5), -4);
        assert_eq!(nearest_int(0.49999997), 0);
    }
}
