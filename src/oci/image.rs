//! Image configuration, manifests and indexes, as canonical JSON (oci-spec types, keys sorted).

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};

use super::blob::BlobRef;
use super::layer::Layer;
use super::{canonical_json, Error};
use crate::elf::Platform;

/// Annotation naming a manifest in an OCI layout's `index.json` (the tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation with the image's creation time.
pub const CREATED: &str = "org.opencontainers.image.created";

/// The runtime settings of an image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd` (arguments after the entrypoint).
    pub cmd: Vec<String>,
    /// `Env`, `KEY=VALUE` in order.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `User` (`uid:gid` or a name from the image's /etc/passwd).
    pub user: Option<String>,
    /// `ExposedPorts`, as `8080/tcp`.
    pub ports: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
}

/// One layer of an image with the history line describing it.
#[derive(Debug, Clone)]
pub struct HistoryLayer {
    /// The layer.
    pub layer: Layer,
    /// What made it, e.g. `imgbuild: base (CA certificates, passwd, /tmp)`.
    pub created_by: String,
}

/// Formats seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn spec_err(e: oci_spec::OciSpecError) -> Error {
    Error::Plan(format!("building image metadata: {e}"))
}

fn digest(blob: &BlobRef) -> Result<oci_spec::image::Digest, Error> {
    blob.digest()
        .parse()
        .map_err(|e: oci_spec::OciSpecError| spec_err(e))
}

fn hash_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The OCI platform of an `elf` platform.
pub fn oci_platform(p: &Platform) -> Result<oci_spec::image::Platform, Error> {
    let mut b = PlatformBuilder::default()
        .architecture(Arch::from(p.architecture.as_str()))
        .os(Os::from(p.os.as_str()));
    if let Some(v) = &p.variant {
        b = b.variant(v.clone());
    }
    b.build().map_err(spec_err)
}

/// The image configuration JSON.
pub fn config_json(
    platform: &Platform,
    settings: &Settings,
    created: &str,
    layers: &[HistoryLayer],
) -> Result<Vec<u8>, Error> {
    let mut cfg = ConfigBuilder::default();
    if !settings.entrypoint.is_empty() {
        cfg = cfg.entrypoint(settings.entrypoint.clone());
    }
    if !settings.cmd.is_empty() {
        cfg = cfg.cmd(settings.cmd.clone());
    }
    if !settings.env.is_empty() {
        cfg = cfg.env(settings.env.clone());
    }
    if let Some(w) = &settings.workdir {
        cfg = cfg.working_dir(w.clone());
    }
    if let Some(u) = &settings.user {
        cfg = cfg.user(u.clone());
    }
    if !settings.ports.is_empty() {
        cfg = cfg.exposed_ports(settings.ports.clone());
    }
    if !settings.labels.is_empty() {
        cfg = cfg.labels(hash_map(&settings.labels));
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.layer.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(spec_err)?;
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.to_string())
                .created_by(l.created_by.clone())
                .build()
                .map_err(spec_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut b = ImageConfigurationBuilder::default()
        .created(created.to_string())
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()))
        .config(cfg.build().map_err(spec_err)?)
        .rootfs(rootfs)
        .history(history);
    if let Some(v) = &platform.variant {
        b = b.variant(v.clone());
    }
    canonical_json(&b.build().map_err(spec_err)?)
}

/// A descriptor for `blob` of `media_type`.
pub fn descriptor(
    media_type: MediaType,
    blob: &BlobRef,
    platform: Option<&Platform>,
    annotations: &BTreeMap<String, String>,
) -> Result<Descriptor, Error> {
    let mut b = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest(blob)?)
        .size(blob.size);
    if let Some(p) = platform {
        b = b.platform(oci_platform(p)?);
    }
    if !annotations.is_empty() {
        b = b.annotations(hash_map(annotations));
    }
    b.build().map_err(spec_err)
}

/// The image manifest JSON.
pub fn manifest_json(
    config: &BlobRef,
    layers: &[HistoryLayer],
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, Error> {
    let layers = layers
        .iter()
        .map(|l| {
            descriptor(
                l.layer.media_type.clone(),
                &l.layer.blob,
                None,
                &BTreeMap::new(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut b = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            config,
            None,
            &BTreeMap::new(),
        )?)
        .layers(layers);
    if !annotations.is_empty() {
        b = b.annotations(hash_map(annotations));
    }
    canonical_json(&b.build().map_err(spec_err)?)
}

/// An image index JSON listing `manifests`.
pub fn index_json(
    manifests: Vec<Descriptor>,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, Error> {
    let mut b = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if !annotations.is_empty() {
        b = b.annotations(hash_map(annotations));
    }
    canonical_json(&b.build().map_err(spec_err)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn config_json_is_canonical() {
        let p = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        let mut s = Settings::default();
        for i in 0..20 {
            s.labels.insert(format!("k{i}"), "v".into());
            s.ports.push(format!("{}/tcp", 8000 + i));
        }
        let a = config_json(&p, &s, "1970-01-01T00:00:00Z", &[]).unwrap();
        for _ in 0..5 {
            assert_eq!(a, config_json(&p, &s, "1970-01-01T00:00:00Z", &[]).unwrap());
        }
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["architecture"], "amd64");
        assert_eq!(
            v["config"]["ExposedPorts"]["8000/tcp"],
            serde_json::json!({})
        );
    }
}
