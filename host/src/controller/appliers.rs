//! Which [`Applier`] a plugin's intents go through: the host's own, its
//! dry-run twin for plugins loaded with `dryRun`, or one acting as the
//! ServiceAccount a plugin resource names (built on first use, kept while
//! the host runs). A plugin with an identity never falls back to the
//! host's: without a way to act as its account, its writes fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::applier::Applier;
use crate::cluster::client::ServiceAccount;
use crate::plugins::LoadedPlugin;

/// Builds the applier acting as an account (`true`: in dry-run mode).
pub type ImpersonatingApplier =
    Arc<dyn Fn(&ServiceAccount, bool) -> kube::Result<Applier> + Send + Sync>;

/// The appliers acting as accounts, by account and dry run.
type ByAccount = HashMap<(ServiceAccount, bool), Arc<Applier>>;

/// Accounts' appliers kept at once; past this the cache starts over.
const MAX_ACCOUNTS: usize = 256;

#[derive(Clone)]
pub(super) struct Appliers {
    pub host: Arc<Applier>,
    pub dry_run: Arc<Applier>,
    pub impersonating: Option<ImpersonatingApplier>,
    by_account: Arc<Mutex<ByAccount>>,
}

/// A plugin whose account the host cannot act as.
#[derive(Debug, thiserror::Error)]
pub enum NoApplier {
    #[error("plugin writes as ServiceAccount {0}, but this host does not impersonate")]
    NoImpersonation(ServiceAccount),
    #[error("cannot build a client acting as ServiceAccount {account}")]
    Client {
        account: ServiceAccount,
        #[source]
        source: kube::Error,
    },
}

impl Appliers {
    pub fn new(host: Arc<Applier>) -> Self {
        Self {
            dry_run: host.clone(),
            host,
            impersonating: None,
            by_account: Arc::default(),
        }
    }

    /// The applier `loaded`'s intents go through.
    pub fn get(&self, loaded: &LoadedPlugin) -> Result<Arc<Applier>, NoApplier> {
        let dry_run = loaded.dry_run || self.host.dry_run();
        let Some(account) = &loaded.identity else {
            return Ok(if loaded.dry_run {
                self.dry_run.clone()
            } else {
                self.host.clone()
            });
        };
        let Some(make) = &self.impersonating else {
            return Err(NoApplier::NoImpersonation(account.clone()));
        };
        let key = (account.clone(), dry_run);
        let mut cached = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(applier) = cached.get(&key) {
            return Ok(applier.clone());
        }
        let applier = Arc::new(make(account, dry_run).map_err(|source| NoApplier::Client {
            account: account.clone(),
            source,
        })?);
        if cached.len() >= MAX_ACCOUNTS {
            cached.clear();
        }
        cached.insert(key, applier.clone());
        Ok(applier)
    }
}
