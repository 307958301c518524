//! Where an image goes: an OCI image layout, a docker archive, or the Docker engine.
//!
//! Every output is first staged as an OCI layout in a temp dir (beside the destination, so the
//! final step is a rename on one filesystem), then committed:
//! - `oci:DIR`, DIR absent (or an empty dir): the staging dir is renamed to DIR.
//! - `oci:DIR`, DIR an existing OCI layout: the image is added to it, like `skopeo copy` does:
//!   new blobs are renamed into `DIR/blobs/sha256`, then `index.json` is replaced atomically,
//!   dropping any earlier entry with the same tag (`org.opencontainers.image.ref.name`). Until
//!   that last rename the layout reads exactly as before.
//! - `oci:DIR`, DIR anything else: refused before anything is built.
//! - `docker-archive:FILE`: a tar holding the layout plus docker's `manifest.json`, written to
//!   a temp file beside FILE and renamed over it (an existing FILE is replaced whole).
//! - `docker`: the same archive in a temp dir, loaded through bollard, then removed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::blob::{BlobDir, BlobRef};
use super::image::{index_json, REF_NAME};
use super::{canonical_json, interrupted, Error};

/// The content of the `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An output destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `oci:DIR`: an OCI image layout directory.
    OciDir(PathBuf),
    /// `docker-archive:FILE`: a tarball for `docker load`.
    DockerArchive(PathBuf),
    /// `docker`: loaded into the local Docker engine (`DOCKER_HOST` honoured).
    Docker,
}

impl std::str::FromStr for Output {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "docker" || s == "docker-daemon" {
            return Ok(Output::Docker);
        }
        if let Some(dir) = s.strip_prefix("oci:").filter(|d| !d.is_empty()) {
            return Ok(Output::OciDir(PathBuf::from(dir)));
        }
        if let Some(f) = s.strip_prefix("docker-archive:").filter(|d| !d.is_empty()) {
            return Ok(Output::DockerArchive(PathBuf::from(f)));
        }
        Err(Error::BadOutput(s.to_string()))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::OciDir(d) => write!(f, "oci:{}", d.display()),
            Output::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            Output::Docker => write!(f, "docker"),
        }
    }
}

/// The image a build staged, ready to commit.
#[derive(Debug, Clone)]
pub struct StagedImage {
    /// What `index.json` lists for it: the manifest (one platform) or the image index.
    pub top: Descriptor,
    /// The full reference, e.g. `server:1.2` (for docker's `RepoTags`).
    pub reference: String,
    /// The tag part, e.g. `1.2` (the layout's `org.opencontainers.image.ref.name`).
    pub tag: String,
    /// Per-platform images, for docker's `manifest.json`: config and layer blobs.
    pub images: Vec<DockerImage>,
}

/// One platform's image in docker-archive terms.
#[derive(Debug, Clone)]
pub struct DockerImage {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The config blob.
    pub config: BlobRef,
    /// The layer blobs, bottom first.
    pub layers: Vec<BlobRef>,
}

/// A staging dir: removed on drop unless committed.
pub struct Staging {
    dir: tempfile::TempDir,
    /// The staged blobs.
    pub blobs: BlobDir,
}

impl Staging {
    /// The staging dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The closest existing ancestor directory of `path` (the staging place for it).
fn existing_parent(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("."))
            .join(path)
    };
    let mut p = abs.parent().map(Path::to_path_buf);
    while let Some(dir) = p {
        if dir.is_dir() {
            return dir;
        }
        p = dir.parent().map(Path::to_path_buf);
    }
    PathBuf::from("/")
}

fn is_oci_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file() && dir.join("index.json").is_file()
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// A file written to a temp path beside `dest` and renamed over it when complete.
fn write_atomic(
    dest: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), Error> {
    let dir = existing_parent(dest);
    let ctx = |e| Error::io(format!("writing {}", dest.display()), e);
    let tmp = tempfile::Builder::new()
        .prefix(".imgbuild-tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(ctx)?;
    let (file, path) = tmp.into_parts();
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write(&mut w).map_err(ctx)?;
    w.flush().map_err(ctx)?;
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(ctx)?;
    }
    path.persist(dest).map_err(|e| ctx(e.error))?;
    Ok(())
}

impl Output {
    /// Checks that the destination can be written and creates the staging dir beside it.
    /// Nothing is visible at the destination until [`Output::commit`].
    pub fn stage(&self) -> Result<Staging, Error> {
        let place = match self {
            Output::OciDir(dir) => {
                if dir.exists() && !(dir.is_dir() && (is_oci_layout(dir) || is_empty_dir(dir))) {
                    return Err(Error::Destination {
                        path: dir.display().to_string(),
                        reason: "is not an OCI image layout: remove it or choose another directory"
                            .into(),
                    });
                }
                existing_parent(dir)
            }
            Output::DockerArchive(file) => {
                if file.is_dir() {
                    return Err(Error::Destination {
                        path: file.display().to_string(),
                        reason: "is a directory: docker-archive needs a file path".into(),
                    });
                }
                existing_parent(file)
            }
            Output::Docker => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix(".imgbuild-stage-")
            .tempdir_in(&place)
            .map_err(|e| Error::io(format!("creating a staging dir in {}", place.display()), e))?;
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| Error::io(format!("creating a staging dir in {}", place.display()), e))?;
        let blobs = BlobDir::create(dir.path())?;
        std::fs::write(dir.path().join("oci-layout"), OCI_LAYOUT)
            .map_err(|e| Error::io("writing oci-layout", e))?;
        Ok(Staging { dir, blobs })
    }

    /// Makes the staged image appear at the destination (see the module docs). Returns, for
    /// `docker`, the engine's messages (`Loaded image: ...`).
    pub fn commit(&self, staging: Staging, image: &StagedImage) -> Result<Vec<String>, Error> {
        if interrupted() {
            return Err(Error::Interrupted);
        }
        let mut top = image.top.clone();
        let mut ann = top.annotations().clone().unwrap_or_default();
        ann.insert(REF_NAME.to_string(), image.tag.clone());
        top.set_annotations(Some(ann));
        match self {
            Output::OciDir(dir) => commit_layout(dir, staging, top, &image.tag),
            Output::DockerArchive(file) => {
                write_index(staging.path(), vec![top])?;
                write_atomic(file, |w| write_archive(w, &staging, image))?;
                Ok(Vec::new())
            }
            Output::Docker => {
                write_index(staging.path(), vec![top])?;
                let archive = staging.path().join("image.tar");
                write_atomic(&archive, |w| write_archive(w, &staging, image))?;
                Ok(crate::docker::load_archive(&archive)?)
            }
        }
    }
}

fn write_index(dir: &Path, manifests: Vec<Descriptor>) -> Result<(), Error> {
    let json = index_json(manifests, &BTreeMap::new())?;
    write_atomic(&dir.join("index.json"), |w| w.write_all(&json))
}

fn commit_layout(
    dir: &Path,
    staging: Staging,
    top: Descriptor,
    tag: &str,
) -> Result<Vec<String>, Error> {
    if !is_oci_layout(dir) {
        write_index(staging.path(), vec![top])?;
        if dir.exists() {
            // An empty directory: rename(2) replaces it.
            std::fs::remove_dir(dir)
                .map_err(|e| Error::io(format!("replacing {}", dir.display()), e))?;
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        std::fs::rename(staging.path(), dir).map_err(|e| {
            Error::io(
                format!("renaming {} to {}", staging.path().display(), dir.display()),
                e,
            )
        })?;
        return Ok(Vec::new());
    }
    // Add to an existing layout: blobs first, index last.
    let index_path = dir.join("index.json");
    let existing: ImageIndex = serde_json::from_slice(
        &std::fs::read(&index_path)
            .map_err(|e| Error::io(format!("reading {}", index_path.display()), e))?,
    )
    .map_err(|source| Error::Json {
        context: format!("reading {}", index_path.display()),
        source,
    })?;
    let dest_blobs = BlobDir::create(dir)?;
    let entries = std::fs::read_dir(staging.blobs.path())
        .map_err(|e| Error::io("listing staged blobs", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing staged blobs", e))?;
        let name = entry.file_name();
        let target = dest_blobs.path().join(&name);
        if !target.exists() {
            std::fs::rename(entry.path(), &target)
                .map_err(|e| Error::io(format!("moving a blob to {}", target.display()), e))?;
        }
    }
    let mut manifests: Vec<Descriptor> = existing
        .manifests()
        .iter()
        .filter(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_none_or(|t| t != tag)
        })
        .cloned()
        .collect();
    manifests.push(top);
    let json = index_json(
        manifests,
        &existing
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    )?;
    write_atomic(&index_path, |w| w.write_all(&json))?;
    Ok(Vec::new())
}

/// The platform of this machine, `os/arch`, in OCI terms.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Writes a docker archive: the staged OCI layout plus `manifest.json` for the image of this
/// machine's platform (or the first one), so that `docker load` and OCI tools both read it.
fn write_archive<W: Write>(w: W, staging: &Staging, image: &StagedImage) -> io::Result<()> {
    let host = host_platform();
    let chosen = image
        .images
        .iter()
        .find(|i| i.platform == host || i.platform.starts_with(&format!("{host}/")))
        .or_else(|| image.images.first())
        .ok_or_else(|| io::Error::other("no image to archive"))?;
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{}", chosen.config.hex),
        "RepoTags": [image.reference],
        "Layers": chosen.layers.iter().map(|l| format!("blobs/sha256/{}", l.hex)).collect::<Vec<_>>(),
    }]);
    let manifest = canonical_json(&manifest).map_err(io::Error::other)?;
    let mut tar = tar::Builder::new(w);
    let add = |tar: &mut tar::Builder<W>, name: &str, data: &mut dyn io::Read, len: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(len);
        h.set_mtime(0);
        tar.append_data(&mut h, name, data)
    };
    let dir = |tar: &mut tar::Builder<W>, name: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, name, io::empty())
    };
    dir(&mut tar, "blobs/")?;
    dir(&mut tar, "blobs/sha256/")?;
    let mut names: Vec<_> = std::fs::read_dir(staging.blobs.path())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = staging.blobs.path().join(&name);
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        add(
            &mut tar,
            &format!("blobs/sha256/{}", name.to_string_lossy()),
            &mut io::Read::take(file, len),
            len,
        )?;
    }
    let index = std::fs::read(staging.path().join("index.json"))?;
    add(&mut tar, "index.json", &mut &index[..], index.len() as u64)?;
    add(
        &mut tar,
        "manifest.json",
        &mut &manifest[..],
        manifest.len() as u64,
    )?;
    add(
        &mut tar,
        "oci-layout",
        &mut &OCI_LAYOUT[..],
        OCI_LAYOUT.len() as u64,
    )?;
    tar.into_inner()?.flush()
}

/// Media type of the top descriptor: a manifest for one platform, an index for several.
pub fn top_media_type(platforms: usize) -> MediaType {
    if platforms == 1 {
        MediaType::ImageManifest
    } else {
        MediaType::ImageIndex
    }
}
