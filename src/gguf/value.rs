//! Typed GGUF metadata values and the bounded byte cursor that parses them.
//!
//! Every length and count read from the file is checked against the bytes left in it before
//! anything is allocated, so a hostile header costs at most a few times the file's own size
//! in memory. Arrays of scalars are kept as typed vectors (a 130k-entry `f32` score table is
//! one `Vec<f32>`, not 130k boxed values).

/// Deepest nesting of arrays accepted. GGUF allows arrays of arrays; real files nest at most
/// once, and the bound keeps the recursive parser's stack small on hostile input.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

/// A metadata array: one element type, kept even when the array is empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
}

impl Value {
    /// Any integer type holding a value ≥ 0 (GGUF writers pick u32, u64 or i32 freely for
    /// counts, so a loader should not care which).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }

    /// Any integer type whose value fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// An `f32`, or an `f64` rounded to `f32` (hyperparameters are `f32` in llama.cpp).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// An `f64`, or an `f32` widened exactly.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The GGUF type name: `u32`, `string`, `array of f32`, ...
    pub fn type_name(&self) -> String {
        match self {
            Value::Array(a) => format!("array of {}", a.elem_type_name()),
            v => SCALAR_NAMES[v.type_id() as usize].to_string(),
        }
    }

    /// Type and value, short enough for an error message.
    pub fn describe(&self) -> String {
        match self {
            Value::String(s) if s.chars().count() > 40 => format!("string {:?}...", s.chars().take(40).collect::<String>()),
            Value::String(s) => format!("string {s:?}"),
            Value::Array(a) => format!("array of {} {}", a.len(), a.elem_type_name()),
            Value::U8(v) => format!("u8 {v}"),
            Value::I8(v) => format!("i8 {v}"),
            Value::U16(v) => format!("u16 {v}"),
            Value::I16(v) => format!("i16 {v}"),
            Value::U32(v) => format!("u32 {v}"),
            Value::I32(v) => format!("i32 {v}"),
            Value::U64(v) => format!("u64 {v}"),
            Value::I64(v) => format!("i64 {v}"),
            Value::F32(v) => format!("f32 {v}"),
            Value::F64(v) => format!("f64 {v}"),
            Value::Bool(v) => format!("bool {v}"),
        }
    }

    /// The GGUF value type id (0 = u8 ... 12 = f64).
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
}

/// GGUF value type names by id.
const SCALAR_NAMES: [&str; 13] = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];

/// Smallest encoding of one value of a type (what bounds an array's length by the bytes
/// left), or `None` for an unknown type id.
fn min_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,      // length, no bytes
        9 => 4 + 8,  // element type, length, no elements
        _ => return None,
    })
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// GGUF type id of the elements.
    pub fn elem_type_id(&self) -> u32 {
        match self {
            Array::U8(_) => 0,
            Array::I8(_) => 1,
            Array::U16(_) => 2,
            Array::I16(_) => 3,
            Array::U32(_) => 4,
            Array::I32(_) => 5,
            Array::F32(_) => 6,
            Array::Bool(_) => 7,
            Array::String(_) => 8,
            Array::Array(_) => 9,
            Array::U64(_) => 10,
            Array::I64(_) => 11,
            Array::F64(_) => 12,
        }
    }

    pub fn elem_type_name(&self) -> &'static str {
        SCALAR_NAMES[self.elem_type_id() as usize]
    }

    /// Element `i` as a [`Value`] (copies it; for generic walkers and tests, not hot loops).
    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Array::U8(v) => Value::U8(*v.get(i)?),
            Array::I8(v) => Value::I8(*v.get(i)?),
            Array::U16(v) => Value::U16(*v.get(i)?),
            Array::I16(v) => Value::I16(*v.get(i)?),
            Array::U32(v) => Value::U32(*v.get(i)?),
            Array::I32(v) => Value::I32(*v.get(i)?),
            Array::U64(v) => Value::U64(*v.get(i)?),
            Array::I64(v) => Value::I64(*v.get(i)?),
            Array::F32(v) => Value::F32(*v.get(i)?),
            Array::F64(v) => Value::F64(*v.get(i)?),
            Array::Bool(v) => Value::Bool(*v.get(i)?),
            Array::String(v) => Value::String(v.get(i)?.clone()),
            Array::Array(v) => Value::Array(v.get(i)?.clone()),
        })
    }

    /// Strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    pub fn as_strs(&self) -> Option<&[String]> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    /// `f32`s (`tokenizer.ggml.scores`).
    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            Array::F32(v) => Some(v),
            _ => None,
        }
    }

    /// `i32`s (`tokenizer.ggml.token_type`).
    pub fn as_i32s(&self) -> Option<&[i32]> {
        match self {
            Array::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Nested arrays.
    pub fn as_arrays(&self) -> Option<&[Array]> {
        match self {
            Array::Array(v) => Some(v),
            _ => None,
        }
    }

    /// Integers of any type, all ≥ 0 (per-layer counts written as u32 or i32).
    pub fn to_u64s(&self) -> Option<Vec<u64>> {
        (0..self.len()).map(|i| self.get(i).and_then(|v| v.as_u64())).collect()
    }

    /// Integers of any type, all fitting `i64`.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        (0..self.len()).map(|i| self.get(i).and_then(|v| v.as_i64())).collect()
    }
}

/// Reads little-endian fields from a byte slice, refusing to read or allocate past its end.
/// Errors are plain messages naming the byte offset; the caller adds file, key or tensor.
pub(super) struct Cursor<'a> {
    data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    pub fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        if n > self.left() as u64 {
            return Err(format!(
                "{what} needs {n} bytes at byte {} but the file ends at byte {}; it is truncated or not GGUF",
                self.pos,
                self.data.len()
            ));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64, what)?);
        Ok(a)
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Check that `n` items of at least `min_each` bytes can still follow, before allocating
    /// room for them.
    pub fn count(&self, n: u64, min_each: u64, what: &str) -> Result<usize, String> {
        match n.checked_mul(min_each) {
            Some(b) if b <= self.left() as u64 => Ok(n as usize),
            _ => Err(format!(
                "{what} {n} at byte {} needs at least {min_each} bytes each, but only {} bytes are left in the file; it is truncated or corrupt",
                self.pos,
                self.left()
            )),
        }
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (not NUL-terminated).
    pub fn string(&mut self, what: &str) -> Result<String, String> {
        let at = self.pos;
        let n = self.u64(&format!("{what} length"))?;
        if n > self.left() as u64 {
            return Err(format!(
                "{what} at byte {at} claims {n} bytes, but only {} bytes are left in the file; it is truncated or corrupt",
                self.left()
            ));
        }
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|e| format!("{what} at byte {at} is not UTF-8: {e}"))
    }

    /// A value of GGUF type `ty` (its type id has been read already).
    pub fn value(&mut self, ty: u32) -> Result<Value, String> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>("u8 value")?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array("i8 value")?)),
            2 => Value::U16(u16::from_le_bytes(self.array("u16 value")?)),
            3 => Value::I16(i16::from_le_bytes(self.array("i16 value")?)),
            4 => Value::U32(u32::from_le_bytes(self.array("u32 value")?)),
            5 => Value::I32(i32::from_le_bytes(self.array("i32 value")?)),
            6 => Value::F32(f32::from_le_bytes(self.array("f32 value")?)),
            7 => Value::Bool(self.bool("bool value")?),
            8 => Value::String(self.string("string value")?),
            9 => Value::Array(self.array_value(0)?),
            10 => Value::U64(u64::from_le_bytes(self.array("u64 value")?)),
            11 => Value::I64(i64::from_le_bytes(self.array("i64 value")?)),
            12 => Value::F64(f64::from_le_bytes(self.array("f64 value")?)),
            _ => return Err(format!("unknown value type {ty} at byte {} (GGUF defines 0..=12)", self.pos - 4)),
        })
    }

    /// GGUF bools are one byte, 0 or 1; anything else means the parse went off the rails.
    fn bool(&mut self, what: &str) -> Result<bool, String> {
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{what} at byte {} is {b}, not 0 or 1", self.pos - 1)),
        }
    }

    fn array_value(&mut self, depth: usize) -> Result<Array, String> {
        let at = self.pos;
        let elem = self.u32("array element type")?;
        let min = min_size(elem).ok_or_else(|| format!("array at byte {at} has unknown element type {elem} (GGUF defines 0..=12)"))?;
        let n = self.u64("array length")?;
        let n = self.count(n, min, "array length")?;
        fn fixed<const N: usize, T>(c: &mut Cursor, n: usize, what: &str, f: fn([u8; N]) -> T) -> Result<Vec<T>, String> {
            let b = c.take((n * N) as u64, what)?;
            Ok(b.chunks_exact(N)
                .map(|ch| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(ch);
                    f(a)
                })
                .collect())
        }
        let items = |e: String, i: usize| format!("element {i} of the array at byte {at}: {e}");
        Ok(match elem {
            0 => Array::U8(self.take(n as u64, "u8 array")?.to_vec()),
            1 => Array::I8(fixed(self, n, "i8 array", i8::from_le_bytes)?),
            2 => Array::U16(fixed(self, n, "u16 array", u16::from_le_bytes)?),
            3 => Array::I16(fixed(self, n, "i16 array", i16::from_le_bytes)?),
            4 => Array::U32(fixed(self, n, "u32 array", u32::from_le_bytes)?),
            5 => Array::I32(fixed(self, n, "i32 array", i32::from_le_bytes)?),
            6 => Array::F32(fixed(self, n, "f32 array", f32::from_le_bytes)?),
            10 => Array::U64(fixed(self, n, "u64 array", u64::from_le_bytes)?),
            11 => Array::I64(fixed(self, n, "i64 array", i64::from_le_bytes)?),
            12 => Array::F64(fixed(self, n, "f64 array", f64::from_le_bytes)?),
            7 => Array::Bool((0..n).map(|i| self.bool("bool").map_err(|e| items(e, i))).collect::<Result<_, _>>()?),
            8 => Array::String((0..n).map(|i| self.string("string").map_err(|e| items(e, i))).collect::<Result<_, _>>()?),
            _ => {
                if depth + 1 >= MAX_ARRAY_DEPTH {
                    return Err(format!("array at byte {at} nests arrays more than {MAX_ARRAY_DEPTH} deep"));
                }
                Array::Array((0..n).map(|i| self.array_value(depth + 1).map_err(|e| items(e, i))).collect::<Result<_, _>>()?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_convert_only_losslessly() {
        assert_eq!(Value::U32(7).as_u64(), Some(7));
        assert_eq!(Value::I32(7).as_u64(), Some(7));
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::U64(1 << 40).as_u32(), None);
        assert_eq!(Value::I8(-3).as_i64(), Some(-3));
        assert_eq!(Value::F32(0.5).as_f64(), Some(0.5));
        assert_eq!(Value::F64(0.5).as_f32(), Some(0.5));
        assert_eq!(Value::U8(1).as_bool(), None);
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(Value::String("x".into()).as_str(), Some("x"));
        assert_eq!(Value::Array(Array::F32(vec![])).type_name(), "array of f32");
        assert_eq!(Value::I64(-2).type_name(), "i64");
        assert_eq!(Array::I32(vec![1, 2]).to_u64s(), Some(vec![1, 2]));
        assert_eq!(Array::I32(vec![1, -2]).to_u64s(), None);
        assert_eq!(Array::String(vec![]).to_u64s(), Some(vec![]));
        assert_eq!(Array::String(vec!["a".into()]).to_u64s(), None);
        assert!(Value::String("y".repeat(100)).describe().len() < 60);
    }

    #[test]
    fn cursor_refuses_before_allocating() {
        // An array of 2^61 u64s in a 12-byte value must fail on the count, not on allocation.
        let mut b = 10u32.to_le_bytes().to_vec();
        b.extend_from_slice(&(1u64 << 61).to_le_bytes());
        let e = Cursor::new(&b).array_value(0).unwrap_err();
        assert!(e.contains("array length 2305843009213693952") && e.contains("0 bytes are left"), "{e}");
        // Depth limit.
        let mut b = Vec::new();
        for _ in 0..MAX_ARRAY_DEPTH + 2 {
            b.extend_from_slice(&9u32.to_le_bytes());
            b.extend_from_slice(&1u64.to_le_bytes());
        }
        let e = Cursor::new(&b).array_value(0).unwrap_err();
        assert!(e.contains("more than 8 deep"), "{e}");
    }
}
