//! Content-addressed blobs (`blobs/sha256/<hex>`), hashed while they are written.
//!
//! Invariant: a file named by a digest is complete and has that digest. A blob is written to a
//! temp file in the same directory while its SHA-256 and size are computed, and renamed to its
//! digest only after the last byte; an interrupted write leaves only a temp file, which the
//! owner of the directory (a staging dir removed on failure) cleans up.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{interrupted, Error};

/// A written blob: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobRef {
    /// Lowercase hex SHA-256.
    pub hex: String,
    /// Size in bytes.
    pub size: u64,
}

impl BlobRef {
    /// `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.hex)
    }
}

/// A `blobs/sha256` directory.
#[derive(Debug, Clone)]
pub struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    /// Opens (creating) `root/blobs/sha256`.
    pub fn create(root: &Path) -> Result<Self, Error> {
        let dir = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Self { dir })
    }

    /// The directory holding the blobs.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of the blob `hex`.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join(hex)
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter, Error> {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-blob-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(format!("creating a temp file in {}", self.dir.display()), e))?;
        let (file, path) = tmp.into_parts();
        Ok(BlobWriter {
            file: BufWriter::with_capacity(1 << 20, file),
            tmp: Some(path),
            hasher: Sha256::new(),
            size: 0,
            dir: self.dir.clone(),
        })
    }

    /// Writes `data` as a blob.
    pub fn write_bytes(&self, data: &[u8]) -> Result<BlobRef, Error> {
        let mut w = self.writer()?;
        w.write_all(data)
            .map_err(|e| Error::io(format!("writing a blob in {}", self.dir.display()), e))?;
        w.commit()
    }
}

/// A blob being written: hashes the bytes on their way to a temp file.
pub struct BlobWriter {
    file: BufWriter<File>,
    tmp: Option<tempfile::TempPath>,
    hasher: Sha256,
    size: u64,
    dir: PathBuf,
}

impl BlobWriter {
    /// Flushes, then renames the temp file to the blob's digest.
    pub fn commit(mut self) -> Result<BlobRef, Error> {
        self.file
            .flush()
            .map_err(|e| Error::io(format!("writing a blob in {}", self.dir.display()), e))?;
        let hex = hex::encode(self.hasher.clone().finalize());
        let dest = self.dir.join(&hex);
        let tmp = self.tmp.take().expect("temp path present until commit");
        tmp.persist(&dest)
            .map_err(|e| Error::io(format!("renaming a blob to {}", dest.display()), e.error))?;
        Ok(BlobRef {
            hex,
            size: self.size,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if interrupted() {
            // Not ErrorKind::Interrupted: `write_all` would retry that forever.
            return Err(io::Error::other("build interrupted"));
        }
        let n = self.file.write(data)?;
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Hashes the bytes passing through (the uncompressed layer: its diff_id) and counts them.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the hex SHA-256 and the byte count of what passed.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
