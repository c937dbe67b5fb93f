//! Registry credentials from a `dockerconfigjson` document: the
//! `.dockerconfigjson` key of a `kubernetes.io/dockerconfigjson` Secret, or a
//! `~/.docker/config.json`.
//!
//! Parsed here rather than with `docker_credential`: that crate runs the
//! `docker-credential-<name>` program a `credsStore` or `credHelpers` entry
//! names, and in the cluster the document comes from a tenant's Secret. So
//! helpers are never run (an entry only they could answer is anonymous), and
//! an `identitytoken` (an OAuth refresh token `oci-client` cannot exchange) is
//! refused rather than silently ignored.

use std::collections::BTreeMap;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// A `dockerconfigjson` document, parsed: registry host → its entry.
#[derive(Debug, Default)]
pub struct DockerConfig {
    /// Keyed by the normalised registry host (`host[:port]`).
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(rename_all = "lowercase")]
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

/// Why a `dockerconfigjson` document or one of its entries is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("not a dockerconfigjson document")]
    Json(#[source] serde_json::Error),
    #[error("auths.{registry:?}.auth is not base64")]
    AuthBase64 {
        registry: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("auths.{registry:?}.auth is not base64 of `user:password` in UTF-8")]
    AuthShape { registry: String },
    #[error("auths.{registry:?} has a username without a password")]
    MissingPassword { registry: String },
    #[error(
        "auths.{registry:?} holds an identitytoken, which kubewasm cannot exchange for \
         registry access: log in with a username and password (or an access token as password)"
    )]
    IdentityToken { registry: String },
}

impl DockerConfig {
    /// Parses a document. Entries are checked when looked up, so one broken
    /// entry does not break the others; `credsStore` and `credHelpers` are
    /// ignored.
    pub fn parse(json: &[u8]) -> Result<Self, AuthConfigError> {
        let raw: RawConfig = serde_json::from_slice(json).map_err(AuthConfigError::Json)?;
        let auths = raw
            .auths
            .into_iter()
            .map(|(key, entry)| (normalise_registry(&key), entry))
            .collect();
        Ok(DockerConfig { auths })
    }

    /// The credentials for `registry` (`host[:port]` as in a reference):
    /// `Anonymous` when the document has no entry for it (or only an empty
    /// one, as `docker login` with a credential helper leaves).
    pub fn credentials(&self, registry: &str) -> Result<RegistryAuth, AuthConfigError> {
        let key = normalise_registry(registry);
        let Some(entry) = self.auths.get(&key) else {
            return Ok(RegistryAuth::Anonymous);
        };
        let registry = key;
        if entry
            .identitytoken
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        {
            return Err(AuthConfigError::IdentityToken { registry });
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|source| AuthConfigError::AuthBase64 {
                    registry: registry.clone(),
                    source,
                })?;
            let text = String::from_utf8(decoded).map_err(|_| AuthConfigError::AuthShape {
                registry: registry.clone(),
            })?;
            let Some((user, password)) = text.split_once(':') else {
                return Err(AuthConfigError::AuthShape { registry });
            };
            return Ok(RegistryAuth::Basic(user.to_string(), password.to_string()));
        }
        match (entry.username.as_deref(), entry.password.as_deref()) {
            (Some(user), Some(password)) if !user.is_empty() => {
                Ok(RegistryAuth::Basic(user.to_string(), password.to_string()))
            }
            (Some(user), None) if !user.is_empty() => {
                Err(AuthConfigError::MissingPassword { registry })
            }
            _ => Ok(RegistryAuth::Anonymous),
        }
    }
}

/// The host of an `auths` key: `https://ghcr.io/v1/` and `ghcr.io` are the
/// same registry; Docker Hub's legacy keys map to the host references use.
fn normalise_registry(key: &str) -> String {
    let host = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "index.docker.io".to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(config: &str, registry: &str) -> Result<RegistryAuth, AuthConfigError> {
        DockerConfig::parse(config.as_bytes())
            .expect("parses")
            .credentials(registry)
    }

    fn assert_basic(auth: RegistryAuth, user: &str, password: &str) {
        match auth {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), (user, password)),
            other => panic!("expected basic auth, got {other:?}"),
        }
    }

    #[test]
    fn auth_field_is_base64_user_and_password() {
        // base64("kubewasm:s3cr:et") — the password may contain ':'.
        let config = r#"{"auths":{"127.0.0.1:5000":{"auth":"a3ViZXdhc206czNjcjpldA=="}}}"#;
        assert_basic(
            basic(config, "127.0.0.1:5000").unwrap(),
            "kubewasm",
            "s3cr:et",
        );
    }

    #[test]
    fn username_and_password_fields() {
        let config = r#"{"auths":{"https://ghcr.io/v1/":{"username":"me","password":"pw"}}}"#;
        assert_basic(basic(config, "ghcr.io").unwrap(), "me", "pw");
    }

    #[test]
    fn docker_hub_legacy_key_matches_resolved_registry() {
        let config = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#;
        assert_basic(basic(config, "index.docker.io").unwrap(), "u", "p");
        assert_basic(basic(config, "docker.io").unwrap(), "u", "p");
    }

    #[test]
    fn other_registry_and_helpers_are_anonymous() {
        // credsStore/credHelpers are never run; an empty entry (what `docker
        // login` leaves beside a helper) carries nothing.
        let config = r#"{"auths":{"ghcr.io":{}},"credsStore":"desktop",
            "credHelpers":{"quay.io":"ecr-login"}}"#;
        assert!(matches!(
            basic(config, "ghcr.io").unwrap(),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            basic(config, "quay.io").unwrap(),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            basic("{}", "ghcr.io").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn identity_token_is_refused_by_name() {
        let config = r#"{"auths":{"myreg.azurecr.io":{"auth":"","identitytoken":"eyJ..."}}}"#;
        let err = basic(config, "myreg.azurecr.io").unwrap_err();
        assert!(matches!(err, AuthConfigError::IdentityToken { .. }));
        assert!(err.to_string().contains("identitytoken"), "{err}");
        assert!(err.to_string().contains("myreg.azurecr.io"), "{err}");
    }

    #[test]
    fn malformed_entries_name_the_registry() {
        let err = basic(r#"{"auths":{"r.io":{"auth":"%%%"}}}"#, "r.io").unwrap_err();
        assert!(matches!(err, AuthConfigError::AuthBase64 { .. }), "{err}");
        // base64("nocolon")
        let err = basic(r#"{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}"#, "r.io").unwrap_err();
        assert!(matches!(err, AuthConfigError::AuthShape { .. }), "{err}");
        assert!(err.to_string().contains("\"r.io\""), "{err}");
        let err = basic(r#"{"auths":{"r.io":{"username":"u"}}}"#, "r.io").unwrap_err();
        assert!(
            matches!(err, AuthConfigError::MissingPassword { .. }),
            "{err}"
        );
        // A broken entry for another registry does not matter.
        assert!(matches!(
            basic(r#"{"auths":{"r.io":{"auth":"%%%"}}}"#, "s.io").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn not_json_is_refused() {
        assert!(matches!(
            DockerConfig::parse(b"auths: {}"),
            Err(AuthConfigError::Json(_))
        ));
    }
}
