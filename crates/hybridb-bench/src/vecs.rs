//! Reading and writing the texmex vector formats used by ANN benchmarks.
//!
//! Each row of a `.fvecs`, `.bvecs` or `.ivecs` file is a little-endian `i32` dimension followed
//! by that many values (`f32`, `u8` or `i32`, little-endian). Invariants kept here: every row of a
//! file has the same dimension, the dimension is positive, and a file is never silently cut short;
//! a truncated row or a dimension change is an error naming the file, the row and the byte offset.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// A set of equal-length vectors stored row after row in one flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Vecs<T> {
    /// Number of values per row (at least 1).
    pub dim: usize,
    /// `len() * dim` values, row-major.
    pub data: Vec<T>,
}

impl<T> Vecs<T> {
    /// Wraps a flat row-major buffer; fails unless `dim > 0` and `data.len()` is a multiple of it.
    pub fn new(dim: usize, data: Vec<T>) -> Result<Self> {
        ensure!(dim > 0, "vector dimension must be positive");
        ensure!(
            data.len().is_multiple_of(dim),
            "buffer of {} values is not a whole number of rows of dimension {dim}",
            data.len()
        );
        Ok(Self { dim, data })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i` as a slice. Panics if `i >= len()`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterator over the rows, in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, T> {
        self.data.chunks_exact(self.dim)
    }
}

/// Element types that can appear in a texmex file.
trait Element: Copy {
    /// Size of one stored element in bytes.
    const SIZE: usize;
    /// Decodes one element from exactly `SIZE` little-endian bytes.
    fn decode(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const SIZE: usize = 4;
    fn decode(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for i32 {
    const SIZE: usize = 4;
    fn decode(b: &[u8]) -> Self {
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for u8 {
    const SIZE: usize = 1;
    fn decode(b: &[u8]) -> Self {
        b[0]
    }
}

/// Parses a whole texmex file held in memory. `what` names the source in error messages.
fn parse<T: Element>(bytes: &[u8], what: &str) -> Result<Vecs<T>> {
    ensure!(!bytes.is_empty(), "{what}: file is empty");
    ensure!(
        bytes.len() >= 4,
        "{what}: truncated: {} bytes, shorter than one dimension header",
        bytes.len()
    );
    let dim = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    ensure!(dim > 0, "{what}: invalid dimension {dim} in the first row");
    let dim = dim as usize;
    let row_bytes = 4 + dim * T::SIZE;
    let rows = bytes.len() / row_bytes;
    if !bytes.len().is_multiple_of(row_bytes) {
        // Report the first row that does not fit, but first check the headers of the whole rows
        // so that a dimension change is reported as such rather than as truncation.
        check_headers(bytes, rows, row_bytes, dim, what)?;
        bail!(
            "{what}: truncated: row {rows} at byte {} has {} of {row_bytes} bytes (dimension {dim})",
            rows * row_bytes,
            bytes.len() - rows * row_bytes
        );
    }
    check_headers(bytes, rows, row_bytes, dim, what)?;
    let mut data = Vec::with_capacity(rows * dim);
    for row in bytes.chunks_exact(row_bytes) {
        data.extend(row[4..].chunks_exact(T::SIZE).map(T::decode));
    }
    Vecs::new(dim, data)
}

/// Checks that the first `rows` rows all declare dimension `dim`.
fn check_headers(
    bytes: &[u8],
    rows: usize,
    row_bytes: usize,
    dim: usize,
    what: &str,
) -> Result<()> {
    for r in 0..rows {
        let at = r * row_bytes;
        let d = i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        ensure!(
            d == dim as i32,
            "{what}: inconsistent dimension: row {r} at byte {at} declares {d}, row 0 declares {dim}"
        );
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads a `.fvecs` file.
pub fn read_fvecs(path: &Path) -> Result<Vecs<f32>> {
    parse(&read_file(path)?, &path.display().to_string())
}

/// Reads a `.bvecs` file, converting each `u8` value to `f32`.
pub fn read_bvecs(path: &Path) -> Result<Vecs<f32>> {
    let v: Vecs<u8> = parse(&read_file(path)?, &path.display().to_string())?;
    Vecs::new(v.dim, v.data.into_iter().map(f32::from).collect())
}

/// Reads an `.ivecs` file (e.g. ground-truth row indices).
pub fn read_ivecs(path: &Path) -> Result<Vecs<i32>> {
    parse(&read_file(path)?, &path.display().to_string())
}

/// Reads a vector file as `f32`, choosing the format by extension (`.fvecs` or `.bvecs`).
pub fn read_vectors(path: &Path) -> Result<Vecs<f32>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("fvecs") => read_fvecs(path),
        Some("bvecs") => read_bvecs(path),
        _ => bail!(
            "{}: unknown vector format (expected a .fvecs or .bvecs file)",
            path.display()
        ),
    }
}

/// Writes rows in texmex layout, encoding each value with `encode`.
fn write<T: Copy, const N: usize>(
    path: &Path,
    v: &Vecs<T>,
    encode: impl Fn(T) -> [u8; N],
) -> Result<()> {
    let dim = i32::try_from(v.dim).context("dimension does not fit in i32")?;
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for row in v.rows() {
        w.write_all(&dim.to_le_bytes())?;
        for &x in row {
            w.write_all(&encode(x))?;
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes a `.fvecs` file.
pub fn write_fvecs(path: &Path, v: &Vecs<f32>) -> Result<()> {
    write(path, v, f32::to_le_bytes)
}

/// Writes an `.ivecs` file.
pub fn write_ivecs(path: &Path, v: &Vecs<i32>) -> Result<()> {
    write(path, v, i32::to_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn fvecs_round_trip() {
        let dir = tmp();
        let p = dir.path().join("x.fvecs");
        let v = Vecs::new(3, vec![1.0, -2.5, 3.25, 0.0, f32::MAX, -0.0]).unwrap();
        write_fvecs(&p, &v).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 2 * (4 + 3 * 4));
        let back = read_fvecs(&p).unwrap();
        assert_eq!(back.dim, 3);
        assert_eq!(back.len(), 2);
        assert_eq!(back.row(1), &[0.0, f32::MAX, -0.0]);
        assert_eq!(back, v);
        assert_eq!(read_vectors(&p).unwrap(), v);
    }

    #[test]
    fn ivecs_round_trip() {
        let dir = tmp();
        let p = dir.path().join("gt.ivecs");
        let v = Vecs::new(2, vec![7, 3, -1, i32::MAX]).unwrap();
        write_ivecs(&p, &v).unwrap();
        assert_eq!(read_ivecs(&p).unwrap(), v);
    }

    #[test]
    fn bvecs_are_converted_to_f32() {
        let dir = tmp();
        let p = dir.path().join("b.bvecs");
        let mut bytes = Vec::new();
        for row in [[0u8, 17, 255], [1, 2, 3]] {
            bytes.extend_from_slice(&3i32.to_le_bytes());
            bytes.extend_from_slice(&row);
        }
        std::fs::write(&p, bytes).unwrap();
        let v = read_vectors(&p).unwrap();
        assert_eq!(v.data, vec![0.0, 17.0, 255.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn truncated_file_is_an_error() {
        let dir = tmp();
        let p = dir.path().join("t.fvecs");
        let v = Vecs::new(4, (0..12).map(|i| i as f32).collect()).unwrap();
        write_fvecs(&p, &v).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&p, &bytes).unwrap();
        let err = read_fvecs(&p).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("row 2"), "{err}");
        // Shorter than a header.
        std::fs::write(&p, [1u8, 0]).unwrap();
        assert!(
            read_fvecs(&p)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        // Empty.
        std::fs::write(&p, []).unwrap();
        assert!(read_fvecs(&p).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn inconsistent_or_bad_dimension_is_an_error() {
        let dir = tmp();
        let p = dir.path().join("d.ivecs");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        bytes.extend_from_slice(&3i32.to_le_bytes()); // same byte length, wrong header
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(&p, &bytes).unwrap();
        let err = read_ivecs(&p).unwrap_err().to_string();
        assert!(
            err.contains("inconsistent dimension") && err.contains("row 1"),
            "{err}"
        );

        std::fs::write(&p, (-5i32).to_le_bytes()).unwrap();
        assert!(
            read_ivecs(&p)
                .unwrap_err()
                .to_string()
                .contains("invalid dimension")
        );
    }

    #[test]
    fn unknown_extension_is_an_error() {
        assert!(read_vectors(Path::new("data.npy")).is_err());
    }
}
