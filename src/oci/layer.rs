//! Reproducible layer tarballs, compressed and hashed in one streaming pass.
//!
//! Invariants (what makes the same inputs give the same digest): entries are sorted by path
//! and every parent directory is present before its children; mtimes are one fixed value;
//! owners are numeric (uid/gid 0 unless an entry says otherwise) without user or group names;
//! no xattrs or device numbers; modes are exactly those given. File contents stream from disk
//! through the tar writer, the diff_id hasher, the compressor and the blob hasher: no file is
//! ever held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::MediaType;

use super::blob::{BlobDir, BlobRef, BlobWriter, HashingWriter};
use super::gzip::ParGzEncoder;
use super::Error;

/// How layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip at a level 0-9 (default 6).
    Gzip(u32),
    /// zstd at a level 1-22 (default 3).
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Gzip(6)
    }
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(&self) -> MediaType {
        match self {
            Compression::Gzip(_) => MediaType::ImageLayerGzip,
            Compression::Zstd(_) => MediaType::ImageLayerZstd,
        }
    }
}

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory with this mode.
    Dir {
        /// Permission bits (e.g. `0o755`, `0o1777`).
        mode: u32,
        /// Owner uid and gid.
        owner: (u64, u64),
    },
    /// A regular file whose content is read from the host.
    File {
        /// The host file.
        host: PathBuf,
        /// Permission bits.
        mode: u32,
    },
    /// A regular file with this content.
    Bytes {
        /// The content.
        data: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link to this target.
    Symlink {
        /// The link target, as stored.
        target: String,
    },
}

/// The entries of one layer by image path, sorted; parents are added as `0755` directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerContents {
    entries: BTreeMap<String, Entry>,
}

/// Normalises an image path to the tar form: relative, no `.` or empty components.
pub fn tar_path(image_path: &str) -> Result<String, Error> {
    let mut parts = Vec::new();
    for c in image_path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::BadPath {
                    path: image_path.to_string(),
                    reason: "it contains `..`".into(),
                })
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::BadPath {
            path: image_path.to_string(),
            reason: "it names the root directory".into(),
        });
    }
    Ok(parts.join("/"))
}

impl LayerContents {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the layer has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, sorted by tar path.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// Adds `entry` at the absolute `image_path`, creating missing parents; a later entry for
    /// the same path replaces an earlier one.
    pub fn insert(&mut self, image_path: &str, entry: Entry) -> Result<(), Error> {
        let path = tar_path(image_path)?;
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for c in &components[..components.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            self.entries.entry(parent.clone()).or_insert(Entry::Dir {
                mode: 0o755,
                owner: (0, 0),
            });
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Adds the host file or directory `host` at `image_path`: directories recursively (sorted),
    /// symlinks as symlinks, files with their executable bit kept (`0755`, else `0644`).
    pub fn insert_host_tree(&mut self, host: &Path, image_path: &str) -> Result<(), Error> {
        let meta = std::fs::symlink_metadata(host)
            .map_err(|e| Error::io(format!("reading {}", host.display()), e))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(host)
                .map_err(|e| Error::io(format!("reading link {}", host.display()), e))?;
            return self.insert(
                image_path,
                Entry::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            );
        }
        if ft.is_dir() {
            self.insert(
                image_path,
                Entry::Dir {
                    mode: 0o755,
                    owner: (0, 0),
                },
            )?;
            let mut names: Vec<_> = std::fs::read_dir(host)
                .map_err(|e| Error::io(format!("listing {}", host.display()), e))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| Error::io(format!("listing {}", host.display()), e))?;
            names.sort();
            for name in names {
                let child = format!(
                    "{}/{}",
                    image_path.trim_end_matches('/'),
                    name.to_string_lossy()
                );
                self.insert_host_tree(&host.join(&name), &child)?;
            }
            return Ok(());
        }
        if ft.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            return self.insert(
                image_path,
                Entry::File {
                    host: host.to_path_buf(),
                    mode,
                },
            );
        }
        Err(Error::BadPath {
            path: host.display().to_string(),
            reason: "it is not a regular file, directory or symlink".into(),
        })
    }
}

/// A written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The compressed blob.
    pub blob: BlobRef,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// The layer media type.
    pub media_type: MediaType,
}

enum Compressor {
    Gzip(ParGzEncoder<BlobWriter>),
    Zstd(zstd::Encoder<'static, BlobWriter>),
}

impl Write for Compressor {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(w) => w.write(data),
            Compressor::Zstd(w) => w.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(w) => w.flush(),
            Compressor::Zstd(w) => w.flush(),
        }
    }
}

impl Compressor {
    fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Compressor::Gzip(w) => w.finish(),
            Compressor::Zstd(w) => w.finish(),
        }
    }
}

/// The number of compression threads to use: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Writes `contents` as a layer blob into `blobs`, every mtime set to `mtime`.
pub fn write_layer(
    blobs: &BlobDir,
    contents: &LayerContents,
    compression: Compression,
    mtime: u64,
) -> Result<Layer, Error> {
    let ctx = |e: io::Error| Error::io(format!("writing a layer in {}", blobs.path().display()), e);
    let blob = blobs.writer()?;
    let compressor = match compression {
        Compression::Gzip(level) => {
            Compressor::Gzip(ParGzEncoder::new(blob, level, default_threads()).map_err(ctx)?)
        }
        Compression::Zstd(level) => {
            let mut enc = zstd::Encoder::new(blob, level).map_err(ctx)?;
            enc.include_checksum(false).map_err(ctx)?;
            enc.include_contentsize(false).map_err(ctx)?;
            Compressor::Zstd(enc)
        }
    };
    let mut tar = tar::Builder::new(HashingWriter::new(compressor));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    for (path, entry) in &contents.entries {
        append(&mut tar, path, entry, mtime)?;
    }
    let hashing = tar.into_inner().map_err(ctx)?;
    let (compressor, diff_hex, _) = hashing.finish();
    let blob = compressor.finish().map_err(ctx)?.commit()?;
    Ok(Layer {
        blob,
        diff_id: format!("sha256:{diff_hex}"),
        media_type: compression.media_type(),
    })
}

fn header(
    kind: tar::EntryType,
    mode: u32,
    size: u64,
    mtime: u64,
    owner: (u64, u64),
) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(owner.0);
    h.set_gid(owner.1);
    h
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    entry: &Entry,
    mtime: u64,
) -> Result<(), Error> {
    let ctx = |e: io::Error| Error::io(format!("adding {path} to a layer"), e);
    match entry {
        Entry::Dir { mode, owner } => {
            let mut h = header(tar::EntryType::Directory, *mode, 0, mtime, *owner);
            tar.append_data(&mut h, format!("{path}/"), io::empty())
                .map_err(ctx)?;
        }
        Entry::Bytes { data, mode } => {
            let mut h = header(
                tar::EntryType::Regular,
                *mode,
                data.len() as u64,
                mtime,
                (0, 0),
            );
            tar.append_data(&mut h, path, &data[..]).map_err(ctx)?;
        }
        Entry::File { host, mode } => {
            let file = File::open(host)
                .map_err(|e| Error::io(format!("opening {}", host.display()), e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::io(format!("reading {}", host.display()), e))?
                .len();
            let mut h = header(tar::EntryType::Regular, *mode, len, mtime, (0, 0));
            // Exactly `len` bytes: a file growing while we read cannot corrupt the tar.
            let mut reader = io::Read::take(file, len);
            tar.append_data(&mut h, path, &mut reader).map_err(ctx)?;
            if reader.limit() != 0 {
                return Err(Error::io(
                    format!("reading {}", host.display()),
                    io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read"),
                ));
            }
        }
        Entry::Symlink { target } => {
            let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime, (0, 0));
            tar.append_link(&mut h, path, target).map_err(ctx)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_tar(blobs: &BlobDir, layer: &Layer) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
        let file = File::open(blobs.blob_path(&layer.blob.hex)).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    data,
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_sorted_with_parents_and_fixed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::create(dir.path()).unwrap();
        let mut c = LayerContents::new();
        c.insert(
            "/etc/passwd",
            Entry::Bytes {
                data: b"root\n".to_vec(),
                mode: 0o644,
            },
        )
        .unwrap();
        c.insert(
            "/app/server",
            Entry::Bytes {
                data: b"x".to_vec(),
                mode: 0o755,
            },
        )
        .unwrap();
        let layer = write_layer(&blobs, &c, Compression::Gzip(6), 42).unwrap();
        let entries = read_tar(&blobs, &layer);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["app/", "app/server", "etc/", "etc/passwd"]);
        assert!(entries.iter().all(|e| e.2 == 42 && e.3 == 0));
        assert_eq!(entries[1].1, 0o755);
        assert_eq!(entries[1].4, b"x");
        // Same contents, same digest.
        let again = write_layer(&blobs, &c, Compression::Gzip(6), 42).unwrap();
        assert_eq!(layer, again);
        let later = write_layer(&blobs, &c, Compression::Gzip(6), 43).unwrap();
        assert_ne!(layer.diff_id, later.diff_id);
    }

    #[test]
    fn paths_with_dotdot_are_refused() {
        assert!(tar_path("/a/../b").is_err());
        assert!(tar_path("/").is_err());
        assert_eq!(tar_path("//a/./b/").unwrap(), "a/b");
    }
}
