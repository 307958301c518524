//! Reading an image back from disk as something to push: an OCI layout (`oci:DIR[:tag]`) or a
//! docker archive (`docker-archive:FILE`).
//!
//! Manifests and indexes are small and kept in memory byte for byte (a manifest's digest is the
//! hash of its exact bytes, so they are never re-serialised); blobs are only located — a file,
//! an offset and a length — and streamed from disk by the pusher, so memory stays bounded
//! whatever the layer sizes. Manifests are verified against their digests when read; blobs are
//! verified by the registry on upload (and, for docker archives, hashed here because the archive
//! does not record layer digests).

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source string is neither `oci:DIR[:tag]` nor `docker-archive:FILE`.
    #[error("unknown image source {0:?}: expected oci:DIR[:tag] or docker-archive:FILE")]
    BadSource(String),
    /// A file could not be read.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON document is malformed.
    #[error("{path} is not a valid {what}: {detail}")]
    Malformed {
        /// Where the document came from.
        path: PathBuf,
        /// What it should have been.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A blob the image needs is missing.
    #[error("{layout}: blob {digest} is missing (the layout is incomplete: rewrite it)")]
    MissingBlob {
        /// The layout or archive.
        layout: PathBuf,
        /// The missing blob.
        digest: String,
    },
    /// A manifest's bytes do not hash to the digest that names it.
    #[error("{path}: content hashes to {found}, expected {expected} (the file is corrupt)")]
    DigestMismatch {
        /// The blob file.
        path: PathBuf,
        /// The digest that names it.
        expected: String,
        /// The digest of its content.
        found: String,
    },
    /// The tag asked for is not in the layout or archive.
    #[error("{path} has no image tagged {tag:?}; it has: {available}")]
    NoSuchTag {
        /// The layout or archive.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tags it has.
        available: String,
    },
    /// Several images and no tag to choose one.
    #[error("{path} holds {count} images; name one: {hint}")]
    Ambiguous {
        /// The layout or archive.
        path: PathBuf,
        /// How many images it holds.
        count: usize,
        /// How to name one.
        hint: String,
    },
}

/// Where a blob's bytes are on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSource {
    /// `sha256:...`
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type its descriptor gives.
    pub media_type: String,
    /// The file holding it.
    pub path: PathBuf,
    /// Where its bytes start in `path` (non-zero inside a docker archive).
    pub offset: u64,
}

impl BlobSource {
    /// Opens the blob for reading: a reader positioned at its first byte, limited to its size.
    pub fn open(&self) -> std::io::Result<std::io::Take<File>> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(f.take(self.size))
    }
}

/// A manifest or index, kept as its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBlob {
    /// `sha256:...` of `bytes`.
    pub digest: String,
    /// Its media type (the `Content-Type` to push it with).
    pub media_type: String,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

/// An image ready to push: blobs to upload, then manifests in an order where every manifest
/// comes after everything it references; the last one is the root that tags name.
#[derive(Debug, Clone)]
pub struct PushableImage {
    /// Every blob (configs and layers), each once.
    pub blobs: Vec<BlobSource>,
    /// Manifests, children before the index that lists them; the root is last.
    pub manifests: Vec<ManifestBlob>,
}

impl PushableImage {
    /// The manifest (or index) that tags name.
    pub fn root(&self) -> &ManifestBlob {
        self.manifests.last().expect("an image has a manifest")
    }
}

/// Opens `source` (`oci:DIR[:tag]` or `docker-archive:FILE`) as an image to push.
pub fn open(source: &str) -> Result<PushableImage, Error> {
    if let Some(rest) = source.strip_prefix("oci:") {
        // `oci:DIR:tag`; a directory itself may contain ':' only if no tag follows.
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((d, t)) if !t.contains('/') && !Path::new(rest).is_dir() => (d, Some(t)),
            _ => (rest, None),
        };
        read_layout(Path::new(dir), tag)
    } else if let Some(file) = source.strip_prefix("docker-archive:") {
        read_docker_archive(Path::new(file))
    } else {
        Err(Error::BadSource(source.into()))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn malformed(path: &Path, what: &'static str, detail: impl Into<String>) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        what,
        detail: detail.into(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A descriptor's `(mediaType, digest, size)`.
fn descriptor(v: &Value, path: &Path, what: &'static str) -> Result<(String, String, u64), Error> {
    let media_type = v
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .filter(|d| crate::reference::valid_digest(d))
        .ok_or_else(|| malformed(path, what, "a descriptor without a valid digest"))?
        .to_string();
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed(path, what, format!("descriptor {digest} without a size")))?;
    Ok((media_type, digest, size))
}

/// Reads the OCI layout at `dir`, choosing the image tagged `tag` (or the only image).
pub fn read_layout(dir: &Path, tag: Option<&str>) -> Result<PushableImage, Error> {
    let index_path = dir.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(io_err(&index_path))?;
    read_oci(&Store::Dir(dir), &bytes, tag)
}

/// Where an OCI layout's blobs are: a directory, or members of a tar file.
enum Store<'a> {
    Dir(&'a Path),
    Tar {
        file: &'a Path,
        members: &'a std::collections::HashMap<String, Member>,
    },
}

impl Store<'_> {
    /// The layout's path, for messages.
    fn path(&self) -> &Path {
        match self {
            Store::Dir(d) => d,
            Store::Tar { file, .. } => file,
        }
    }

    /// Where the blob `digest` lies: file, offset, size.
    fn locate(&self, digest: &str) -> Result<(PathBuf, u64, u64), Error> {
        let missing = || Error::MissingBlob {
            layout: self.path().into(),
            digest: digest.into(),
        };
        let (alg, hex) = digest.split_once(':').ok_or_else(missing)?;
        match self {
            Store::Dir(dir) => {
                let path = dir.join("blobs").join(alg).join(hex);
                let len = std::fs::metadata(&path).map_err(|_| missing())?.len();
                Ok((path, 0, len))
            }
            Store::Tar { file, members } => {
                let m = members
                    .get(&format!("blobs/{alg}/{hex}"))
                    .ok_or_else(missing)?;
                Ok((file.to_path_buf(), m.offset, m.size))
            }
        }
    }

    /// The blob `digest`'s bytes (for manifests: small).
    fn read(&self, digest: &str) -> Result<(PathBuf, Vec<u8>), Error> {
        let (path, offset, size) = self.locate(digest)?;
        let source = BlobSource {
            digest: digest.into(),
            size,
            media_type: String::new(),
            path: path.clone(),
            offset,
        };
        let mut bytes = Vec::new();
        source
            .open()
            .and_then(|mut r| r.read_to_end(&mut bytes))
            .map_err(io_err(&path))?;
        Ok((path, bytes))
    }
}

/// Reads the image chosen by `tag` from an OCI layout whose `index.json` is `index_bytes`.
fn read_oci(store: &Store, index_bytes: &[u8], tag: Option<&str>) -> Result<PushableImage, Error> {
    let dir = store.path();
    let index_path = dir.join("index.json");
    let bytes = index_bytes;
    let index: Value = serde_json::from_slice(bytes)
        .map_err(|e| malformed(&index_path, "OCI index", e.to_string()))?;
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(&index_path, "OCI index", "no `manifests` array"))?;
    let tag_of = |m: &Value| {
        m.pointer("/annotations/org.opencontainers.image.ref.name")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let chosen = match tag {
        Some(t) => entries
            .iter()
            .find(|m| tag_of(m).as_deref() == Some(t))
            .ok_or_else(|| Error::NoSuchTag {
                path: dir.into(),
                tag: t.into(),
                available: entries
                    .iter()
                    .filter_map(tag_of)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        None => match entries.as_slice() {
            [one] => one,
            [] => {
                return Err(malformed(&index_path, "OCI index", "it lists no image"));
            }
            many => {
                return Err(Error::Ambiguous {
                    path: dir.into(),
                    count: many.len(),
                    hint: format!(
                        "oci:{}:TAG with TAG one of: {}",
                        dir.display(),
                        many.iter()
                            .filter_map(tag_of)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        },
    };
    let (media_type, digest, _) = descriptor(chosen, &index_path, "OCI index")?;
    let mut image = PushableImage {
        blobs: Vec::new(),
        manifests: Vec::new(),
    };
    let mut seen = HashSet::new();
    add_manifest(store, &media_type, &digest, &mut image, &mut seen, 0)?;
    Ok(image)
}

/// Adds the manifest or index `digest` and everything it references (children first).
fn add_manifest(
    store: &Store,
    media_type_hint: &str,
    digest: &str,
    image: &mut PushableImage,
    seen: &mut HashSet<String>,
    depth: usize,
) -> Result<(), Error> {
    if !seen.insert(digest.to_string()) {
        return Ok(());
    }
    let (path, bytes) = store.read(digest)?;
    let found = sha256_hex(&bytes);
    if found != digest {
        return Err(Error::DigestMismatch {
            path,
            expected: digest.into(),
            found,
        });
    }
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| malformed(&path, "manifest", e.to_string()))?;
    let media_type = doc
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(media_type_hint)
        .to_string();
    let is_index = media_type == OCI_INDEX
        || media_type == DOCKER_MANIFEST_LIST
        || (media_type.is_empty() && doc.get("manifests").is_some());
    if is_index {
        if depth > 4 {
            return Err(malformed(&path, "index", "indexes nested too deeply"));
        }
        let children = doc
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&path, "index", "no `manifests` array"))?;
        for child in children {
            let (mt, d, _) = descriptor(child, &path, "index")?;
            add_manifest(store, &mt, &d, image, seen, depth + 1)?;
        }
    } else {
        let config = doc
            .get("config")
            .ok_or_else(|| malformed(&path, "manifest", "no `config`"))?;
        let layers = doc
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&path, "manifest", "no `layers` array"))?;
        for d in std::iter::once(config).chain(layers) {
            let (mt, digest, size) = descriptor(d, &path, "manifest")?;
            if !seen.insert(digest.clone()) {
                continue;
            }
            let (blob, offset, on_disk) = store.locate(&digest)?;
            if on_disk != size {
                return Err(malformed(
                    &blob,
                    "blob",
                    format!("{digest} has {on_disk} bytes, the manifest says {size}"),
                ));
            }
            image.blobs.push(BlobSource {
                digest,
                size,
                media_type: mt,
                path: blob,
                offset,
            });
        }
    }
    let media_type = if media_type.is_empty() {
        if is_index {
            OCI_INDEX.into()
        } else {
            OCI_MANIFEST.into()
        }
    } else {
        media_type
    };
    image.manifests.push(ManifestBlob {
        digest: digest.into(),
        media_type,
        bytes,
    });
    Ok(())
}

/// Where one member of a tar file lies.
struct Member {
    offset: u64,
    size: u64,
}

/// Reads a docker archive (`docker save` format) holding one image, as an OCI image manifest
/// over the archive's own config and layer bytes (layers keep their compression: plain tar,
/// gzip or zstd, told by their first bytes).
pub fn read_docker_archive(file: &Path) -> Result<PushableImage, Error> {
    let f = File::open(file).map_err(io_err(file))?;
    let mut archive = tar::Archive::new(f);
    let mut members = std::collections::HashMap::new();
    let mut manifest_json = None;
    for entry in archive.entries_with_seek().map_err(io_err(file))? {
        let mut entry = entry.map_err(io_err(file))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(io_err(file))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if name == "manifest.json" {
            let mut s = Vec::new();
            entry.read_to_end(&mut s).map_err(io_err(file))?;
            manifest_json = Some(s);
        }
        members.insert(
            name,
            Member {
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
        );
    }
    // Newer archives (docker 25+, and imgbuild's) are also an OCI layout: push the image as it
    // is, so its digest stays the one the writer reported.
    if members.contains_key("oci-layout") {
        if let Some(index) = members.get("index.json") {
            let store = Store::Tar {
                file,
                members: &members,
            };
            let source = BlobSource {
                digest: String::new(),
                size: index.size,
                media_type: String::new(),
                path: file.into(),
                offset: index.offset,
            };
            let mut bytes = Vec::new();
            source
                .open()
                .and_then(|mut r| r.read_to_end(&mut bytes))
                .map_err(io_err(file))?;
            return read_oci(&store, &bytes, None);
        }
    }
    let manifest_json = manifest_json.ok_or_else(|| {
        malformed(
            file,
            "docker archive",
            "no manifest.json (is it a docker save tarball?)",
        )
    })?;
    let list: Value = serde_json::from_slice(&manifest_json)
        .map_err(|e| malformed(file, "docker archive manifest.json", e.to_string()))?;
    let images = list
        .as_array()
        .ok_or_else(|| malformed(file, "docker archive manifest.json", "not an array"))?;
    let entry = match images.as_slice() {
        [one] => one,
        [] => return Err(malformed(file, "docker archive", "it holds no image")),
        many => {
            return Err(Error::Ambiguous {
                path: file.into(),
                count: many.len(),
                hint: "write one image per archive, or save it as an OCI layout".into(),
            })
        }
    };
    let locate = |name: &str| -> Result<(&Member, String), Error> {
        let m = members
            .get(name.trim_start_matches("./"))
            .ok_or_else(|| Error::MissingBlob {
                layout: file.into(),
                digest: name.into(),
            })?;
        let source = BlobSource {
            digest: String::new(),
            size: m.size,
            media_type: String::new(),
            path: file.into(),
            offset: m.offset,
        };
        let mut r = source.open().map_err(io_err(file))?;
        let mut hasher = Sha256::new();
        let mut head = [0u8; 4];
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.read(&mut buf).map_err(io_err(file))?;
            if n == 0 {
                break;
            }
            if got < 4 {
                let k = (4 - got).min(n);
                head[got..got + k].copy_from_slice(&buf[..k]);
                got += k;
            }
            hasher.update(&buf[..n]);
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let kind = if head[..2] == [0x1f, 0x8b] {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else if head == [0x28, 0xb5, 0x2f, 0xfd] {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        Ok((m, format!("{digest} {kind}")))
    };
    let config_name = entry
        .get("Config")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(file, "docker archive manifest.json", "no Config"))?;
    let layer_names: Vec<&str> = entry
        .get("Layers")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(file, "docker archive manifest.json", "no Layers"))?
        .iter()
        .filter_map(Value::as_str)
        .collect();

    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    let mut seen = HashSet::new();
    for (i, name) in std::iter::once(config_name)
        .chain(layer_names.iter().copied())
        .enumerate()
    {
        let (m, dk) = locate(name)?;
        let (digest, kind) = dk.split_once(' ').expect("digest and kind");
        let media_type = if i == 0 { OCI_CONFIG } else { kind };
        descriptors.push(serde_json::json!({
            "mediaType": media_type,
            "digest": digest,
            "size": m.size,
        }));
        if seen.insert(digest.to_string()) {
            blobs.push(BlobSource {
                digest: digest.into(),
                size: m.size,
                media_type: media_type.into(),
                path: file.into(),
                offset: m.offset,
            });
        }
    }
    let config = descriptors.remove(0);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": descriptors,
    });
    let bytes = serde_json::to_vec(&manifest).expect("a JSON value serialises");
    Ok(PushableImage {
        blobs,
        manifests: vec![ManifestBlob {
            digest: sha256_hex(&bytes),
            media_type: OCI_MANIFEST.into(),
            bytes,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_path(dir: &Path, digest: &str) -> PathBuf {
        let (alg, hex) = digest.split_once(':').unwrap();
        dir.join("blobs").join(alg).join(hex)
    }

    fn write_blob(dir: &Path, bytes: &[u8]) -> String {
        let d = sha256_hex(bytes);
        let p = blob_path(dir, &d);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
        d
    }

    fn layout_with_index() -> (tempfile::TempDir, String, String) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let layer = write_blob(dir, b"layer bytes");
        let config = write_blob(dir, b"{}");
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 11}],
        }))
        .unwrap();
        let m = write_blob(dir, &manifest);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": m, "size": manifest.len()}],
        }))
        .unwrap();
        let i = write_blob(dir, &index);
        let top = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": OCI_INDEX, "digest": i, "size": index.len(),
                 "annotations": {"org.opencontainers.image.ref.name": "multi"}},
                {"mediaType": OCI_MANIFEST, "digest": m, "size": manifest.len(),
                 "annotations": {"org.opencontainers.image.ref.name": "single"}},
            ],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        (t, m, i)
    }

    #[test]
    fn reads_index_children_first() {
        let (t, m, i) = layout_with_index();
        let img = open(&format!("oci:{}:multi", t.path().display())).unwrap();
        let order: Vec<_> = img.manifests.iter().map(|x| x.digest.clone()).collect();
        assert_eq!(order, vec![m.clone(), i]);
        assert_eq!(img.blobs.len(), 2);
        assert_eq!(img.blobs[0].media_type, OCI_CONFIG);

        let img = open(&format!("oci:{}:single", t.path().display())).unwrap();
        assert_eq!(img.root().digest, m);
        let mut s = String::new();
        img.blobs[1].open().unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "layer bytes");
    }

    #[test]
    fn asks_for_a_tag_when_ambiguous_or_unknown() {
        let (t, _, _) = layout_with_index();
        let err = open(&format!("oci:{}", t.path().display())).unwrap_err();
        assert!(matches!(err, Error::Ambiguous { count: 2, .. }), "{err}");
        let err = open(&format!("oci:{}:nope", t.path().display())).unwrap_err();
        assert!(err.to_string().contains("multi, single"), "{err}");
    }

    #[test]
    fn detects_corrupt_manifest() {
        let (t, m, _) = layout_with_index();
        std::fs::write(blob_path(t.path(), &m), b"{\"tampered\":1}").unwrap();
        let err = open(&format!("oci:{}:single", t.path().display())).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn reads_docker_archive_members_in_place() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("img.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        add("cfg.json", b"{\"architecture\":\"amd64\"}");
        add("abc/layer.tar", &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
        add(
            "manifest.json",
            br#"[{"Config":"cfg.json","RepoTags":["a:1"],"Layers":["abc/layer.tar"]}]"#,
        );
        b.into_inner().unwrap();
        let img = open(&format!("docker-archive:{}", path.display())).unwrap();
        assert_eq!(img.blobs.len(), 2);
        assert_eq!(
            img.blobs[1].media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let mut bytes = Vec::new();
        img.blobs[1]
            .open()
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, [0x1f, 0x8b, 8, 0, 1, 2, 3]);
        assert_eq!(img.blobs[1].digest, sha256_hex(&bytes));
        let m: Value = serde_json::from_slice(&img.root().bytes).unwrap();
        assert_eq!(m["config"]["digest"], img.blobs[0].digest.as_str());
        assert_eq!(img.root().digest, sha256_hex(&img.root().bytes));
    }
}
