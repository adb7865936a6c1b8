//! Minimal NumPy `.npy` writer/reader for float32 arrays (version 1.0, little-endian, C order).

use std::io::Write;

pub fn write_f32(path: &std::path::Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(bytemuck::cast_slice(data))?;
    f.flush()
}

/// Read a float32 `.npy` written by NumPy (`<f4`, C order); returns (shape, data).
pub fn read_f32(path: &std::path::Path) -> Result<(Vec<usize>, Vec<f32>), String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not a .npy file", path.display()));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        _ => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(&b[start..start + hlen]).map_err(|e| e.to_string())?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(format!("{}: expected little-endian float32 in C order, header {header}", path.display()));
    }
    let s = header.split("'shape': (").nth(1).and_then(|r| r.split(')').next()).ok_or("no shape")?;
    let shape: Vec<usize> = s.split(',').filter(|x| !x.trim().is_empty()).map(|x| x.trim().parse().map_err(|_| format!("bad shape {s}"))).collect::<Result<_, _>>()?;
    let data = bytemuck::pod_collect_to_vec(&b[start + hlen..]);
    Ok((shape, data))
}
