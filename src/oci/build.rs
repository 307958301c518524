//! From a [`Plan`] to an image: the startability check, then layers, config, manifests.
//!
//! Image layout (documented for users in `images/README.md`):
//! - base layer: `/etc/passwd` and `/etc/group` (root 0 and `nonroot` 65532), `/tmp` (1777),
//!   `/home/nonroot` (owned by 65532), the CA bundle at [`CA_CERTS`] unless opted out, and
//!   `/usr/share/zoneinfo` when asked for;
//! - libs layer (only with `--bundle-libs`): the interpreter and the DT_NEEDED closure;
//! - app layer: the binary at `/app/NAME` (0755, root-owned) and the extra files.
//!
//! The check runs first: if any entrypoint cannot start in the image as planned, the build is
//! refused with every problem's message and nothing is staged or written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::MediaType;

use super::blob::BlobRef;
use super::image::{
    config_json, descriptor, index_json, manifest_json, rfc3339, HistoryLayer, Settings, CREATED,
};
use super::layer::{write_layer, Compression, Entry, LayerContents};
use super::output::{DockerImage, Output, StagedImage};
use super::Error;
use crate::elf::{self, Analysis, Platform};

/// Where the CA bundle goes in the image (and where it is read from on the build host).
pub const CA_CERTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The directory holding the application binary in the image.
pub const APP_DIR: &str = "/app";
/// The default `User`: `nonroot`.
pub const NONROOT: &str = "65532:65532";
/// The default `PATH`.
pub const DEFAULT_PATH: &str = "/app:/usr/local/bin:/usr/bin:/bin";

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";

/// A binary to put in the image, with its analysis.
#[derive(Debug, Clone)]
pub struct Binary {
    /// The file on the build host.
    pub path: PathBuf,
    /// What `elf::analyze_file` found.
    pub analysis: Analysis,
}

impl Binary {
    /// Reads and analyses `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let analysis = elf::analyze_file(path).map_err(|source| Error::Analysis {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            analysis,
        })
    }
}

/// A host file or directory copied into the app layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// The host path.
    pub host: PathBuf,
    /// The absolute image path.
    pub image_path: String,
}

/// Everything a build needs, from flags or a spec file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The program's name: the binary goes to `/app/NAME`.
    pub name: String,
    /// One binary per platform.
    pub binaries: Vec<Binary>,
    /// Requested platforms (`--platform`); empty: those of the binaries.
    pub platforms: Vec<Platform>,
    /// Extra files for the app layer.
    pub files: Vec<ExtraFile>,
    /// Config settings; an empty entrypoint means `/app/NAME`; `user` None means nonroot.
    pub settings: Settings,
    /// The host CA bundle to include, or None.
    pub ca_certs: Option<PathBuf>,
    /// The host zoneinfo directory to include, or None.
    pub tzdata: Option<PathBuf>,
    /// Copy the interpreter and libraries from the build host.
    pub bundle_libs: bool,
    /// Layer compression.
    pub compression: Compression,
    /// The image reference, e.g. `server:1.2`; None: `NAME:latest`.
    pub reference: Option<String>,
    /// `SOURCE_DATE_EPOCH`: mtimes and `created`; None: 0.
    pub source_date_epoch: Option<u64>,
}

impl Plan {
    /// A plan for `binaries` with the defaults: CA certs from the host, gzip 6, nonroot.
    pub fn new(name: impl Into<String>, binaries: Vec<Binary>) -> Self {
        Self {
            name: name.into(),
            binaries,
            platforms: Vec::new(),
            files: Vec::new(),
            settings: Settings::default(),
            ca_certs: Some(PathBuf::from(CA_CERTS)),
            tzdata: None,
            bundle_libs: false,
            compression: Compression::default(),
            reference: None,
            source_date_epoch: None,
        }
    }

    /// The binary's path in the image.
    pub fn binary_image_path(&self) -> String {
        format!("{APP_DIR}/{}", self.name)
    }

    /// `(reference, tag)`: the full reference and its tag part.
    pub fn reference(&self) -> (String, String) {
        let r = self
            .reference
            .clone()
            .unwrap_or_else(|| format!("{}:latest", self.name));
        let name_end = r.rfind('/').map_or(0, |i| i + 1);
        match r[name_end..].rfind(':') {
            Some(i) => (r.clone(), r[name_end + i + 1..].to_string()),
            None => (format!("{r}:latest"), "latest".to_string()),
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The manifest digest (one platform) or the index digest (several).
    pub digest: String,
    /// The top media type: manifest or index.
    pub media_type: String,
    /// Per platform: `os/arch[/variant]` and manifest digest.
    pub manifests: Vec<(String, String)>,
    /// The image reference it was tagged with.
    pub reference: String,
    /// Messages from the Docker engine, for `--output docker`.
    pub docker: Vec<String>,
}

/// What one platform's image will hold, decided before anything is written.
struct PlatformImage<'a> {
    platform: Platform,
    binary: &'a Binary,
    libs: Vec<elf::BundledFile>,
}

fn platform_of(binary: &Binary, requested: &[Platform]) -> Platform {
    if let Some(p) = &binary.analysis.platform {
        return p.clone();
    }
    // A script (no ELF platform): the requested one, else linux/amd64.
    requested.first().cloned().unwrap_or(Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    })
}

fn base_layer(plan: &Plan) -> Result<LayerContents, Error> {
    let mut c = LayerContents::new();
    let file = |data: &str| Entry::Bytes {
        data: data.as_bytes().to_vec(),
        mode: 0o644,
    };
    c.insert("/etc/passwd", file(PASSWD))?;
    c.insert("/etc/group", file(GROUP))?;
    c.insert(
        "/tmp",
        Entry::Dir {
            mode: 0o1777,
            owner: (0, 0),
        },
    )?;
    c.insert(
        "/root",
        Entry::Dir {
            mode: 0o700,
            owner: (0, 0),
        },
    )?;
    c.insert(
        "/home/nonroot",
        Entry::Dir {
            mode: 0o700,
            owner: (65532, 65532),
        },
    )?;
    if let Some(ca) = &plan.ca_certs {
        if !ca.is_file() {
            return Err(Error::MissingCaCerts {
                path: ca.display().to_string(),
            });
        }
        c.insert(
            CA_CERTS,
            Entry::File {
                host: ca.clone(),
                mode: 0o644,
            },
        )?;
    }
    if let Some(tz) = &plan.tzdata {
        if !tz.is_dir() {
            return Err(Error::Plan(format!(
                "time zone data not found at {}: install the tzdata package, or drop --tzdata",
                tz.display()
            )));
        }
        c.insert_host_tree(tz, "/usr/share/zoneinfo")?;
    }
    Ok(c)
}

fn app_layer(plan: &Plan, binary: &Binary) -> Result<LayerContents, Error> {
    let mut c = LayerContents::new();
    c.insert(
        APP_DIR,
        Entry::Dir {
            mode: 0o755,
            owner: (0, 0),
        },
    )?;
    for f in &plan.files {
        c.insert_host_tree(&f.host, &f.image_path)?;
    }
    c.insert(
        &plan.binary_image_path(),
        Entry::File {
            host: binary.path.clone(),
            mode: 0o755,
        },
    )?;
    Ok(c)
}

fn libs_layer(libs: &[elf::BundledFile]) -> Result<LayerContents, Error> {
    let mut c = LayerContents::new();
    for l in libs {
        c.insert(
            &l.image_path,
            Entry::File {
                host: l.host_path.clone(),
                mode: 0o755,
            },
        )?;
    }
    Ok(c)
}

/// The files of the planned image as an `elf::ImageRoot`, for the check.
fn image_root(layers: &[&LayerContents]) -> elf::ImageRoot {
    let mut root = elf::ImageRoot::default();
    for layer in layers {
        for (path, entry) in layer.entries() {
            let abs = format!("/{path}");
            match entry {
                Entry::File { host, .. } => {
                    root.symlinks.remove(&abs);
                    root.files.insert(abs, host.clone());
                }
                Entry::Symlink { target } => {
                    root.files.remove(&abs);
                    root.symlinks.insert(abs, target.clone());
                }
                Entry::Dir { .. } | Entry::Bytes { .. } => {}
            }
        }
    }
    root
}

/// Decides the per-platform images and runs the startability check; refuses with every
/// problem found.
fn plan_platforms<'a>(
    plan: &'a Plan,
    base: &LayerContents,
) -> Result<Vec<(PlatformImage<'a>, LayerContents, LayerContents)>, Error> {
    if plan.binaries.is_empty() {
        return Err(Error::Plan(
            "nothing to build: pass --binary FILE (or `binary` in the spec)".into(),
        ));
    }
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    let mut out = Vec::new();
    for binary in &plan.binaries {
        let platform = platform_of(binary, &plan.platforms);
        let shown = binary.path.display();
        if let Some(first) = seen.insert(platform.to_string(), &binary.path) {
            return Err(Error::Plan(format!(
                "{} and {shown} are both for {platform}: pass one binary per platform",
                first.display()
            )));
        }
        let mut wrong_platform = false;
        if !plan.platforms.is_empty() && !plan.platforms.contains(&platform) {
            wrong_platform = true;
            let wanted: Vec<String> = plan.platforms.iter().map(|p| p.to_string()).collect();
            problems.push(format!(
                "{shown} is built for {platform}, but the image is for {}: it would fail with \
                 \"exec format error\"; rebuild it for that platform (e.g. GOARCH) or change --platform",
                wanted.join(", ")
            ));
        }
        let libs = if plan.bundle_libs {
            elf::bundle_closure(&binary.analysis, &elf::HostRoot(PathBuf::from("/"))).map_err(
                |source| Error::Analysis {
                    path: binary.path.display().to_string(),
                    source,
                },
            )?
        } else {
            Vec::new()
        };
        let libs_c = libs_layer(&libs)?;
        let app_c = app_layer(plan, binary)?;
        let root = image_root(&[base, &libs_c, &app_c]);
        let target = plan
            .platforms
            .iter()
            .find(|p| **p == platform)
            .cloned()
            .unwrap_or_else(|| platform.clone());
        for p in elf::check(&plan.name, &binary.analysis, &root, Some(&target)) {
            if wrong_platform && p.kind == "wrong-platform" {
                continue;
            }
            problems.push(if plan.binaries.len() > 1 {
                format!("{platform}: {}", p.message)
            } else {
                p.message
            });
        }
        out.push((
            PlatformImage {
                platform,
                binary,
                libs,
            },
            libs_c,
            app_c,
        ));
    }
    for wanted in &plan.platforms {
        if !out.iter().any(|(pi, _, _)| pi.platform == *wanted) {
            problems.push(format!(
                "no binary for {wanted}: pass a --binary built for it, or drop it from --platform"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::NotStartable { problems });
    }
    Ok(out)
}

/// Checks `plan`, then builds the image and writes it to `out`. On any error nothing is left
/// at the destination (see [`Output`]).
pub fn build_image(plan: &Plan, out: &Output) -> Result<BuiltImage, Error> {
    let base = base_layer(plan)?;
    let images = plan_platforms(plan, &base)?;
    let mut settings = plan.settings.clone();
    if settings.entrypoint.is_empty() {
        settings.entrypoint = vec![plan.binary_image_path()];
    }
    if settings.user.is_none() {
        settings.user = Some(NONROOT.to_string());
    }
    if !settings.env.iter().any(|e| e.starts_with("PATH=")) {
        settings.env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if plan.ca_certs.is_some() && !settings.env.iter().any(|e| e.starts_with("SSL_CERT_FILE=")) {
        settings.env.push(format!("SSL_CERT_FILE={CA_CERTS}"));
    }
    let epoch = plan.source_date_epoch.unwrap_or(0);
    let created = rfc3339(epoch);
    let mut annotations = settings.annotations.clone();
    annotations
        .entry(CREATED.to_string())
        .or_insert_with(|| created.clone());
    let (reference, tag) = plan.reference();

    let staging = out.stage()?;
    let base_layer = HistoryLayer {
        layer: write_layer(&staging.blobs, &base, plan.compression, epoch)?,
        created_by: "imgbuild: base (passwd, group, /tmp, CA certificates)".into(),
    };
    let mut manifests = Vec::new();
    let mut docker_images = Vec::new();
    let mut built = Vec::new();
    for (pi, libs_c, app_c) in &images {
        let mut layers = vec![base_layer.clone()];
        if !libs_c.is_empty() {
            layers.push(HistoryLayer {
                layer: write_layer(&staging.blobs, libs_c, plan.compression, epoch)?,
                created_by: format!(
                    "imgbuild: libraries of {} ({} files, --bundle-libs)",
                    plan.name,
                    pi.libs.len()
                ),
            });
        }
        layers.push(HistoryLayer {
            layer: write_layer(&staging.blobs, app_c, plan.compression, epoch)?,
            created_by: format!(
                "imgbuild: {} from {}",
                plan.binary_image_path(),
                pi.binary.path.file_name().map_or_else(
                    || pi.binary.path.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            ),
        });
        let config =
            staging
                .blobs
                .write_bytes(&config_json(&pi.platform, &settings, &created, &layers)?)?;
        let manifest =
            staging
                .blobs
                .write_bytes(&manifest_json(&config, &layers, &annotations)?)?;
        manifests.push(descriptor(
            MediaType::ImageManifest,
            &manifest,
            Some(&pi.platform),
            &BTreeMap::new(),
        )?);
        docker_images.push(DockerImage {
            platform: pi.platform.to_string(),
            config,
            layers: layers.iter().map(|l| l.layer.blob.clone()).collect(),
        });
        built.push((pi.platform.to_string(), manifest));
    }
    let (top, media_type): (BlobRef, MediaType) = if built.len() == 1 {
        (built[0].1.clone(), MediaType::ImageManifest)
    } else {
        let index = index_json(manifests.clone(), &annotations)?;
        (staging.blobs.write_bytes(&index)?, MediaType::ImageIndex)
    };
    let top_platform = (built.len() == 1).then(|| images[0].0.platform.clone());
    let staged = StagedImage {
        top: descriptor(
            media_type.clone(),
            &top,
            top_platform.as_ref(),
            &BTreeMap::new(),
        )?,
        reference: reference.clone(),
        tag,
        images: docker_images,
    };
    let docker = out.commit(staging, &staged)?;
    Ok(BuiltImage {
        digest: top.digest(),
        media_type: media_type.to_string(),
        manifests: built.into_iter().map(|(p, m)| (p, m.digest())).collect(),
        reference,
        docker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(reference: Option<&str>) -> Plan {
        let mut p = Plan::new("server", Vec::new());
        p.reference = reference.map(str::to_string);
        p
    }

    #[test]
    fn reference_defaults_and_tags() {
        assert_eq!(
            plan(None).reference(),
            ("server:latest".into(), "latest".into())
        );
        assert_eq!(
            plan(Some("server:1.2")).reference(),
            ("server:1.2".into(), "1.2".into())
        );
        assert_eq!(
            plan(Some("127.0.0.1:5000/team/server")).reference(),
            ("127.0.0.1:5000/team/server:latest".into(), "latest".into())
        );
    }

    #[test]
    fn empty_plan_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let mut p = plan(None);
        p.ca_certs = None;
        let err = build_image(&p, &Output::OciDir(dest.clone())).unwrap_err();
        assert!(err.to_string().contains("--binary"), "{err}");
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
