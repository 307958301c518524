//! Registry credentials and challenges: docker's `config.json` (`auths`, `credsStore`,
//! `credHelpers` through `docker-credential-NAME get`) and `WWW-Authenticate` parsing.
//!
//! Credentials never appear in `Debug` output or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use super::Error;

/// A user name and secret for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (`AWS` for ECR).
    pub username: String,
    /// The password or token.
    pub password: String,
    /// An OAuth2 refresh token (docker's `identitytoken`), used instead of the password in the
    /// Bearer token flow.
    pub identity_token: Option<String>,
}

impl Credentials {
    /// Username/password credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a registry's `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic,
    /// The Bearer token flow.
    Bearer {
        /// The token server URL.
        realm: String,
        /// The `service` parameter to send it.
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (`Bearer realm="...",service="..."`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        })
    } else {
        None
    }
}

/// `key="value", key2=value2` (quoted values may hold commas and `\"`).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key, value);
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Where docker keeps its client config: `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The host part of a config key (`https://host:5000/v1/` → `host:5000`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The names docker may have stored `registry`'s credentials under.
fn is_same_registry(key: &str, registry: &str) -> bool {
    let hub = |h: &str| {
        matches!(
            h,
            "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.docker.io"
        )
    };
    let k = key_host(key);
    k == registry || (hub(k) && hub(registry))
}

/// Looks up credentials for `registry` (`host[:port]`) in docker's client config. `Ok(None)`
/// when there is no config or it holds nothing for this registry.
pub fn from_docker_config(registry: &str) -> Result<Option<Credentials>, Error> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    from_docker_config_at(&path, registry)
}

/// [`from_docker_config`] reading the config at `path`.
pub fn from_docker_config_at(path: &Path, registry: &str) -> Result<Option<Credentials>, Error> {
    lookup(path, registry, None)
}

/// The lookup, running credential helpers from `helper_dir` instead of `PATH` when given.
fn lookup(
    path: &Path,
    registry: &str,
    helper_dir: Option<&Path>,
) -> Result<Option<Credentials>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.into(),
                source,
            })
        }
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| Error::DockerConfig {
        path: path.into(),
        detail: e.to_string(),
    })?;
    let hub_key = "https://index.docker.io/v1/";
    let server_url = |key: Option<&String>| {
        key.cloned().unwrap_or_else(|| {
            if is_same_registry(hub_key, registry) {
                hub_key.to_string()
            } else {
                registry.to_string()
            }
        })
    };
    if let Some((key, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| is_same_registry(k, registry))
    {
        return run_helper(helper, &server_url(Some(key)), helper_dir);
    }
    let entry = config
        .auths
        .iter()
        .find(|(k, _)| is_same_registry(k, registry));
    if let Some(store) = &config.creds_store {
        if let Some(creds) = run_helper(store, &server_url(entry.map(|(k, _)| k)), helper_dir)? {
            return Ok(Some(creds));
        }
    }
    let Some((_, entry)) = entry else {
        return Ok(None);
    };
    let bad = |detail: String| Error::DockerConfig {
        path: path.into(),
        detail,
    };
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad(format!("the `auth` of {registry} is not base64")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| bad(format!("the `auth` of {registry} is not UTF-8")))?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or_else(|| bad(format!("the `auth` of {registry} is not user:password")))?;
        username = Some(u.into());
        password = Some(p.into());
    }
    let identity_token = entry.identitytoken.clone().filter(|t| !t.is_empty());
    match (username, password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u,
            password: p,
            identity_token,
        })),
        _ if identity_token.is_some() => Ok(Some(Credentials {
            username: String::new(),
            password: String::new(),
            identity_token,
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-NAME get` with `server_url` on stdin.
fn run_helper(
    name: &str,
    server_url: &str,
    helper_dir: Option<&Path>,
) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{name}");
    let executable = helper_dir.map_or_else(|| PathBuf::from(&program), |d| d.join(&program));
    let fail = |detail: String| Error::CredentialHelper {
        helper: program.clone(),
        detail,
    };
    let mut child = Command::new(&executable)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run it ({e}); install it or remove it from docker's config.json"
            ))
        })?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(server_url.as_bytes())
        .map_err(|e| fail(format!("writing its input: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for it: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        if msg.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("`get {server_url}` failed: {msg}")));
    }
    let parsed: HelperOutput = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("its output is not the expected JSON: {e}")))?;
    Ok(Some(if parsed.username == "<token>" {
        Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(parsed.secret),
        }
    } else {
        Credentials::basic(parsed.username, parsed.secret)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            parse_challenge(
                r#"Basic realm="https://1.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#
            ),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:9/t"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/t".into(),
                service: None
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret:x");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"https://reg.example:5000": {{"auth": "{auth}"}},
                    "https://index.docker.io/v1/": {{"auth": "{auth}"}}}}}}"#
            ),
        )
        .unwrap();
        let c = from_docker_config_at(&path, "reg.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!(c, Credentials::basic("me", "s3cret:x"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(from_docker_config_at(&path, "registry-1.docker.io")
            .unwrap()
            .is_some());
        assert!(from_docker_config_at(&path, "other:5000")
            .unwrap()
            .is_none());
        assert!(
            from_docker_config_at(&dir.path().join("none.json"), "reg.example:5000")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn runs_credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-imgbuildtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread url\n[ \"$url\" = \"h.example\" ] || { echo 'credentials not found in native keychain'; exit 1; }\necho '{\"ServerURL\":\"h.example\",\"Username\":\"u\",\"Secret\":\"p\"}'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers": {"h.example": "imgbuildtest"}}"#).unwrap();
        let c = lookup(&path, "h.example", Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(c, Credentials::basic("u", "p"));
        std::fs::write(&path, r#"{"credsStore": "imgbuildtest"}"#).unwrap();
        assert!(lookup(&path, "other.example", Some(dir.path()))
            .unwrap()
            .is_none());
    }
}
