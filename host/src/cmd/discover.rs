//! `kubewasm discover`: the kinds the cluster serves, as the host's
//! discovery sees them.

use crate::cluster::discovery::{self, KindRegistry};
use crate::cmd::run::RunError;

/// `kubewasm discover`: the kinds the cluster serves, as a table.
pub async fn table(
    rate_limit: Option<crate::cluster::client::RateLimit>,
) -> Result<String, RunError> {
    let client = crate::cluster::client::connect(rate_limit)
        .await
        .map_err(RunError::Client)?;
    let discovered = discovery::discover(&client)
        .await
        .map_err(RunError::Discovery)?;
    let mut text = String::new();
    for failure in &discovered.failures {
        text.push_str(&format!(
            "# skipped {}/{}: {}\n",
            failure.group, failure.version, failure.reason
        ));
    }
    text.push_str(&discovery::render_table(&KindRegistry::from(discovered)));
    Ok(text)
}
