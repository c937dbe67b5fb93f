//! Clients that act as a ServiceAccount: a namespaced `Plugin`'s writes
//! (and the reads of its module) are sent as the account it names, so the
//! API server authorizes them against that account's RBAC and a host bug
//! cannot widen what the plugin may change.
//!
//! kube applies `auth_info.impersonate` as an `Impersonate-User` header
//! (its `extra_headers_layer`). No `Impersonate-Group` is sent, so the API
//! server gives the request the account's own groups
//! (`system:serviceaccounts`, `system:serviceaccounts:<namespace>`,
//! `system:authenticated`). The host needs `impersonate` on that
//! ServiceAccount (`deploy/rbac.yaml`, ClusterRole `kubewasm-impersonate`,
//! bound per namespace); without it every request answers 403.
//!
//! Each client is built on the host's connection: the same timeouts, the
//! same write fence (only the leader writes) and the same rate limiter
//! (impersonation adds no request budget).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::{Connection, FenceLayer, ThrottleLayer};

/// Clients kept at once; past this the cache starts over (a client is
/// cheap to build, a connection pool is per client).
const MAX_CLIENTS: usize = 256;

/// A ServiceAccount by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccount {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The account, if both names are valid: they go into the
    /// `Impersonate-User` header, where a `:` or a line break would name
    /// another user or break the request.
    pub fn checked(namespace: &str, name: &str) -> Result<Self, crate::contract::names::NameError> {
        crate::contract::names::validate_namespace(namespace)?;
        crate::contract::names::validate_name("", "ServiceAccount", name)?;
        Ok(Self::new(namespace, name))
    }

    /// The user name the API server gives the account's tokens.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }
}

impl fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Builds and caches the clients that act as ServiceAccounts.
#[derive(Clone)]
pub struct Impersonation {
    connection: Connection,
    fence: FenceLayer,
    throttle: ThrottleLayer,
    clients: Arc<Mutex<HashMap<ServiceAccount, kube::Client>>>,
}

impl Impersonation {
    /// Clients on `connection` behind the host's `fence` and `throttle`.
    pub fn new(connection: Connection, fence: FenceLayer, throttle: ThrottleLayer) -> Self {
        Self {
            connection,
            fence,
            throttle,
            clients: Arc::default(),
        }
    }

    /// The client acting as `account`.
    pub fn client(&self, account: &ServiceAccount) -> kube::Result<kube::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(account) {
            return Ok(client.clone());
        }
        let client = self.connection.client_as(
            self.fence.clone(),
            &self.throttle,
            Some(account.username()),
        )?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(account.clone(), client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_named_as_the_api_server_names_its_tokens() {
        let account = ServiceAccount::new("team-a", "labeller");
        assert_eq!(account.username(), "system:serviceaccount:team-a:labeller");
        assert_eq!(account.to_string(), "team-a/labeller");
    }

    #[test]
    fn names_that_would_impersonate_someone_else_are_refused() {
        assert!(ServiceAccount::checked("team-a", "labeller").is_ok());
        for (namespace, name) in [
            ("team-a", "bot:admin"),
            ("team-a", "bot\r\nImpersonate-Group: system:masters"),
            ("team-a", ""),
            ("kube-system:x", "bot"),
            ("team-a", "Bot"),
        ] {
            assert!(
                ServiceAccount::checked(namespace, name).is_err(),
                "{namespace}/{name:?} accepted"
            );
        }
    }
}
