//! Plugins as OCI artifacts: push a component to a registry and pull it back
//! by tag or digest, in the CNCF TAG Runtime "Wasm OCI Artifact layout"
//! (what `wkg` writes):
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json
//! config    application/vnd.wasm.config.v0+json   (WasmConfig)
//! layer     application/wasm                      (the component's bytes)
//! ```
//!
//! Every pulled blob is verified against its digest (the manifest against
//! the reference's digest or the registry's `Docker-Content-Digest`, config
//! and layer against the manifest) and kept in a content-addressed
//! [`BlobStore`]. Credentials come from a `dockerconfigjson` document
//! ([`auth`]); TLS is always verified, against the platform's roots plus any
//! CA files given.

pub mod auth;
mod errors;
pub mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, Config, ImageLayer};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

pub use auth::{AuthConfigError, DockerConfig};
pub use errors::{OciError, Problem};
pub use oci_client::Reference;
pub use store::{BlobStore, Digest, StoreError};

/// The manifest's media type: an OCI image manifest.
pub const WASM_MANIFEST_MEDIA_TYPE: &str = OCI_IMAGE_MEDIA_TYPE;
/// The config's media type in the Wasm OCI artifact layout.
pub const WASM_MANIFEST_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The one layer's media type: the component's raw bytes.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// `architecture` in the config.
pub const WASM_ARCHITECTURE: &str = "wasm";
/// `os` in the config for a component (WASI preview 2).
pub const COMPONENT_OS: &str = "wasip2";

/// Annotation keys (OCI image spec) the push sets on the manifest.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// How long to wait for a TCP (and TLS) connection to the registry.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read from the registry may take (per read, not per
/// transfer: a large layer on a slow link is fine while bytes flow).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest config blob accepted.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The config blob of a Wasm artifact (`application/vnd.wasm.config.v0+json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 time of the push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub layer_digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentConfig>,
}

/// What the component imports and exports, and the world it targets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentConfig {
    #[serde(default)]
    pub exports: Vec<String>,
    #[serde(default)]
    pub imports: Vec<String>,
    /// `kubewasm:plugin/plugin@0.2.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A component ready to push: its bytes, config and manifest annotations.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub component: Vec<u8>,
    pub config: WasmConfig,
    pub annotations: BTreeMap<String, String>,
}

/// How to reach registries.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// PEM CA certificates trusted besides the platform's roots.
    pub ca_files: Vec<PathBuf>,
    /// A `dockerconfigjson` file with credentials; anonymous without one.
    pub auth_file: Option<PathBuf>,
}

/// A registry client: TLS settings, timeouts and credentials.
pub struct Registry {
    client: oci_client::Client,
    credentials: DockerConfig,
}

/// What a pull produced.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The digest of the manifest the reference resolved to.
    pub manifest_digest: Digest,
    /// The layer's digest: `sha256:` and the component's `Plugin::digest()`.
    pub component_digest: Digest,
    /// The component's bytes (verified).
    pub component: Vec<u8>,
    /// The component's file in the blob store.
    pub path: PathBuf,
    pub config: WasmConfig,
    pub annotations: BTreeMap<String, String>,
    /// Whether the layer came from the blob store rather than the registry.
    pub cached: bool,
}

/// Parses a plugin reference: `registry/repository:tag`,
/// `registry/repository@sha256:…` or both. A reference with neither a tag
/// nor a digest is refused instead of meaning `:latest`, so what serves is
/// always what was named.
pub fn parse_reference(text: &str) -> Result<Reference, OciError> {
    let refuse = |reason: String| OciError::Reference {
        reference: text.to_string(),
        reason,
    };
    let reference: Reference = text
        .parse()
        .map_err(|e: oci_client::ParseError| refuse(e.to_string()))?;
    let last = text.rsplit('/').next().unwrap_or(text);
    if !last.contains(':') && !last.contains('@') {
        return Err(refuse(
            "no tag or digest: name one (`:v1`, `@sha256:…`); `latest` is never assumed".into(),
        ));
    }
    if let Some(digest) = reference.digest() {
        Digest::parse(digest).map_err(refuse)?;
    }
    Ok(reference)
}

/// reqwest needs a process-wide rustls provider; install ring, the one kube
/// already uses, once. An `Err` means one is installed, which is as good.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Registry {
    /// Builds a client: reads the CA files and the credentials file, so a
    /// bad path fails here and names it.
    pub fn new(options: &RegistryOptions) -> Result<Self, OciError> {
        install_crypto_provider();
        let mut extra_root_certificates = Vec::new();
        for path in &options.ca_files {
            let data = std::fs::read(path).map_err(|source| OciError::CaFile {
                path: path.clone(),
                source,
            })?;
            if !data
                .windows(27)
                .any(|w| w == b"-----BEGIN CERTIFICATE-----")
            {
                return Err(OciError::CaNotPem { path: path.clone() });
            }
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let credentials = match &options.auth_file {
            None => DockerConfig::default(),
            Some(path) => {
                let json = std::fs::read(path).map_err(|source| OciError::AuthFile {
                    path: path.clone(),
                    source,
                })?;
                DockerConfig::parse(&json).map_err(|source| OciError::AuthConfig {
                    path: path.clone(),
                    source,
                })?
            }
        };
        let config = ClientConfig {
            extra_root_certificates,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            // An image index is refused, never resolved to some platform.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        // `try_from`, not `Client::new`, which falls back to a default
        // configuration (without the CA) when this one fails.
        let client = oci_client::Client::try_from(config).map_err(OciError::Client)?;
        Ok(Registry {
            client,
            credentials,
        })
    }

    /// Uses `credentials` instead of the credentials file's. One registry
    /// client per set of credentials: `oci_client::Client` keeps the first
    /// token it gets for a registry host.
    pub fn with_credentials(mut self, credentials: DockerConfig) -> Self {
        self.credentials = credentials;
        self
    }

    fn auth_for(&self, reference: &Reference) -> Result<RegistryAuth, OciError> {
        self.credentials
            .credentials(reference.resolve_registry())
            .map_err(|source| OciError::Credentials {
                reference: reference.whole(),
                source,
            })
    }

    /// Pushes `artifact` to `reference` (which needs a tag) and returns the
    /// manifest's digest as the registry now serves it.
    pub async fn push(
        &self,
        reference: &Reference,
        artifact: Artifact,
    ) -> Result<Digest, OciError> {
        if reference.digest().is_some() {
            return Err(OciError::Reference {
                reference: reference.whole(),
                reason: "push needs a tag, not a digest (the digest is known after the push)"
                    .into(),
            });
        }
        let auth = self.auth_for(reference)?;
        let failed = |source| OciError::registry(reference, source);
        let layer_digest = Digest::of(&artifact.component);
        let mut config = artifact.config;
        config.layer_digests = vec![layer_digest.to_string()];
        let config_json = serde_json::to_vec(&config).map_err(OciError::ConfigJson)?;
        let layers = [ImageLayer::new(
            artifact.component,
            WASM_LAYER_MEDIA_TYPE.to_string(),
            None,
        )];
        let config = Config::new(
            config_json,
            WASM_MANIFEST_CONFIG_MEDIA_TYPE.to_string(),
            None,
        );
        let annotations = (!artifact.annotations.is_empty()).then_some(artifact.annotations);
        let mut manifest = OciImageManifest::build(&layers, &config, annotations);
        manifest.media_type = Some(WASM_MANIFEST_MEDIA_TYPE.to_string());
        self.client
            .push(reference, &layers, config, &auth, Some(manifest))
            .await
            .map_err(failed)?;
        // `PushResponse` has only URLs: ask the registry what the tag names.
        let digest = self
            .client
            .fetch_manifest_digest(reference, &auth)
            .await
            .map_err(failed)?;
        Digest::parse(&digest).map_err(|reason| OciError::NotAWasmArtifact {
            reference: reference.whole(),
            reason: format!("the registry answered the manifest digest {reason}"),
        })
    }

    /// Pulls the artifact `reference` names into `store` (verifying every
    /// digest) and returns the component. A layer already in the store is
    /// not downloaded again. Layers over `max_component_bytes` are refused
    /// before they are downloaded.
    pub async fn pull(
        &self,
        reference: &Reference,
        store: &BlobStore,
        max_component_bytes: u64,
    ) -> Result<Pulled, OciError> {
        let auth = self.auth_for(reference)?;
        let failed = |source| OciError::registry(reference, source);
        let not_wasm = |reason: String| OciError::NotAWasmArtifact {
            reference: reference.whole(),
            reason,
        };
        let (body, digest) = self
            .client
            .pull_manifest_raw(reference, &auth, &[WASM_MANIFEST_MEDIA_TYPE])
            .await
            .map_err(failed)?;
        let manifest_digest = Digest::parse(&digest).map_err(not_wasm)?;
        let manifest: OciImageManifest = serde_json::from_slice(&body)
            .map_err(|e| not_wasm(format!("its manifest is not an OCI image manifest: {e}")))?;
        check_layout(&manifest).map_err(not_wasm)?;
        store.put(&manifest_digest, &body)?;

        let config_bytes = self
            .blob(reference, store, &manifest.config, MAX_CONFIG_BYTES)
            .await?
            .0;
        let config: WasmConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| not_wasm(format!("its config is not a Wasm config: {e}")))?;
        let layer = &manifest.layers[0];
        let (component, cached) = self
            .blob(reference, store, layer, max_component_bytes)
            .await?;
        let component_digest = Digest::parse(&layer.digest).map_err(not_wasm)?;
        Ok(Pulled {
            path: store.path(&component_digest),
            manifest_digest,
            component_digest,
            component,
            config,
            annotations: manifest.annotations.unwrap_or_default(),
            cached,
        })
    }

    /// One blob from the store, or from the registry into the store.
    async fn blob(
        &self,
        reference: &Reference,
        store: &BlobStore,
        descriptor: &OciDescriptor,
        limit: u64,
    ) -> Result<(Vec<u8>, bool), OciError> {
        let digest =
            Digest::parse(&descriptor.digest).map_err(|reason| OciError::NotAWasmArtifact {
                reference: reference.whole(),
                reason,
            })?;
        if let Some(bytes) = store.get(&digest)? {
            return Ok((bytes, true));
        }
        let size = u64::try_from(descriptor.size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(OciError::TooLarge {
                reference: reference.whole(),
                digest: digest.to_string(),
                size,
                limit,
            });
        }
        let mut buffer = LimitedBuffer::new(limit);
        // `pull_blob` hashes the stream and fails on a digest mismatch.
        self.client
            .pull_blob(reference, descriptor, &mut buffer)
            .await
            .map_err(|source| OciError::registry(reference, source))?;
        store.put(&digest, &buffer.bytes)?;
        Ok((buffer.bytes, false))
    }
}

/// The artifact whose manifest digest is `digest`, as an earlier pull left
/// it in `store`, without asking the registry: what a host restarted while
/// the registry is unreachable serves. `None` if the manifest or a blob is
/// not cached (or no longer matches its digest).
pub fn pull_cached(
    digest: &Digest,
    store: &BlobStore,
    max_component_bytes: u64,
) -> Result<Option<Pulled>, OciError> {
    let not_wasm = |reason: String| OciError::NotAWasmArtifact {
        reference: digest.to_string(),
        reason,
    };
    let Some(body) = store.get(digest)? else {
        return Ok(None);
    };
    let manifest: OciImageManifest = serde_json::from_slice(&body)
        .map_err(|e| not_wasm(format!("its manifest is not an OCI image manifest: {e}")))?;
    check_layout(&manifest).map_err(not_wasm)?;
    let blob = |descriptor: &OciDescriptor| -> Result<Option<(Digest, Vec<u8>)>, OciError> {
        let digest = Digest::parse(&descriptor.digest).map_err(not_wasm)?;
        Ok(store.get(&digest)?.map(|bytes| (digest, bytes)))
    };
    let Some((_, config_bytes)) = blob(&manifest.config)? else {
        return Ok(None);
    };
    let config: WasmConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| not_wasm(format!("its config is not a Wasm config: {e}")))?;
    let Some((component_digest, component)) = blob(&manifest.layers[0])? else {
        return Ok(None);
    };
    if component.len() as u64 > max_component_bytes {
        return Err(OciError::TooLarge {
            reference: digest.to_string(),
            digest: component_digest.to_string(),
            size: component.len() as u64,
            limit: max_component_bytes,
        });
    }
    Ok(Some(Pulled {
        path: store.path(&component_digest),
        manifest_digest: digest.clone(),
        component_digest,
        component,
        config,
        annotations: manifest.annotations.unwrap_or_default(),
        cached: true,
    }))
}

/// Checks the manifest is a Wasm artifact: the config's media type and
/// exactly one `application/wasm` layer.
fn check_layout(manifest: &OciImageManifest) -> Result<(), String> {
    if let Some(media_type) = manifest.media_type.as_deref()
        && media_type != WASM_MANIFEST_MEDIA_TYPE
    {
        return Err(format!(
            "its manifest is {media_type}, not {WASM_MANIFEST_MEDIA_TYPE}"
        ));
    }
    if manifest.config.media_type != WASM_MANIFEST_CONFIG_MEDIA_TYPE {
        return Err(format!(
            "its config is {}, not {WASM_MANIFEST_CONFIG_MEDIA_TYPE} (a container image?)",
            manifest.config.media_type
        ));
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER_MEDIA_TYPE => Ok(()),
        [layer] => Err(format!(
            "its layer is {}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        )),
        layers => Err(format!(
            "it has {} layers; a Wasm artifact has exactly one",
            layers.len()
        )),
    }
}

/// An in-memory `AsyncWrite` that fails once more than `limit` bytes
/// arrive, whatever the descriptor claimed.
struct LimitedBuffer {
    bytes: Vec<u8>,
    limit: u64,
}

impl LimitedBuffer {
    fn new(limit: u64) -> Self {
        LimitedBuffer {
            bytes: Vec::new(),
            limit,
        }
    }
}

impl tokio::io::AsyncWrite for LimitedBuffer {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.bytes.len() as u64 + buf.len() as u64 > this.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "blob larger than its limit of {} bytes",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests;
