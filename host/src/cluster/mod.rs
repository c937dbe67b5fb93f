//! Everything the host knows of the cluster, and how it talks to it:
//!
//! - [`client`]: the Kubernetes client with its timeouts, rate limit, retry
//!   hints and the write fence;
//! - [`discovery`]: which kinds the API server serves, kept current as CRDs
//!   and aggregated APIs come and go;
//! - [`informer`]: one list-watch per subscribed kind, feeding events to the
//!   controller and objects to the [`cache`];
//! - [`cache`]: the read side plugins see through `get` and `list`;
//! - [`object`]: the cache's unit, an object as the text plugins receive
//!   with a header of what the host reads;
//! - [`leader`]: the Lease that lets one replica of several write, and the
//!   [`gate`] it opens for the workers and the write fence.

/// Implements `kube::Resource` for a type with a `metadata: ObjectMeta`
/// field that stands for objects of any kind, addressed (like
/// `DynamicObject`) by the `ApiResource` of its kind: the host's own
/// decodings of what the API server sends.
macro_rules! dynamic_resource {
    ($ty:ty) => {
        impl kube::Resource for $ty {
            type DynamicType = kube::api::ApiResource;
            type Scope = kube::core::DynamicResourceScope;

            fn kind(dt: &kube::api::ApiResource) -> std::borrow::Cow<'_, str> {
                dt.kind.as_str().into()
            }

            fn group(dt: &kube::api::ApiResource) -> std::borrow::Cow<'_, str> {
                dt.group.as_str().into()
            }

            fn version(dt: &kube::api::ApiResource) -> std::borrow::Cow<'_, str> {
                dt.version.as_str().into()
            }

            fn api_version(dt: &kube::api::ApiResource) -> std::borrow::Cow<'_, str> {
                dt.api_version.as_str().into()
            }

            fn plural(dt: &kube::api::ApiResource) -> std::borrow::Cow<'_, str> {
                dt.plural.as_str().into()
            }

            fn meta(&self) -> &kube::api::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use dynamic_resource;

pub mod cache;
pub mod client;
pub mod discovery;
pub mod gate;
pub mod informer;
pub mod leader;
pub mod object;
pub mod shard;
