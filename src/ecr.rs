//! ECR: registry-host recognition, credentials from GetAuthorizationToken (aws-sdk-ecr), and
//! repository creation.
//!
//! A registry host in one of ECR's shapes (`<account>.dkr.ecr.<region>.amazonaws.com`, the
//! `ecr-fips` and dual-stack `dkr-ecr` variants, the China and isolated partitions) gets its
//! Basic credentials (`AWS` and a 12-hour token) from `GetAuthorizationToken`, called with the
//! normal AWS credential chain (environment, `AWS_PROFILE`, CodeBuild/ECS/EC2 roles). The SDK
//! honours `AWS_ENDPOINT_URL_ECR` and `AWS_ENDPOINT_URL`, which is how tests and LocalStack
//! users point it elsewhere. Tokens are cached for the process and refreshed well before they
//! expire. Errors never include a token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
use base64::Engine;

use crate::registry::{self, Credentials};

/// A token this close to expiry is replaced before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// Why an ECR call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An ECR API call failed.
    #[error("ECR {operation} in {region}: {detail}{}", hint(.code.as_deref()))]
    Api {
        /// The API operation.
        operation: &'static str,
        /// The region called.
        region: String,
        /// The AWS error code, if any.
        code: Option<String>,
        /// The SDK's full message.
        detail: String,
    },
    /// GetAuthorizationToken answered without a usable token.
    #[error("ECR GetAuthorizationToken in {region} returned no usable token: {detail}")]
    BadToken {
        /// The region called.
        region: String,
        /// What was wrong with it.
        detail: String,
    },
}

fn hint(code: Option<&str>) -> &'static str {
    match code {
        Some("AccessDeniedException") => {
            " (the AWS identity lacks this ECR permission: grant it in the role or user policy)"
        }
        Some("UnrecognizedClientException") | Some("InvalidClientTokenId") => {
            " (the AWS credentials are not valid: check AWS_PROFILE / the access keys)"
        }
        Some("ExpiredTokenException") => " (the AWS session credentials have expired: renew them)",
        _ => "",
    }
}

/// An ECR registry named by its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRegistry {
    /// The 12-digit AWS account id.
    pub account: String,
    /// The region (`us-east-1`).
    pub region: String,
    /// Whether it is a FIPS endpoint.
    pub fips: bool,
}

/// The partition suffixes of `dkr.ecr` hosts.
const ECR_SUFFIXES: &[&str] = &[
    "amazonaws.com",
    "amazonaws.com.cn",
    "sc2s.sgov.gov",
    "c2s.ic.gov",
    "cloud.adc-e.uk",
    "csp.hci.ic.gov",
];

/// Recognises an ECR registry host (`host[:port]`), returning its account and region.
pub fn parse_host(registry: &str) -> Option<EcrRegistry> {
    let host = crate::reference::host_of(registry).to_ascii_lowercase();
    let (account, rest) = host.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (service, rest) = rest.split_once('.')?;
    let (region, suffix) = rest.split_once('.')?;
    let fips = match service {
        "dkr" => {
            // `dkr.ecr.<region>.<suffix>` or `dkr.ecr-fips.<region>.<suffix>`
            let (kind, rest) = rest.split_once('.')?;
            let (region, suffix) = rest.split_once('.')?;
            let fips = match kind {
                "ecr" => false,
                "ecr-fips" => true,
                _ => return None,
            };
            if !ECR_SUFFIXES.contains(&suffix) || !valid_region(region) {
                return None;
            }
            return Some(EcrRegistry {
                account: account.into(),
                region: region.into(),
                fips,
            });
        }
        // Dual-stack: `<account>.dkr-ecr.<region>.on.aws`.
        "dkr-ecr" => false,
        "dkr-ecr-fips" => true,
        _ => return None,
    };
    if suffix != "on.aws" || !valid_region(region) {
        return None;
    }
    Some(EcrRegistry {
        account: account.into(),
        region: region.into(),
        fips,
    })
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.contains('-')
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Cached tokens: (account, region) → credentials and expiry.
type TokenCache = HashMap<(String, String), (Credentials, SystemTime)>;
static TOKENS: Mutex<Option<TokenCache>> = Mutex::new(None);

async fn client(reg: &EcrRegistry) -> aws_sdk_ecr::Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(reg.region.clone()))
        .use_fips(reg.fips)
        .load()
        .await;
    aws_sdk_ecr::Client::new(&config)
}

fn api_error<E>(
    operation: &'static str,
    region: &str,
    err: aws_sdk_ecr::error::SdkError<E>,
) -> Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string);
    let mut detail = DisplayErrorContext(&err).to_string();
    if detail.contains("no credentials found in chain")
        || detail.contains("no providers in chain provided credentials")
        || detail.contains("CredentialsNotLoaded")
    {
        detail = "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                  AWS_SECRET_ACCESS_KEY, or run where a role is available (CodeBuild, ECS, EC2)"
            .into();
    }
    Error::Api {
        operation,
        region: region.into(),
        code,
        detail,
    }
}

/// Registry credentials for `reg` (`AWS` and a token), from the cache while the token has more
/// than 15 minutes to live, else from `GetAuthorizationToken`.
pub async fn credentials(reg: &EcrRegistry) -> Result<Credentials, Error> {
    let key = (reg.account.clone(), reg.region.clone());
    if let Some((c, expires)) = TOKENS
        .lock()
        .expect("token cache lock")
        .as_ref()
        .and_then(|m| m.get(&key))
    {
        if SystemTime::now() + REFRESH_MARGIN < *expires {
            return Ok(c.clone());
        }
    }
    let out = client(reg)
        .await
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| api_error("GetAuthorizationToken", &reg.region, e))?;
    let bad = |detail: &str| Error::BadToken {
        region: reg.region.clone(),
        detail: detail.into(),
    };
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| bad("no authorizationData"))?;
    let token = data
        .authorization_token()
        .ok_or_else(|| bad("no authorizationToken"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad("the token is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("the token is not UTF-8"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad("the token is not user:password"))?;
    let creds = Credentials::basic(user, password);
    let expires = data
        .expires_at()
        .and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(12 * 3600));
    TOKENS
        .lock()
        .expect("token cache lock")
        .get_or_insert_with(HashMap::new)
        .insert(key, (creds.clone(), expires));
    Ok(creds)
}

/// Repository settings for [`create_repository`].
#[derive(Debug, Clone, Default)]
pub struct RepositorySettings {
    /// Scan images when they are pushed.
    pub scan_on_push: bool,
    /// Make tags immutable (`None` keeps ECR's default, mutable).
    pub immutable_tags: Option<bool>,
}

/// Creates `repository` in `reg` unless it exists. Returns whether it was created.
pub async fn create_repository(
    reg: &EcrRegistry,
    repository: &str,
    settings: &RepositorySettings,
) -> Result<bool, Error> {
    let mut req = client(reg)
        .await
        .create_repository()
        .registry_id(&reg.account)
        .repository_name(repository)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(settings.scan_on_push)
                .build(),
        );
    if let Some(immutable) = settings.immutable_tags {
        req = req.image_tag_mutability(if immutable {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        });
    }
    match req.send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => Ok(false),
        Err(e) => Err(api_error("CreateRepository", &reg.region, e)),
    }
}

/// An ECR-specific explanation of a registry error, saying what to do; `None` when the generic
/// message is as good.
pub fn explain(err: &registry::Error, reg: &EcrRegistry, repository: &str) -> Option<String> {
    let status = err.status()?;
    let (code, message) = err.registry_error()?;
    let lower = message.to_ascii_lowercase();
    let text = if code == Some("NAME_UNKNOWN") || (status == 404 && lower.contains("repository")) {
        format!(
            "ECR repository {repository:?} does not exist in account {} ({}): pass \
             --create-repository, or run `aws ecr create-repository --repository-name \
             {repository} --region {}`",
            reg.account, reg.region, reg.region
        )
    } else if lower.contains("immutable") {
        format!(
            "the tag already exists in ECR repository {repository:?}, whose tags are immutable: \
             push under a new tag (e.g. the commit id), or make the repository's tags mutable"
        )
    } else if (status == 401 || status == 403) && lower.contains("expired") {
        "the ECR authorization token has expired: run the push again (imgbuild fetches a new \
         token), or renew the AWS session credentials"
            .to_string()
    } else if status == 401 {
        format!(
            "ECR rejected the authorization token for account {}: check that the AWS \
             credentials belong to that account (or to one the repository policy allows)",
            reg.account
        )
    } else if status == 403 {
        format!(
            "access denied by ECR for {repository:?}: the AWS identity needs \
             ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, \
             ecr:CompleteLayerUpload and ecr:PutImage on the repository (and the repository \
             policy must allow it)"
        )
    } else {
        return None;
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ecr_hosts() {
        let r = parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        assert_eq!(
            r,
            EcrRegistry {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                fips: false
            }
        );
        let r = parse_host("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com").unwrap();
        assert!(r.fips);
        assert_eq!(r.region, "us-gov-west-1");
        let r = parse_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn:443").unwrap();
        assert_eq!(r.region, "cn-north-1");
        let r = parse_host("123456789012.dkr-ecr.eu-west-1.on.aws").unwrap();
        assert_eq!(r.region, "eu-west-1");
        assert!(parse_host("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov").is_some());

        for not in [
            "registry-1.docker.io",
            "127.0.0.1:5000",
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.example.com",
            "123456789012.ecr.us-east-1.amazonaws.com",
            "public.ecr.aws",
        ] {
            assert_eq!(parse_host(not), None, "{not}");
        }
    }

    #[test]
    fn explains_ecr_errors() {
        let reg = parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
        let err = |status, code: &str, message: &str| registry::Error::Status {
            what: "x".into(),
            registry: "r".into(),
            status,
            code: Some(code.into()),
            message: message.into(),
            retry_after: None,
        };
        let e = err(
            404,
            "NAME_UNKNOWN",
            "The repository with name 'app' does not exist",
        );
        assert!(explain(&e, &reg, "app")
            .unwrap()
            .contains("--create-repository"));
        let e = err(
            400,
            "TAG_INVALID",
            "The image tag '1' already exists in the 'app' repository and cannot be overwritten because the repository is immutable.",
        );
        assert!(explain(&e, &reg, "app").unwrap().contains("immutable"));
        let e = err(
            403,
            "DENIED",
            "Your authorization token has expired. Reauthenticate and try again.",
        );
        assert!(explain(&e, &reg, "app").unwrap().contains("expired"));
        let e = err(
            403,
            "DENIED",
            "User: arn:aws:iam::1:user/x is not authorized",
        );
        assert!(explain(&e, &reg, "app").unwrap().contains("ecr:PutImage"));
        let e = err(500, "UNKNOWN", "boom");
        assert_eq!(explain(&e, &reg, "app"), None);
    }
}
