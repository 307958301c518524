//! Image references in docker's grammar: `host[:port]/repo[:tag][@digest]`, docker.io defaults.
//!
//! The first path component is a registry host when it contains a `.` or a `:`, or is
//! `localhost` (docker's rule); otherwise the reference names Docker Hub, whose API host is
//! `registry-1.docker.io` and whose one-component repositories live under `library/`.
//! [`Reference::name`] keeps the registry as the user spelled it, so what we print back
//! (`NAME@sha256:...`) reads like the input; [`Reference::registry`] is the host to talk to.

use std::fmt;

/// Docker Hub's registry API host.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// The longest repository path docker accepts.
const MAX_NAME_LEN: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The reference is empty.
    #[error("empty image reference: expected host[:port]/repo[:tag][@digest]")]
    Empty,
    /// A repository path component has characters docker does not allow.
    #[error(
        "invalid repository name {component:?} in {reference:?}: path components are lowercase \
         letters, digits and single separators (. _ __ -), e.g. my-registry:5000/team/app:1"
    )]
    InvalidRepository {
        /// The whole reference.
        reference: String,
        /// The offending component.
        component: String,
    },
    /// The registry host part is malformed.
    #[error("invalid registry host {host:?} in {reference:?}: expected host[:port]")]
    InvalidHost {
        /// The whole reference.
        reference: String,
        /// The offending host.
        host: String,
    },
    /// The tag is malformed.
    #[error(
        "invalid tag {tag:?} in {reference:?}: a tag is up to 128 letters, digits, _ . - \
         and does not start with . or -"
    )]
    InvalidTag {
        /// The whole reference.
        reference: String,
        /// The offending tag.
        tag: String,
    },
    /// The digest is malformed.
    #[error("invalid digest {digest:?} in {reference:?}: expected sha256:<64 lowercase hex>")]
    InvalidDigest {
        /// The whole reference.
        reference: String,
        /// The offending digest.
        digest: String,
    },
    /// The repository path is too long.
    #[error("repository name in {reference:?} is longer than {MAX_NAME_LEN} characters")]
    TooLong {
        /// The whole reference.
        reference: String,
    },
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry host as written (`docker.io` when none was written).
    pub domain: String,
    /// The repository path inside the registry, with docker.io's `library/` added.
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), if any.
    pub digest: Option<String>,
    /// Whether the input named the registry explicitly.
    explicit_domain: bool,
    /// The repository path exactly as written (without `library/` added).
    written_path: String,
}

impl Reference {
    /// Parses `s` in docker's reference grammar.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(Error::InvalidDigest {
                        reference: s.into(),
                        digest: d.into(),
                    });
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/');
        let (path, tag) = match rest.rfind(':') {
            Some(i) if last_slash.is_none_or(|j| i > j) => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(Error::InvalidTag {
                    reference: s.into(),
                    tag: t.into(),
                });
            }
        }
        let (domain, written_path, explicit_domain) = match path.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string(), true)
            }
            _ => ("docker.io".to_string(), path.to_string(), false),
        };
        if explicit_domain && !valid_host(&domain) {
            return Err(Error::InvalidHost {
                reference: s.into(),
                host: domain,
            });
        }
        if written_path.is_empty() {
            return Err(Error::InvalidRepository {
                reference: s.into(),
                component: String::new(),
            });
        }
        for component in written_path.split('/') {
            if !valid_component(component) {
                return Err(Error::InvalidRepository {
                    reference: s.into(),
                    component: component.into(),
                });
            }
        }
        if written_path.len() > MAX_NAME_LEN {
            return Err(Error::TooLong {
                reference: s.into(),
            });
        }
        let hub = is_docker_hub(&domain);
        let repository = if hub && !written_path.contains('/') {
            format!("library/{written_path}")
        } else {
            written_path.clone()
        };
        Ok(Reference {
            domain,
            repository,
            tag: tag.map(str::to_string),
            digest,
            explicit_domain,
            written_path,
        })
    }

    /// The registry host to send API requests to (`registry-1.docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        if is_docker_hub(&self.domain) {
            DOCKER_HUB_REGISTRY
        } else {
            &self.domain
        }
    }

    /// The name as the user wrote it, without tag or digest (`app`, `host:5000/team/app`).
    pub fn name(&self) -> String {
        if self.explicit_domain {
            format!("{}/{}", self.domain, self.written_path)
        } else {
            self.written_path.clone()
        }
    }

    /// This reference's name with `tag` instead of its own tag and digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        if !valid_tag(tag) {
            return Err(Error::InvalidTag {
                reference: format!("{}:{tag}", self.name()),
                tag: tag.into(),
            });
        }
        Ok(Reference {
            tag: Some(tag.into()),
            digest: None,
            ..self.clone()
        })
    }

    /// The host part of [`Reference::registry`], without a port (IPv6 brackets removed).
    pub fn host(&self) -> &str {
        host_of(self.registry())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Reference::parse(s)
    }
}

/// The host of a `host[:port]` string, without port or IPv6 brackets.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether `registry` (`host[:port]`) is a loopback address: `localhost`, 127.0.0.0/8, `::1`.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn is_docker_hub(domain: &str) -> bool {
    matches!(
        domain,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, tail.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match name {
        None => true,
        Some(n) => {
            !n.is_empty()
                && n.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        }
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `sha256:<64 lowercase hex>` (and the other registered algorithms' shape).
pub fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let hex_ok = |len: usize| {
        hex.len() == len
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match alg {
        "sha256" => hex_ok(64),
        "sha512" => hex_ok(128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_defaults() {
        let r = Reference::parse("ubuntu").unwrap();
        assert_eq!(r.registry(), DOCKER_HUB_REGISTRY);
        assert_eq!(r.repository, "library/ubuntu");
        assert_eq!(r.tag, None);
        assert_eq!(r.name(), "ubuntu");

        let r = Reference::parse("docker.io/team/app:1.0").unwrap();
        assert_eq!(r.registry(), DOCKER_HUB_REGISTRY);
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.name(), "docker.io/team/app");

        let r = Reference::parse("docker.io/nginx").unwrap();
        assert_eq!(r.repository, "library/nginx");
    }

    #[test]
    fn hosts_ports_and_localhost() {
        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.repository, "app");
        assert!(is_loopback(r.registry()));

        let r = Reference::parse("127.0.0.1:5000/team/app:v2").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.host(), "127.0.0.1");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert!(is_loopback(r.registry()));

        let r = Reference::parse("registry:5000/app").unwrap();
        assert_eq!(r.registry(), "registry:5000");

        let r = Reference::parse("[::1]:5000/app:x").unwrap();
        assert_eq!(r.host(), "::1");
        assert!(is_loopback(r.registry()));

        let r = Reference::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1").unwrap();
        assert_eq!(r.registry(), "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        assert!(!is_loopback(r.registry()));

        // A first component without . or : is a path component on Docker Hub.
        let r = Reference::parse("team/app").unwrap();
        assert_eq!(r.registry(), DOCKER_HUB_REGISTRY);
        assert_eq!(r.repository, "team/app");
    }

    #[test]
    fn tags_and_digests() {
        let r = Reference::parse(&format!("host:5000/app:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.to_string(), format!("host:5000/app:1@{D}"));

        let r = Reference::parse(&format!("host:5000/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.registry(), "host:5000");

        let t = r.with_tag("latest").unwrap();
        assert_eq!(t.to_string(), "host:5000/app:latest");
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Reference::parse(""), Err(Error::Empty));
        assert!(matches!(
            Reference::parse("Host/App"),
            Err(Error::InvalidRepository { .. })
        ));
        assert!(matches!(
            Reference::parse("host:5000/app:-bad"),
            Err(Error::InvalidTag { .. })
        ));
        assert!(matches!(
            Reference::parse("app@sha256:abc"),
            Err(Error::InvalidDigest { .. })
        ));
        assert!(matches!(
            Reference::parse("host:port/app"),
            Err(Error::InvalidHost { .. })
        ));
        assert!(matches!(
            Reference::parse("host/a//b"),
            Err(Error::InvalidRepository { .. })
        ));
        assert!(matches!(
            Reference::parse("host/a..b"),
            Err(Error::InvalidRepository { .. })
        ));
        assert!(Reference::parse("host/a__b-c--d.e").is_ok());
        assert!(Reference::parse(&format!("h.io/{}", "a".repeat(256))).is_err());
        assert!(Reference::parse("h.io/app:").is_err());
    }
}
