//! Fetching a plugin resource's module: the key of a ConfigMap or Secret
//! ([`Place`]: the host's namespace, or a Plugin's own), or an OCI artifact (by tag or digest) through the
//! shared blob store. Every failure is sorted into the bounded reason the
//! resource's status shows.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use crate::oci::{self, BlobStore, Digest, DockerConfig, Problem, Registry, RegistryOptions};
use crate::resources::{KeyRef, ModuleSource, OciSource, Resolved};

/// A module's bytes and what names them.
pub struct Fetched {
    pub component: Arc<Vec<u8>>,
    /// `sha256:` of the component.
    pub component_digest: String,
    /// The manifest digest for an OCI artifact; the component digest
    /// otherwise.
    pub digest: String,
    /// The OCI reference and the manifest digest it resolved to.
    pub resolved: Option<(String, String)>,
    /// Set when the registry could not be asked and this is the digest the
    /// reference last resolved to, from the blob cache: why it is stale.
    pub stale: Option<FetchError>,
}

/// Why a module could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError {
    /// A status reason (`SourceNotFound`, `PullFailed`, …).
    pub reason: &'static str,
    pub message: String,
}

impl FetchError {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Where a resource's ConfigMap, Secret or pull secret is read, and as
/// whom: the host's namespace with the host's client for a ClusterPlugin,
/// the Plugin's own namespace as its ServiceAccount for a Plugin (so the
/// team's RBAC decides what its plugin may read).
#[derive(Clone)]
pub struct Place {
    pub client: kube::Client,
    pub namespace: String,
}

/// What fetching needs: the place of ClusterPlugins' sources, the registry
/// settings and the blob store.
pub struct Fetcher {
    /// Where ConfigMaps, Secrets and pull secrets of ClusterPlugins are read.
    pub host: Place,
    pub registry: RegistryOptions,
    pub store: Option<BlobStore>,
    pub max_component_bytes: u64,
}

impl Fetcher {
    /// Fetches `module`, reading what it names at `place`. An OCI module
    /// whose registry fails is taken from the blob cache if it holds the
    /// digest the reference names or `last` resolved it to.
    pub async fn fetch(
        &self,
        module: &ModuleSource,
        place: &Place,
        last: Option<&Resolved>,
    ) -> Result<Fetched, FetchError> {
        match (&module.oci, &module.config_map, &module.secret) {
            (Some(source), None, None) => self.pull(source, place, last).await,
            (None, Some(key), None) => {
                let api: Api<ConfigMap> = Api::namespaced(place.client.clone(), &place.namespace);
                let what = format!("ConfigMap {}/{}", place.namespace, key.name);
                let found = api
                    .get_opt(&key.name)
                    .await
                    .map_err(|e| read_failed(&what, e))?;
                let map = found.ok_or_else(|| not_found(&what))?;
                let bytes = map
                    .binary_data
                    .as_ref()
                    .and_then(|d| d.get(&key.key))
                    .map(|b| b.0.clone())
                    .or_else(|| {
                        map.data
                            .as_ref()
                            .and_then(|d| d.get(&key.key))
                            .map(|s| s.clone().into_bytes())
                    });
                self.local(bytes, &what, key)
            }
            (None, None, Some(key)) => {
                let api: Api<Secret> = Api::namespaced(place.client.clone(), &place.namespace);
                let what = format!("Secret {}/{}", place.namespace, key.name);
                let found = api
                    .get_opt(&key.name)
                    .await
                    .map_err(|e| read_failed(&what, e))?;
                let secret = found.ok_or_else(|| not_found(&what))?;
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&key.key))
                    .map(|b| b.0.clone());
                self.local(bytes, &what, key)
            }
            // The CRD's rule refuses these; an older CRD might not have.
            _ => Err(FetchError::new(
                "InvalidSpec",
                "set exactly one of module.oci, module.configMap, module.secret",
            )),
        }
    }

    fn local(
        &self,
        bytes: Option<Vec<u8>>,
        what: &str,
        key: &KeyRef,
    ) -> Result<Fetched, FetchError> {
        let bytes = bytes.ok_or_else(|| {
            FetchError::new("SourceNotFound", format!("{what} has no key {:?}", key.key))
        })?;
        if bytes.len() as u64 > self.max_component_bytes {
            return Err(FetchError::new(
                "TooLarge",
                format!(
                    "{what} key {:?} is {} bytes, over the limit of {}",
                    key.key,
                    bytes.len(),
                    self.max_component_bytes
                ),
            ));
        }
        let digest = Digest::of(&bytes).to_string();
        Ok(Fetched {
            component: Arc::new(bytes),
            component_digest: digest.clone(),
            digest,
            resolved: None,
            stale: None,
        })
    }

    async fn pull(
        &self,
        source: &OciSource,
        place: &Place,
        last: Option<&Resolved>,
    ) -> Result<Fetched, FetchError> {
        let reference = oci::parse_reference(&source.reference)
            .map_err(|e| FetchError::new("InvalidSpec", e.to_string()))?;
        let Some(store) = &self.store else {
            return Err(FetchError::new(
                "PullFailed",
                "the host has no OCI cache directory (--oci-cache)",
            ));
        };
        let mut registry =
            Registry::new(&self.registry).map_err(|e| pull_failed(&source.reference, &e))?;
        if let Some(secret) = &source.pull_secret {
            registry = registry.with_credentials(self.pull_secret(&secret.name, place).await?);
        }
        let (pulled, stale) = match registry
            .pull(&reference, store, self.max_component_bytes)
            .await
        {
            Ok(pulled) => (pulled, None),
            Err(e) => {
                let error = pull_failed(&source.reference, &e);
                let known = reference.digest().map(str::to_string).or_else(|| {
                    last.filter(|r| r.reference == source.reference)
                        .map(|r| r.digest.clone())
                });
                let cached = known
                    .and_then(|d| Digest::parse(&d).ok())
                    .and_then(|d| oci::pull_cached(&d, store, self.max_component_bytes).ok())
                    .flatten();
                match cached {
                    Some(pulled) => (pulled, Some(error)),
                    None => return Err(error),
                }
            }
        };
        Ok(Fetched {
            component: Arc::new(pulled.component),
            component_digest: pulled.component_digest.to_string(),
            digest: pulled.manifest_digest.to_string(),
            resolved: Some((source.reference.clone(), pulled.manifest_digest.to_string())),
            stale,
        })
    }

    /// The credentials of a `kubernetes.io/dockerconfigjson` Secret.
    async fn pull_secret(&self, name: &str, place: &Place) -> Result<DockerConfig, FetchError> {
        let api: Api<Secret> = Api::namespaced(place.client.clone(), &place.namespace);
        let what = format!("pull secret {}/{name}", place.namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| read_failed(&what, e))?
            .ok_or_else(|| not_found(&what))?;
        let data: BTreeMap<_, _> = secret.data.unwrap_or_default();
        let json = data.get(".dockerconfigjson").ok_or_else(|| {
            FetchError::new(
                "RegistryAuthFailed",
                format!(
                    "{what} has no .dockerconfigjson key (type kubernetes.io/dockerconfigjson)"
                ),
            )
        })?;
        DockerConfig::parse(&json.0).map_err(|e| {
            FetchError::new(
                "RegistryAuthFailed",
                format!("{what}: {}", crate::ops::error_chain(&e)),
            )
        })
    }
}

fn not_found(what: &str) -> FetchError {
    FetchError::new("SourceNotFound", format!("{what} not found"))
}

fn read_failed(what: &str, error: kube::Error) -> FetchError {
    let reason = match forbidden(&error) {
        Some(Forbidden::Impersonation) => "ImpersonationDenied",
        Some(Forbidden::Access) => "SourceForbidden",
        None => "SourceNotFound",
    };
    FetchError::new(
        reason,
        format!("failed to read {what}: {}", crate::ops::error_chain(&error)),
    )
}

/// Why the API server answered 403.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// The host may not act as the resource's ServiceAccount.
    Impersonation,
    /// The account (or the host) may not do this.
    Access,
}

/// Whether `error` is a 403, and of which kind: the API server's
/// impersonation filter refuses with "cannot impersonate".
pub fn forbidden(error: &kube::Error) -> Option<Forbidden> {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            Some(if status.message.contains("cannot impersonate") {
                Forbidden::Impersonation
            } else {
                Forbidden::Access
            })
        }
        _ => None,
    }
}

fn pull_failed(reference: &str, error: &oci::OciError) -> FetchError {
    let reason = match error {
        oci::OciError::NotAWasmArtifact { .. } => "NotAWasmArtifact",
        oci::OciError::TooLarge { .. } => "TooLarge",
        oci::OciError::Credentials { .. } => "RegistryAuthFailed",
        _ => match error.problem() {
            Some(Problem::AuthFailed) => "RegistryAuthFailed",
            Some(Problem::DigestMismatch) => "DigestMismatch",
            Some(Problem::ImageIndex) => "NotAWasmArtifact",
            _ => "PullFailed",
        },
    };
    let message = crate::ops::error_chain(error);
    let message = if message.contains(reference) {
        message
    } else {
        format!("{reference}: {message}")
    };
    FetchError::new(reason, message)
}
