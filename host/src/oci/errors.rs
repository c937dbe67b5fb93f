//! Why a push or pull failed: each error names the reference, and a
//! registry failure is sorted into a [`Problem`] a person can act on.

use std::path::PathBuf;

use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};

use super::Reference;
use super::auth::AuthConfigError;
use super::store::StoreError;

/// Why an OCI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("failed to read registry credentials {path}")]
    AuthFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry credentials {path}")]
    AuthConfig {
        path: PathBuf,
        #[source]
        source: AuthConfigError,
    },
    #[error("{reference}: registry credentials")]
    Credentials {
        reference: String,
        #[source]
        source: AuthConfigError,
    },
    #[error("failed to read CA file {path}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    CaNotPem { path: PathBuf },
    #[error("failed to set up the registry client")]
    Client(#[source] OciDistributionError),
    #[error("{reference}: {problem}")]
    Registry {
        reference: String,
        problem: Problem,
        #[source]
        source: OciDistributionError,
    },
    #[error("{reference} is not a Wasm component artifact: {reason}")]
    NotAWasmArtifact { reference: String, reason: String },
    #[error("{reference}: blob {digest} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        reference: String,
        digest: String,
        size: u64,
        limit: u64,
    },
    #[error("failed to encode the artifact's config")]
    ConfigJson(#[source] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What went wrong talking to a registry, in terms of what to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// 401/403, or the token exchange failed.
    AuthFailed,
    /// The server's certificate chain does not lead to a trusted CA.
    UnknownCa,
    /// Another TLS failure (name mismatch, expired, protocol).
    Tls,
    /// The repository, tag, manifest or blob does not exist.
    NotFound,
    /// Content did not hash to the digest naming it.
    DigestMismatch,
    /// No connection (refused, DNS, connect timeout).
    Unreachable,
    /// The registry stopped answering mid-request.
    Timeout,
    /// An image index (several platforms) where one artifact was expected.
    ImageIndex,
    /// Anything else the registry or client reported.
    Other,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Problem::AuthFailed => {
                "registry authentication failed: the credentials were refused or none were given"
            }
            Problem::UnknownCa => {
                "TLS: the registry's certificate is signed by an unknown CA \
                 (trust its CA certificate with --ca FILE)"
            }
            Problem::Tls => "TLS handshake with the registry failed",
            Problem::NotFound => "not found in the registry",
            Problem::DigestMismatch => {
                "digest mismatch: the registry's content does not hash to the digest naming it"
            }
            Problem::Unreachable => "cannot connect to the registry",
            Problem::Timeout => "the registry did not answer in time",
            Problem::ImageIndex => "the reference names an image index, not one Wasm artifact",
            Problem::Other => "registry request failed",
        })
    }
}

impl Problem {
    /// A bounded label for metrics and status reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Problem::AuthFailed => "auth_failed",
            Problem::UnknownCa => "unknown_ca",
            Problem::Tls => "tls",
            Problem::NotFound => "not_found",
            Problem::DigestMismatch => "digest_mismatch",
            Problem::Unreachable => "unreachable",
            Problem::Timeout => "timeout",
            Problem::ImageIndex => "image_index",
            Problem::Other => "other",
        }
    }

    /// Sorts a client error.
    pub fn of(error: &OciDistributionError) -> Problem {
        use OciDistributionError as E;
        match error {
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => Problem::AuthFailed,
            E::DigestError(DigestError::VerificationError { .. }) => Problem::DigestMismatch,
            E::ImageManifestNotFoundError(_) => Problem::NotFound,
            E::ImageIndexParsingNoPlatformResolverError => Problem::ImageIndex,
            E::ServerError {
                code: 401 | 403, ..
            } => Problem::AuthFailed,
            E::ServerError { code: 404, .. } => Problem::NotFound,
            E::RegistryError { envelope, .. } => {
                let codes = || envelope.errors.iter().map(|e| &e.code);
                if codes().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                    Problem::AuthFailed
                } else if codes().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    Problem::NotFound
                } else if codes().any(|c| matches!(c, OciErrorCode::DigestInvalid)) {
                    Problem::DigestMismatch
                } else {
                    Problem::Other
                }
            }
            E::RequestError(e) => request_problem(e),
            _ => Problem::Other,
        }
    }
}

/// A transport error: TLS (by the rustls error in its chain), connect, timeout.
fn request_problem(error: &(dyn std::error::Error + 'static)) -> Problem {
    let mut tls = None;
    let mut next = Some(error);
    while let Some(e) = next {
        // `io::Error::source` skips the error it wraps: look inside it too.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(e), inner].into_iter().flatten() {
            if let Some(rustls_error) = candidate.downcast_ref::<rustls::Error>() {
                tls = Some(match rustls_error {
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                        Problem::UnknownCa
                    }
                    _ => Problem::Tls,
                });
            }
        }
        next = e.source();
    }
    if let Some(problem) = tls {
        return problem;
    }
    // Some layers format the rustls error into their own message.
    let text = crate::error_chain(error);
    if text.contains("UnknownIssuer") {
        return Problem::UnknownCa;
    }
    if text.contains("certificate") || text.contains("InvalidCertificate") {
        return Problem::Tls;
    }
    match error.downcast_ref::<reqwest::Error>() {
        Some(e) if e.is_timeout() => Problem::Timeout,
        Some(e) if e.is_connect() => Problem::Unreachable,
        _ => Problem::Other,
    }
}

impl OciError {
    /// Wraps a client error with the reference and its [`Problem`].
    pub fn registry(reference: &Reference, source: OciDistributionError) -> Self {
        OciError::Registry {
            reference: reference.whole(),
            problem: Problem::of(&source),
            source,
        }
    }

    /// The problem behind a registry failure, if that is what this is.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            OciError::Registry { problem, .. } => Some(*problem),
            _ => None,
        }
    }

    /// True for errors in what the user gave (reference, files), not the
    /// registry's answer.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            OciError::Reference { .. }
                | OciError::AuthFile { .. }
                | OciError::AuthConfig { .. }
                | OciError::Credentials { .. }
                | OciError::CaFile { .. }
                | OciError::CaNotPem { .. }
        )
    }
}
